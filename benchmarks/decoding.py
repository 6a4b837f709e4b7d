"""Permutation test of an ROI decoder: the fast ridge path vs refitting scikit-learn per permutation.

Synthetic NSD-like data: trials x voxels float32, 3 classes, stimuli shown ``--repeats``
times (groups = stimuli, labels constant per stimulus), a weak class signal in a few
voxel directions plus noise; 80% of the stimuli train, 20% test. One process, one run:

- the ROI decoding: ``decode(decoder="ridge", n_permutations=n)``: the alpha grid
  searched by grouped 5-fold CV, refit, test, for the true labels and the ``n``
  permutations together (one decomposition per fold, all label vectors' targets solved
  together; alpha re-chosen per permutation by the same inner CV; the tests check this
  equals scikit-learn's ``GridSearchCV`` refitted per permutation);
- one scikit-learn fit on the same training rows: ``RidgeClassifierCV`` (same alpha
  grid, its efficient leave-one-out) and ``LogisticRegression`` (C = 1e-3, lbfgs), after
  ``StandardScaler``; the time per permutation of the fast path is printed relative to
  each;
- agreement (``--check k``, default 0: at full size each refit is ~40 scikit-learn fits):
  the first ``k`` permutations refitted by the generic path (``GridSearchCV`` per
  permutation) against the fast path's null values.

Usage::

    python benchmarks/decoding.py                  # 10,000 trials x 5,000 voxels, 1,000 permutations
    python benchmarks/decoding.py --small          # 2,000 x 500, 200 permutations
    python benchmarks/decoding.py --trials 6000 --voxels 2000 --permutations 1000
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import scene2brain
from scene2brain.decoding import DECODERS, decode

N_FOLDS = 5


def make_data(n_trials: int, n_voxels: int, repeats: int, n_classes: int = 3, seed: int = 0):
    """Trials of stimuli with repeats; class signal in 10 random voxel directions, weak whatever the voxel count."""
    rng = np.random.default_rng(seed)
    n_stim = n_trials // repeats
    label = rng.integers(0, n_classes, n_stim)
    directions = rng.standard_normal((n_classes, 10)) @ rng.standard_normal((10, n_voxels)) / np.sqrt(10)
    stim = 1.5 / np.sqrt(n_voxels) * directions[label] + 0.5 * rng.standard_normal((n_stim, n_voxels))
    trial_stim = np.repeat(np.arange(n_stim), repeats)
    X = (stim[trial_stim] + rng.standard_normal((len(trial_stim), n_voxels))).astype(np.float32)
    test_stim = rng.permutation(n_stim)[: n_stim // 5]
    test = np.isin(trial_stim, test_stim)
    y = np.array(["animal", "artifact", "geological formation", "person"])[:n_classes][label[trial_stim]]
    return X[~test], y[~test], trial_stim[~test], X[test], y[test]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="2,000 trials x 500 voxels, 200 permutations")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--voxels", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--permutations", type=int, default=None)
    parser.add_argument("--check", type=int, default=0, help="permutations refitted by the generic path")
    args = parser.parse_args()
    n_trials = args.trials or (2000 if args.small else 10000)
    n_voxels = args.voxels or (500 if args.small else 5000)
    n_perm = args.permutations or (200 if args.small else 1000)

    X, y, groups, Xt, yt = make_data(n_trials, n_voxels, args.repeats)
    alphas = DECODERS["ridge"].grid["alpha"]
    print(
        f"scene2brain {scene2brain.__version__}; {len(X)} train + {len(Xt)} test trials x {n_voxels} voxels, "
        f"{len(np.unique(groups))} training stimuli x {args.repeats} repeats, 3 classes; "
        f"{len(alphas)} alphas, grouped {N_FOLDS}-fold inner CV; {n_perm} permutations",
        flush=True,
    )

    observed, t_all = timed(
        lambda: decode(X, y, Xt, yt, groups=groups, decoder="ridge", n_folds=N_FOLDS, n_permutations=n_perm)
    )
    null = observed.null
    per_perm = t_all / (n_perm + 1)
    print(
        f"  ROI decoding with its {n_perm}-permutation test: {t_all:8.1f} s   (the true labels and every "
        f"permutation share one decomposition per fold; {per_perm * 1e3:.1f} ms per label vector)\n"
        f"    balanced accuracy {observed.balanced_accuracy:.3f}, alpha {observed.hyperparameters['alpha']:g}, "
        f"null mean {null.mean():.3f}, p = {observed.p_value:.4f}",
        flush=True,
    )

    scaled = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=alphas))
    _, t_ridge = timed(lambda: scaled.fit(X, y))
    logistic = make_pipeline(StandardScaler(), LogisticRegression(C=1e-3, max_iter=1000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, t_logistic = timed(lambda: logistic.fit(X, y))
    print(
        f"  one sklearn fit, RidgeClassifierCV (LOO, {len(alphas)} alphas): {t_ridge:8.2f} s   "
        f"fast path per permutation = {per_perm / t_ridge:.4f} x",
        flush=True,
    )
    print(
        f"  one sklearn fit, LogisticRegression (C=1e-3):      {t_logistic:8.2f} s   "
        f"fast path per permutation = {per_perm / t_logistic:.4f} x",
        flush=True,
    )

    if args.check > 0:
        generic, t_gen = timed(
            lambda: decode(
                X,
                y,
                Xt,
                yt,
                groups=groups,
                decoder="ridge",
                n_folds=N_FOLDS,
                n_permutations=args.check,
                fast_path=False,
            )
        )
        diff = np.abs(generic.null - null[: args.check]).max()
        print(
            f"  generic refit of the first {args.check} permutations:        {t_gen:8.1f} s   "
            f"({t_gen / (args.check + 1):.1f} s per label vector; fast path {per_perm * 1e3:.1f} ms): "
            f"max |null difference| = {diff:.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
