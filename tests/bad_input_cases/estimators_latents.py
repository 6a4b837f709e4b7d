"""Bad input to the latent-code analyses and the embeddings: each names the argument and what was wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bad_input_cases import Case
from scene2brain.representation.embedding import embed
from scene2brain.representation.latents import dictionary_recovery, fdr_across, latent_selectivity

_RNG = np.random.default_rng(0)
_CODES = np.maximum(_RNG.standard_normal((20, 4)), 0)
_LABELS = np.array(["face", "nonface"] * 10)


def _with_nan(values: np.ndarray) -> np.ndarray:
    values = values.copy()
    values[3, 1] = np.nan
    return values


CASES = [
    Case(
        "estimators/latents-labels-of-other-length",
        lambda f: latent_selectivity(_CODES, _LABELS[:-1], n_permutations=0),
        ValueError,
        "labels: expected 20 labels (one per row of codes), got shape (19,)",
    ),
    Case(
        "estimators/latents-three-classes-without-positive",
        lambda f: latent_selectivity(_CODES, np.arange(20) % 3, n_permutations=0),
        ValueError,
        "labels: expected exactly two classes when positive is not given, got 3",
    ),
    Case(
        "estimators/latents-nan-codes",
        lambda f: latent_selectivity(_with_nan(_CODES), _LABELS),
        ValueError,
        "codes: 1 NaN or infinite values in 1 of 4 columns",
    ),
    Case(
        "estimators/latents-recovery-other-voxels",
        lambda f: dictionary_recovery(np.eye(3, 5), np.eye(4, 6)),
        ValueError,
        "learned_patterns: expected 5 columns (the voxels of true_patterns), got 6",
    ),
    Case(
        "estimators/latents-fdr-missing-column",
        lambda f: fdr_across({"sub01": pd.DataFrame({"p": [0.1]})}),
        ValueError,
        "tables['sub01']: no column 'p_permutation'",
    ),
    Case(
        "estimators/embedding-perplexity-too-large",
        lambda f: embed(_CODES, perplexity=30),
        ValueError,
        "perplexity: expected a value in (0, 6.33333) for 20 rows",
    ),
]
