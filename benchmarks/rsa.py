"""RSA core: scene2brain.representation vs rsatoolbox (the reference) on the same data, in one process.

Two parts:

1. **RDMs** of synthetic float32 patterns (rank-20 structure plus noise), 1,000 / 5,000 /
   10,000 stimuli x 40,000 voxels, for the ``correlation`` and ``euclidean`` distances:
   ``compute_rdms`` against ``rsatoolbox.rdm.calc_rdm``. Ours: Gram matrices over chunks
   of channels, each chunk centred in float64 and its Gram computed in the input's
   precision (float32 here: BLAS ``ssyrk`` over at most 4,096 channels), the chunks
   summed in float64. rsatoolbox's euclidean RDM is one float32 GEMM of the same size,
   so no large speed-up is possible there: ``syrk`` does at most half the flops of the
   GEMM (about 2x at best; the printed note says so). rsatoolbox's correlation RDM uses
   ``np.einsum`` without BLAS (about 14 s for 1,000 stimuli here, growing with n^2), so
   by default it is run only up to ``--skip-rsatoolbox-above`` stimuli (the output says
   when and why it was skipped). Both compute in float32: the differences are at float32
   precision (printed relative to the largest distance).
2. **Model comparison**: ``--n-models`` model RDMs against one data RDM with
   ``--n-bootstrap`` stimulus bootstraps (Spearman): ``compare_models`` (weighted mid-ranks
   of batches of resamples, see ``scene2brain.representation.inference``) against
   ``rsatoolbox.inference.eval_bootstrap_pattern`` with the *same* resamples (rsatoolbox
   draws ``np.random.randint`` after ``np.random.seed``; we pass those draws as
   ``resamples``), so the bootstrap samples must agree exactly. rsatoolbox takes about
   0.2 s per model and resample at 1,000 stimuli, so ``--reference-bootstrap M`` runs it on
   the first ``M`` resamples only (the same draws as our first ``M``) and the speed-up is
   then per resample (ours: the whole run, set-up included, divided by its resamples).

For each run the script prints wall time, peak memory allocated during the call
(tracemalloc: numpy buffers are traced; BLAS work space is not), the process's maximum
resident set size so far (``ru_maxrss``), our speed-up over rsatoolbox, and the largest
absolute difference between the two results.

Usage::

    python benchmarks/rsa.py                                   # all sizes; rsatoolbox up to 1,000 stimuli
    python benchmarks/rsa.py --sizes 1000 --skip-bootstrap
    python benchmarks/rsa.py --sizes 10000 --skip-rsatoolbox-above 0 --skip-bootstrap   # ours only
    python benchmarks/rsa.py --skip-rdms --bootstrap-stimuli 100 --n-models 50 --n-bootstrap 1000
    python benchmarks/rsa.py --skip-rdms --bootstrap-stimuli 1000 --n-models 50 --n-bootstrap 1000 \
        --reference-bootstrap 10                               # the issue's size; rsatoolbox on 10 resamples
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # rsatoolbox's progress bars

import numpy as np

from scene2brain.representation import compare_models, compute_rdms

N_VOXELS = 40_000
RANK = 20


def make_patterns(n: int, p: int, seed: int = 0) -> np.ndarray:
    """float32 patterns: rank-20 structure plus unit noise, built in row blocks (no float64 copy)."""
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((RANK, p), dtype=np.float32) / np.float32(np.sqrt(RANK))
    x = np.empty((n, p), dtype=np.float32)
    for start in range(0, n, 1000):
        stop = min(n, start + 1000)
        x[start:stop] = rng.standard_normal((stop - start, RANK), dtype=np.float32) @ loadings
        x[start:stop] += rng.standard_normal((stop - start, p), dtype=np.float32)
    return x


def timed(fn: Callable[[], Any]) -> tuple[Any, float, int]:
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def maxrss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: kilobytes


def line(name: str, seconds: float, peak: int, note: str = "") -> None:
    memory = f"peak {peak / 1e9:6.2f} GB   (max RSS {maxrss_gb():5.2f} GB)"
    print(f"  {name:<22} {seconds:9.2f} s   {memory}{note}", flush=True)


def bench_rdms(sizes: list[int], distances: list[str], skip_above: int, voxels: int) -> None:
    print(f"RDMs: float32 patterns, {voxels} voxels", flush=True)
    for n in sizes:
        x = make_patterns(n, voxels)
        print(f"{n} stimuli x {voxels} voxels ({x.nbytes / 1e9:.2f} GB of float32 patterns)", flush=True)
        for distance in distances:
            ours, t_ours, peak = timed(lambda d=distance, x=x: compute_rdms(x, d))
            line(f"scene2brain {distance}", t_ours, peak)
            if n > skip_above:
                print(f"  {'rsatoolbox ' + distance:<22} skipped: {n} stimuli > --skip-rsatoolbox-above {skip_above}"
                      + (" (einsum without BLAS: ~14 s at 1,000 stimuli, x n^2)" if distance == "correlation" else ""),
                      flush=True)  # fmt: skip
                del ours
                continue
            from rsatoolbox.data import Dataset
            from rsatoolbox.rdm import calc_rdm

            ref, t_ref, peak_ref = timed(lambda d=distance, x=x: calc_rdm(Dataset(x), method=d).get_vectors())
            diff = float(np.max(np.abs(ours - ref)))
            scale = float(np.max(np.abs(ref)))
            line(f"rsatoolbox {distance}", t_ref, peak_ref,
                 f"   speed-up {t_ref / t_ours:5.2f}x   max |diff| {diff:.2e} (max |d| {scale:.2f}, "
                 f"relative {diff / scale:.1e})")  # fmt: skip
            if distance == "euclidean":
                note = ("  note: both are one Gram product of the same size (rsatoolbox: float32 GEMM; ours: "
                        "float32 syrk per chunk, at most half the flops): ~2x is the ceiling, not 5x")  # fmt: skip
                print(note, flush=True)
            del ours, ref
            gc.collect()
        del x
        gc.collect()


def bench_bootstrap(n_stimuli: int, n_models: int, n_bootstrap: int, with_rsatoolbox: bool, n_reference: int) -> None:
    print(f"Model comparison: {n_models} model RDMs, {n_bootstrap} stimulus bootstraps, {n_stimuli} stimuli, "
          "spearman", flush=True)  # fmt: skip
    rng = np.random.default_rng(1)
    latent = rng.standard_normal((n_stimuli, 30))
    data = compute_rdms(latent @ rng.standard_normal((30, 200)) + rng.standard_normal((n_stimuli, 200)))[0]
    models = compute_rdms(
        [latent[:, : 1 + k % 30] @ rng.standard_normal((1 + k % 30, 50)) + rng.standard_normal((n_stimuli, 50))
         for k in range(n_models)]
    )  # fmt: skip
    np.random.seed(7)  # noqa: NPY002 (rsatoolbox draws from numpy's global RNG)
    resamples = np.stack([np.random.randint(0, n_stimuli, size=n_stimuli) for _ in range(n_bootstrap)])  # noqa: NPY002
    ours, t_ours, peak = timed(lambda: compare_models(data, models, method="spearman", resamples=resamples))
    line("scene2brain", t_ours, peak, f"   {1e3 * t_ours / n_bootstrap:.2f} ms per resample")
    if not with_rsatoolbox:
        return
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    fixed = [ModelFixed(f"m{k}", RDMs(models[k][None])) for k in range(n_models)]
    n_ref = min(n_bootstrap, n_reference) if n_reference > 0 else n_bootstrap

    def run() -> np.ndarray:
        np.random.seed(7)  # noqa: NPY002
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return eval_bootstrap_pattern(fixed, RDMs(data[None]), method="spearman", N=n_ref,
                                          boot_noise_ceil=False).evaluations  # fmt: skip

    ref, t_ref, peak_ref = timed(run)
    diff = float(np.nanmax(np.abs(ours.samples[:n_ref] - ref)))
    speed_up = (t_ref / n_ref) / (t_ours / n_bootstrap)
    scope = "" if n_ref == n_bootstrap else f" (on the first {n_ref} resamples; speed-up per resample)"
    per = f"   {1e3 * t_ref / n_ref:.2f} ms per resample"
    line("rsatoolbox", t_ref, peak_ref, f"{per}   speed-up {speed_up:5.1f}x   max |diff| {diff:.2e}{scope}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000], help="numbers of stimuli")
    parser.add_argument("--voxels", type=int, default=N_VOXELS)
    parser.add_argument("--distances", nargs="+", default=["correlation", "euclidean"])
    parser.add_argument(
        "--skip-rsatoolbox-above",
        type=int,
        default=1000,
        metavar="N",
        help="run rsatoolbox's RDMs only up to N stimuli (its correlation RDM is O(n^2 p) in einsum)",
    )
    parser.add_argument("--skip-rdms", action="store_true")
    parser.add_argument("--skip-bootstrap", action="store_true")
    parser.add_argument("--bootstrap-stimuli", type=int, default=100)
    parser.add_argument("--n-models", type=int, default=50)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument(
        "--reference-bootstrap",
        type=int,
        default=0,
        metavar="M",
        help="run rsatoolbox's bootstrap on the first M resamples only (0: all); the speed-up is then per resample",
    )
    parser.add_argument("--ours-only", action="store_true", help="no rsatoolbox at all")
    args = parser.parse_args()  # fmt: skip
    skip_above = -1 if args.ours_only else args.skip_rsatoolbox_above
    if not args.skip_rdms:
        bench_rdms(args.sizes, args.distances, skip_above, args.voxels)
    if not args.skip_bootstrap:
        bench_bootstrap(
            args.bootstrap_stimuli, args.n_models, args.n_bootstrap, not args.ours_only, args.reference_bootstrap
        )


if __name__ == "__main__":
    main()
