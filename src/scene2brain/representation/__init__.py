"""Comparing representations: RSA, and sparse autoencoders with the analyses of their codes.

Arrays in, arrays out.

- RSA (:mod:`.rdm`, :mod:`.compare`, :mod:`.inference`): RDMs are stored as the upper
  triangle without the diagonal (row-major, ``scipy.spatial.distance.squareform`` order),
  shape ``(n_pairs,)`` or ``(n_rdms, n_pairs)``. Every distance, comparator and noise
  ceiling equals rsatoolbox's (the tests check it); rsatoolbox itself is optional and
  imported only by :func:`to_rsatoolbox` / :func:`from_rsatoolbox`.
- Sparse autoencoders (:mod:`.sae`): :class:`SparseAutoencoder` (a one-layer sparse
  dictionary or the source project's MLP; torch, scikit-learn API), trained on training
  stimuli only and refusing them at analysis time by id.
- What codes encode (:mod:`.latents`): per-latent selectivity with permutation tests and
  FDR, PCA/ICA/NMF baselines of the same size, separability on shared folds, dictionary
  recovery; :mod:`.embedding`: one t-SNE/UMAP map of every class, new rows placed into it.
"""

from scene2brain.representation.compare import COMPARATORS, compare_rdms
from scene2brain.representation.embedding import EMBEDDINGS, Embedding, embed
from scene2brain.representation.inference import (
    BOOTSTRAPS,
    RDMComparison,
    compare_models,
    noise_ceiling,
    pool_rdms,
    repeat_noise_ceiling,
    repeat_partitions,
)
from scene2brain.representation.latents import (
    BaselineCodes,
    atom_roi_fraction,
    baseline_codes,
    compare_separability,
    dictionary_recovery,
    fdr_across,
    latent_selectivity,
    norm_test,
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
from scene2brain.representation.sae import SparseAutoencoder, dead_units, erk_densities, sparsity_stats

__all__ = [
    "BOOTSTRAPS",
    "COMPARATORS",
    "DISTANCES",
    "EMBEDDINGS",
    "NOISE_METHODS",
    "BaselineCodes",
    "Embedding",
    "RDMComparison",
    "SparseAutoencoder",
    "atom_roi_fraction",
    "baseline_codes",
    "compare_models",
    "compare_rdms",
    "compare_separability",
    "compute_rdms",
    "crossvalidated_rdm",
    "dead_units",
    "dictionary_recovery",
    "embed",
    "erk_densities",
    "fdr_across",
    "from_rsatoolbox",
    "latent_selectivity",
    "n_stimuli_from_pairs",
    "noise_ceiling",
    "noise_precision",
    "norm_test",
    "pool_rdms",
    "rdm_matrix",
    "rdm_vector",
    "repeat_noise_ceiling",
    "repeat_partitions",
    "sparsity_stats",
    "to_rsatoolbox",
]
