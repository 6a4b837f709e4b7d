"""THINGS-fMRI single-trial tables (Hebart et al. 2023, the ``betas_csv`` release).

Files per subject (``root`` holds them)::

    sub-0X_ResponseData.h5       pandas HDF: one row per voxel, columns voxel_id, 0 .. n_trials-1
    sub-0X_VoxelMetadata.csv     voxel_id, voxel_x/y/z, nc_testset (percent), ROI dummy columns...
    sub-0X_StimulusMetadata.csv  one row per trial: trial_type (train/test/catch), session, run,
                                 trial_id, stimulus (e.g. dog_12s.jpg)

The response table is read whole (about 8 GB of float32 for sub-01's 211,339 voxels x
9,840 trials), then restricted to the requested voxels.

Categories come from the THINGS database's concept table, ``things_concepts.tsv``
(tab-separated, one row per concept; among its columns ``Word``, ``uniqueID`` (the
concept's folder and file-name stem, e.g. ``air_conditioner``, ``bat1``),
``Bottom-up Category (Human Raters)``, ``Top-down Category (WordNet)`` and
``Top-down Category (manual selection)``; category cells may be empty).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    Noted,
    check_nan_policy,
    check_nonfinite,
    count_nonfinite,
    drop_voxels,
    require,
    require_root,
    subject_number,
)

#: Category columns of ``things_concepts.tsv``; the first is the default of ``category_column``.
CATEGORY_COLUMNS = (
    "Bottom-up Category (Human Raters)",
    "Top-down Category (WordNet)",
    "Top-down Category (manual selection)",
)


def _subject(subject: int | str) -> str:
    return f"sub-{subject_number(subject, 'sub-', 3, 2):02d}"


def _read_csv(path: Path, what: str, columns: Sequence[str]) -> pd.DataFrame:
    require(path, what)
    try:
        table = pd.read_csv(path)
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as CSV: {err}") from err
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DatasetFileError(f"{path}: columns {missing} missing; expected {what}")
    return table


def _response_columns(
    path: Path, columns: list[str], voxel_ids: Any, voxels: pd.DataFrame | None, n_trials: int | None, sub: str
) -> list[str]:
    """The trial columns of the response table, checked against the voxel and stimulus tables (``None``: unchecked)."""
    if "voxel_id" not in columns:
        raise DatasetFileError(f"{path}: column 'voxel_id' missing (found {list(columns)[:5]}...)")
    if voxels is not None and not np.array_equal(np.asarray(voxel_ids), voxels["voxel_id"].to_numpy()):
        raise DatasetFileError(
            f"{path}: voxel_id rows ({len(voxel_ids)}) differ from {sub}_VoxelMetadata.csv ({len(voxels)} rows; "
            "same voxels in the same order expected)"
        )
    trial_columns = [c for c in columns if c != "voxel_id"]
    if n_trials is not None and len(trial_columns) != n_trials:
        raise DatasetFileError(
            f"{path}: {len(trial_columns)} trial columns, but {sub}_StimulusMetadata.csv lists {n_trials} trials"
        )
    return trial_columns


_VOXEL_COLUMNS = ["voxel_id"]
_VOXEL_TABLE = "voxel metadata (voxel_id, nc_testset, ROIs...)"
_TRIAL_COLUMNS = ["trial_type", "stimulus", "session", "run"]
_TRIAL_TABLE = "one row per trial with trial_type and stimulus"


def check_things_fmri(root: str | Path, subject: int | str = 1) -> list[FileCheck]:
    """Open the three files of one subject and check them as :func:`load_things_fmri` would.

    The response table is read in blocks of voxel rows (bounded memory): its voxel ids
    against the voxel table, its trial columns against the stimulus table, NaN and
    inf counted.
    """
    sub = _subject(subject)
    root = require_root(root, "the THINGS-fMRI betas_csv files (sub-0X_ResponseData.h5 ...)")
    check = CopyCheck(root)
    voxel_rel, trial_rel = f"{sub}_VoxelMetadata.csv", f"{sub}_StimulusMetadata.csv"
    voxels = check.file(voxel_rel, lambda p: _read_csv(p, _VOXEL_TABLE, _VOXEL_COLUMNS))
    trials = check.file(trial_rel, lambda p: _read_csv(p, _TRIAL_TABLE, _TRIAL_COLUMNS))

    def responses(path: Path) -> Noted:
        ids, columns = [], None

        def blocks() -> Any:
            nonlocal columns
            with pd.HDFStore(path, mode="r") as store:
                keys = store.keys()
                if len(keys) != 1:
                    raise DatasetFileError(f"{path}: expected one pandas table, found keys {keys}")
                n_rows = store.get_storer(keys[0]).shape[0]
                step = max(1, 2**22 // max(1, store.get_storer(keys[0]).shape[1]))
                for start in range(0, n_rows, step):
                    part = store.select(keys[0], start=start, stop=start + step)
                    if columns is None:
                        columns = _response_columns(path, list(part.columns), None, None, None, sub)
                    ids.append(part["voxel_id"].to_numpy())
                    yield part[columns].to_numpy()  # voxels x trials, as stored

        try:
            counts = count_nonfinite(blocks())
        except DatasetFileError:
            raise
        except Exception as err:
            raise DatasetFileError(f"{path}: not readable as a pandas HDF table: {err}") from err
        all_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        n_trials = None if trials is None else len(trials)
        _response_columns(path, ["voxel_id", *(columns or [])], all_ids, voxels, n_trials, sub)
        check_nonfinite(path, counts, "allow", "the responses", rows="voxels", columns="trials")
        return Noted(None, counts.describe("voxels", "trials"))

    broken = ", ".join(n for n, v in ((voxel_rel, voxels), (trial_rel, trials)) if v is None)
    check.file(f"{sub}_ResponseData.h5", responses, after=broken)
    return check.results


def read_concept_categories(path: str | Path, category_column: str = CATEGORY_COLUMNS[0]) -> pd.Series:
    """The category of each THINGS concept, from ``things_concepts.tsv``.

    Parameters
    ----------
    path : path
        The THINGS database's concept table (tab-separated).
    category_column : str
        Which category: one of :data:`CATEGORY_COLUMNS` (or any other column of the file).

    Returns
    -------
    Series
        Indexed by ``uniqueID``; the category as written in the file (NaN where the
        cell is empty).
    """
    path = require(Path(path), "the THINGS concept table (things_concepts.tsv, tab-separated)")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as a tab-separated table: {err}") from err
    missing = [c for c in ("uniqueID", category_column) if c not in table.columns]
    if missing:
        raise DatasetFileError(
            f"{path}: columns {missing} missing; expected the THINGS concept table with uniqueID and a category "
            f"column (one of {list(CATEGORY_COLUMNS)}); found {list(table.columns)[:10]}"
        )
    ids = table["uniqueID"].str.strip()
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise DatasetFileError(f"{path}: uniqueID must be unique, {duplicated.iloc[0]!r} appears more than once")
    return pd.Series(table[category_column].str.strip().to_numpy(), index=ids.to_numpy(), name=category_column)


def load_things_fmri(
    root: str | Path,
    subject: int | str = 1,
    rois: Sequence[str] | None = None,
    include_catch: bool = False,
    concepts: str | Path | None = None,
    category_column: str = CATEGORY_COLUMNS[0],
    nan_policy: NanPolicy = "raise",
) -> Experiment:
    """Load one THINGS-fMRI subject's single-trial responses.

    Parameters
    ----------
    root : path
    subject : 1..3 or "sub-01"
    rois : sequence of str, optional
        Dummy-coded ROI columns of the voxel table (e.g. "V1", "lFFA"); keep the voxels
        in any of them. Default: every voxel.
    include_catch : bool
        Keep the catch trials (left out by default).
    concepts : path, optional
        The THINGS database's ``things_concepts.tsv`` (a relative path is taken from
        ``root``). When given, the stimulus table gets a ``category`` column: each
        stimulus's concept looked up by ``uniqueID`` in ``category_column`` (missing
        where the file's cell is empty, and for catch images).
    category_column : str
        The column of ``things_concepts.tsv`` that gives the category (default the
        27 bottom-up categories validated by human raters).
    nan_policy : {"raise", "drop", "allow"}
        What NaN or inf responses of the voxels and trials read do. "raise" (default):
        a :class:`DatasetFileError` naming the response file and how many voxels and
        trials hold them; "drop": leave out those voxels, with a warning, listed in
        ``metadata["dropped_voxels"]`` (``column``, ``voxel_id``); "allow": keep them.

    Returns
    -------
    Experiment
        One row per trial (repeats kept), stimuli = distinct image files with their
        ``concept`` (the file name without the ``_NNx.jpg`` suffix, the concept's
        ``uniqueID``), splits "train" and "test" from ``trial_type``. The voxel table is the metadata CSV with
        ``noise_ceiling`` = ``nc_testset`` / 100 added.
    """
    sub = _subject(subject)
    check_nan_policy(nan_policy)
    root = require_root(root, "the THINGS-fMRI betas_csv files (sub-0X_ResponseData.h5 ...)")
    categories = None
    if concepts is not None:  # read first: a wrong path fails before the large response table is read
        concepts_path = Path(concepts) if Path(concepts).is_absolute() else root / concepts
        categories = read_concept_categories(concepts_path, category_column)
    voxels = _read_csv(root / f"{sub}_VoxelMetadata.csv", _VOXEL_TABLE, _VOXEL_COLUMNS)
    trials = _read_csv(root / f"{sub}_StimulusMetadata.csv", _TRIAL_TABLE, _TRIAL_COLUMNS)
    path = require(root / f"{sub}_ResponseData.h5", "single-trial responses (pandas HDF, voxels x trials)")
    try:
        table = pd.read_hdf(path)
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as a pandas HDF table: {err}") from err
    trial_columns = _response_columns(path, list(table.columns), table.get("voxel_id"), voxels, len(trials), sub)
    if rois:
        missing = [r for r in rois if r not in voxels.columns]
        if missing:
            raise ValueError(f"rois: {missing} are not columns of {sub}_VoxelMetadata.csv")
        keep = voxels[list(rois)].to_numpy().astype(bool).any(axis=1)
    else:
        keep = np.ones(len(voxels), dtype=bool)
    use = np.ones(len(trials), dtype=bool) if include_catch else (trials["trial_type"] != "catch").to_numpy()
    data = np.ascontiguousarray(table[trial_columns].to_numpy(dtype=np.float32)[keep][:, use].T)
    counts = count_nonfinite(data)
    check_nonfinite(path, counts, nan_policy, "the responses read", rows="trials")

    trials = trials[use].reset_index(drop=True)
    names, first = np.unique(trials["stimulus"].to_numpy(), return_index=True)
    stim_table = pd.DataFrame({"stimulus_id": names, "concept": [n.rsplit("_", 1)[0] for n in names]})
    stim_table["trial_type"] = trials["trial_type"].to_numpy()[first]
    if categories is not None:
        real = (stim_table["trial_type"] != "catch").to_numpy()
        unknown = sorted(set(stim_table.loc[real, "concept"]) - set(categories.index))
        if unknown:
            raise DatasetFileError(
                f"{path}: concepts {unknown[:5]} of {sub}'s images ({len(unknown)} in all) are not uniqueIDs of "
                "the concept table; expected the THINGS database's things_concepts.tsv"
            )
        stim_table["category"] = stim_table["concept"].map(categories).where(real)
    trial_stimulus = np.searchsorted(names, trials["stimulus"].to_numpy())
    splits = {
        name: np.flatnonzero(stim_table["trial_type"].to_numpy() == name)
        for name in ("train", "test", "catch")
        if (stim_table["trial_type"] == name).any()
    }
    voxels = voxels[keep].reset_index(drop=True)
    if "nc_testset" in voxels.columns:
        voxels["noise_ceiling"] = voxels["nc_testset"] / 100.0
    metadata = {"dataset": "things-fmri", "subject": sub, "root": str(root), "include_catch": include_catch}
    if categories is not None:
        metadata["concepts"], metadata["category_column"] = str(concepts_path), category_column
    data, voxels = drop_voxels(data, voxels, counts.bad_columns, nan_policy, metadata, path, ("voxel_id",))
    responses = Responses(data, trial_stimulus, voxels, nan_policy="allow" if nan_policy == "allow" else "raise")
    return Experiment(sub, Stimuli(stim_table), responses, splits, metadata)
