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


def write_kay_vim1(root: Path, n_train=14, n_test=6, n_voxels=25, size=16, seed=0) -> dict:
    """EstimatedResponses.mat as MATLAB v7.3 (HDF5, axes reversed) and Stimuli.mat as MATLAB v5."""
    import h5py
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    truth = {}
    path = root / "EstimatedResponses.mat"
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  7 10:00:00 2008 HDF5 schema 1.00 ."
    with h5py.File(path, "w", userblock_size=512) as f:
        for s in (1, 2):
            train = rng.standard_normal((n_train, n_voxels))  # MATLAB voxels x images, reversed through HDF5
            test = rng.standard_normal((n_test, n_voxels))
            train[3, 2] = np.nan  # a NaN voxel, as in the real file
            test[0, 7] = np.nan
            roi = rng.integers(0, 8, n_voxels)
            roi[:8] = np.arange(8)  # every code 0..7 present
            vox = rng.choice(64 * 64 * 18, n_voxels, replace=False) + 1  # 1-based
            for key, value in (("dataTrn", train), ("dataVal", test), ("roi", roi[None, :]), ("voxIdx", vox[None, :])):
                ds = f.create_dataset(f"{key}S{s}", data=value.astype(np.float64))
                ds.attrs["MATLAB_class"] = np.bytes_("double")
            truth[s] = {"train": train, "test": test, "roi": roi, "voxIdx": vox}
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    stim_trn = rng.random((n_train, size, size)).astype(np.float32)
    stim_val = rng.random((n_test, size, size)).astype(np.float32)
    savemat(root / "Stimuli.mat", {"stimTrn": stim_trn, "stimVal": stim_val, "seqTrn": np.arange(n_train)})
    truth["stimTrn"], truth["stimVal"] = stim_trn, stim_val
    return truth


def write_kay_nma(root: Path, n_train=14, n_test=6, n_voxels=30, size=16, seed=0) -> dict:
    """kay_images.npz (uncompressed np.savez) with kay_labels.npy / kay_labels_val.npy (4 x images, <U71)."""
    rng = np.random.default_rng(seed)
    dat = {
        "stimuli": (rng.random((n_train, size, size)) - 0.5).astype(np.float32),
        "stimuli_test": (rng.random((n_test, size, size)) - 0.5).astype(np.float32),
        "responses": rng.standard_normal((n_train, n_voxels)),
        "responses_test": rng.standard_normal((n_test, n_voxels)),
        "roi": np.r_[np.arange(1, 8), rng.integers(1, 8, n_voxels - 7)].astype(np.int64),  # 'Other' removed
        "roi_names": np.array(["Other", "V1", "V2", "V3", "V3A", "V3B", "V4", "LatOcc"], dtype="<U6"),
    }
    np.savez(root / "kay_images.npz", **dat)
    levels = [["artifact", "entity", "animal"], ["instrumentality", "vertebrate"], ["equipment", "mammal"]]
    for name, n in (("kay_labels.npy", n_train), ("kay_labels_val.npy", n_test)):
        labels = np.array([[lv[i % len(lv)] for i in range(n)] for lv in levels] + [[f"class {i}" for i in range(n)]])
        np.save(root / name, labels.astype("<U71"))
    return dat
