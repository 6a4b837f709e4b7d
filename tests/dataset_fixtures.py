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


NSD_VOLUME = (6, 5, 4)


def write_nsd(root: Path, subject=1, n_sessions=2, n_per=10, n_images=12, n_shared=4, n_73k=200, seed=0) -> dict:
    """A scaled-down NSD tree: design (1-based), stimulus table, image brick, fsaverage and volume betas, ROIs."""
    import h5py
    import nibabel as nib
    import pandas as pd
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    nsd = root / "nsddata" / "experiments" / "nsd"
    nsd.mkdir(parents=True)
    subjectim = np.stack([rng.choice(n_73k, n_images, replace=False) for _ in range(8)])  # 0-based truth
    shared = rng.choice(n_73k, n_shared, replace=False)
    subjectim[:, :n_shared] = shared  # the first columns are the shared images
    n_trials = n_sessions * n_per + 5  # the design lists more trials than the sessions written
    ordering = rng.integers(0, n_images, n_trials)  # 0-based truth
    savemat(nsd / "nsd_expdesign.mat", {
        "masterordering": ordering[None, :] + 1, "subjectim": subjectim + 1, "sharedix": shared[None, :] + 1,
        "stimpattern": np.zeros((n_sessions, 12, 75), dtype=np.uint8),
    })  # fmt: skip
    trial_image = subjectim[subject - 1, ordering]
    info = pd.DataFrame({
        "cocoId": 100000 + np.arange(n_73k), "cocoSplit": np.where(np.arange(n_73k) % 2, "train2017", "val2017"),
        "cropBox": [str((0, 0, 0.125, 0.125)) if i % 3 else "(0.1, 0.0, 0, 0)" for i in range(n_73k)],
        "loss": 0.1, "nsdId": np.arange(n_73k), "flagged": False, "BOLD5000": False,
        "shared1000": np.isin(np.arange(n_73k), shared),
    })  # fmt: skip
    for s in range(1, 9):
        info[f"subject{s}"] = np.isin(np.arange(n_73k), subjectim[s - 1]).astype(int)
    for s in range(1, 9):
        img = subjectim[s - 1, ordering]
        for rep in range(3):
            col = np.zeros(n_73k, dtype=int)
            for nsd_id in np.unique(img):
                shown = np.flatnonzero(img == nsd_id)
                if rep < len(shown):
                    col[nsd_id] = shown[rep] + 1  # 1-based trial number, 0 = not shown
            info[f"subject{s}_rep{rep}"] = col
    info.to_csv(nsd / "nsd_stim_info_merged.csv")  # the unnamed first column is the index

    stim_dir = root / "nsddata_stimuli" / "stimuli" / "nsd"
    stim_dir.mkdir(parents=True)
    with h5py.File(stim_dir / "nsd_stimuli.hdf5", "w") as f:
        brick = np.broadcast_to((np.arange(n_73k) % 256).astype(np.uint8)[:, None, None, None], (n_73k, 6, 6, 3))
        f.create_dataset("imgBrick", data=np.ascontiguousarray(brick))

    subj = f"subj{subject:02d}"
    label_dir = root / "nsddata" / "freesurfer" / "fsaverage" / "label"
    label_dir.mkdir(parents=True)
    fs_base = root / "nsddata_betas" / "ppdata" / subj / "fsaverage" / "betas_fithrf_GLMdenoise_RR"
    fs_base.mkdir(parents=True)
    truth: dict = {"trial_image": trial_image, "shared": shared, "fs": {}, "fs_mask": {}, "streams": {}}
    (label_dir / "streams.mgz.ctab").write_text("0 Unknown\n1 early\n2 midventral\n3 midlateral\n")
    for hemi in ("lh", "rh"):
        mask = np.zeros(N_FS, dtype=np.float32)
        vertices = np.sort(rng.choice(N_FS, 15, replace=False))
        mask[vertices] = 1
        mask[rng.choice(N_FS, 5)] = -1  # negative entries are outside
        nib.save(nib.MGHImage(mask.reshape(N_FS, 1, 1), np.eye(4)), label_dir / f"{hemi}.nsdgeneral.mgz")
        streams = np.zeros(N_FS, dtype=np.int32)
        streams[vertices] = rng.integers(0, 4, len(vertices))
        nib.save(nib.MGHImage(streams.reshape(N_FS, 1, 1), np.eye(4)), label_dir / f"{hemi}.streams.mgz")
        ncsnr = rng.random(N_FS).astype(np.float32)
        nib.save(nib.MGHImage(ncsnr.reshape(N_FS, 1, 1), np.eye(4)), fs_base / f"{hemi}.ncsnr.mgh")
        truth["fs_mask"][hemi], truth["streams"][hemi] = vertices, streams[vertices]
        truth["fs", "ncsnr", hemi] = ncsnr[vertices]
        for session in range(1, n_sessions + 1):
            betas = rng.standard_normal((N_FS, 1, 1, n_per)).astype(np.float32)
            nib.save(nib.MGHImage(betas, np.eye(4)), fs_base / f"{hemi}.betas_session{session:02d}.mgh")
            truth["fs"][hemi, session] = betas[vertices, 0, 0, :].T

    vol_base = root / "nsddata_betas" / "ppdata" / subj / "func1pt8mm" / "betas_fithrf_GLMdenoise_RR"
    vol_base.mkdir(parents=True)
    roi_dir = root / "nsddata" / "ppdata" / subj / "func1pt8mm" / "roi"
    roi_dir.mkdir(parents=True)
    ctab_dir = root / "nsddata" / "freesurfer" / subj / "label"
    ctab_dir.mkdir(parents=True)
    (ctab_dir / "prf-visualrois.mgz.ctab").write_text("0 Unknown\n1 V1v\n2 V1d\n3 V2v\n")
    vmask = rng.random(NSD_VOLUME) < 0.4
    nib.save(nib.Nifti1Image(vmask.astype(np.int16), np.eye(4)), roi_dir / "nsdgeneral.nii.gz")
    prf = rng.integers(0, 4, NSD_VOLUME).astype(np.int16)
    nib.save(nib.Nifti1Image(prf, np.eye(4)), roi_dir / "prf-visualrois.nii.gz")
    nib.save(nib.Nifti1Image(rng.random(NSD_VOLUME).astype(np.float32), np.eye(4)), vol_base / "ncsnr.nii.gz")
    truth["vol_mask"], truth["prf"] = vmask, prf[vmask]
    for session in range(1, n_sessions + 1):
        raw = rng.integers(-3000, 3000, (*NSD_VOLUME, n_per)).astype(np.int16)  # beta * 300
        img = nib.Nifti1Image(raw, np.eye(4))
        img.header.set_slope_inter(1, 0)
        nib.save(img, vol_base / f"betas_session{session:02d}.nii.gz")
        with h5py.File(vol_base / f"betas_session{session:02d}.hdf5", "w") as f:
            f.create_dataset("betas", data=raw.transpose(3, 2, 1, 0))  # axes reversed: (n, Z, Y, X)
        truth["vol", session] = raw[vmask].T / 300.0
    return truth


#: COCO 2017 categories used by the NSD fixture (real ids, names and supercategories).
COCO_CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
    {"id": 59, "name": "pizza", "supercategory": "food"},
]


def write_nsd_coco(root: Path) -> Path:
    """COCO 2017 instances_{train2017,val2017}.json for every image of a :func:`write_nsd` tree.

    Each COCO image is 400 x 600 (height x width). In :func:`write_nsd`, images with
    ``nsdId % 3 == 0`` lose their top 10 % to the crop (y < 40 cut), the others 12.5 % on
    the left and on the right (x < 75 and x > 525 cut). Objects by ``nsdId % 4``:

    0. a person (area 5000) and a larger dog (area 8000), both wholly visible;
    1. a person in the top-left corner (cut away by either crop) and a car (area 4000);
    2. nothing annotated;
    3. a person [0, 100, 150, 200] (area 16000) and a pizza (area 9000): the left/right
       crop keeps half of the person's box (visible area 8000 < 9000), the top crop all.
    """
    import json

    import pandas as pd

    info = pd.read_csv(root / "nsddata" / "experiments" / "nsd" / "nsd_stim_info_merged.csv", index_col=0)
    folder = root / "nsddata_stimuli" / "stimuli" / "nsd" / "annotations"
    folder.mkdir(parents=True, exist_ok=True)
    objects = {
        0: [(1, [300, 200, 50, 100], 5000), (18, [100, 100, 100, 100], 8000)],
        1: [(1, [0, 0, 60, 30], 1500), (3, [200, 200, 100, 50], 4000)],
        2: [],
        3: [(1, [0, 100, 150, 200], 16000), (59, [300, 300, 100, 100], 9000)],
    }
    for split, group in info.groupby("cocoSplit"):
        images, annotations = [], []
        for nsd_id, coco_id in zip(group["nsdId"], group["cocoId"], strict=True):
            images.append({"id": int(coco_id), "height": 400, "width": 600, "file_name": f"{coco_id:012d}.jpg",
                           "license": 1, "coco_url": "", "date_captured": "", "flickr_url": ""})  # fmt: skip
            for category, bbox, area in objects[int(nsd_id) % 4]:
                annotations.append({"id": len(annotations) + 1, "image_id": int(coco_id), "category_id": category,
                                    "bbox": [float(v) for v in bbox], "area": float(area), "iscrowd": 0,
                                    "segmentation": [[bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1], bbox[0] + bbox[2],
                                                      bbox[1] + bbox[3]]]})  # fmt: skip
        data = {"info": {"description": "COCO 2017 Dataset"}, "licenses": [{"id": 1, "name": "", "url": ""}],
                "images": images, "annotations": annotations, "categories": COCO_CATEGORIES}  # fmt: skip
        (folder / f"instances_{split}.json").write_text(json.dumps(data))
    return folder


def write_things(root: Path, subject=1, n_voxels=9, seed=0) -> dict:
    """sub-0X_ResponseData.h5 (pandas HDF, voxels as rows), VoxelMetadata.csv, StimulusMetadata.csv."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    train = [f"{c}_{k:02d}s.jpg" for c in ("dog", "aardvark", "zebra") for k in (1, 2)]
    test = ["cake_13s.jpg", "boat_05n.jpg"]
    stimulus = train + test * 3 + ["catch_01.jpg"]
    trial_type = ["train"] * len(train) + ["test"] * 6 + ["catch"]
    order = rng.permutation(len(stimulus))
    trials = pd.DataFrame({
        "trial_type": np.array(trial_type)[order], "session": 1 + np.arange(len(order)) // 7, "run": 1,
        "subject_id": subject, "trial_id": np.arange(len(order)), "stimulus": np.array(stimulus)[order],
    })  # fmt: skip
    sub = f"sub-{subject:02d}"
    trials.to_csv(root / f"{sub}_StimulusMetadata.csv", index=False)
    voxels = pd.DataFrame({
        "voxel_id": 1000 + np.arange(n_voxels), "subject_id": subject, "voxel_x": rng.integers(0, 70, n_voxels),
        "voxel_y": rng.integers(0, 70, n_voxels), "voxel_z": rng.integers(0, 50, n_voxels),
        "nc_testset": rng.uniform(0, 60, n_voxels), "V1": [1, 1, 0, 0, 0, 0, 0, 0, 0][:n_voxels],
        "lFFA": [0, 0, 1, 0, 0, 0, 1, 0, 0][:n_voxels],
    })  # fmt: skip
    voxels.to_csv(root / f"{sub}_VoxelMetadata.csv", index=False)
    values = rng.standard_normal((n_voxels, len(trials)))
    table = pd.DataFrame(values, columns=[str(i) for i in range(len(trials))])
    table.insert(0, "voxel_id", voxels["voxel_id"])
    table.to_hdf(root / f"{sub}_ResponseData.h5", key="ResponseData")
    return {"trials": trials, "values": values, "voxels": voxels}


def write_things_concepts(path: Path) -> dict[str, str]:
    """things_concepts.tsv of the THINGS database (tab-separated, a subset of its columns, real column names).

    Covers the concepts of :func:`write_things` plus others; returns uniqueID -> bottom-up category.
    """
    import pandas as pd

    rows = [  # Word, uniqueID, bottom-up (human raters), top-down (WordNet), top-down (manual selection)
        ("aardvark", "aardvark", "animal", "animal", "animal"),
        ("bat", "bat1", "animal", "animal", "animal"),
        ("bat", "bat2", "sports equipment", "", "sports equipment"),
        ("boat", "boat", "vehicle", "vehicle", "vehicle"),
        ("cake", "cake", "dessert", "food", "food"),
        ("dog", "dog", "animal", "animal", "animal"),
        ("air conditioner", "air_conditioner", "home decor", "", "electronic device"),
        ("zebra", "zebra", "animal", "", "animal"),
    ]
    table = pd.DataFrame({
        "Word": [r[0] for r in rows], "Wordnet ID": [f"{r[0]}.n.01" for r in rows], "uniqueID": [r[1] for r in rows],
        "Definition (from WordNet, Google, or Wikipedia)": "a thing", "Concreteness (M)": 4.8, "Percent_known": 0.97,
        "Bottom-up Category (Human Raters)": [r[2] for r in rows], "Top-down Category (WordNet)": [r[3] for r in rows],
        "Top-down Category (manual selection)": [r[4] for r in rows],
    })  # fmt: skip
    table.to_csv(path, sep="\t", index=False)
    return {r[1]: r[2] for r in rows}


def write_bold5000(root: Path, subject=1, seed=0) -> dict:
    """ROIs/CSI{N}/mat/CSI{N}_ROIs_TR34.mat and ROIs/stim_lists/CSI0{N}_stim_lists.txt."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    coco, imagenet = "COCO_train2014_000000000036.jpg", "n01440764_10026.JPEG"
    names = [coco, imagenet, "airport1.jpg", coco, "yard3.jpg", imagenet, "n02085620_1205.JPEG"]
    lists = root / "ROIs" / "stim_lists"
    lists.mkdir(parents=True)
    (lists / f"CSI0{subject}_stim_lists.txt").write_text("\n".join(names) + "\n")
    mats = root / "ROIs" / f"CSI{subject}" / "mat"
    mats.mkdir(parents=True)
    rois = {}
    for roi, n in (("PPA", 3), ("LOC", 4), ("EarlyVis", 5), ("RSC", 2), ("OPA", 2)):
        for side in ("LH", "RH"):
            rois[f"{side}{roi}"] = rng.standard_normal((len(names), n))
    savemat(mats / f"CSI{subject}_ROIs_TR34.mat", rois)
    return {"names": names, "rois": rois}
