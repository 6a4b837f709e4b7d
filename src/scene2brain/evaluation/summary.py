"""Per-vertex scores summarised per ROI, hemisphere and subject (the Algonauts leaderboard tables)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: The groupings reported by default: everything pooled (the leaderboard score), per
#: subject, per hemisphere, per subject and hemisphere, per ROI (all subjects and
#: hemispheres appended together, as the challenge did) and per ROI and subject.
DEFAULT_GROUPINGS: tuple[tuple[str, ...], ...] = (
    (),
    ("subject",),
    ("hemisphere",),
    ("subject", "hemisphere"),
    ("roi",),
    ("roi", "subject"),
)


def _labels(values: Sequence | np.ndarray | None, n: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values)
    if values.shape != (n,):
        raise ValueError(f"{name}: expected one label per score ({n},), got shape {values.shape}")
    return values


def summarise_scores(
    scores: np.ndarray,
    *,
    subject: Sequence | np.ndarray | None = None,
    hemisphere: Sequence | np.ndarray | None = None,
    rois: Mapping[str, np.ndarray] | None = None,
    groupings: Sequence[Sequence[str]] = DEFAULT_GROUPINGS,
) -> pd.DataFrame:
    """Mean and median of per-vertex scores within groups of vertices.

    Parameters
    ----------
    scores : ndarray of shape (n_vertices,)
        For instance :func:`noise_normalised_accuracy`, with the vertices of all
        subjects and hemispheres concatenated.
    subject, hemisphere : array of shape (n_vertices,), optional
        Labels of each vertex. Groupings that need a missing one are skipped.
    rois : mapping of str to bool array of shape (n_vertices,), optional
        ROI membership. ROIs may overlap (a vertex in V1v and in "early" counts in
        both); an ROI without vertices gets a row with ``n = 0`` and NaN statistics.
    groupings : sequence of tuples drawn from "subject", "hemisphere", "roi"
        ``()`` pools every vertex.

    Returns
    -------
    DataFrame
        One row per group: ``grouping`` (e.g. "roi/subject" or "all"), the columns
        ``roi``, ``subject``, ``hemisphere`` ("all" where pooled), ``n`` (vertices with
        a finite score), ``n_nan`` (vertices whose score is NaN, left out of the
        statistics), ``mean`` and ``median``.

    Examples
    --------
    >>> t = summarise_scores(np.array([10.0, 20.0, 60.0]), subject=["s1", "s1", "s2"], groupings=[(), ("subject",)])
    >>> print(t[["grouping", "subject", "n", "mean", "median"]].to_string(index=False))
    grouping subject  n  mean  median
         all     all  3  30.0    20.0
     subject      s1  2  15.0    15.0
     subject      s2  1  60.0    60.0
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores: expected a 1-d array of per-vertex scores, got shape {scores.shape}")
    n = len(scores)
    columns = {"subject": _labels(subject, n, "subject"), "hemisphere": _labels(hemisphere, n, "hemisphere")}
    roi_names: list[str] = []
    roi_rows: list[np.ndarray] = []
    for name, mask in (rois or {}).items():
        mask = np.asarray(mask)
        if mask.shape != (n,) or mask.dtype != bool:
            raise ValueError(f"rois[{name!r}]: expected a boolean mask of shape ({n},), got {mask.dtype} {mask.shape}")
        roi_names.append(name)
        roi_rows.append(np.flatnonzero(mask))

    frame = pd.DataFrame({"score": scores})
    for key, labels in columns.items():
        if labels is not None:
            frame[key] = labels
    if roi_rows:
        index = np.concatenate(roi_rows)
        long = frame.iloc[index].reset_index(drop=True)
        long["roi"] = pd.Categorical(np.repeat(roi_names, [len(r) for r in roi_rows]), categories=roi_names)
    available = {k for k, v in columns.items() if v is not None} | ({"roi"} if rois else set())

    tables = []
    for grouping in groupings:
        grouping = tuple(grouping)
        unknown = set(grouping) - {"subject", "hemisphere", "roi"}
        if unknown:
            raise ValueError(f"groupings: unknown key(s) {sorted(unknown)}; allowed: subject, hemisphere, roi")
        if not set(grouping) <= available:
            continue
        data = long if "roi" in grouping else frame
        finite = data["score"].where(np.isfinite(data["score"]))
        if grouping:
            grouped = finite.groupby([data[g] for g in grouping], observed=False, sort=True)
            table = grouped.agg(["count", "size", "mean", "median"]).reset_index()
        else:
            table = pd.DataFrame(
                [{"count": finite.count(), "size": len(finite), "mean": finite.mean(), "median": finite.median()}]
            )
        table["grouping"] = "/".join(grouping) or "all"
        tables.append(table)
    result = pd.concat(tables, ignore_index=True)
    for key in ("roi", "subject", "hemisphere"):
        result[key] = result[key].astype(object).fillna("all") if key in result else "all"
    result["n"] = result["count"].astype(int)
    result["n_nan"] = (result["size"] - result["count"]).astype(int)
    return result[["grouping", "roi", "subject", "hemisphere", "n", "n_nan", "mean", "median"]]
