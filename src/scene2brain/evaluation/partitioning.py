"""Variance partitioning between feature spaces (Lescroart et al. 2015; de Heer et al. 2017).

Fit one encoding model per non-empty subset of the feature spaces (the joint model
and every smaller combination), score each on held-out data with R^2, and split the
joint model's R^2 into the regions of a Venn diagram: the variance only one space
explains (unique) and the variance several explain alike (shared).

The caveat, handled explicitly: the identity behind the split assumes each model's
R^2 is the variance its spaces can explain. Held-out R^2 of regularised models is
only an estimate of that; with finite data a smaller model can score higher than a
larger one, which makes some regions negative. :func:`variance_partitioning` reports
the share of negative values per region and lets you keep them (the default, so the
regions still add up to the joint R^2), clip them to 0, or mark them NaN.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from scene2brain.utils.arrays import check_same_shape

_NEGATIVE = ("keep", "clip", "nan")


@dataclass
class VariancePartition:
    """Venn regions of explained variance.

    Attributes
    ----------
    spaces : tuple of str
    regions : dict of str to ndarray (n_targets,)
        Keyed ``"A"`` for the variance unique to space A, ``"A&B"`` for the variance
        shared by A and B only, ``"A&B&C"`` for the variance shared by all three.
    negative_fraction : dict of str to float
        Share of targets whose region came out negative (before any clipping), NaN
        targets left out.
    joint_r2 : ndarray (n_targets,)
        R^2 of the model with every space; equals the sum of the regions when
        ``negative="keep"``.
    """

    spaces: tuple[str, ...]
    regions: dict[str, np.ndarray]
    negative_fraction: dict[str, float]
    joint_r2: np.ndarray

    def unique(self, space: str) -> np.ndarray:
        """Variance explained by ``space`` and by no other space."""
        return self.regions[space]

    def shared(self, *spaces: str) -> np.ndarray:
        """Variance explained by exactly ``spaces``, e.g. ``shared("A", "B")``."""
        return self.regions["&".join(s for s in self.spaces if s in spaces)]


def _subset_key(key: str | Sequence[str]) -> frozenset[str]:
    return frozenset(key.split("+")) if isinstance(key, str) else frozenset(key)


def variance_partitioning(r2: Mapping[str | Sequence[str], np.ndarray], negative: str = "keep") -> VariancePartition:
    """Split explained variance among 2 or 3 feature spaces.

    Parameters
    ----------
    r2 : mapping
        Held-out R^2 per target of the model fitted on each non-empty subset of the
        spaces, keyed by the subset as a tuple (``("A", "B")``) or a "+"-joined
        string (``"A+B"``). For 2 spaces: A, B, A+B; for 3: all 7 subsets.
    negative : {"keep", "clip", "nan"}
        What to do with negative regions (see the module notes).

    Returns
    -------
    VariancePartition

    Notes
    -----
    With ``U`` all spaces and ``R2(W)`` the R^2 of the model on spaces ``W``, let
    ``h(T) = R2(U) - R2(U \\ T)``, the variance lost by removing the spaces ``T``.
    The region explained by exactly the spaces ``S`` is the Moebius inversion
    ``v(S) = sum over T subset of S of (-1)**(|S| - |T|) h(T)``. For two spaces
    this gives the familiar ``unique A = R2(AB) - R2(B)`` and
    ``shared = R2(A) + R2(B) - R2(AB)``.

    Examples
    --------
    >>> p = variance_partitioning({"A": np.array([0.5]), "B": np.array([0.5]), "A+B": np.array([0.75])})
    >>> {k: float(v[0]) for k, v in p.regions.items()}
    {'A': 0.25, 'B': 0.25, 'A&B': 0.25}
    """
    if negative not in _NEGATIVE:
        raise ValueError(f"negative: expected one of {_NEGATIVE}, got {negative!r}")
    scores = {_subset_key(k): np.asarray(v, dtype=np.float64) for k, v in r2.items()}
    spaces_set = frozenset().union(*scores) if scores else frozenset()
    order: list[str] = []
    for key in r2:  # keep the spaces in the order the caller first named them
        for s in key.split("+") if isinstance(key, str) else key:
            if s not in order:
                order.append(s)
    if not 2 <= len(spaces_set) <= 3:
        raise ValueError(f"r2: expected models over 2 or 3 feature spaces, got spaces {order}")
    subsets = [frozenset(c) for k in range(1, len(order) + 1) for c in itertools.combinations(order, k)]
    missing = [("+".join(s for s in order if s in sub)) for sub in subsets if sub not in scores]
    if missing:
        raise ValueError(f"r2: missing the model(s) {missing}; every non-empty subset of {order} is needed")
    check_same_shape(**{f"r2[{'+'.join(s for s in order if s in sub)!r}]": scores[sub] for sub in subsets})
    full = frozenset(order)
    joint = scores[full]

    def lost(removed: frozenset[str]) -> np.ndarray:
        rest = full - removed
        return joint - (scores[rest] if rest else 0.0)

    regions: dict[str, np.ndarray] = {}
    fractions: dict[str, float] = {}
    for sub in subsets:
        value = sum(
            (-1) ** (len(sub) - len(t)) * lost(frozenset(t))
            for k in range(1, len(sub) + 1)
            for t in itertools.combinations(sorted(sub), k)
        )
        name = "&".join(s for s in order if s in sub)
        finite = np.isfinite(value)
        fractions[name] = float((value[finite] < 0).mean()) if finite.any() else float("nan")
        if negative == "clip":
            value = np.where(value < 0, 0.0, value)
        elif negative == "nan":
            value = np.where(value < 0, np.nan, value)
        regions[name] = value
    return VariancePartition(spaces=tuple(order), regions=regions, negative_fraction=fractions, joint_r2=joint)
