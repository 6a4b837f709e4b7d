"""The data model: Stimuli, Responses and Experiment.

An :class:`Experiment` is one subject viewing a set of :class:`Stimuli`, with the
measured :class:`Responses` kept trial by trial (repeats are not averaged away) and
named, disjoint splits of the stimuli. Every container validates its inputs when it
is built and raises a ``ValueError``/``TypeError`` that names the argument, what
was found and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from scene2brain.data.images import Images, ImageSource, as_image_source
from scene2brain.utils.arrays import group_means

NanPolicy = Literal["raise", "allow"]


def _as_table(table: pd.DataFrame | None, n_rows: int, name: str) -> pd.DataFrame:
    if table is None:
        return pd.DataFrame(index=pd.RangeIndex(n_rows))
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas DataFrame, got {type(table).__name__}")
    if len(table) != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows, got {len(table)}")
    return table.reset_index(drop=True)


class Stimuli:
    """An ordered set of stimuli: ids, a metadata table and lazy image access.

    Parameters
    ----------
    table : DataFrame
        One row per stimulus, in order. Must hold a unique ``stimulus_id`` column;
        other columns (NSD id, COCO id, category, source...) are free.
    images : ImageSource, array-like, folder or ``"file.h5[:dataset]"``, optional
        Images in the same order, turned into an :class:`~scene2brain.data.images.ImageSource`
        by :func:`~scene2brain.data.images.as_image_source`; nothing is read until
        images are asked for.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> stim = Stimuli(pd.DataFrame({"stimulus_id": ["a", "b"]}), np.zeros((2, 8, 8), np.uint8))
    >>> len(stim), stim.load_images([1]).shape
    (2, (1, 8, 8))
    """

    def __init__(self, table: pd.DataFrame, images: ImageSource | np.ndarray | str | None = None):
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"stimuli table: expected a pandas DataFrame, got {type(table).__name__}")
        if "stimulus_id" not in table.columns:
            raise ValueError(f"stimuli table: missing column 'stimulus_id' (columns: {list(table.columns)})")
        ids = table["stimulus_id"]
        dup = ids[ids.duplicated()]
        if len(dup):
            raise ValueError(
                f"stimuli table: stimulus_id must be unique, found {dup.nunique()} duplicated ids "
                f"(first: {dup.iloc[0]!r})"
            )
        if images is not None:
            images = as_image_source(images)
            if len(images) != len(table):
                raise ValueError(f"images: expected {len(table)} images (one per stimulus), got {len(images)}")
        self.table = table.reset_index(drop=True)
        self.images = images

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"Stimuli(n={len(self)}, columns={list(self.table.columns)}, images={self.images is not None})"

    @property
    def ids(self) -> np.ndarray:
        """Stimulus ids in order."""
        return self.table["stimulus_id"].to_numpy()

    def load_images(self, indices: Sequence[int] | np.ndarray | None = None) -> Images:
        """Read images (all, or those at ``indices``) into memory; see :meth:`ImageSource.read`."""
        if self.images is None:
            raise ValueError("these stimuli have no images attached")
        return self.images.read(slice(None) if indices is None else np.asarray(indices))

    def subset(self, indices: Sequence[int] | np.ndarray) -> Stimuli:
        """Stimuli at ``indices``, in that order."""
        indices = np.asarray(indices)
        images = None if self.images is None else self.images.subset(indices)
        return Stimuli(self.table.iloc[indices].reset_index(drop=True), images)


class Responses:
    """Measured responses, one row per trial.

    Parameters
    ----------
    data : ndarray of shape (n_trials, n_voxels), float32
        Responses (betas). Other dtypes are refused so that a 2x memory copy never
        happens silently; convert with ``np.asarray(x, dtype=np.float32)``.
    trial_stimulus : ndarray of shape (n_trials,), integer
        For each trial, the position of its stimulus in the experiment's Stimuli.
        Repeated stimuli appear several times.
    voxels : DataFrame, optional
        One row per voxel: ``hemisphere`` ("lh"/"rh"), ROI labels (one column per
        ROI family), ``vertex`` (fsaverage index) and anything else.
    nan_policy : {"raise", "allow"}
        Whether NaN responses are an error (default) or kept. With "raise", infinite
        values are an error too.
    """

    def __init__(
        self,
        data: np.ndarray,
        trial_stimulus: np.ndarray,
        voxels: pd.DataFrame | None = None,
        nan_policy: NanPolicy = "raise",
    ):
        if not hasattr(data, "shape") or len(data.shape) != 2:
            raise ValueError(f"responses data: expected a 2-D array (trials x voxels), got {_describe(data)}")
        if data.dtype != np.float32:
            raise TypeError(
                f"responses data: expected dtype float32, got {data.dtype}; "
                "convert with np.asarray(data, dtype=np.float32)"
            )
        trial_stimulus = np.asarray(trial_stimulus)
        if trial_stimulus.ndim != 1 or not np.issubdtype(trial_stimulus.dtype, np.integer):
            raise TypeError(f"trial_stimulus: expected a 1-D integer array, got {_describe(trial_stimulus)}")
        if len(trial_stimulus) != data.shape[0]:
            raise ValueError(
                f"trial_stimulus: expected one entry per trial ({data.shape[0]} trials), got {len(trial_stimulus)}"
            )
        if len(trial_stimulus) and trial_stimulus.min() < 0:
            raise ValueError(f"trial_stimulus: indices must be >= 0, found {trial_stimulus.min()}")
        if nan_policy not in ("raise", "allow"):
            raise ValueError(f"nan_policy: expected 'raise' or 'allow', got {nan_policy!r}")
        if nan_policy == "raise":
            values = np.asarray(data)
            bad = ~np.isfinite(values).all(axis=0)
            if bad.any():
                columns = np.flatnonzero(bad)
                nan = np.isnan(values[:, columns]).any(axis=0)
                if nan.any():
                    raise ValueError(
                        f"responses data: {int(nan.sum())} voxels contain NaN "
                        f"(first: voxel {int(columns[nan][0])}); "
                        "mask them or pass nan_policy='allow'"
                    )
                raise ValueError(
                    f"responses data: {len(columns)} voxels contain infinite values (first: voxel {int(columns[0])}); "
                    "expected finite responses"
                )
        voxels = _as_table(voxels, data.shape[1], "voxel table")
        if "hemisphere" in voxels.columns:
            bad_hemi = set(voxels["hemisphere"].unique()) - {"lh", "rh"}
            if bad_hemi:
                raise ValueError(f"voxel table: column 'hemisphere' must be 'lh' or 'rh', found {sorted(bad_hemi)}")
        self.data = data
        self.trial_stimulus = trial_stimulus.astype(np.int64)
        self.voxels = voxels
        self.nan_policy = nan_policy

    def __repr__(self) -> str:
        return f"Responses(n_trials={self.n_trials}, n_voxels={self.n_voxels})"

    @property
    def n_trials(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_voxels(self) -> int:
        return int(self.data.shape[1])

    def repeat_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Stimuli shown (sorted) and how many trials each has."""
        return np.unique(self.trial_stimulus, return_counts=True)

    def average_repeats(self) -> Responses:
        """One row per shown stimulus (sorted by stimulus index): the mean of its trials."""
        stimuli, means, _ = group_means(self.data, self.trial_stimulus)
        return Responses(means.astype(np.float32), stimuli, self.voxels, nan_policy=self.nan_policy)

    def select_trials(self, mask_or_index: np.ndarray) -> Responses:
        """Responses restricted to some trials."""
        return Responses(
            np.asarray(self.data[mask_or_index]), self.trial_stimulus[mask_or_index], self.voxels, self.nan_policy
        )

    def select_voxels(self, mask_or_index: np.ndarray) -> Responses:
        """Responses restricted to some voxels (a boolean mask or positions)."""
        idx = np.flatnonzero(mask_or_index) if np.asarray(mask_or_index).dtype == bool else mask_or_index
        return Responses(
            np.ascontiguousarray(np.asarray(self.data)[:, idx]),
            self.trial_stimulus,
            self.voxels.iloc[idx].reset_index(drop=True),
            self.nan_policy,
        )


def _describe(x: Any) -> str:
    if hasattr(x, "shape"):
        return f"shape {tuple(x.shape)} and dtype {getattr(x, 'dtype', '?')}"
    return type(x).__name__


def checked_splits(splits: Mapping[str, Sequence[int] | np.ndarray] | None, n: int) -> dict[str, np.ndarray]:
    """Named, pairwise disjoint sets of positions among ``n`` stimuli, validated, as int64 arrays.

    Raises a ``TypeError``/``ValueError`` naming the split when positions are not 1-D
    integers, out of ``[0, n)``, repeated, or shared with another split.
    """
    clean: dict[str, np.ndarray] = {}
    for name, idx in (splits or {}).items():
        idx = np.asarray(idx)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"split {name!r}: expected a 1-D integer array of stimulus positions, got {_describe(idx)}")
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"split {name!r}: stimulus positions must lie in [0, {n}), found {idx.min()}..{idx.max()}")
        if len(np.unique(idx)) != len(idx):
            raise ValueError(f"split {name!r}: contains repeated stimulus positions")
        for other, oidx in clean.items():
            common = np.intersect1d(idx, oidx)
            if len(common):
                raise ValueError(
                    f"splits {other!r} and {name!r} overlap in {len(common)} stimuli "
                    f"(first: position {common[0]}); splits must be disjoint"
                )
        clean[str(name)] = idx.astype(np.int64)
    return clean


class Experiment:
    """One subject's experiment: stimuli, trial responses and named splits.

    Parameters
    ----------
    subject : str
        Subject identifier.
    stimuli : Stimuli
    responses : Responses
        ``responses.trial_stimulus`` indexes into ``stimuli``.
    splits : mapping of str to array of int
        Named, pairwise disjoint sets of stimulus positions (e.g. "train", "test").
    metadata : dict, optional
        JSON-serialisable facts about the experiment (dataset, provenance, ...).
    """

    def __init__(
        self,
        subject: str,
        stimuli: Stimuli,
        responses: Responses,
        splits: Mapping[str, Sequence[int] | np.ndarray] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        if not isinstance(stimuli, Stimuli):
            raise TypeError(f"stimuli: expected a Stimuli, got {type(stimuli).__name__}")
        if not isinstance(responses, Responses):
            raise TypeError(f"responses: expected a Responses, got {type(responses).__name__}")
        n = len(stimuli)
        if responses.n_trials and responses.trial_stimulus.max() >= n:
            raise ValueError(
                f"responses.trial_stimulus: index {responses.trial_stimulus.max()} is out of range for {n} stimuli"
            )
        self.subject = str(subject)
        self.stimuli = stimuli
        self.responses = responses
        self.splits = checked_splits(splits, n)
        self.metadata = dict(metadata or {})

    def __repr__(self) -> str:
        sizes = {k: len(v) for k, v in self.splits.items()}
        return (
            f"Experiment(subject={self.subject!r}, n_stimuli={len(self.stimuli)}, "
            f"n_trials={self.responses.n_trials}, n_voxels={self.responses.n_voxels}, splits={sizes})"
        )

    @property
    def voxels(self) -> pd.DataFrame:
        return self.responses.voxels

    def _replace(self, **kwargs: Any) -> Experiment:
        fields = dict(
            subject=self.subject,
            stimuli=self.stimuli,
            responses=self.responses,
            splits=self.splits,
            metadata=self.metadata,
        )
        fields.update(kwargs)
        return Experiment(**fields)

    def split_index(self, name: str) -> np.ndarray:
        """Stimulus positions of split ``name``."""
        if name not in self.splits:
            raise KeyError(f"split {name!r} not found; available splits: {sorted(self.splits)}")
        return self.splits[name]

    def average_repeats(self) -> Experiment:
        """The experiment with one averaged trial per shown stimulus."""
        return self._replace(responses=self.responses.average_repeats())

    def select_rois(self, labels: str | Sequence[str], family: str = "roi") -> Experiment:
        """Keep voxels whose ROI label (column ``family`` of the voxel table) is in ``labels``."""
        if family not in self.voxels.columns:
            raise KeyError(f"ROI family {family!r} is not a voxel-table column; columns: {list(self.voxels.columns)}")
        labels = [labels] if isinstance(labels, str) else list(labels)
        known = set(self.voxels[family].dropna().unique())
        unknown = [lab for lab in labels if lab not in known]
        if unknown:
            raise ValueError(
                f"ROI labels {unknown} not found in family {family!r}; available: {sorted(map(str, known))}"
            )
        return self._replace(responses=self.responses.select_voxels(self.voxels[family].isin(labels).to_numpy()))

    def select_split(self, name: str) -> Experiment:
        """The experiment restricted to the stimuli (and their trials) of split ``name``.

        Stimuli are renumbered 0..k-1 in the split's order; the only split left is ``name``.
        """
        idx = self.split_index(name)
        new_position = np.full(len(self.stimuli), -1, dtype=np.int64)
        new_position[idx] = np.arange(len(idx))
        keep = new_position[self.responses.trial_stimulus] >= 0
        r = self.responses
        responses = Responses(np.asarray(r.data[keep]), new_position[r.trial_stimulus[keep]], r.voxels, r.nan_policy)
        return Experiment(self.subject, self.stimuli.subset(idx), responses, {name: np.arange(len(idx))}, self.metadata)

    def trials_in_split(self, name: str) -> np.ndarray:
        """Boolean mask of the trials whose stimulus belongs to split ``name``."""
        return np.isin(self.responses.trial_stimulus, self.split_index(name))

    def zscore(self, train_split: str = "train") -> Experiment:
        """Z-score every voxel with the mean and SD of the training split's trials only.

        Voxels whose training SD is zero are only centred (their scale is left at 1).
        """
        train = np.asarray(self.responses.data[self.trials_in_split(train_split)], dtype=np.float64)
        if len(train) < 2:
            raise ValueError(f"zscore: split {train_split!r} has {len(train)} trials; need at least 2")
        mean = np.nanmean(train, axis=0)
        sd = np.nanstd(train, axis=0)
        sd[sd == 0] = 1.0
        data = ((np.asarray(self.responses.data, dtype=np.float64) - mean) / sd).astype(np.float32)
        r = self.responses
        return self._replace(responses=Responses(data, r.trial_stimulus, r.voxels, r.nan_policy))


def stimulus_labels(table: pd.DataFrame, column: str) -> pd.Series:
    """The label column ``column`` of a stimulus table (one label per stimulus), checked.

    Raises
    ------
    ValueError
        When the table has no such column (the message lists the columns it has).
    """
    if column not in table.columns:
        others = [c for c in table.columns if c != "stimulus_id"]
        raise ValueError(f"labels: the stimulus table has no column {column!r}; its columns: {others}")
    return table[column].reset_index(drop=True)


def select_classes(labels: pd.Series | Sequence[Any] | np.ndarray, classes: Sequence[Any] | None = None) -> np.ndarray:
    """Boolean mask of the stimuli whose label is one of ``classes``.

    The class filter of category decoding (Kay's seed kept "animal", "artifact" and
    "geological formation" of ``wordnet_general``): an option of the analysis, applied
    to any label column.

    Parameters
    ----------
    labels : Series or array-like
        One label per stimulus (a column of the stimulus table); missing labels (None,
        NaN) are never selected.
    classes : sequence, optional
        The classes to keep, compared by equality with the labels; default every class
        (every stimulus with a label).

    Returns
    -------
    ndarray of bool, one entry per stimulus

    Raises
    ------
    ValueError
        When ``classes`` is empty, repeats a class or names classes that no stimulus
        has (the message names them and lists the available ones).

    Examples
    --------
    >>> select_classes(pd.Series(["animal", "artifact", "entity", None]), ["animal", "artifact"])
    array([ True,  True, False, False])
    """
    series = labels if isinstance(labels, pd.Series) else pd.Series(np.asarray(labels, dtype=object))
    labelled = series.notna().to_numpy()
    if classes is None:
        return labelled
    classes = list(classes)
    name = f"labels {series.name!r}" if series.name is not None else "labels"
    if not classes:
        raise ValueError(f"classes: expected at least one class of {name}, got an empty list")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes: each class once, got {classes}")
    available = list(dict.fromkeys(series[labelled].tolist()))
    unknown = [c for c in classes if c not in available]
    if unknown:
        shown = sorted(available, key=str)
        listing = shown if len(shown) <= 30 else [*shown[:30], f"... ({len(shown)} in all)"]
        raise ValueError(f"classes: {unknown} are not classes of {name}; available: {listing}")
    return (series.isin(classes) & series.notna()).to_numpy()
