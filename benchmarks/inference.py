"""Resampling statistics as matrix products vs the loop over resamples, side by side.

One process, one data set (float32 test responses and predictions of ``--voxels``
voxels on ``--stimuli`` test stimuli, a noise ceiling per voxel and ``--rois`` ROIs plus
"all"), both implementations with the same seed:

- **bootstrap**: ``bootstrap_ci`` of the per-ROI median noise-normalised accuracy
  (``CorrelationScore(lambda r: noise_normalised_accuracy(r, nc))``, the encoding
  analysis's ROI table) against ``_bootstrap_ci_loop``, the implementation that rescores
  every resample;
- **permutation**: ``permutation_test_correlation``'s null (cache-blocked gather)
  against ``_permutation_null_loop``.

The loop is linear in the number of resamples and draws its resamples as a prefix of the
same random stream, so ``--reference-resamples K`` times the loop on the first K
resamples only (its time is then also given scaled to the full count, marked
"scaled") and checks that those K resamples agree; by default the loop runs on all of
them. Equality is the largest absolute difference of the resampled statistics (and of
the interval bounds when the loop ran on all resamples).

Usage::

    python benchmarks/inference.py                             # 1,000 x 40,000, 1,000 resamples
    python benchmarks/inference.py --reference-resamples 100   # the loop on the first 100 only
    python benchmarks/inference.py --stimuli 200 --voxels 2000 --resamples 200   # quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scene2brain.evaluation import inference as inf
from scene2brain.evaluation.noise_ceiling import noise_normalised_accuracy


def make_data(n: int, v: int, n_rois: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, v), dtype=np.float32)
    strength = rng.uniform(0.0, 1.0, v).astype(np.float32)
    y = signal * strength + rng.standard_normal((n, v), dtype=np.float32)
    pred = signal * strength + 1.5 * rng.standard_normal((n, v), dtype=np.float32)
    ceiling = np.clip(strength**2 / (strength**2 + 1) + rng.normal(0, 0.02, v), 0, 1)
    roi = rng.integers(0, n_rois, v)
    masks = [roi == k for k in range(n_rois)] + [np.ones(v, dtype=bool)]
    return y, pred, ceiling, masks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stimuli", type=int, default=1000)
    parser.add_argument("--voxels", type=int, default=40000)
    parser.add_argument("--rois", type=int, default=10)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--reference-resamples", type=int, default=None, help="loop on this prefix only")
    parser.add_argument("--skip", choices=["bootstrap", "permutation"], action="append", default=[])
    args = parser.parse_args(argv)
    n_ref = min(args.resamples, args.reference_resamples or args.resamples)
    y, pred, ceiling, masks = make_data(args.stimuli, args.voxels, args.rois)
    print(
        f"{args.stimuli} stimuli x {args.voxels} voxels, {len(masks)} ROIs (incl. all), "
        f"{args.resamples} resamples; loop on {n_ref}"
    )

    if "bootstrap" not in args.skip:
        score = inf.CorrelationScore(lambda r: noise_normalised_accuracy(r, ceiling))

        def per_roi(s: np.ndarray) -> np.ndarray:
            return np.array([np.nanmedian(s[m]) for m in masks])

        t = time.perf_counter()
        new = inf.bootstrap_ci(y, pred, score, per_roi, args.resamples, random_state=0)
        t_new = time.perf_counter() - t
        t = time.perf_counter()
        old = inf._bootstrap_ci_loop(y, pred, score, per_roi, n_ref, random_state=0)
        t_old = time.perf_counter() - t
        _report("bootstrap (per-ROI median nnacc)", new.distribution, old.distribution, t_new, t_old, args.resamples)
        if n_ref == args.resamples:
            bounds = max(np.abs(new.low - old.low).max(), np.abs(new.high - old.high).max())
            print(f"  interval bounds: max |new - loop| = {bounds:.2e}")

    if "permutation" not in args.skip:
        yt, yp = np.asarray(y, np.float64), np.asarray(pred, np.float64)
        a = yt - yt.mean(axis=0)
        b = yp - yp.mean(axis=0)
        a /= np.linalg.norm(a, axis=0)
        b /= np.linalg.norm(b, axis=0)
        observed = np.clip(np.einsum("ij,ij->j", a, b), -1.0, 1.0)
        perms, _ = inf._permutations(args.stimuli, args.resamples, np.random.default_rng(0))
        t = time.perf_counter()
        exceed, null_max = inf._permutation_null(a, b, observed, perms, "greater", 4096)
        t_new = time.perf_counter() - t
        t = time.perf_counter()
        exceed_old, null_max_old = inf._permutation_null_loop(a, b, observed, perms[:n_ref], "greater", 4096)
        t_old = time.perf_counter() - t
        _report(
            "permutation null (per-voxel r)",
            null_max[:n_ref, None],
            null_max_old[:, None],
            t_new,
            t_old,
            args.resamples,
        )
        if n_ref == args.resamples:
            print(f"  exceedance counts identical: {np.array_equal(exceed, exceed_old)}")


def _report(name: str, new: np.ndarray, old: np.ndarray, t_new: float, t_old: float, n: int) -> None:
    k = len(old)
    diff = np.nanmax(np.abs(new[:k] - old)) if k else float("nan")
    same_nan = np.array_equal(np.isnan(new[:k]), np.isnan(old))
    scaled = t_old * n / k
    label = "" if k == n else f" (loop on {k}, scaled x{n / k:.1f}: {scaled:.2f} s)"
    print(f"{name}: matrix form {t_new:.2f} s, loop {t_old:.2f} s{label}; speed-up {scaled / t_new:.1f}x")
    print(f"  resampled statistics: max |new - loop| = {diff:.2e}, same NaNs: {same_nan}")


if __name__ == "__main__":
    main()
