"""Fit time and peak memory of every registered encoder, at img2brain's size (or a small one).

Synthetic data like img2brain's (100 principal components of AlexNet features for 8,857
training images, 10,000 voxels): features with a power-law spectrum; half of the voxels
("linear") are a random linear read-out of the features, the other half ("nonlinear") a
read-out of 50 rectified random projections of them; unit-variance signal times a
per-voxel strength (log-spaced, signal-to-noise variance 0.03..1) plus unit noise; float64.
Every encoder gets the same 5 folds (``KFold(5, shuffle=True, random_state=0)``) and its
default options (``--n-jobs`` reaches those with an ``n_jobs`` option, ``--device`` those
with a device).

Each encoder runs in a fresh process (``spawn``) so that its memory is its own. Printed per
encoder: wall time of the fit (CV included, ``fit_encoder``'s ``fit_seconds``), CPU time of
all threads, the process's peak resident set size during the fit (Linux ``VmHWM``, reset
just before the fit through ``/proc/self/clear_refs``; it covers numpy buffers and the C
allocations of scikit-learn's solvers and trees alike) and its growth over the resident
size before the fit, which holds the data (``+fit``), the median held-out Pearson r on
1,000 extra rows for the linear and the nonlinear voxels, and the summary of the fitted
state. (``tracemalloc`` is not used: it slows the Python-level loops of the per-voxel
lasso about tenfold.) Encoders in ``--extrapolate`` (default: tree and forest, whose cost
grows with the number of outputs at every split) are fitted on two voxel subsets (half
linear, half nonlinear voxels) and their time and memory extrapolated linearly to all
voxels when there are more than twice the larger subset; the output says so.

``--threads`` limits the BLAS/OpenMP threads of each fit (threadpoolctl); on a loaded
machine OpenBLAS's threaded LAPACK can be a hundred times slower than one thread.

Usage::

    python benchmarks/encoders.py --size small --threads 1     # n=1,000, p=100, v=500 (a few minutes)
    python benchmarks/encoders.py                              # img2brain: n=8,857, p=100, v=10,000 (long)
    python benchmarks/encoders.py --encoders ridge ridge-shared lasso --n-jobs 2
    python benchmarks/encoders.py --size img2brain --extrapolate tree forest knn --subsets 100 300
    python benchmarks/encoders.py --encoders ridge --bottleneck full --device cuda   # the network on a GPU

After the encoders, ``benchmarks/bottleneck_network.py`` times the bottleneck network per epoch at
F-BNet size (``--bottleneck full``, the default; ``small`` or ``none``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import KFold

SIZES = {
    "small": (1000, 100, 500),
    "img2brain": (8857, 100, 10000),
}
N_HELD_OUT = 1000
N_HIDDEN = 50
#: Registered encoders left out of the default list: the network is timed per epoch at its own size (below).
TIMED_ELSEWHERE = ("bottleneck",)


def make_data(n: int, p: int, v: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and held-out rows: features (power-law spectrum) and voxels (first half linear, second nonlinear)."""
    rng = np.random.default_rng(seed)
    total = n + N_HELD_OUT
    X = rng.standard_normal((total, p)) * (np.arange(1, p + 1) ** -0.5)
    X /= X[:n].std(axis=0)[0]
    half = v // 2
    linear = X @ rng.standard_normal((p, half))
    hidden = np.maximum(X @ rng.standard_normal((p, N_HIDDEN)), 0.0)
    nonlinear = hidden @ rng.standard_normal((N_HIDDEN, v - half))
    signal = np.hstack([linear, nonlinear])
    signal = (signal - signal[:n].mean(axis=0)) / signal[:n].std(axis=0)
    strength = np.sqrt(np.logspace(np.log10(0.03), 0, v))
    rng.shuffle(strength)
    Y = signal * strength + rng.standard_normal((total, v))
    return X[:n], Y[:n], X[n:], Y[n:]


def _status(key: str) -> int | None:
    """A size from ``/proc/self/status`` in bytes (None where there is none)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the process's peak resident set size (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """Peak resident set size: ``VmHWM``, else ``ru_maxrss`` (not resettable, since the process started)."""
    peak = _status("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _median_r(Y_true: np.ndarray, Y_pred: np.ndarray) -> float:
    a = Y_true - Y_true.mean(axis=0)
    b = Y_pred - Y_pred.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    return float(np.nanmedian(r))


def run_one(
    name: str, size: tuple[int, int, int], voxels: int | None, options: dict[str, Any], threads: int | None
) -> dict[str, Any]:
    """Fit encoder ``name`` on ``voxels`` voxels (all for None); runs in a fresh process."""
    from threadpoolctl import threadpool_limits

    from scene2brain.encoding.registry import encoder_info, fit_encoder

    n, p, v = size
    X, Y, X_test, Y_test = make_data(n, p, v)
    half = v // 2
    if voxels is not None:  # as many linear as nonlinear voxels
        cols = np.r_[np.arange(voxels // 2), half + np.arange(voxels - voxels // 2)]
        Y, Y_test = np.ascontiguousarray(Y[:, cols]), Y_test[:, cols]
        half = voxels // 2
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    info = encoder_info(name)
    options = {key: value for key, value in options.items() if key in info.options() or key == "device"}
    if "device" in options and not info.accepts("device"):
        del options["device"]
    before = _status("VmRSS") or 0
    resettable = reset_peak_rss()
    cpu = time.process_time()
    with threadpool_limits(threads):
        fitted = fit_encoder(name, X, Y, folds, random_state=0, **options)
    cpu = time.process_time() - cpu
    peak = peak_rss()
    predicted = np.asarray(fitted.predict(X_test))
    out = {
        "seconds": fitted.fit_seconds,
        "cpu_seconds": cpu,
        "peak_rss": peak,
        "rss_before_fit": before,
        "peak_reset": resettable,
        "r_linear": _median_r(Y_test[:, :half], predicted[:, :half]),
        "r_nonlinear": _median_r(Y_test[:, half:], predicted[:, half:]),
        "summary": fitted.summary,
        "voxels": Y.shape[1],
    }
    return json.loads(json.dumps(out, default=float))


def in_fresh_process(*args: Any) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_one, args)


def extrapolated(
    name: str, size: tuple[int, int, int], subsets: tuple[int, int], options: dict, threads: int | None
) -> dict[str, Any]:
    """Fit on two voxel subsets; time and memory to all voxels linearly (fixed cost + cost per voxel)."""
    v = size[2]
    k1, k2 = subsets
    r1, r2 = (in_fresh_process(name, size, k, options, threads) for k in subsets)
    out = dict(r2)
    for key in ("seconds", "cpu_seconds", "peak_rss", "rss_before_fit"):
        out[key] = r2[key] + (r2[key] - r1[key]) / (k2 - k1) * (v - k2)
    out["note"] = f"extrapolated from v={k1} ({r1['seconds']:.1f} s), v={k2} ({r2['seconds']:.1f} s)"
    return out


def gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:6.2f}"


def bench_bottleneck(args: argparse.Namespace) -> None:
    """The bottleneck network's seconds per epoch and peak memory (``benchmarks/bottleneck_network.py``, own process).

    F-BNet size: 300 input PCs, width 6,000, 2 x 75 output PCs, about 7,200 training rows;
    AdamW and Lion, 2 epochs each, on ``--device`` (default CPU).
    """
    script = Path(__file__).with_name("bottleneck_network.py")
    for optimizer in ("adamw", "lion"):
        print(f"\n== bottleneck network, {args.bottleneck} size, {optimizer} ==", flush=True)
        command = [sys.executable, str(script), "--size", args.bottleneck, "--epochs", "2", "--optimizer", optimizer]
        command += ["--device", args.device or "cpu"]
        if args.threads:
            command += ["--threads", str(args.threads)]
        subprocess.run(command, check=True)


def main() -> None:
    from scene2brain.encoding.registry import ENCODERS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", "--sizes", choices=list(SIZES), default="img2brain", dest="size")
    parser.add_argument(
        "--encoders", nargs="+", choices=sorted(ENCODERS), default=None, help="default: all but the bottleneck network"
    )
    parser.add_argument("--n-jobs", type=int, default=1, help="for the encoders with an n_jobs option")
    parser.add_argument("--device", default=None, help="for the encoders that take a device (e.g. cuda)")
    parser.add_argument("--extrapolate", nargs="*", default=["tree", "forest"], help="encoders fitted on subsets")
    parser.add_argument("--subsets", nargs=2, type=int, default=[100, 300], metavar=("V1", "V2"))
    parser.add_argument("--threads", type=int, default=None, help="BLAS/OpenMP threads per fit (default: all)")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    parser.add_argument(
        "--bottleneck", choices=("full", "small", "none"), default="full",
        help="the bottleneck network per epoch at F-BNet size (full), a small size, or not at all",
    )  # fmt: skip
    args = parser.parse_args()

    size = SIZES[args.size]
    n, p, v = size
    names = args.encoders or [name for name in ENCODERS if name not in TIMED_ELSEWHERE]
    options: dict[str, Any] = {"n_jobs": args.n_jobs}
    if args.device is not None:
        options["device"] = args.device
    data_gb = 8 * (n + N_HELD_OUT) * (p + v) / 1e9
    setting = f"{os.cpu_count()} CPUs, threads={args.threads}, n_jobs={args.n_jobs}, device={args.device}"
    print(f"== {args.size}: n={n}, p={p}, v={v} (data {data_gb:.2f} GB float64), 5 folds; {setting} ==", flush=True)
    header = (
        f"{'encoder':<21} {'fit s':>8} {'CPU s':>8} {'peak GB':>7} {'+fit GB':>7} {'r lin':>6} {'r nonlin':>8}  summary"
    )
    print(header)
    print("-" * len(header), flush=True)
    results = {}
    for name in names:
        k2 = args.subsets[1]
        if name in args.extrapolate and v > 2 * k2:
            res = extrapolated(name, size, tuple(args.subsets), options, args.threads)
        else:
            res = in_fresh_process(name, size, None, options, args.threads)
        results[name] = res
        summary = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in res["summary"].items())
        memory = f"{gb(res['peak_rss']):>7} {gb(res['peak_rss'] - res['rss_before_fit']):>7}"
        print(f"{name:<21} {res['seconds']:>8.1f} {res['cpu_seconds']:>8.1f} {memory} "
              f"{res['r_linear']:>6.3f} {res['r_nonlinear']:>8.3f}  {summary}", flush=True)  # fmt: skip
        if "note" in res:
            print(f"{'':<21} [{res['note']}; r on those voxels]", flush=True)
        if not res["peak_reset"]:
            print(f"{'':<21} [peak since the process started: the peak could not be reset]", flush=True)

    if args.bottleneck != "none":
        bench_bottleneck(args)

    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
