"""Voxelwise ridge with per-target alphas: scene2brain vs himalaya vs scikit-learn.

All three run in this one process on the same synthetic data (power-law feature
spectrum, low-rank signal plus noise, float32), the same 5 folds (``KFold(5)``) and the
same 10-alpha grid. himalaya scores folds with its ``r2_score`` (scene2brain's
criterion) and fits an intercept; scikit-learn's ``RidgeCV(alpha_per_target=True)`` only
offers leave-one-out, so its alphas are compared with scene2brain's exact
leave-one-out mode, and its time with both of scene2brain's modes.

For each size the script prints wall time, peak memory allocated during the fit
(tracemalloc; numpy buffers are traced), scene2brain's speed-up over each peer, the
fraction of targets whose alpha agrees and the largest difference in held-out Pearson
r on 1,000 extra samples. Where a peer would take too long on every target it runs on
two voxel subsets and its time is extrapolated linearly (fixed cost + cost per target);
the output says so.

``--backend torch`` fits scene2brain's RidgeCV with its torch backend (``--device cpu``,
``cuda``, ...; default CUDA when available) instead of numpy; the peers and the agreement
columns are the same. With torch, one small fit first warms the backend up (CUDA context,
kernels) outside the timings; on CUDA the peak memory is torch's peak allocation on the
device, on the CPU tracemalloc does not see torch's buffers (its peak is marked n/a).

Usage::

    python benchmarks/ridge.py                      # all three sizes (not "tiny")
    python benchmarks/ridge.py --sizes tiny         # a quick check of the script and the agreement
    python benchmarks/ridge.py --sizes small full   # a selection
    python benchmarks/ridge.py --sizes small --backend torch --device cuda   # the torch backend
    python benchmarks/ridge.py --sizes full --ours-only        # scene2brain's fits only
    python benchmarks/ridge.py --sizes wide --skip-peer himalaya   # leave out a slow peer
    python benchmarks/ridge.py --sizes full --trees /tmp/old/src src --repeat 2

``--trees`` compares source trees (e.g. ``src`` of a ``git worktree`` of another commit
and this one's): each run is a fresh process importing scene2brain from one tree
(``PYTHONPATH``) and timing ``--ours-only``; the trees alternate (A B A B ...) so that
drift of the machine does not favour one, and the median time per tree and its ratio to
the first tree's are printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeCV as SkRidgeCV
from sklearn.model_selection import KFold

import scene2brain
from scene2brain.encoding import RidgeCV

SIZES = {
    "tiny": (2000, 500, 2000),  # a quick check (a minute on two cores, peers included), not a benchmark
    "small": (8000, 1000, 10000),
    "wide": (8857, 9216, 1000),
    "full": (8857, 1000, 39548),
}
N_HELD_OUT = 1000
ALPHAS = np.logspace(-1, 6, 10)


def make_data(n: int, p: int, v: int, seed: int = 0):
    """Features with a power-law spectrum; targets = rank-50 signal of varying strength + noise."""
    rng = np.random.default_rng(seed)
    total = n + N_HELD_OUT
    X = rng.standard_normal((total, p), dtype=np.float32)
    X *= (np.arange(1, p + 1, dtype=np.float32) ** -0.5)[None, :]
    rank = 50
    latent = rng.standard_normal((p, rank), dtype=np.float32) / np.sqrt(p)
    signal = (X @ latent) @ rng.standard_normal((rank, v), dtype=np.float32)
    signal /= signal.std(axis=0) + 1e-12
    snr = np.logspace(-1.5, 0.5, v, dtype=np.float32)
    Y = signal * snr + rng.standard_normal((total, v), dtype=np.float32)
    Y = Y.astype(np.float32)
    return X[:n], Y[:n], X[n:], Y[n:]


@dataclass(frozen=True)
class Engine:
    """How scene2brain's RidgeCV runs: its backend and torch device (None: the backend's default)."""

    backend: str = "numpy"
    device: str | None = None

    def label(self) -> str:
        return self.backend if self.device is None else f"{self.backend}, {self.device}"

    def cuda(self) -> bool:
        if self.backend != "torch":
            return False
        import torch

        return (self.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")


NUMPY = Engine()


@dataclass
class Run:
    seconds: float
    peak_bytes: int  # -1: not measured
    alphas: np.ndarray
    r: np.ndarray
    cpu_seconds: float = float("nan")  # CPU time of all the process's threads: less sensitive to other load


def held_out_r(Y_true: np.ndarray, Y_pred: np.ndarray) -> np.ndarray:
    a = Y_true - Y_true.mean(0)
    b = Y_pred - Y_pred.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def timed(fit, X_test, Y_test, engine: Engine = NUMPY) -> Run:
    """Time ``fit``; its peak memory from tracemalloc (numpy), or torch's on CUDA (n/a for torch on the CPU)."""
    gc.collect()
    if engine.cuda():
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    alphas, predict = fit()  # the fitted attributes are numpy arrays: the device work is done
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if engine.cuda():
        peak = torch.cuda.max_memory_allocated()
    elif engine.backend == "torch":
        peak = -1
    r = held_out_r(Y_test, np.asarray(predict(X_test)))
    return Run(seconds, peak, np.asarray(alphas, dtype=np.float64), r, cpu)


def ours(X, Y, cv, engine: Engine = NUMPY):
    def fit():
        model = RidgeCV(alphas=ALPHAS, cv=cv, backend=engine.backend, device=engine.device).fit(X, Y)
        return model.best_alphas_, model.predict

    return fit


def warm_up(engine: Engine) -> None:
    """One small fit of each mode, so that backend start-up (CUDA context, kernels) is not timed."""
    if engine.backend == "numpy":
        return
    X, Y, _, _ = make_data(200, 50, 20, seed=1)
    for cv in (KFold(5), "loo"):
        ours(X, Y, cv, engine)()


def gemm_seconds(X: np.ndarray, Y: np.ndarray, repeat: int = 2) -> float:
    """Best of ``repeat`` float32 products ``X.T @ Y``: the unit the fit's time is counted in."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        product = X.T @ Y
        best = min(best, time.perf_counter() - start)
        del product
    return best


def phases(X: np.ndarray, Y: np.ndarray, cv) -> None:
    """The primal 5-fold fit's phases one after another (chunk by chunk, BLAS's own threads): seconds and GFLOP/s.

    The fit itself runs its chunks on every BLAS thread at once, so its time is not the sum of
    these; they show where the time goes and how close each phase runs to GEMM speed.
    """
    from scene2brain.encoding import _cv
    from scene2brain.encoding import _solver as sv

    n, p = X.shape
    v = Y.shape[1]
    folds = list(cv.split(X))
    prepared = _cv.prepare(X, np.float32, ALPHAS, folds, fit_intercept=True, scoring="r2", solver="auto",
                           backend="numpy", device=None, memory_budget=2**30)  # fmt: skip
    design, k = prepared.design, len(ALPHAS)
    seconds = dict.fromkeys(["X side", "statistics", "rotations", "scoring", "  quadratic term", "refit"], 0.0)

    def clock(name, f, *a):
        start = time.perf_counter()
        out = f(*a)
        seconds[name] += time.perf_counter() - start
        return out

    factors = clock("X side", lambda: [sv.fold_factors(design, f, False, n_alphas=k) for f in prepared.folds])
    full = clock("X side", sv.full_factors, design, False)
    y_mean = Y.mean(axis=0, dtype=np.float64)
    for cols in sv.chunks(v, prepared.size):
        Yc = sv.load_targets(design, Y, cols, y_mean)
        stats = clock("statistics", sv.primal_stats, design, prepared.folds, True, Yc)
        best = np.full(cols.stop - cols.start, -np.inf)
        chosen = np.full(cols.stop - cols.start, ALPHAS[-1])
        for f, ff in enumerate(factors):
            targets = clock("rotations", sv.primal_targets, design, ff, stats, f, Yc)
            if ff.spectral is not None:  # partial fractions (chosen at this size): timed again, alone
                clock("  quadratic term", sv.spectral_quad, ff.spectral, ALPHAS, targets.Z, design.be)
            scores = clock("scoring", sv.score_alphas, ff, targets, ALPHAS, "r2", design.be)
            better = scores.max(axis=0) > best
            chosen = np.where(better, ALPHAS[scores.argmax(axis=0)], chosen)
            best = np.maximum(best, scores.max(axis=0))
        clock("refit", sv.refit_weights, design, full, stats.S_all, chosen)
    n_te = n // len(folds)
    flops = {
        "X side": len(folds) * ((n - n_te) * p * p + n_te * p * p + 2 * n_te * p * p) + n * p * p,  # Grams, rotations
        "statistics": 2 * n * p * v,
        "rotations": len(folds) * 2 * (2 * p * p * v),
        "scoring": len(folds) * (2 * p * p * v + 2 * (2 * k * p * v)),
        "  quadratic term": len(folds) * 2 * p * p * v,  # float64
        "refit": 2 * (2 * p * p * v),
    }
    print("  phases of the primal fit, one after another (seconds; GFLOP/s of their products, eigh not counted;")
    print("  the quadratic term is part of the scoring, timed again on its own):")
    for name, s in seconds.items():
        print(f"    {name:<15} {s:6.2f} s  {flops[name] / s / 1e9:6.0f} GFLOP/s")


def himalaya(X, Y, dual: bool):
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV as HRidgeCV
    from himalaya.scoring import r2_score

    def fit():
        params = {"score_func": r2_score, "n_targets_batch": 5000}
        if dual:
            model = KernelRidgeCV(alphas=ALPHAS, kernel="linear", cv=KFold(5), fit_intercept=True, solver_params=params)
        else:
            model = HRidgeCV(alphas=ALPHAS, cv=KFold(5), fit_intercept=True, solver_params=params)
        model.fit(X, Y)
        return model.best_alphas_, model.predict

    return fit


def sklearn_loo(X, Y):
    def fit():
        model = SkRidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X, Y)
        return model.alpha_, model.predict

    return fit


def gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:6.2f} GB"


def line(name: str, run: Run, y_bytes: int, note: str = "") -> None:
    cpu = "" if np.isnan(run.cpu_seconds) else f" (CPU {run.cpu_seconds:.1f} s)"
    peak = "peak n/a" if run.peak_bytes < 0 else f"peak {gb(run.peak_bytes)} ({run.peak_bytes / y_bytes:4.2f} x Y)"
    print(f"  {name:<34} {run.seconds:8.1f} s{cpu}   {peak}{note}", flush=True)


def compare(name: str, mine: Run, peer: Run, cols: slice | None = None) -> None:
    cols = slice(None) if cols is None else cols
    same = np.isclose(mine.alphas[cols], peer.alphas)
    dr = np.abs(mine.r[cols] - peer.r)
    print(
        f"  vs {name:<31} alphas agree on {100 * same.mean():6.2f} % of targets; max |delta held-out r| "
        f"{np.nanmax(dr):.1e} (all), {np.nanmax(dr[same]) if same.any() else np.nan:.1e} (same alpha)"
    )


def peer_run(fit_on, X, Y, X_test, Y_test, subsets: tuple[int, int]) -> tuple[Run, str, slice | None]:
    """Run a peer on all targets, or on two voxel subsets extrapolated linearly (fixed + per-target cost).

    Returns the run, a note for the output, and the targets its alphas and r refer to.
    """
    v = Y.shape[1]
    if v <= 2 * subsets[1]:
        return timed(fit_on(X, Y), X_test, Y_test), "", None
    r1, r2 = (timed(fit_on(X, Y[:, :k]), X_test, Y_test[:, :k]) for k in subsets)
    (k1, k2) = subsets
    seconds = r2.seconds + (r2.seconds - r1.seconds) / (k2 - k1) * (v - k2)
    peak = int(r2.peak_bytes + (r2.peak_bytes - r1.peak_bytes) / (k2 - k1) * (v - k2))
    note = f"  [extrapolated from v={k1} ({r1.seconds:.1f} s), v={k2} ({r2.seconds:.1f} s)]"
    return Run(seconds, peak, r2.alphas, r2.r), note, slice(0, k2)


def bench(
    size: str,
    peer_subsets: tuple[int, int],
    ours_only: bool = False,
    skip: tuple[str, ...] = (),
    engine: Engine = NUMPY,
) -> dict[str, float]:
    """Print the comparison for one size; return scene2brain's seconds per mode."""
    n, p, v = SIZES[size]
    X, Y, X_test, Y_test = make_data(n, p, v)
    y_bytes = Y.nbytes
    dual = p > n * 4 // 5
    print(f"\n== {size}: n={n}, p={p}, v={v} (Y {gb(y_bytes).strip()}), 5-fold, {len(ALPHAS)} alphas, float32 ==")
    gemm = gemm_seconds(X, Y)
    mine = timed(ours(X, Y, KFold(5), engine), X_test, Y_test, engine)
    gemm = min(gemm, gemm_seconds(X, Y))
    line(f"scene2brain RidgeCV ({'dual' if dual else 'primal'}; {engine.label()})", mine, y_bytes)
    print(
        f"  reference: one float32 GEMM X.T @ Y of this size {gemm:.2f} s ({2 * n * p * v / gemm / 1e9:.0f} GFLOP/s, "
        f"best of 4 around the fit); the 5-fold fit costs {mine.seconds / gemm:.1f} GEMMs",
        flush=True,
    )
    if not dual and engine.backend == "numpy":
        phases(X, Y, KFold(5))
    mine_loo = timed(ours(X, Y, "loo", engine), X_test, Y_test, engine)
    line(f"scene2brain RidgeCV (exact LOO; {engine.label()})", mine_loo, y_bytes)
    seconds = {"kfold": mine.seconds, "loo": mine_loo.seconds}
    seconds |= {"kfold_cpu": mine.cpu_seconds, "loo_cpu": mine_loo.cpu_seconds}
    if ours_only:
        return seconds

    peer_name = "himalaya KernelRidgeCV" if dual else "himalaya RidgeCV"
    if "himalaya" not in skip:
        h, note, cols = peer_run(lambda a, b: himalaya(a, b, dual), X, Y, X_test, Y_test, peer_subsets)
        line(peer_name, h, y_bytes, note)
        print(f"  speed-up over {peer_name}: {h.seconds / mine.seconds:5.1f} x")
        compare(peer_name + " (same folds)", mine, h, cols)
    if "sklearn" not in skip:
        s, note, cols = peer_run(sklearn_loo, X, Y, X_test, Y_test, peer_subsets)
        line("scikit-learn RidgeCV (LOO)", s, y_bytes, note)
        print(f"  speed-up over scikit-learn (our 5-fold / our LOO): "
              f"{s.seconds / mine.seconds:5.1f} x / {s.seconds / mine_loo.seconds:5.1f} x; "
              f"time ratio ours / scikit-learn: {mine.seconds / s.seconds:.3f} / "
              f"{mine_loo.seconds / s.seconds:.3f}")  # fmt: skip
        compare("scikit-learn, our LOO", mine_loo, s, cols)
        compare("scikit-learn, our 5-fold", mine, s, cols)
    return seconds


def compare_trees(trees: list[str], sizes: list[str], repeat: int, engine: Engine = NUMPY) -> None:
    """Time scene2brain from each source tree in fresh processes, alternating the trees."""
    times: dict[str, list[dict[str, dict[str, float]]]] = {tree: [] for tree in trees}
    for r in range(repeat):
        for tree in trees:
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([os.path.abspath(tree), os.environ.get("PYTHONPATH", "")]),
            }
            command = [sys.executable, __file__, "--ours-only", "--json", "--sizes", *sizes]
            command += ["--backend", engine.backend] + ([] if engine.device is None else ["--device", engine.device])
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            times[tree].append(json.loads(out.strip().splitlines()[-1]))
            print(f"run {r + 1}/{repeat} {tree}: {json.dumps(times[tree][-1])}", flush=True)
    print("\n== seconds per tree: median and min (ratio to the first tree's); *_cpu: CPU time of all threads ==")
    for size in sizes:
        for mode in ("kfold", "kfold_cpu", "loo", "loo_cpu"):
            base = [stat(t[size][mode] for t in times[trees[0]]) for stat in (statistics.median, min)]
            for tree in trees:
                median, low = (stat(t[size][mode] for t in times[tree]) for stat in (statistics.median, min))
                print(f"  {size:<5} {mode:<9} {tree:<32} median {median:7.2f} s ({median / base[0]:5.3f})"
                      f"   min {low:7.2f} s ({low / base[1]:5.3f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=[s for s in SIZES if s != "tiny"])
    parser.add_argument("--peer-subsets", nargs=2, type=int, default=[2000, 6000], metavar=("V1", "V2"))
    parser.add_argument("--ours-only", action="store_true", help="time scene2brain's fits only (no peers)")
    parser.add_argument(
        "--skip-peer",
        choices=["himalaya", "sklearn"],
        action="append",
        default=[],
        help="leave out a slow peer (repeatable)",
    )
    parser.add_argument(
        "--backend", choices=["numpy", "torch"], default="numpy", help="backend of scene2brain's RidgeCV"
    )
    parser.add_argument(
        "--device", default=None, help="torch device of scene2brain's RidgeCV (cpu, cuda, cuda:1; default: CUDA if any)"
    )
    parser.add_argument("--trees", nargs="+", metavar="SRC", help="compare scene2brain from these source folders")
    parser.add_argument("--repeat", type=int, default=2, help="runs per tree with --trees")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # last line: seconds, for --trees
    args = parser.parse_args()
    if args.device is not None and args.backend != "torch":
        parser.error(f"--device: only with --backend torch (the numpy backend runs on the CPU), got {args.device!r}")
    engine = Engine(args.backend, args.device)
    if args.trees:
        compare_trees(args.trees, args.sizes, args.repeat, engine)
        return
    print("scene2brain from", os.path.dirname(scene2brain.__file__))
    try:
        import threadpoolctl

        print("BLAS:", [(i["internal_api"], i["num_threads"]) for i in threadpoolctl.threadpool_info()])
    except ImportError:
        pass
    if engine.backend == "torch":
        import torch

        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, CUDA: {torch.cuda.is_available()}")
    warm_up(engine)
    skip = tuple(args.skip_peer)
    seconds = {size: bench(size, tuple(args.peer_subsets), args.ours_only, skip, engine) for size in args.sizes}
    if args.json:
        print(json.dumps(seconds))


if __name__ == "__main__":
    main()
