"""scene2brain on Dask: the executor and the voxel-chunked fits against in-process runs.

Parts (``--part``; ``all`` runs every one, in this order):

- ``study``: a simulated study of 8 subjects x 3 feature spaces (Gabor energies, two
  EfficientNet-Lite0 layers), run with the local executor and with the Dask executor on
  ``scene2brain run``'s default ``LocalCluster`` (one worker with a thread per core; the
  network's extraction holds both), each in a fresh results folder with a fresh
  feature store, one run each. Prints the wall time of each run (the Dask run's with and
  without starting the cluster), their ratio, and the largest relative difference per
  stored table: the local run uses every core's BLAS threads and the Dask tasks one each,
  which changes the last bits of float32 sums (relative to a column's largest value, ~1e-7).
  With one thread per Dask worker (``--study-threads 1``) the local executor then runs once
  more with one BLAS and PyTorch thread, as every Dask task has: its tables must hold the
  same bytes as the Dask run's (``--study-no-exact`` skips it).
- ``ridge``: subj01-size voxelwise ridge (n = 8,857, p = 1,000, v = 39,548; ``--voxels`` for
  fewer) in process, on 1 worker x 2 threads and on 2 workers x 1 thread, Y in a zarr store
  that each task reads its own columns from (``_distributed_ridge.py``).
- ``model``: a scaling model from the measured per-chunk compute time and the bytes each
  task moves, predicting the wall time on 8, 32 and 128 workers (``docs/scaling.md``).

Usage::

    python benchmarks/distributed.py --part study
    python benchmarks/distributed.py --part study --study-stimuli 120 --study-voxels 200   # a quick check
    python benchmarks/distributed.py --part study --study-workers 4 --study-threads 1
    python benchmarks/distributed.py --part ridge                  # full size (~3 min)
    python benchmarks/distributed.py --part ridge --voxels 8000 --repeat 2
    python benchmarks/distributed.py --part model --voxels 8000 --model-voxels 39548

The script must run as ``__main__`` (Dask's worker processes re-import the main module); it
moves its own folder to the end of ``sys.path``, where ``import distributed`` does not find it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

from scene2brain.pipeline.config import GROUND_TRUTH_CHECKS, RunConfig, load_config
from scene2brain.pipeline.run import run_config

# -- part "study": the local and the Dask executor on one simulated study --------------------------------------------


def study_config(folder: Path, subjects: int, stimuli: int, voxels: int) -> RunConfig:
    """``folder/study.toml``: ``subjects`` simulated subjects x 3 feature spaces; results in ``folder/results``."""
    data = {
        "run": {"name": "dask-study", "output": str(folder / "results"), "cache": str(folder / "cache")},
        "dataset": {
            "name": "simulated",
            "subjects": list(range(1, subjects + 1)),
            # a benchmark of the executors, not of the simulation: its checks are off
            "simulation": {
                "n_stimuli": stimuli,
                "n_voxels": voxels,
                "image_size": 64,
                "skip_checks": list(GROUND_TRUTH_CHECKS),
            },
        },
        "features": [
            {"name": "gabor", "model": "gabor", "options": {"image_size": 32}, "reduction": "standardise"},
            {
                "name": "effnet",
                "model": "efficientnet-lite0",
                "layers": ["_blocks.2", "head"],
                "reduction": {"method": "pca", "n_components": 32},
            },
        ],
        "encoder": {"alphas": [1.0, 10.0, 100.0, 1000.0, 10000.0], "cv": 5},
        "evaluation": {"n_bootstraps": 200, "identification": True, "identification_voxels": min(voxels, 200)},
        "report": {"enabled": False},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.toml"
    path.write_text(tomli_w.dumps(data))
    return load_config(path)


def table_differences(a: Path, b: Path) -> dict[str, tuple[float, float]]:
    """Largest difference of the numbers of each parquet table of two tables folders (inf: not comparable).

    Two measures per table: relative to each number (``|x - y| / max(|x|, |y|)``, large for numbers
    near zero) and relative to the largest magnitude in the number's column. Non-numeric columns,
    shapes and column names must be equal.
    """
    found: dict[str, tuple[float, float]] = {}
    for path in sorted(a.glob("*.parquet")):
        x, y = pd.read_parquet(path), pd.read_parquet(b / path.name)
        if x.shape != y.shape or list(x.columns) != list(y.columns):
            found[path.stem] = (float("inf"), float("inf"))
            continue
        each = column = 0.0
        for name in x.columns:
            p, q = x[name].to_numpy(), y[name].to_numpy()
            if p.dtype.kind in "fc" and q.dtype.kind in "fc":
                if not np.array_equal(np.isnan(p), np.isnan(q)):
                    each = column = float("inf")
                    continue
                ok = ~np.isnan(p)
                diff = np.abs(p[ok] - q[ok])
                scale = np.maximum(np.abs(p[ok]), np.abs(q[ok]))
                each = max(each, float((diff / np.where(scale > 0, scale, 1.0)).max(initial=0.0)))
                column = max(column, float(diff.max(initial=0.0) / max(scale.max(initial=0.0), 1e-300)))
            elif not x[name].equals(y[name]):
                each = column = float("inf")
        found[path.stem] = (each, column)
    return found


def _local_run(config: RunConfig, one_thread: bool) -> tuple[Any, float]:
    """Run ``config`` with the local executor (with one BLAS and PyTorch thread if ``one_thread``); result, seconds."""
    import contextlib

    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    start = time.perf_counter()
    try:
        with threadpool_limits(limits=1) if one_thread else contextlib.nullcontext():
            if one_thread:
                torch.set_num_threads(1)
            result = run_config(config, progress=False)
    finally:
        torch.set_num_threads(threads)
    return result, time.perf_counter() - start


def same_files(a: Path, b: Path) -> list[str]:
    """Names of the files of two tables folders whose bytes differ (timings in stage.json left out)."""
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    return [
        n
        for n in names
        if n != "stage.json"
        and (not (a / n).is_file() or not (b / n).is_file() or (a / n).read_bytes() != (b / n).read_bytes())
    ]


def bench_study(args: argparse.Namespace) -> dict[str, float]:
    """The study with the local and with the Dask executor; prints and returns the wall times and their ratio.

    Then, unless ``--study-no-exact``, the local executor once more with one BLAS and PyTorch thread
    (as each Dask task has): its tables must hold the same bytes as the Dask run's.
    """
    from scene2brain.pipeline.dask_executor import DaskOptions, dask_client, describe_client

    workdir = Path(args.study_workdir or tempfile.mkdtemp(prefix="scene2brain-dask-study-"))
    size = f"{args.study_subjects} simulated subjects x 3 feature spaces, {args.study_stimuli} stimuli"
    print(f"study: {size}, {args.study_voxels} voxels (in {workdir})", flush=True)
    exact = not args.study_no_exact and args.study_threads == 1
    names = ["local", "dask"] + (["local-1-thread"] if exact else [])
    names += [] if args.study_no_cli else ["cli-local", "cli-dask"]
    configs = {n: study_config(workdir / n, args.study_subjects, args.study_stimuli, args.study_voxels) for n in names}
    for config in configs.values():
        if Path(config.run.output).exists():
            raise FileExistsError(f"--study-workdir: {config.run.output} exists; expected a fresh folder for each run")

    local, local_seconds = _local_run(configs["local"], one_thread=False)
    print(
        f"  local executor: {local_seconds:.1f} s ({len(local.computed)} stages; stage seconds summed "
        f"{sum(local.stages.seconds.values()):.1f} s)",
        flush=True,
    )
    options = DaskOptions(
        workers=args.study_workers, threads_per_worker=args.study_threads, dashboard_address=":0", retries=0
    )
    start = time.perf_counter()
    with dask_client(options) as client:
        client.wait_for_workers(args.study_workers)
        startup = time.perf_counter() - start
        print(f"  {describe_client(client)} (started in {startup:.1f} s)", flush=True)
        run_start = time.perf_counter()
        dask = run_config(configs["dask"], progress=False, executor="dask", client=client)
        run_seconds = time.perf_counter() - run_start
    dask_seconds = time.perf_counter() - start
    if dask.computed != local.computed:
        raise RuntimeError(f"the executors computed different stages: {local.computed} != {dask.computed}")
    print(
        f"  dask executor ({args.study_workers} workers x {args.study_threads} thread): {run_seconds:.1f} s run, "
        f"{dask_seconds:.1f} s with the cluster's start (stage seconds summed over the workers "
        f"{sum(dask.stages.seconds.values()):.1f} s)",
        flush=True,
    )
    ratio, ratio_total = run_seconds / local_seconds, dask_seconds / local_seconds
    print(f"  ratio dask / local: {ratio:.2f} (run), {ratio_total:.2f} (with the cluster's start)", flush=True)
    differences = table_differences(local.layout.tables, dask.layout.tables)
    worst = max(each for each, _ in differences.values())
    worst_column = max(column for _, column in differences.values())
    print(
        "  tables, local (every core's BLAS threads) vs dask (one per task): largest difference "
        f"{worst:.1e} relative to each number, {worst_column:.1e} relative to its column's largest",
        flush=True,
    )
    for name, (each, column) in differences.items():
        print(f"    {name}: {each:.1e}, {column:.1e}")
    found = {
        "local_s": local_seconds,
        "dask_run_s": run_seconds,
        "dask_total_s": dask_seconds,
        "ratio_run": ratio,
        "ratio_total": ratio_total,
        "largest_relative_difference": worst,
        "largest_column_relative_difference": worst_column,
    }
    if exact:
        one, exact_seconds = _local_run(configs["local-1-thread"], one_thread=True)
        differ = same_files(one.layout.tables, dask.layout.tables)
        print(
            f"  local executor with one BLAS and PyTorch thread: {exact_seconds:.1f} s; its tables and the dask "
            f"run's: {'the same bytes' if not differ else 'DIFFERENT: ' + ', '.join(differ)}",
            flush=True,
        )
        if differ:
            raise RuntimeError(f"the Dask run's tables differ from the local run's at equal thread counts: {differ}")
        found["local_one_thread_s"] = exact_seconds
    if not args.study_no_cli:
        found.update(_cli_runs(configs["cli-local"], configs["cli-dask"], args.study_workers, args.study_threads))
    return found


def _cli_runs(local: RunConfig, dask: RunConfig, workers: int, threads: int) -> dict[str, float]:
    """``scene2brain run`` with each executor in a fresh process: wall times with everything a user waits for.

    Interpreter start, imports and (for Dask) the cluster's start and close are included; the Dask
    worker processes re-import only the command-line module, not this script.
    """
    import subprocess

    def timed(config: RunConfig, *extra: str) -> float:
        toml = Path(config.run.output).parent / "study.toml"  # written by study_config
        command = [sys.executable, "-m", "scene2brain", "run", str(toml), "--quiet", *extra]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start

    local_seconds = timed(local)
    dask_seconds = timed(dask, "--executor", "dask", "--workers", str(workers), "--threads-per-worker", str(threads))
    ratio = dask_seconds / local_seconds
    print(
        f"  scene2brain run in a fresh process (interpreter, imports, cluster start and close included): local "
        f"{local_seconds:.1f} s, dask {dask_seconds:.1f} s; ratio {ratio:.2f}",
        flush=True,
    )
    return {"cli_local_s": local_seconds, "cli_dask_s": dask_seconds, "cli_ratio": ratio}


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The study's options, all ``--study-...`` (the other parts have options of the same names)."""
    group = parser.add_argument_group("study")
    group.add_argument("--study-subjects", type=int, default=8, help="simulated subjects (default 8)")
    group.add_argument("--study-stimuli", type=int, default=240, help="stimuli per subject (default 240)")
    group.add_argument("--study-voxels", type=int, default=500, help="voxels per subject (default 500)")
    cores = os.cpu_count() or 1
    group.add_argument("--study-workers", type=int, default=1, help="Dask workers of the local cluster (default 1)")
    group.add_argument(
        "--study-threads", type=int, default=cores, help=f"threads per Dask worker (default: the cores, {cores})"
    )
    group.add_argument("--study-workdir", type=Path, default=None, help="folder of the runs (default: a temp dir)")
    group.add_argument(
        "--study-no-exact", action="store_true", help="skip the local run with one thread (compared byte for byte)"
    )
    group.add_argument(
        "--study-no-cli", action="store_true", help="skip the two `scene2brain run` commands in fresh processes"
    )


# -- the parts ----------------------------------------------------------------------------------------------------

#: part name -> (function taking the parsed arguments, function adding its arguments to the parser), in run order
PARTS: dict[str, tuple[Callable[[argparse.Namespace], Any], Callable[[argparse.ArgumentParser], None]]] = {
    "study": (bench_study, add_study_arguments),
}


def _register_ridge_parts() -> None:
    """The voxel-chunked ridge parts (``_distributed_ridge.py``, imported once ``distributed`` is the package)."""
    from _distributed_ridge import add_model_arguments, add_ridge_arguments, bench_model, bench_ridge

    PARTS["ridge"] = (bench_ridge, add_ridge_arguments)
    PARTS["model"] = (bench_model, add_model_arguments)


def _installed_packages_first() -> None:
    """Look for modules in this script's folder last: its name is the ``distributed`` package's."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here] + [str(here)]


def main(argv: list[str] | None = None) -> None:
    _installed_packages_first()
    _register_ridge_parts()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all", help="which part to run (default all)")
    for _, add_arguments in PARTS.values():
        add_arguments(parser)
    args = parser.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    for name, (bench, _) in PARTS.items():
        if args.part in (name, "all"):
            bench(args)


if __name__ == "__main__":
    main()
