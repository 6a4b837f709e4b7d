"""Writers of small dataset folders in the exact on-disk formats of the real datasets.

Same file names, dtypes, index bases and layouts as the originals (see
shared/reference/data_formats.md); only the shapes are scaled down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

N_FS = 163_842
ALGONAUTS_MAPPINGS = {
    "prf-visualrois": {0: "Unknown", 1: "V1v", 2: "V1d", 3: "V2v", 4: "V2d", 5: "V3v", 6: "V3d", 7: "hV4"},
    "floc-bodies": {0: "Unknown", 1: "EBA", 2: "FBA-1", 3: "FBA-2", 4: "mTL-bodies"},
    "floc-faces": {0: "Unknown", 1: "OFA", 2: "FFA-1", 3: "FFA-2", 4: "mTL-faces", 5: "aTL-faces"},
    "floc-places": {0: "Unknown", 1: "OPA", 2: "PPA", 3: "RSC"},
    "floc-words": {0: "Unknown", 1: "OWFA", 2: "VWFA-1", 3: "VWFA-2", 4: "mfs-words", 5: "mTL-words"},
    "streams": dict(
        enumerate(["Unknown", "early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal"])
    ),
}


def write_algonauts_subject(root: Path, subject: int, n_train=12, n_test=4, n_vertices=(30, 40), seed=0) -> dict:
    """One subject folder as distributed to the challenge participants; returns the ground truth."""
    rng = np.random.default_rng(seed + subject)
    base = root / f"subj{subject:02d}"
    masks = base / "roi_masks"
    masks.mkdir(parents=True)
    truth: dict = {"vertices": {}, "fmri": {}, "roi": {}}
    nsd_ids = np.sort(rng.choice(73000, n_train + n_test, replace=False))
    train_ids, test_ids = np.sort(nsd_ids[:n_train]), np.sort(nsd_ids[n_train:])
    for hemi, n_vert in zip(("lh", "rh"), n_vertices, strict=True):
        vertices = np.sort(rng.choice(N_FS, n_vert, replace=False))
        mask = np.zeros(N_FS, dtype=int)  # astype(int): int64 on Linux
        mask[vertices] = rng.choice([1, 2], n_vert)  # nsdgeneral + nsdgeneralRSC: some entries are 2
        np.save(masks / f"{hemi}.all-vertices_fsaverage_space.npy", mask)
        truth["vertices"][hemi] = vertices
        for family, mapping in ALGONAUTS_MAPPINGS.items():
            labels = rng.integers(0, len(mapping), n_vert)  # 0 = outside every ROI of the family
            fs = np.zeros(N_FS, dtype=int)
            fs[vertices] = labels
            np.save(masks / f"{hemi}.{family}_fsaverage_space.npy", fs)
            np.save(masks / f"{hemi}.{family}_challenge_space.npy", fs[np.where(mask)[0]])
            truth["roi"][hemi, family] = labels
        fmri = rng.standard_normal((n_train, n_vert)).astype(np.float32)
        folder = base / "training_split" / "training_fmri"
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{hemi}_training_fmri.npy", fmri)
        truth["fmri"][hemi] = fmri
    for family, mapping in ALGONAUTS_MAPPINGS.items():
        np.save(masks / f"mapping_{family}.npy", mapping)  # a dict: 0-d object array, needs allow_pickle
    for split, folder, ids in (
        ("train", base / "training_split" / "training_images", train_ids),
        ("test", base / "test_split" / "test_images", test_ids),
    ):
        folder.mkdir(parents=True)
        for i, nsd_id in enumerate(ids):
            pixel = np.full((8, 8, 3), nsd_id % 256, dtype=np.uint8)  # the id is readable from the pixels
            Image.fromarray(pixel).save(folder / f"{split}-{i + 1:04d}_nsd-{nsd_id:05d}.png")
    truth["train_ids"], truth["test_ids"] = train_ids, test_ids
    return truth
