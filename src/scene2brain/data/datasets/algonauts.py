"""Algonauts 2023 challenge data (NSD subjects 1-8 on the fsaverage surface).

Layout (``root`` is the folder holding ``subj01`` ... ``subj08``)::

    subjXX/roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy   int mask over 163,842 vertices
    subjXX/roi_masks/{lh,rh}.<family>_challenge_space.npy        int ROI labels per challenge vertex
    subjXX/roi_masks/{lh,rh}.<family>_fsaverage_space.npy        the same over fsaverage
    subjXX/roi_masks/mapping_<family>.npy                        dict {label: name}, np.save'd (pickled)
    subjXX/training_split/training_fmri/{lh,rh}_training_fmri.npy  float32 (n_train, n_vertices_hemi)
    subjXX/training_split/training_images/train-0001_nsd-00013.png ...
    subjXX/test_split/test_images/test-0001_nsd-NNNNN.png ...

Facts the loader relies on and checks: the image files sort into the row order of the
fMRI arrays (the 4-digit counter is 1-based); the 5-digit number is the 0-based NSD
73k id; challenge vertices are the **nonzero** entries of the all-vertices mask (it is
the sum of two masks, so some entries are 2); ROI label 0 means "no ROI". The
vertex counts come from the masks: 19,004 (lh) and 20,544 (rh) for most subjects, fewer
for subjects 6 (18,978 / 20,220) and 8 (18,981 / 20,530), whose NaN vertices were dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scene2brain.data.containers import Experiment, Responses, Stimuli
from scene2brain.data.datasets._files import (
    CopyCheck,
    DatasetFileError,
    FileCheck,
    NanPolicy,
    NonFinite,
    Noted,
    check_nan_policy,
    check_nonfinite,
    check_shape,
    count_nonfinite,
    drop_voxels,
    load_npy,
    nsd_subject,
    require_root,
)
from scene2brain.data.fsaverage import (
    HEMISPHERES,
    N_FSAVERAGE_VERTICES,
)
from scene2brain.data.images import FileImages, ImageReadError, read_image
from scene2brain.utils.files import save_npy_atomic

ROI_FAMILIES = ("prf-visualrois", "floc-bodies", "floc-faces", "floc-places", "floc-words", "streams")
ALGONAUTS_ROOT = "the Algonauts 2023 challenge data (subj01 ... subj08)"
_IMAGE_NAME = re.compile(r"^(train|test)-(\d{4})_nsd-(\d{5})\.png$")


def subject_dir(root: str | Path, subject: int | str) -> Path:
    """``root/subjXX``, checked to exist."""
    path = require_root(root, ALGONAUTS_ROOT) / f"subj{nsd_subject(subject):02d}"
    if not path.is_dir():
        raise DatasetFileError(f"{path}: missing; expected the Algonauts 2023 folder of subject {subject}")
    return path


def parse_image_names(folder: Path, split: str) -> pd.DataFrame:
    """Image files of one split, in array-row order, with their 1-based counter and 0-based NSD id."""
    if not folder.is_dir():
        raise DatasetFileError(f"{folder}: missing; expected the {split} images ({split}-0001_nsd-NNNNN.png ...)")
    names = sorted(p.name for p in folder.iterdir() if p.suffix == ".png")
    rows = []
    for name in names:
        match = _IMAGE_NAME.match(name)
        if not match or match.group(1) != split:
            raise DatasetFileError(f"{folder / name}: unexpected file name; expected {split}-NNNN_nsd-NNNNN.png")
        rows.append((int(match.group(2)), int(match.group(3)), str(folder / name)))
    table = pd.DataFrame(rows, columns=["image_index", "nsd_id", "file"])
    if not np.array_equal(table["image_index"], np.arange(1, len(table) + 1)):
        raise DatasetFileError(
            f"{folder}: image counters must run 1..{len(table)} without gaps, "
            f"found {table['image_index'].head(3).tolist()}...; a file is missing or misnamed"
        )
    return table


def read_vertex_mask(path: Path) -> np.ndarray:
    """fsaverage indices of the challenge vertices: the nonzero entries of an all-vertices mask file."""
    mask = load_npy(path, "the all-vertices mask over fsaverage", ndim=1, kind="iufb")
    check_shape(path, mask, (N_FSAVERAGE_VERTICES,), "the all-vertices mask")
    return np.flatnonzero(mask)


def read_roi_mapping(path: Path, family: str) -> dict[int, str]:
    """``{label: name}`` of one ROI family from its ``mapping_<family>.npy`` (0 = no ROI is left out)."""
    obj = load_npy(path, f"the {family} label -> name dict saved with np.save", allow_pickle=True)
    mapping = obj.item() if obj.dtype == object and obj.ndim == 0 else None
    if not isinstance(mapping, dict):
        found = f"{obj.dtype} {obj.shape}"
        raise DatasetFileError(f"{path}: expected a dict {{label: name}} saved with np.save, found {found}")
    return {int(k): str(v) for k, v in mapping.items() if int(k) != 0}


def read_roi_labels(path: Path, family: str, n_vertices: int | None, mapping: dict[int, str] | None) -> np.ndarray:
    """int64 ROI label per challenge vertex, checked against the vertex count and the mapping (``None``: unchecked)."""
    labels = load_npy(path, f"{family} labels per challenge vertex", ndim=1, kind="iuf")
    check_shape(path, labels, (n_vertices,), f"{family} labels (one per challenge vertex of the mask)")
    labels = labels.astype(np.int64)
    if mapping is not None:
        unknown = sorted(set(np.unique(labels).tolist()) - set(mapping) - {0})
        if unknown:
            raise DatasetFileError(f"{path}: labels {unknown} are not in mapping_{family}.npy ({mapping})")
    return labels


def read_training_fmri(
    path: Path, n_images: int | None, n_vertices: int | None, nan_policy: str = "raise", mmap: bool = False
) -> tuple[np.ndarray, NonFinite]:
    """One hemisphere's training fMRI, checked: size against header, float dtype, (images x mask vertices), NaN.

    Returns the array (memory-mapped with ``mmap=True``) and its NaN/inf counts, which
    :func:`~scene2brain.data.datasets._files.check_nonfinite` has judged under ``nan_policy``.
    """
    fmri = load_npy(path, "training fMRI (images x challenge vertices), float32", ndim=2, kind="f", mmap=mmap)
    check_shape(path, fmri, (n_images, n_vertices), "training fMRI (training images x mask vertices)")
    counts = count_nonfinite(fmri)
    check_nonfinite(path, counts, nan_policy, "the training fMRI", rows="images", columns="vertices")
    return fmri, counts


def challenge_vertices(root: str | Path, subject: int | str, hemisphere: str) -> np.ndarray:
    """fsaverage indices of the challenge vertices (nonzero entries of the all-vertices mask)."""
    return read_vertex_mask(subject_dir(root, subject) / "roi_masks" / f"{hemisphere}.all-vertices_fsaverage_space.npy")


def load_roi_mapping(root: str | Path, subject: int | str, family: str) -> dict[int, str]:
    """``{label: name}`` of one ROI family (0 = no ROI is not in it)."""
    if family not in ROI_FAMILIES:
        raise ValueError(f"family: expected one of {ROI_FAMILIES}, got {family!r}")
    return read_roi_mapping(subject_dir(root, subject) / "roi_masks" / f"mapping_{family}.npy", family)


def roi_names(labels: np.ndarray, mapping: dict[int, str]) -> np.ndarray:
    """ROI names of integer labels (None for 0 = no ROI)."""
    names = np.array([None, *mapping.values()], dtype=object)
    lookup = np.zeros(max(mapping, default=0) + 1, dtype=np.int64)
    lookup[list(mapping)] = np.arange(1, len(mapping) + 1)
    return names[lookup[labels]]


def load_roi_labels(root: str | Path, subject: int | str, hemisphere: str, family: str, n_vertices: int) -> np.ndarray:
    """ROI names per challenge vertex of one hemisphere (missing outside the family's ROIs)."""
    mapping = load_roi_mapping(root, subject, family)
    path = subject_dir(root, subject) / "roi_masks" / f"{hemisphere}.{family}_challenge_space.npy"
    return roi_names(read_roi_labels(path, family, n_vertices, mapping), mapping)


def devkit_split(n_train: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The devkit tutorial's 90/10 train/validation split of the training images.

    ``np.random.seed(5)``, shuffle ``arange(n)``, the first ``round(n / 100 * 90)`` are
    training and the rest validation (8857 / 984 for subject 1), in that shuffled order.
    """
    state = np.random.RandomState(seed)
    idxs = np.arange(n_train)
    state.shuffle(idxs)
    num_train = int(np.round(n_train / 100 * 90))
    return idxs[:num_train], idxs[num_train:]


def load_algonauts2023(
    root: str | Path,
    subject: int | str,
    hemispheres: Sequence[str] = HEMISPHERES,
    roi_families: Sequence[str] = ROI_FAMILIES,
    split: str | Mapping[str, Sequence[int]] = "devkit",
    nan_policy: NanPolicy = "raise",
) -> Experiment:
    """Load one subject of the Algonauts 2023 challenge as an :class:`Experiment`.

    Parameters
    ----------
    root : path
        The folder holding ``subj01`` ... ``subj08``.
    subject : int or str
        1..8 or "subj01".."subj08".
    hemispheres : sequence of "lh", "rh"
        Columns of the response matrix: all challenge vertices of the first
        hemisphere, then of the second.
    roi_families : sequence of str
        ROI families to read into the voxel table (one column per family, ROI names,
        missing outside). Pass ``()`` to skip them.
    split : {"devkit", "all"} or mapping of str to training-image positions
        "devkit": the tutorial's 90/10 split of the training images into "train" and
        "val" (seed 5); "all": every training image in "train"; a mapping: your own
        disjoint splits of the training images (0-based rows of the fMRI arrays). The
        challenge test images always form the "test" split (responses withheld).
    nan_policy : {"raise", "drop", "allow"}
        What NaN or inf values in the training fMRI do. "raise" (default): a
        :class:`DatasetFileError` naming the file and how many vertices and images hold
        them (the challenge dropped NaN vertices, so a NaN means a damaged copy);
        "drop": leave out every vertex with one, with a warning, recording them in
        ``metadata["dropped_voxels"]`` (``column``, ``hemisphere``, ``vertex``); "allow":
        keep them. A file with no finite value is refused under every policy.

    Returns
    -------
    Experiment
        Stimuli: training then test images (lazy PNG access) with ``nsd_id``,
        ``image_index`` (1-based counter of the file name), ``source_split`` and
        ``file``. Responses: one row per training image (the challenge averaged the
        repeats), float32; the voxel table holds ``hemisphere``, ``vertex`` (fsaverage
        index) and one column per ROI family. ``metadata`` records ``nan_policy`` and
        ``n_nan_voxels``.
    """
    number = nsd_subject(subject)
    check_nan_policy(nan_policy)
    base = subject_dir(root, number)
    if isinstance(split, str) and split not in ("devkit", "all"):
        raise ValueError(f"split: expected 'devkit', 'all' or a mapping of split names to indices, got {split!r}")
    if not isinstance(split, str) and "test" in split:
        raise ValueError("split: the name 'test' is reserved for the challenge test images")
    bad = set(hemispheres) - set(HEMISPHERES)
    if bad or not hemispheres:
        raise ValueError(f"hemispheres: expected a non-empty subset of {HEMISPHERES}, got {list(hemispheres)}")
    for family in roi_families:
        if family not in ROI_FAMILIES:
            raise ValueError(f"roi_families: {family!r} is not one of {ROI_FAMILIES}")

    train_images = parse_image_names(base / "training_split" / "training_images", "train")
    test_images = parse_image_names(base / "test_split" / "test_images", "test")
    blocks, tables, nan_columns = [], [], []
    for hemi in hemispheres:
        vertices = challenge_vertices(root, number, hemi)
        path = base / "training_split" / "training_fmri" / f"{hemi}_training_fmri.npy"
        fmri, counts = read_training_fmri(path, len(train_images), len(vertices), nan_policy, mmap=True)
        blocks.append(np.array(fmri, dtype=np.float32))
        nan_columns.append(counts.bad_columns)
        table = pd.DataFrame({"hemisphere": hemi, "vertex": vertices})
        for family in roi_families:
            table[family] = load_roi_labels(root, number, hemi, family, len(vertices))
        tables.append(table)
    data = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
    voxels = pd.concat(tables, ignore_index=True)
    counts_before = {hemi: int((voxels["hemisphere"] == hemi).sum()) for hemi in hemispheres}
    metadata = {
        "dataset": "algonauts2023",
        "subject": f"subj{number:02d}",
        "root": str(Path(root)),
        "n_vertices": counts_before,
        "split": split if isinstance(split, str) else "user",
        "responses": "z-scored per NSD session, averaged over repeats (1-3) per image",
    }
    source = base / "training_split" / "training_fmri"
    data, voxels = drop_voxels(
        data, voxels, np.concatenate(nan_columns), nan_policy, metadata, source, ("hemisphere", "vertex")
    )

    stim_table = pd.concat(
        [train_images.assign(source_split="train"), test_images.assign(source_split="test")], ignore_index=True
    )
    stim_table.insert(0, "stimulus_id", [f"nsd-{i:05d}" for i in stim_table["nsd_id"]])
    if stim_table["stimulus_id"].duplicated().any():
        dup = stim_table.loc[stim_table["stimulus_id"].duplicated(), "stimulus_id"].iloc[0]
        raise DatasetFileError(f"{base}: image {dup} appears in both the training and the test images")
    stimuli = Stimuli(stim_table, FileImages(stim_table["file"].tolist()))
    n_train = len(train_images)
    test = np.arange(n_train, len(stim_table))
    if split == "devkit":
        fit, val = devkit_split(n_train)
        splits = {"train": fit, "val": val, "test": test}
    elif split == "all":
        splits = {"train": np.arange(n_train), "test": test}
    else:
        for name, idx in split.items():
            idx = np.asarray(idx)
            if len(idx) and (idx.min() < 0 or idx.max() >= n_train):
                raise ValueError(f"split {name!r}: training-image positions must lie in [0, {n_train})")
        splits = {**{str(k): np.asarray(v) for k, v in split.items()}, "test": test}
    responses = Responses(data, np.arange(n_train), voxels, nan_policy="allow" if nan_policy == "allow" else "raise")
    return Experiment(f"subj{number:02d}", stimuli, responses, splits, metadata)


def algonauts_files(subject: int) -> list[str]:
    """Paths, relative to the root, that a complete copy of one subject holds (folders end with "/")."""
    s = f"subj{subject:02d}"
    files = []
    for hemi in HEMISPHERES:
        files.append(f"{s}/roi_masks/{hemi}.all-vertices_fsaverage_space.npy")
        files += [f"{s}/roi_masks/{hemi}.{f}_challenge_space.npy" for f in ROI_FAMILIES]
        files.append(f"{s}/training_split/training_fmri/{hemi}_training_fmri.npy")
    files += [f"{s}/roi_masks/mapping_{f}.npy" for f in ROI_FAMILIES]
    return [*files, f"{s}/training_split/training_images/", f"{s}/test_split/test_images/"]


def check_image_files(paths: Sequence[str | Path]) -> None:
    """Decode every image file with the reader the analyses use; one error listing the unreadable ones.

    A full decode, not Pillow's ``verify()`` (which misses truncated JPEG data).
    """
    bad = []
    for path in paths:
        try:
            read_image(path)
        except ImageReadError as err:
            bad.append(str(err))
    if bad:
        raise DatasetFileError(f"{len(bad)} of {len(paths)} images are not readable: {'; '.join(bad[:3])}")


def check_algonauts2023(root: str | Path, subject: int | str) -> list[FileCheck]:
    """Open every file of one subject's copy and check it as :func:`load_algonauts2023` would.

    Image folders: names, counters, and every PNG verified; masks, labels and mappings
    read; training fMRI memory-mapped: size against header, dtype, (training images x
    mask vertices), NaN and inf counted in row blocks (a note; an error when every
    value is NaN).
    """
    number = nsd_subject(subject)
    root = require_root(root, ALGONAUTS_ROOT)
    s = f"subj{number:02d}"
    check = CopyCheck(root)

    def images(split: str) -> Any:
        def read(folder: Path) -> pd.DataFrame:
            table = parse_image_names(folder, split)
            if table.empty:
                raise DatasetFileError(f"{folder}: no {split}-NNNN_nsd-NNNNN.png images")
            check_image_files(table["file"].tolist())
            return table

        return read

    train = check.file(f"{s}/training_split/training_images/", images("train"))
    check.file(f"{s}/test_split/test_images/", images("test"))
    mappings = {
        f: check.file(f"{s}/roi_masks/mapping_{f}.npy", lambda p, f=f: read_roi_mapping(p, f)) for f in ROI_FAMILIES
    }
    for hemi in HEMISPHERES:
        mask = f"{s}/roi_masks/{hemi}.all-vertices_fsaverage_space.npy"
        vertices = check.file(mask, read_vertex_mask)
        n_vertices = None if vertices is None else len(vertices)
        for f in ROI_FAMILIES:
            broken = ", ".join(n for n, v in ((mask, vertices), (f"mapping_{f}.npy", mappings[f])) if v is None)
            check.file(
                f"{s}/roi_masks/{hemi}.{f}_challenge_space.npy",
                lambda p, f=f, n=n_vertices: read_roi_labels(p, f, n, mappings[f]),
                after=broken,
            )

        def fmri(path: Path, n_vertices: int | None = n_vertices) -> Noted:
            _, counts = read_training_fmri(path, None if train is None else len(train), n_vertices, "allow", mmap=True)
            return Noted(None, counts.describe("images", "vertices"))

        broken = ", ".join(n for n, v in ((mask, vertices), ("training_images/", train)) if v is None)
        check.file(f"{s}/training_split/training_fmri/{hemi}_training_fmri.npy", fmri, after=broken)
    return check.results


def write_submission(
    out_dir: str | Path, subject: int | str, lh: np.ndarray, rh: np.ndarray, experiment: Experiment | None = None
) -> list[Path]:
    """Write test predictions in the challenge's submission layout.

    ``out_dir/subjXX/{lh,rh}_pred_test.npy``, float32, shape (n_test, n_vertices_hemi)
    with every challenge vertex. Given the subject's ``experiment``, the shapes are
    checked against its test images and vertex counts. Writes are atomic.
    """
    number = nsd_subject(subject)
    arrays = {"lh": np.asarray(lh), "rh": np.asarray(rh)}
    expected: dict[str, tuple[int, int]] = {}
    if experiment is not None:
        n_test = len(experiment.splits["test"])
        counts = experiment.metadata.get("n_vertices", {})
        expected = {hemi: (n_test, counts[hemi]) for hemi in counts}
    for hemi, arr in arrays.items():
        if arr.ndim != 2:
            raise ValueError(f"{hemi}: expected predictions of shape (n_test, n_vertices), got {arr.shape}")
        if hemi in expected and arr.shape != expected[hemi]:
            raise ValueError(f"{hemi}: expected shape {expected[hemi]} (test images, vertices), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{hemi}: predictions contain NaN or inf; every vertex needs a finite value")
    folder = Path(out_dir) / f"subj{number:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for hemi, arr in arrays.items():
        target = folder / f"{hemi}_pred_test.npy"
        save_npy_atomic(target, arr.astype(np.float32))
        written.append(target)
    return written
