"""Voxel-chunked ridge on Dask: measured (``--part ridge``) and modelled (``--part model``).

``bench_ridge``: a subj01-size ridge (n = 8,857 samples, p = 1,000 features, v = 39,548
targets, float32, 5 folds, 10 alphas) fitted in-process (``RidgeCV.fit`` on Y in memory)
and with :func:`scene2brain.encoding.distributed.fit_chunked` on a ``LocalCluster`` of
1 worker x 2 threads and of 2 workers x 1 thread, on the same data, one run each. Y is
written once to an uncompressed, column-chunked zarr store; the in-process fit reads it
whole into memory first (not timed), the Dask fits read it inside their tasks (timed:
the I/O is part of the chunked fit). Each line prints the wall time of the fit, its
ratio to the in-process time (the issue's target: at most 1.15 on 2 cores) and the
agreement (fraction of equal alphas, largest coefficient difference relative to the
largest coefficient). The clusters' start-up is printed apart.

``bench_model``: measures on this machine the X-side time (client), the per-block
compute time at two block widths (one BLAS thread, fitted as fixed + per-column cost)
and the bytes a fit moves (X-side factors broadcast to every worker, Y blocks read,
results returned), then predicts the wall time for 8, 32 and 128 workers from a model
whose assumptions are parameters (network and storage bandwidth, per-task overhead,
cores per worker); ``docs/scaling.md`` explains it. ``--model-validate`` also runs a
2 workers x 1 thread fit at the measured size and prints the model's prediction for it
beside the measured time.

Usage (through ``benchmarks/distributed.py``, or this file directly)::

    python benchmarks/_distributed_ridge.py --part ridge --voxels 8000
    python benchmarks/_distributed_ridge.py --part ridge                 # full subj01 size (~1.4 GB of Y)
    python benchmarks/_distributed_ridge.py --part model --voxels 8000 --model-validate
    python benchmarks/_distributed_ridge.py --part model --voxels 8000 --model-voxels 200000 --model-cores 16
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from sklearn.model_selection import KFold

from scene2brain.encoding import RidgeCV
from scene2brain.encoding import distributed as chunked
from scene2brain.encoding._cv import for_tasks, prepare, share_factors

ALPHAS = np.logspace(-1, 6, 10)
GB = 1e9


def add_ridge_arguments(parser: argparse.ArgumentParser) -> None:
    """The data options, shared by ``--part ridge`` and ``--part model``, and ``--repeat``."""
    group = parser.add_argument_group("ridge (and the data of model)")
    group.add_argument("--samples", type=int, default=8857, help="n (default: subj01's 8,857)")
    group.add_argument("--features", type=int, default=1000, help="p (default 1,000)")
    group.add_argument("--voxels", type=int, default=39548, help="v (default: subj01's 39,548; try 8000)")
    group.add_argument("--folds", type=int, default=5)
    group.add_argument("--chunk", type=int, default=None, help="columns per zarr chunk (default: v / 4, >= 500)")
    group.add_argument("--workdir", type=Path, default=None, help="where Y's zarr store goes (default: a temp dir)")
    group.add_argument("--repeat", type=int, default=1, help="alternate the three runs this many times")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``--part model`` (it also reads those of :func:`add_ridge_arguments`)."""
    group = parser.add_argument_group("model")
    group.add_argument("--model-workers", type=int, nargs="+", default=[8, 32, 128], help="worker counts")
    group.add_argument("--model-cores", type=int, default=8, help="Dask threads (= cores) per worker")
    group.add_argument("--model-bandwidth", type=float, default=1.25, help="network GB/s per node (10 GbE)")
    group.add_argument("--model-storage-bandwidth", type=float, default=5.0, help="aggregate storage GB/s")
    group.add_argument("--model-task-overhead", type=float, default=0.005, help="seconds per task on a worker")
    group.add_argument("--model-scheduler-overhead", type=float, default=0.001, help="scheduler seconds per task")
    group.add_argument("--model-voxels", type=int, default=None, help="targets of the modelled fit (default v)")
    group.add_argument("--model-x-side", type=float, nargs="*", default=[], help="client X-side seconds to try too")
    group.add_argument("--model-validate", action="store_true", help="also measure 2 workers x 1 thread here")


def make_data(n: int, p: int, v: int, path: Path, width: int, seed: int = 0) -> np.ndarray:
    """X (n, p) float32 with a power-law spectrum; Y = rank-50 signal + noise, written to ``path`` block by block."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p), dtype=np.float32) * (np.arange(1, p + 1, dtype=np.float32) ** -0.5)[None, :]
    latent = X @ (rng.standard_normal((p, 50), dtype=np.float32) / np.float32(np.sqrt(p)))
    Y = zarr.create_array(str(path), shape=(n, v), chunks=(n, width), dtype=np.float32, compressors=None)
    for start in range(0, v, width):
        stop = min(start + width, v)
        signal = latent @ rng.standard_normal((50, stop - start), dtype=np.float32)
        signal /= signal.std(axis=0) + np.float32(1e-12)
        snr = np.logspace(-1.5, 0.5, v, dtype=np.float32)[start:stop]
        Y[:, start:stop] = signal * snr + rng.standard_normal((n, stop - start), dtype=np.float32)
    return X


def _estimator(folds: int) -> RidgeCV:
    return RidgeCV(ALPHAS, cv=KFold(folds))


def _workdir(args: argparse.Namespace) -> tuple[Path, Any]:
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return args.workdir, None
    holder = tempfile.TemporaryDirectory(prefix="s2b-distributed-")
    return Path(holder.name), holder


def _chunk_width(args: argparse.Namespace) -> int:
    # Two blocks per Dask thread on 2 cores, but at least 500 columns (GEMM efficiency) unless v is tiny.
    return args.chunk or max(min(500, args.voxels), math.ceil(args.voxels / 4))


def _cluster_fit(X: np.ndarray, path: Path, folds: int, n_workers: int, threads: int) -> tuple[RidgeCV, float, float]:
    """Start a LocalCluster, import scene2brain on its workers (start-up), then time one chunked fit."""
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(importlib.import_module, "scene2brain.encoding.distributed")
        started = time.perf_counter() - start
        start = time.perf_counter()
        model = chunked.fit_chunked(_estimator(folds), X, str(path), client=client, blas_threads=1)
        seconds = time.perf_counter() - start
    return model, seconds, started


RUNS = (("in-process", 0, 0), ("dask 1 worker x 2 thr", 1, 2), ("dask 2 workers x 1 thr", 2, 1))


def bench_ridge(args: argparse.Namespace) -> dict[str, float]:
    """In-process vs LocalCluster 1 worker x 2 threads vs 2 workers x 1 thread; returns the median wall times.

    With ``--repeat R`` the three runs alternate R times (drift of a shared machine then
    hits each alike) and the medians are compared.
    """
    n, p, v = args.samples, args.features, args.voxels
    width = _chunk_width(args)
    folder, holder = _workdir(args)
    try:
        path = folder / "y.zarr"
        X = make_data(n, p, v, path, width)
        print(f"ridge n={n} p={p} v={v} float32, {args.folds} folds, {len(ALPHAS)} alphas; Y in {path} "
              f"({n * v * 4 / GB:.2f} GB, chunks of {width} columns), {args.repeat} run(s) each")  # fmt: skip
        print(f"{'run':<24}{'wall s':>9}{'ratio':>8}{'alphas equal':>14}{'max coef diff':>15}{'cluster start s':>17}")
        times: dict[str, list[float]] = {label: [] for label, _, _ in RUNS}
        local = None
        for _ in range(args.repeat):
            for label, workers, threads in RUNS:
                if not workers:
                    Y = zarr.open_array(str(path), mode="r")[:]
                    start = time.perf_counter()
                    local = _estimator(args.folds).fit(X, Y)
                    times[label].append(time.perf_counter() - start)
                    del Y
                    print(f"{label:<24}{times[label][-1]:9.2f}")
                    continue
                model, seconds, started = _cluster_fit(X, path, args.folds, workers, threads)
                times[label].append(seconds)
                equal = float(np.mean(model.best_alphas_ == local.best_alphas_))
                diff = float(np.abs(model.coef_ - local.coef_).max()) / float(np.abs(local.coef_).max())
                ratio = seconds / times["in-process"][-1]
                print(f"{label:<24}{seconds:9.2f}{ratio:8.2f}{equal:14.4f}{diff:15.1e}{started:17.1f}")
        medians = {label: statistics.median(t) for label, t in times.items()}
        print(
            "median" + "".join(f"; {label} {t:.2f} s ({t / medians['in-process']:.2f})" for label, t in medians.items())
        )
        print("target: ratio <= 1.15 (the issue's bound for the Dask runs on 2 cores)")
        return medians
    finally:
        if holder is not None:
            holder.cleanup()


def _measure(args: argparse.Namespace) -> dict[str, float]:
    """X-side seconds (client), per-block seconds at two widths (1 BLAS thread) and the bytes a fit moves."""
    from threadpoolctl import threadpool_limits

    n, p, v = args.samples, args.features, args.voxels
    folder, holder = _workdir(args)
    try:
        path = folder / "y.zarr"
        width = _chunk_width(args)
        X = make_data(n, p, v, path, width)
        estimator = _estimator(args.folds)
        x_sides = []
        for _ in range(2):  # the faster of two: the machine may be shared
            start = time.perf_counter()
            prepared = prepare(X, np.dtype(np.float32), folds=estimator._folds(X, None, None),
                               **estimator._cv_arguments(p))  # fmt: skip
            prepared.shared = share_factors(prepared)
            x_sides.append(time.perf_counter() - start)
        x_side = min(x_sides)
        factor_bytes = len(pickle.dumps(for_tasks(prepared), protocol=5))  # what is broadcast
        Y = zarr.open_array(str(path), mode="r")
        widths = sorted({max(1, width // 4), width})
        per_block, result_bytes_per_column = {}, 0.0
        with threadpool_limits(limits=1):
            for w in widths:
                runs = []
                for repeat in range(2):
                    cols = slice(repeat * w % max(v - w, 1), repeat * w % max(v - w, 1) + w)
                    block = Y[:, cols]  # read apart: the model charges reading to the bandwidths
                    start = time.perf_counter()
                    result = chunked._fit_block(prepared, block, cols, 1, None)
                    runs.append(time.perf_counter() - start)
                per_block[w] = min(runs)
                result_bytes_per_column = sum(a.nbytes for a in result.values()) / w
        (w1, t1), (w2, t2) = sorted(per_block.items())[0], sorted(per_block.items())[-1]
        per_column = (t2 - t1) / (w2 - w1) if w2 > w1 else t2 / w2
        fixed = max(0.0, t2 - per_column * w2)
        return {
            "n": n, "p": p, "v": v, "x_side": x_side, "factor_bytes": factor_bytes, "fixed": fixed,
            "per_column": per_column, "y_bytes_per_column": n * 4, "result_bytes_per_column": result_bytes_per_column,
            "width": width, "X": X, "path": path, "holder": holder,
        }  # fmt: skip
    except BaseException:
        if holder is not None:
            holder.cleanup()
        raise


def predict(m: dict[str, float], workers: int, cores: int, voxels: int, args: argparse.Namespace) -> dict[str, float]:
    """The model's wall time (s) for ``workers`` x ``cores`` Dask threads (see docs/scaling.md)."""
    slots = workers * cores
    width = min(max(128, math.ceil(voxels / (2 * slots))), 4096)
    tasks = math.ceil(voxels / width)
    bw, storage = args.model_bandwidth * GB, args.model_storage_bandwidth * GB
    broadcast = m["factor_bytes"] / bw * (1 + 2 * math.ceil(math.log(max(workers, 1), 3)))
    read = width * m["y_bytes_per_column"] / min(bw / cores, storage / min(slots, tasks))
    task = m["fixed"] + m["per_column"] * width + args.model_task_overhead + read
    compute = math.ceil(tasks / slots) * task
    results = voxels * m["result_bytes_per_column"] / bw  # all results through the client's link
    scheduling = tasks * args.model_scheduler_overhead
    total = m["x_side"] + broadcast + max(compute, results, scheduling)
    return {"width": width, "tasks": tasks, "broadcast": broadcast, "compute": compute, "results": results,
            "scheduling": scheduling, "total": total}  # fmt: skip


def bench_model(args: argparse.Namespace) -> dict[tuple[float, int], float]:
    """Measure the model's inputs here and predict the wall time for ``args.model_workers``.

    One table for the X-side time measured here and one for each ``--model-x-side`` (the
    client's X side in seconds, e.g. a many-core client's); returns {(X side s, workers): s}.
    """
    m = _measure(args)
    try:
        voxels = args.model_voxels or m["v"]
        y_side = voxels * m["per_column"] + math.ceil(voxels / m["width"]) * m["fixed"]
        print(f"measured at n={m['n']} p={m['p']} v={m['v']}: X side {m['x_side']:.2f} s (client, all its cores), "
              f"X-side factors {m['factor_bytes'] / 1e6:.1f} MB, per block {m['fixed'] * 1e3:.1f} ms + "
              f"{m['per_column'] * 1e3:.3f} ms/column (1 BLAS thread), "
              f"Y {m['y_bytes_per_column'] / 1e3:.1f} kB/column, "
              f"results {m['result_bytes_per_column']:.0f} B/column")  # fmt: skip
        print(f"model: {voxels} targets (Y side {y_side:.1f} s on one core); {args.model_cores} cores/worker; "
              f"network {args.model_bandwidth} GB/s; storage {args.model_storage_bandwidth} GB/s; "
              f"{args.model_task_overhead * 1e3:.0f} ms/task on a worker, "
              f"{args.model_scheduler_overhead * 1e3:.1f} ms/task on the scheduler")  # fmt: skip
        out = {}
        for x_side in [m["x_side"], *args.model_x_side]:
            serial = x_side + y_side
            print(f"X side {x_side:.2f} s{' (measured here)' if x_side == m['x_side'] else ''}; "
                  f"X side + Y side on one core: {serial:.1f} s")  # fmt: skip
            print(f"{'workers':>8}{'cores':>7}{'block':>7}{'tasks':>7}{'bcast s':>9}{'compute s':>11}"
                  f"{'results s':>11}{'wall s':>9}{'speed-up':>10}{'X side %':>10}")  # fmt: skip
            for workers in args.model_workers:
                r = predict({**m, "x_side": x_side}, workers, args.model_cores, voxels, args)
                cores = workers * args.model_cores
                print(f"{workers:>8}{cores:>7}{r['width']:>7}{r['tasks']:>7}{r['broadcast']:9.2f}{r['compute']:11.2f}"
                      f"{r['results']:11.2f}{r['total']:9.2f}{serial / r['total']:10.1f}"
                      f"{100 * x_side / r['total']:10.0f}")  # fmt: skip
                out[x_side, workers] = r["total"]
        if args.model_validate:
            local = argparse.Namespace(**{**vars(args), "model_bandwidth": 2.0, "model_storage_bandwidth": 2.0})
            r = predict(m, 2, 1, m["v"], local)
            _, seconds, _ = _cluster_fit(m["X"], m["path"], args.folds, 2, 1)
            print(f"check here, 2 workers x 1 thread, v={m['v']}: predicted {r['total']:.2f} s (local links "
                  f"2 GB/s), measured {seconds:.2f} s ({seconds / r['total']:.2f} x the prediction)")  # fmt: skip
        return out
    finally:
        if m["holder"] is not None:
            m["holder"].cleanup()


def main() -> None:
    # benchmarks/distributed.py would shadow the distributed package: this folder goes to the end of sys.path.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here] + [str(here)]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["ridge", "model"], default="ridge")
    add_ridge_arguments(parser)
    add_model_arguments(parser)
    args = parser.parse_args()
    {"ridge": bench_ridge, "model": bench_model}[args.part](args)


if __name__ == "__main__":
    main()
