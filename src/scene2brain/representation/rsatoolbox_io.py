"""Conversion to and from rsatoolbox's ``RDMs`` (optional dependency, imported only when called).

rsatoolbox stores RDM vectors in the same order as scene2brain (row-major upper triangle
without the diagonal), so the conversion copies the vectors unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scene2brain.representation.rdm import as_rdm_vectors, n_stimuli_from_pairs

__all__ = ["from_rsatoolbox", "to_rsatoolbox"]


def _rsatoolbox_rdms() -> Any:
    try:
        from rsatoolbox.rdm import RDMs
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "converting to or from rsatoolbox needs the optional package rsatoolbox: pip install rsatoolbox"
        ) from err
    return RDMs


def to_rsatoolbox(
    rdms: np.ndarray,
    *,
    distance: str,
    names: list[str] | None = None,
    pattern_descriptors: dict[str, Any] | None = None,
) -> Any:
    """An ``rsatoolbox.rdm.RDMs`` holding these RDMs.

    Parameters
    ----------
    rdms : ndarray, shape (n_pairs,) or (n_rdms, n_pairs)
        RDMs in the stored form.
    distance : str
        Stored as ``dissimilarity_measure``.
    names : list of str, optional
        One per RDM, stored as the rdm descriptor ``"name"``.
    pattern_descriptors : dict, optional
        Per-stimulus descriptors (e.g. ``{"stimulus_id": [...], "category": [...]}``),
        each of length ``n_stimuli``.

    Returns
    -------
    rsatoolbox.rdm.RDMs
    """
    RDMs = _rsatoolbox_rdms()
    v = as_rdm_vectors(rdms).copy()
    n = n_stimuli_from_pairs(v.shape[1])
    rdm_descriptors = None
    if names is not None:
        names = list(names)
        if len(names) != len(v):
            raise ValueError(f"to_rsatoolbox: {len(names)} names for {len(v)} RDMs")
        rdm_descriptors = {"name": names}
    patterns = None
    if pattern_descriptors is not None:
        patterns = {}
        for key, values in pattern_descriptors.items():
            values = list(values)
            if len(values) != n:
                raise ValueError(f"to_rsatoolbox: pattern descriptor {key!r} has {len(values)} values for {n} stimuli")
            patterns[key] = values
    return RDMs(v, dissimilarity_measure=distance, rdm_descriptors=rdm_descriptors, pattern_descriptors=patterns)


def from_rsatoolbox(rdms_obj: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """The RDM vectors and descriptors of an ``rsatoolbox.rdm.RDMs``.

    Parameters
    ----------
    rdms_obj : rsatoolbox.rdm.RDMs

    Returns
    -------
    vectors : ndarray, shape (n_rdms, n_pairs), float64
    descriptors : dict
        ``distance`` (the dissimilarity measure), ``names`` (the rdm descriptor
        ``"name"`` or None), ``pattern_descriptors``, ``rdm_descriptors`` and
        ``descriptors`` (copies of rsatoolbox's dicts, lists as lists).
        ``to_rsatoolbox(vectors, distance=d["distance"], names=d["names"],
        pattern_descriptors=d["pattern_descriptors"])`` rebuilds an equal object when
        its only rdm descriptors are ``name`` and ``index``.
    """
    _rsatoolbox_rdms()
    vectors = np.array(rdms_obj.get_vectors(), dtype=np.float64)
    rdm_desc = {k: list(v) for k, v in rdms_obj.rdm_descriptors.items()}
    pattern_desc = {k: list(v) for k, v in rdms_obj.pattern_descriptors.items()}
    names = rdm_desc.get("name")
    return vectors, {
        "distance": rdms_obj.dissimilarity_measure,
        "names": None if names is None else [str(n) for n in names],
        "pattern_descriptors": pattern_desc,
        "rdm_descriptors": rdm_desc,
        "descriptors": dict(rdms_obj.descriptors),
    }
