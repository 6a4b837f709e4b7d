"""Representational similarity analysis: RDMs, their comparison and inference.

Arrays in, arrays out. RDMs are stored as the upper triangle without the diagonal
(row-major, ``scipy.spatial.distance.squareform`` order), shape ``(n_pairs,)`` or
``(n_rdms, n_pairs)``; see :mod:`scene2brain.representation.rdm`. Every distance,
comparator and noise ceiling equals rsatoolbox's (the tests check it); rsatoolbox itself
is optional and imported only by :func:`to_rsatoolbox` / :func:`from_rsatoolbox`.
"""

from scene2brain.representation.compare import COMPARATORS, compare_rdms
from scene2brain.representation.inference import (
    BOOTSTRAPS,
    RDMComparison,
    compare_models,
    noise_ceiling,
    pool_rdms,
    repeat_noise_ceiling,
    repeat_partitions,
)
from scene2brain.representation.rdm import (
    DISTANCES,
    NOISE_METHODS,
    compute_rdms,
    crossvalidated_rdm,
    n_stimuli_from_pairs,
    noise_precision,
    rdm_matrix,
    rdm_vector,
)
from scene2brain.representation.rsatoolbox_io import from_rsatoolbox, to_rsatoolbox

__all__ = [
    "BOOTSTRAPS",
    "COMPARATORS",
    "DISTANCES",
    "NOISE_METHODS",
    "RDMComparison",
    "compare_models",
    "compare_rdms",
    "compute_rdms",
    "crossvalidated_rdm",
    "from_rsatoolbox",
    "n_stimuli_from_pairs",
    "noise_ceiling",
    "noise_precision",
    "pool_rdms",
    "rdm_matrix",
    "rdm_vector",
    "repeat_noise_ceiling",
    "repeat_partitions",
    "to_rsatoolbox",
]
