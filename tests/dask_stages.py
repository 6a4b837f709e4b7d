"""Functions the Dask tests run on workers (tests/test_dask_executor.py, tests/test_distributed_ridge.py).

A module of their own, importing little, so that the Dask workers that unpickle them start fast.
"""

import json
import os
import signal
import time
from pathlib import Path

from scene2brain.pipeline.graph import StageContext


def _executed(ctx: StageContext) -> None:
    """Record one execution of the stage named in its settings (a file per execution, in options['log'])."""
    folder = Path(ctx.options["log"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ctx.settings['name']}.{os.getpid()}.{time.perf_counter_ns()}").touch()


def add_inputs(ctx: StageContext) -> None:
    """value = settings n + the inputs' values; sleeps ``options['sleep']`` seconds (to overlap stages)."""
    _executed(ctx)
    _add(ctx)


def _add(ctx: StageContext) -> None:
    time.sleep(ctx.options.get("sleep", 0))
    total = ctx.settings["n"] + sum(json.loads((ctx.input(r) / "value.json").read_text()) for r in sorted(ctx.inputs))
    (ctx.out / "value.json").write_text(json.dumps(total))
    (ctx.out / "pid").write_text(str(os.getpid()))


def kill_worker(ctx: StageContext) -> None:
    """:func:`add_inputs`, after killing its own worker process: once (options['kill'] == 'once') or every time.

    Never kills the test process itself.
    """
    kill = ctx.options.get("kill")
    marker = Path(ctx.options["log"]) / "killed"
    if kill and os.getpid() != ctx.options["client_pid"] and (kill == "always" or not marker.exists()):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    add_inputs(ctx)


def fail_if_asked(ctx: StageContext) -> None:
    """:func:`add_inputs`, or (recorded as an execution too) a ValueError when settings['fail']."""
    _executed(ctx)
    if ctx.settings.get("fail"):
        raise ValueError("this stage was asked to fail")
    _add(ctx)


def record_threads(ctx: StageContext) -> None:
    """Write the BLAS/OpenMP thread counts (threadpoolctl) and PyTorch's the stage runs with, and when it ran."""
    import torch
    from threadpoolctl import threadpool_info

    _executed(ctx)
    start = time.time()
    found = {"pools": [p["num_threads"] for p in threadpool_info()], "torch": torch.get_num_threads()}
    time.sleep(ctx.options.get("sleep", 0))
    found.update(start=start, end=time.time())
    (ctx.out / "threads.json").write_text(json.dumps(found))


def blas_threads_in_task(limit):
    """The BLAS thread counts a task sees (under ``encoding.distributed``'s limit ``limit``, or none)."""
    from threadpoolctl import threadpool_info

    from scene2brain.encoding.distributed import _blas_limit

    def blas():
        return sorted({info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"})

    if limit is None:
        return blas()
    with _blas_limit(limit):
        return blas()


def environment_variable(name: str) -> str | None:
    """The worker process's own value of an environment variable."""
    return os.environ.get(name)


def imported(module: str) -> bool:
    """Whether the worker process has imported ``module``."""
    import sys

    return module in sys.modules
