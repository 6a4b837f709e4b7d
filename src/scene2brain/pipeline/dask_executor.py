"""The Dask executor: the stages of a :class:`~scene2brain.pipeline.graph.StageGraph` on a ``distributed`` cluster.

:func:`run_dask` walks the same graph as :func:`~scene2brain.pipeline.executor.run_local` and
ships :func:`~scene2brain.pipeline.executor.execute_stage` to the workers, one task per stage:

- a stage is submitted once every stage it reads is finished, so independent stages
  (subjects, feature spaces, layers, encoders, analyses) run in parallel; at most as many
  stages are in flight as the cluster has worker threads, earliest in graph order first;
- stages whose ``stage.json`` holds the current key are skipped, exactly as locally;
- ``checks[id]()`` runs on the client once stage ``id`` and every stage before it in graph
  order are finished, and no stage after ``id`` starts before its check has passed: checks
  see what they would see in a local run, in the same order;
- a failed run changes nothing, as locally: the stages still in flight are waited for, the
  finished stages this run recomputed are put back, and a :class:`StageError` naming the
  stage is raised (stages it computed for the first time are kept: a rerun resumes). An
  interrupted run (Ctrl-C) cancels the stages in flight; on a cluster that is not the
  run's own, a stage already running may still finish and write its complete result;
- a worker killed while it computes a stage (by the operating system, out of memory, a lost
  node) costs only that stage: the scheduler runs it again on another worker (up to its
  ``distributed.scheduler.allowed-failures``), and stages raising an error are retried
  ``retries`` times (transient file-system errors).

Stages communicate through the results folder, so every worker must see it (and the
feature store) at the same path: a shared file system, or an object store for the feature
store. Each task runs with one BLAS/OpenMP thread (and one PyTorch thread) per Dask thread,
so that workers x threads never oversubscribe the cores; a stage marked
:data:`~scene2brain.pipeline.graph.WHOLE_WORKER` (a network's feature extraction) reserves
every core of its worker through the worker resource ``cores`` and uses them all, as it
would in a local run. A local cluster's workers advertise ``cores`` (one per thread);
workers started by hand do with ``dask worker --nthreads 8 --resources cores=8``, and
without it every stage runs with one thread. A local cluster's workers keep glibc's own
``MALLOC_TRIM_THRESHOLD_`` (the nanny's 65536 made a network's extraction a third slower);
for workers started by hand, set ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_:
null`` in a Dask configuration file (an environment variable cannot: Dask lower-cases its
keys), or start them with ``--no-nanny``.

Dask is an optional dependency (``pip install "scene2brain[dask]"``): it is imported by the
functions that need it. A Python script that starts a local cluster (``run_config(config,
executor="dask")``) must guard its work with ``if __name__ == "__main__":``: the worker
processes re-import the main module.

Examples
--------
A SLURM cluster through dask-jobqueue (``pip install "scene2brain[slurm]"``), one worker
process of a thread per core (its cores advertised for whole-worker stages), in Python::

    from dask_jobqueue import SLURMCluster
    from distributed import Client

    cluster = SLURMCluster(
        cores=8, processes=1, memory="32GB", walltime="04:00:00", worker_extra_args=["--resources", "cores=8"]
    )
    cluster.scale(jobs=4)  # four nodes, one 8-thread worker each
    with Client(cluster) as client:
        run_config(load_config("study.toml"), executor="dask", client=client)

or from the shell, with a scheduler on the login node and workers in batch jobs::

    dask scheduler --scheduler-file ~/scheduler.json &
    sbatch --array=1-4 --cpus-per-task=8 --mem=32G \\
        --wrap 'dask worker --scheduler-file ~/scheduler.json --nworkers 1 --nthreads 8 \\
                --resources cores=8 --memory-limit 30GB'
    scene2brain run study.toml --executor dask --scheduler tcp://LOGIN-NODE:8786

The results folder and the feature store (``run.cache``) must be on a file system that
every node mounts at the same path.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scene2brain.pipeline.executor import (
    StageReport,
    execute_stage,
    input_folders,
    read_stage_record,
    restore_folders,
    set_aside,
    stage_folders,
)
from scene2brain.pipeline.graph import WHOLE_WORKER, Ref, Runtime, Stage, StageGraph, StageId
from scene2brain.utils.files import TEMPORARY

EXTRA = 'pip install "scene2brain[dask]"'
#: The worker resource that counts a worker's cores (a local cluster's workers have one per thread).
CORES = "cores"

#: the module whose import brings in every stage function of a run (and PyTorch, scikit-learn, ...)
STAGE_MODULES = ("scene2brain.pipeline.run",)


class DaskSetupError(ValueError):
    """A Dask executor that cannot start: an option out of range, contradictory options, an unreachable scheduler."""


class StageError(RuntimeError):
    """A stage that failed on a Dask worker; the message names it, ``__cause__`` is the worker's error.

    Attributes
    ----------
    stage : str
        The stage's name (``encode/sim01/effnet:head``).
    """

    def __init__(self, message: str, stage: str):
        super().__init__(message)
        self.stage = stage


def require_distributed() -> Any:
    """The ``distributed`` module, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            f"the Dask executor needs dask.distributed, which is not installed; install it with: {EXTRA}"
        ) from err
    return distributed


@dataclass(frozen=True)
class DaskOptions:
    """How to get a Dask cluster for a run: a new local one, or an existing scheduler.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running ``distributed`` scheduler (``tcp://host:8786``; dask-jobqueue and
        dask-kubernetes clusters give theirs as ``cluster.scheduler_address``). Without it a
        ``LocalCluster`` of worker processes is started for the run and closed after it.
    workers : int, optional
        Worker processes of the local cluster (default: the CPU cores divided by
        ``threads_per_worker``). Not with ``scheduler``: that cluster has its own.
    threads_per_worker : int, optional
        Threads of each local worker (each thread computes one stage at a time, with one BLAS
        thread; a whole-worker stage uses them all). Default: one when ``workers`` is given,
        else a thread per core in one worker, so that a network's extraction uses every core.
    memory_limit : str or int
        Memory limit of each local worker (``"4GB"``, bytes, ``"auto"``: the machine's memory
        shared equally, 0: none). A worker over it is restarted and its stage computed again.
    retries : int
        How many times a stage that raised an error is tried again before the run fails
        (a stage whose worker died is computed again anyway, see the module docstring).
    timeout : float
        Seconds to wait for ``scheduler`` to answer.
    dashboard_address : str or None
        Where the local cluster serves its dashboard (``":8787"``; ``":0"``: any free port;
        None: no dashboard). The dashboard needs the ``bokeh`` package.
    """

    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int | None = None
    memory_limit: str | int = "auto"
    retries: int = 1
    timeout: float = 30.0
    dashboard_address: str | None = ":8787"

    def __post_init__(self) -> None:
        for name in ("workers", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise DaskSetupError(f"{_option(name)}: expected a whole number of at least 1, got {value!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise DaskSetupError(f"{_option('retries')}: expected a whole number of at least 0, got {self.retries!r}")
        if not self.timeout > 0:
            raise DaskSetupError(f"{_option('timeout')}: expected a number of seconds above 0, got {self.timeout!r}")
        if self.scheduler is not None:
            if not isinstance(self.scheduler, str) or not self.scheduler.strip():
                raise DaskSetupError(
                    f"{_option('scheduler')}: expected a scheduler address such as tcp://host:8786, "
                    f"got {self.scheduler!r}"
                )
            if self.workers is not None:
                raise DaskSetupError(
                    f"{_option('workers')} {self.workers} with {_option('scheduler')} {self.scheduler}: the workers of "
                    "an existing cluster are its own; give --workers to start a local cluster, or --scheduler to "
                    "use a running one, not both"
                )
        self.memory_bytes()  # validated now, not when the cluster starts

    def memory_bytes(self) -> int | None:
        """``memory_limit`` in bytes (None for ``"auto"``, 0 for no limit); a clear error if it is not a size."""
        value = self.memory_limit
        if isinstance(value, str) and value.strip().lower() == "auto":
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str):
            try:
                from dask.utils import parse_bytes
            except ImportError:  # checked again, with the install hint, when the cluster starts
                return None
            try:
                parsed = parse_bytes(value)
            except (ValueError, TypeError):
                parsed = -1
            if parsed >= 0:
                return int(parsed)
        raise DaskSetupError(
            f"{_option('memory_limit')}: expected a size such as 4GB or 500MB, 'auto' or 0 (no limit), got {value!r}"
        )


def _option(name: str) -> str:
    return f"{name} (--{name.replace('_', '-')})"


@contextlib.contextmanager
def dask_client(options: DaskOptions) -> Iterator[Any]:
    """A ``distributed.Client`` for ``options``: of its scheduler, or of a local cluster started and closed here."""
    distributed = require_distributed()
    if options.scheduler is not None:
        try:
            client = distributed.Client(options.scheduler, timeout=options.timeout)
        except (OSError, TimeoutError, ValueError) as err:
            raise DaskSetupError(
                f"{_option('scheduler')}: no Dask scheduler answered at {options.scheduler} within "
                f"{options.timeout:g} s ({type(err).__name__}: {err}); expected the address of a running "
                "distributed scheduler, such as tcp://host:8786"
            ) from err
        with client:
            yield client
        return
    import logging

    memory = options.memory_bytes()
    cores = os.cpu_count() or 1
    threads = options.threads_per_worker or (1 if options.workers else cores)
    with _worker_environment():
        cluster = distributed.LocalCluster(
            n_workers=options.workers or max(1, cores // threads),
            threads_per_worker=threads,
            memory_limit="auto" if memory is None else memory,
            processes=True,
            resources={CORES: threads},
            # imported as each worker starts, before it takes tasks (seconds: PyTorch, scikit-learn, ...),
            # rather than in its first stage
            preload=list(STAGE_MODULES),
            dashboard_address=options.dashboard_address,
            silence_logs=logging.ERROR,
        )
    with cluster, distributed.Client(cluster) as client:
        yield client


_TRIM = "MALLOC_TRIM_THRESHOLD_"


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """Start local workers with glibc's own malloc trimming, and leave this process's environment as it was.

    A nanny sets its ``pre-spawn-environ`` variables in the parent's ``os.environ`` before it
    spawns a worker (and never removes them), so that a value leaked by an earlier cluster
    reaches every later worker. Its ``MALLOC_TRIM_THRESHOLD_=65536`` turns off glibc's dynamic
    mmap threshold, and every freed tensor goes back to the system: a network's extraction ran
    a third slower in such a worker (measured). A value the user set, other than the nanny's, is
    kept.
    """
    import dask

    saved = dict(os.environ)
    nanny_value = str(dask.config.get(f"distributed.nanny.pre-spawn-environ.{_TRIM}", 65536))
    if os.environ.get(_TRIM) == nanny_value:
        del os.environ[_TRIM]
    try:
        with dask.config.set({f"distributed.nanny.pre-spawn-environ.{_TRIM}": None}):
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def describe_client(client: Any) -> str:
    """One line about a client's cluster: scheduler, workers x threads, dashboard address (or why there is none)."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    port = info.get("services", {}).get("dashboard")
    if port is not None:
        link = client.dashboard_link
        dashboard = f"dashboard: {link}"
    else:
        dashboard = "no dashboard (it needs the bokeh package: pip install bokeh)"
    return f"Dask cluster at {client.scheduler.address}: {len(workers)} workers, {threads} threads; {dashboard}"


def _torch_threads(n: int) -> None:
    """Let PyTorch use ``n`` threads (BLAS and OpenMP are limited by threadpoolctl around the stage).

    PyTorch is imported for ``n > 1`` (a whole-worker stage runs a network): imported later by
    the stage, it would read the one thread of the worker's ``OMP_NUM_THREADS``.
    """
    torch = sys.modules.get("torch")
    if torch is None and n > 1:
        import torch
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def execute_on_worker(
    stage: Stage,
    key: str,
    folder: Path,
    inputs: Mapping[Hashable, Path],
    runtime: Runtime,
    input_keys: Mapping,
    threads: int = 1,
) -> float:
    """:func:`~scene2brain.pipeline.executor.execute_stage` with ``threads`` BLAS, OpenMP and PyTorch threads.

    A worker runs as many stages at once as it has threads, each with one thread, except a
    :data:`~scene2brain.pipeline.graph.WHOLE_WORKER` stage, which holds all of the worker's
    ``cores`` (see :func:`run_dask`) and uses that many. PyTorch's thread count is process-wide:
    it is set before the stage (see :func:`_torch_threads`) and back to one after it (worker
    processes run nothing else).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        try:
            _torch_threads(threads)
            return execute_stage(stage, key, folder, inputs, runtime, input_keys)
        finally:
            _torch_threads(1)


def _worker_cores(client: Any) -> int | None:
    """The cores a :data:`~scene2brain.pipeline.graph.WHOLE_WORKER` stage may hold: the fewest of any worker.

    None when some worker does not advertise its ``cores`` resource (a cluster started
    without ``--resources cores=N``): then every stage runs with one thread, unreserved.
    """
    workers = client.scheduler_info().get("workers", {}).values()
    cores = [w.get("resources", {}).get(CORES) for w in workers]
    if not cores or any(c is None for c in cores):
        return None
    return max(1, int(min(cores)))


def worker_runtime(runtime: Runtime) -> Runtime:
    """What the workers get of ``runtime``: the feature store; progress output stays on the client."""
    import cloudpickle

    try:
        cloudpickle.dumps(runtime.store)
    except Exception as err:
        raise TypeError(
            f"the feature store {runtime.store!r} cannot be sent to Dask workers ({type(err).__name__}: {err}); "
            "expected a store that pickles (scene2brain.features.store.FeatureStore does)"
        ) from err
    return Runtime(store=runtime.store, progress=False, log=None)


def _stage_error(stage_id: StageId, future: Any, distributed: Any) -> StageError:
    """The error of a stage whose future erred or was cancelled, naming the stage (``__cause__``: the worker's)."""
    if future.status == "cancelled":
        return StageError(
            f"stage {stage_id} was cancelled by the Dask scheduler (lost connection to it, or it shut down); "
            "finished stages are kept: rerun to resume",
            str(stage_id),
        )
    err = future.exception()
    traceback = future.traceback()
    if traceback is not None:
        err = err.with_traceback(traceback)
    if isinstance(err, distributed.KilledWorker):
        message = (
            f"stage {stage_id}: the Dask workers computing it died ({err}); a worker is killed when it exceeds "
            "its memory limit (--memory-limit) or by the system; finished stages are kept: rerun to resume"
        )
    else:
        message = f"stage {stage_id} failed on a Dask worker: {type(err).__name__}: {err}"
    error = StageError(message, str(stage_id))
    error.__cause__ = err
    return error


def _remove_leftovers(folder: Path) -> None:
    """Remove what a killed worker left while it computed the stage of ``folder`` (its temporary folder).

    Only that stage's own temporaries (``.<name>.XXXX.tmp``, ``.<name>.old-<pid>``): no other writer
    makes them while the stage is finished and the run holds the results folder.
    """
    for entry in folder.parent.glob(f".{glob.escape(folder.name)}.*"):
        if TEMPORARY.match(entry.name) and entry.name.startswith(f".{folder.name}."):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _inputs_finished(stage: Stage, finished: set[StageId]) -> bool:
    return all(ref.stage in finished for ref in stage.inputs.values())


def run_dask(
    graph: StageGraph,
    root: str | Path,
    runtime: Runtime | None = None,
    checks: Mapping[StageId, Callable[[], None]] | None = None,
    *,
    client: Any,
    retries: int = 1,
) -> StageReport:
    """Compute, on the Dask cluster of ``client``, every stage whose result is missing or outdated.

    Same arguments, results and failure semantics as
    :func:`~scene2brain.pipeline.executor.run_local` (see the module docstring for the order
    in which stages and checks run); ``report.computed`` lists the computed stages in graph
    order, ``report.seconds`` the seconds each took on its worker.

    Parameters
    ----------
    graph : StageGraph
    root : path
        The results folder; every worker must see it at this path.
    runtime : Runtime, optional
        Its store goes to the workers (it must pickle); its ``log`` (on the client) gets a line
        per stage started and finished.
    checks : mapping of StageId to callable, optional
        Run on the client; see the module docstring.
    client : distributed.Client
    retries : int
        Times a stage that raised an error is tried again before the run fails.

    Raises
    ------
    StageError
        A stage failed on a worker (its error is the ``__cause__``) or its workers died too often.
    """
    distributed = require_distributed()
    root = Path(root)
    runtime = runtime or Runtime()
    checks = dict(checks or {})
    log = runtime.log or (lambda line: None)
    keys = graph.keys()
    folders = stage_folders(graph, root)
    report = StageReport(
        keys={str(s.id): keys[Ref(s.id)] for s in graph}, folders={str(i): f for i, f in folders.items()}
    )
    order = graph.ids()
    position = {stage_id: i for i, stage_id in enumerate(order)}
    finished: set[StageId] = set()
    pending: list[StageId] = []  # to compute, in graph order
    for stage in graph:
        record = read_stage_record(folders[stage.id])
        if record is not None and record.get("key") == keys[Ref(stage.id)]:
            report.skipped.append(str(stage.id))
            finished.add(stage.id)
        else:
            pending.append(stage.id)
    shipped = worker_runtime(runtime) if pending else runtime
    unchecked = [stage_id for stage_id in order if stage_id in checks]  # in graph order
    prefix = 0  # order[:prefix] are all finished
    n_compute = len(pending)
    running: dict[Any, StageId] = {}
    backups: list[tuple[Path, Path]] = []
    failure: StageError | None = None
    if pending and not client.nthreads():
        log(f"  the cluster at {client.scheduler.address} has no workers yet: waiting for some to join")
    cores = _worker_cores(client) if pending else None
    try:
        while True:
            while prefix < len(order) and order[prefix] in finished:
                prefix += 1
            while unchecked and position[unchecked[0]] < prefix:  # the stage and every one before it are done
                checks[unchecked.pop(0)]()
            barrier = position[unchecked[0]] if unchecked else len(order)
            room = max(1, sum(client.nthreads().values())) - len(running)
            if failure is None and room > 0:
                ready = [
                    stage_id
                    for stage_id in pending
                    if position[stage_id] <= barrier and _inputs_finished(graph[stage_id], finished)
                ][:room]
                for stage_id in ready:
                    pending.remove(stage_id)
                    stage = graph[stage_id]
                    key = keys[Ref(stage_id)]
                    folder = folders[stage_id]
                    backup = set_aside(folder)
                    if backup is not None:
                        backups.append((folder, backup))
                    input_keys = {role: keys[ref] for role, ref in stage.inputs.items()}
                    log(f"  computing {stage_id}")
                    threads = cores if cores is not None and stage.options.get(WHOLE_WORKER) else 1
                    future = client.submit(
                        execute_on_worker,
                        stage,
                        key,
                        folder,
                        input_folders(stage, folders),
                        shipped,
                        input_keys,
                        threads,
                        key=f"{stage_id.kind}-{stage_id}-{uuid.uuid4().hex[:8]}",
                        pure=False,
                        retries=retries,
                        priority=len(order) - position[stage_id],
                        resources=None if cores is None else {CORES: threads},
                    )
                    running[future] = stage_id
            if not running:
                if failure is not None:
                    raise failure
                if pending:  # cannot happen in a graph whose inputs come before their readers
                    raise RuntimeError(f"stages {[str(s) for s in pending]} wait for stages that never finish")
                break
            done, _ = distributed.wait(list(running), return_when="FIRST_COMPLETED")
            for future in done:
                stage_id = running.pop(future)
                if future.status != "finished":
                    log(f"  failed {stage_id}")
                    failure = failure or _stage_error(stage_id, future, distributed)
                else:
                    seconds = future.result()
                    finished.add(stage_id)
                    report.seconds[str(stage_id)] = seconds
                    log(f"  finished {stage_id} in {seconds:.1f} s [{len(report.seconds)}/{n_compute}]")
                # forget it on the cluster: the scheduler recomputes a held result lost with its worker, and a
                # stage's result is its folder, not the number its task returned
                future.release()
            del done, future
            # after a failure nothing more is submitted; the loop waits for the stages in flight, so that
            # none of them writes after the finished stages are put back
    except BaseException:
        if running:  # an interrupt, or the scheduler lost: stop what has not started
            with contextlib.suppress(Exception):
                client.cancel(list(running))
        restore_folders(backups)
        raise
    for _, backup in backups:
        shutil.rmtree(backup, ignore_errors=True)
    for stage_id in order:
        if str(stage_id) in report.seconds:
            _remove_leftovers(folders[stage_id])
    report.computed = [str(s) for s in order if str(s) in report.seconds]  # graph order, as locally
    report.seconds = {name: report.seconds[name] for name in report.computed}
    return report
