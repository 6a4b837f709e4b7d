"""The Dask executor: same stages, same results and same failure semantics as the local one, on a real cluster.

Stage functions are in ``dask_stages`` (a light module: the workers import it to run them).
Every cluster here is a real ``distributed.LocalCluster`` of worker processes, closed by its fixture.
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dask_stages import (
    add_inputs,
    environment_variable,
    fail_if_asked,
    imported,
    kill_worker,
    record_threads,
)
from run_fixtures import write_config
from typer.testing import CliRunner

from scene2brain.cli import app
from scene2brain.pipeline.dask_executor import (
    STAGE_MODULES,
    DaskOptions,
    DaskSetupError,
    StageError,
    _worker_cores,
    dask_client,
    describe_client,
    execute_on_worker,
    require_distributed,
    run_dask,
)
from scene2brain.pipeline.executor import run_local
from scene2brain.pipeline.graph import WHOLE_WORKER, Ref, Runtime, Stage, StageGraph, StageId
from scene2brain.pipeline.run import run_config

distributed = pytest.importorskip("distributed")
CLIENT_PID = os.getpid()


@pytest.fixture(scope="module")
def client():
    """Two worker processes with one thread each (the CI machine's two cores)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


# -- helpers --------------------------------------------------------------------------------------------------------


def diamond(log: Path, computes=None, options=None, settings=None) -> StageGraph:
    """a -> (b1, b2) -> c, plus d independent of all: a run has two stages to overlap at each step.

    ``computes``, ``settings``: stage name -> its function (default :func:`add_inputs`), its extra settings.
    """
    options = {"log": str(log), "client_pid": CLIENT_PID, **(options or {})}
    settings = settings or {}
    computes = computes or {}

    def stage(name, n, inputs=()):
        refs = {i: Ref(StageId(i)) for i in inputs}
        function = computes.get(name, add_inputs)
        return Stage(StageId(name), function, {"name": name, "n": n, **settings.get(name, {})}, refs, options=options)

    return StageGraph(
        [stage("a", 1), stage("d", 100), stage("b1", 10, ["a"]), stage("b2", 20, ["a"]), stage("c", 1000, ["b1", "b2"])]
    )


def values(root: Path, graph: StageGraph) -> dict[str, int]:
    return {str(s.id): json.loads((s.id.folder(root) / "value.json").read_text()) for s in graph}


def executions(log: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for path in log.iterdir() if log.is_dir() else []:
        if path.name != "killed":
            found[path.name.split(".")[0]] = found.get(path.name.split(".")[0], 0) + 1
    return found


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- the executor on small graphs --------------------------------------------------------------------------------------


def test_same_stages_and_values_as_local_and_independent_stages_overlap(client, tmp_path):
    local = run_local(diamond(tmp_path / "log-local"), tmp_path / "local")
    lines: list[str] = []
    graph = diamond(tmp_path / "log", options={"sleep": 0.5})
    report = run_dask(graph, tmp_path / "dask", Runtime(log=lines.append), client=client)
    assert values(tmp_path / "dask", graph) == values(tmp_path / "local", graph) == {
        "a": 1, "d": 100, "b1": 11, "b2": 21, "c": 1032
    }  # fmt: skip
    assert report.computed == local.computed == ["a", "d", "b1", "b2", "c"]  # graph order
    assert report.keys == local.keys and list(report.seconds) == report.computed
    assert executions(tmp_path / "log") == {"a": 1, "d": 1, "b1": 1, "b2": 1, "c": 1}
    # a and d, then b1 and b2, ran at the same time on the two workers
    pids = {name: (tmp_path / "dask" / "stages" / name / "pid").read_text() for name in ("a", "d", "b1", "b2")}
    assert pids["a"] != pids["d"] and pids["b1"] != pids["b2"]
    assert sum(report.seconds.values()) > 2.0 and "  finished c" in " ".join(lines)
    again = run_dask(graph, tmp_path / "dask", Runtime(log=lines.append), client=client)
    assert again.computed == [] and again.skipped == local.computed
    # a changed setting recomputes exactly the stage and its dependents, as locally
    changed = diamond(tmp_path / "log", settings={"b2": {"n": 30}})
    assert run_dask(changed, tmp_path / "dask", client=client).computed == ["b2", "c"]
    assert run_local(changed, tmp_path / "local").computed == ["b2", "c"]
    assert values(tmp_path / "dask", changed) == values(tmp_path / "local", changed)


def test_checks_run_on_the_client_in_graph_order_before_later_stages_start(client, tmp_path):
    graph = diamond(tmp_path / "log", options={"sleep": 0.3})
    root = tmp_path / "out"
    seen: list[tuple[str, list[str]]] = []

    def check(name):
        def run():
            # every stage up to this one in graph order is done, and none after it has started
            done = sorted(s.name for s in (root / "stages").iterdir() if (s / "stage.json").is_file())
            seen.append((name, done))

        return run

    checks = {StageId("d"): check("d"), StageId("b2"): check("b2")}
    run_dask(graph, root, checks=checks, client=client)
    assert seen == [("d", ["a", "d"]), ("b2", ["a", "b1", "b2", "d"])]

    def refuse():
        raise ValueError("data check: refused")

    other = tmp_path / "other"
    with pytest.raises(ValueError, match="data check: refused"):
        run_dask(graph, other, checks={StageId("d"): refuse}, client=client)
    assert sorted(p.name for p in (other / "stages").iterdir()) == ["a", "d"]  # nothing after d started
    with pytest.raises(ValueError, match="data check: refused"):
        run_local(graph, tmp_path / "other-local", checks={StageId("d"): refuse})
    assert sorted(p.name for p in (tmp_path / "other-local" / "stages").iterdir()) == ["a", "d"]


def test_a_failing_stage_is_named_and_the_previous_results_are_put_back_as_locally(client, tmp_path):
    roots = {"dask": tmp_path / "dask", "local": tmp_path / "local"}
    first = {name: diamond(tmp_path / f"log-{name}") for name in roots}
    run_dask(first["dask"], roots["dask"], client=client)
    run_local(first["local"], roots["local"])
    before = {name: snapshot(root) for name, root in roots.items()}
    # a changed: every stage is recomputed, then c fails (after b1, b2 and d were recomputed)
    failing = {"a": {"n": 2}, "c": {"fail": True}}
    computes = {"c": fail_if_asked}
    with pytest.raises(StageError, match=r"stage c failed on a Dask worker: ValueError: this stage was asked to fail"):
        run_dask(diamond(tmp_path / "log-dask", computes, settings=failing), roots["dask"], client=client, retries=0)
    with pytest.raises(ValueError, match="this stage was asked to fail"):
        run_local(diamond(tmp_path / "log-local", computes, settings=failing), roots["local"])
    for name, root in roots.items():
        assert snapshot(root) == before[name], name  # every stage as it was, no stage folder moved aside
        assert not list(root.rglob(".*")), name
    assert executions(tmp_path / "log-dask")["b1"] == 2  # it was recomputed, and put back


def test_a_stage_error_is_retried_and_the_cli_names_the_stage(client, tmp_path):
    graph = diamond(tmp_path / "log", {"b1": fail_if_asked}, settings={"b1": {"fail": True}})
    with pytest.raises(StageError) as info:
        run_dask(graph, tmp_path / "out", client=client, retries=2)
    assert info.value.stage == "b1" and isinstance(info.value.__cause__, ValueError)
    assert executions(tmp_path / "log")["b1"] == 3  # tried three times
    assert "c" not in executions(tmp_path / "log")
    from scene2brain.cli import _stage_failure

    assert _stage_failure(info.value) == "stage b1: this stage was asked to fail"
    assert _stage_failure(RuntimeError("a bug")) is None


def test_a_killed_worker_costs_only_its_stage_and_the_run_completes_with_the_same_results(client, tmp_path):
    graph = diamond(tmp_path / "log", {"b1": kill_worker}, options={"kill": "once", "sleep": 0.2})
    lines: list[str] = []
    report = run_dask(graph, tmp_path / "dask", Runtime(log=lines.append), client=client)
    assert (tmp_path / "log" / "killed").exists()  # b1's worker was killed once
    assert report.computed == ["a", "d", "b1", "b2", "c"]
    assert executions(tmp_path / "log") == {"a": 1, "d": 1, "b1": 1, "b2": 1, "c": 1}  # finished stages not redone
    reference = diamond(tmp_path / "log-local")
    run_local(reference, tmp_path / "local")
    assert values(tmp_path / "dask", graph) == values(tmp_path / "local", reference)
    assert not list((tmp_path / "dask").rglob(".*"))  # the killed worker's temporary folder was removed
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


def test_an_existing_cluster_is_used_through_its_scheduler_address(client, tmp_path):
    options = DaskOptions(scheduler=client.scheduler.address, timeout=10)
    with dask_client(options) as other:
        assert other is not client and "2 workers, 2 threads" in describe_client(other)
        report = run_dask(diamond(tmp_path / "log"), tmp_path / "out", client=other)
    assert report.computed == ["a", "d", "b1", "b2", "c"] and client.status == "running"  # the cluster stays up


def test_workers_killed_too_often_fail_the_run_with_the_stage_named_and_a_rerun_resumes(tmp_path):
    import dask

    graph = diamond(tmp_path / "log", {"b1": kill_worker}, options={"kill": "always"})
    root = tmp_path / "out"
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
        ) as cluster,
        distributed.Client(cluster) as one,
    ):
        with pytest.raises(StageError, match=r"stage b1: the Dask workers computing it died .*rerun to resume"):
            run_dask(graph, root, client=one)
        done = executions(tmp_path / "log")
        assert done.get("a") == 1 and "c" not in done
        # the rerun (nothing kills its workers now) keeps what the failed run finished and computes the rest
        resumed = diamond(tmp_path / "log", {"b1": kill_worker})
        report = run_dask(resumed, root, client=one)
    assert "a" in report.skipped and {"b1", "c"} <= set(report.computed)
    assert executions(tmp_path / "log")["a"] == 1
    run_local(diamond(tmp_path / "log-local"), tmp_path / "local")
    assert values(root, resumed) == values(tmp_path / "local", resumed)


def test_each_stage_runs_with_one_blas_and_one_torch_thread(client, tmp_path):
    from threadpoolctl import threadpool_info, threadpool_limits

    graph = StageGraph([Stage(StageId("t"), record_threads, {"name": "t"}, options={"log": str(tmp_path / "log")})])
    run_dask(graph, tmp_path / "dask", client=client)
    on_worker = json.loads((tmp_path / "dask" / "stages" / "t" / "threads.json").read_text())
    assert on_worker["torch"] == 1 and set(on_worker["pools"]) == {1}
    # in this process, with more threads available: the task wrapper limits them, plain execute_stage does not
    import torch

    stage = graph[StageId("t")]
    previous = torch.get_num_threads()
    try:
        with threadpool_limits(limits=2):
            if max(p["num_threads"] for p in threadpool_info()) < 2:
                pytest.skip("this machine has one core")
            torch.set_num_threads(2)
            run_local(graph, tmp_path / "local")
            plain = json.loads((tmp_path / "local" / "stages" / "t" / "threads.json").read_text())
            assert plain["torch"] == 2 and max(plain["pools"]) == 2  # the broken case: oversubscription
            execute_on_worker(stage, "k", tmp_path / "wrapped", {}, Runtime(), {})
            wrapped = json.loads((tmp_path / "wrapped" / "threads.json").read_text())
    finally:
        torch.set_num_threads(previous)
    assert wrapped["torch"] == 1 and set(wrapped["pools"]) == {1}


def test_a_whole_worker_stage_holds_every_core_of_its_worker_and_uses_them(tmp_path):
    """A feature extraction (WHOLE_WORKER) gets both threads of a 1 x 2 worker, alone; other stages one each."""
    options = {"log": str(tmp_path / "log")}

    def stage(name, sleep, whole=False):
        extra = {WHOLE_WORKER: True} if whole else {}
        return Stage(StageId(name), record_threads, {"name": name}, options={**options, "sleep": sleep, **extra})

    graph = StageGraph([stage("n1", 0.6), stage("w", 1.0, whole=True), stage("n2", 0.6)])
    with dask_client(DaskOptions(workers=1, threads_per_worker=2, dashboard_address=None)) as two_threads:
        run_dask(graph, tmp_path / "dask", client=two_threads)
    found = {n: json.loads((tmp_path / "dask" / "stages" / n / "threads.json").read_text()) for n in ("n1", "w", "n2")}
    assert found["w"]["torch"] == 2 and max(found["w"]["pools"]) == 2
    assert all(found[n]["torch"] == 1 and set(found[n]["pools"]) == {1} for n in ("n1", "n2"))
    w = found["w"]
    for n in ("n1", "n2"):  # nothing else ran on the worker while the whole-worker stage did
        assert found[n]["end"] <= w["start"] or found[n]["start"] >= w["end"], (n, found)
    # a cluster whose workers do not advertise their cores: one thread for every stage (nothing is reserved)
    graph = StageGraph([stage("w", 0.0, whole=True)])
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, dashboard_address=None, silence_logs=50) as bare,
        distributed.Client(bare) as plain,
    ):
        assert _worker_cores(plain) is None
        run_dask(graph, tmp_path / "bare", client=plain)
    assert json.loads((tmp_path / "bare" / "stages" / "w" / "threads.json").read_text())["torch"] == 1


# -- options and errors --------------------------------------------------------------------------------------------


def test_local_workers_keep_glibcs_malloc_trimming_import_the_stages_and_leave_the_environment(monkeypatch):
    """The nanny's MALLOC_TRIM_THRESHOLD_=65536 (a third slower extraction) reaches no local worker, even leaked."""
    trim = "MALLOC_TRIM_THRESHOLD_"
    monkeypatch.setenv(trim, "65536")  # as an earlier cluster's nanny leaves it in this process
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = dict(os.environ)
    with dask_client(DaskOptions(workers=1, threads_per_worker=1, dashboard_address=None)) as client:
        assert set(client.run(environment_variable, trim).values()) == {None}
        assert set(client.run(environment_variable, "OMP_NUM_THREADS").values()) == {"1"}
        assert dict(os.environ) == before  # nothing the nannies set stays in the client's environment
        # the workers import the stage functions' modules as they start, not in their first stage
        assert set(client.run(imported, STAGE_MODULES[0]).values()) == {True}
    monkeypatch.setenv(trim, "131072")  # a value the user chose is theirs
    with dask_client(DaskOptions(workers=1, threads_per_worker=1, dashboard_address=None)) as client:
        assert set(client.run(environment_variable, trim).values()) == {"131072"}
    # the broken case: a cluster started without that care gives its workers the nanny's value
    monkeypatch.delenv(trim)
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None, silence_logs=50) as bare,
        distributed.Client(bare) as plain,
    ):
        assert set(plain.run(environment_variable, trim).values()) == {"65536"}
        assert set(plain.run(imported, STAGE_MODULES[0]).values()) == {False}


def test_bad_options_are_refused_naming_the_option():
    with pytest.raises(DaskSetupError, match=r"workers \(--workers\): expected a whole number of at least 1, got 0"):
        DaskOptions(workers=0)
    with pytest.raises(DaskSetupError, match=r"threads_per_worker \(--threads-per-worker\): .* got -1"):
        DaskOptions(threads_per_worker=-1)
    with pytest.raises(DaskSetupError, match=r"workers \(--workers\) 2 with scheduler .* not both"):
        DaskOptions(workers=2, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(DaskSetupError, match=r"memory_limit \(--memory-limit\): expected a size .* got 'lots'"):
        DaskOptions(memory_limit="lots")
    assert DaskOptions(memory_limit="4GB").memory_bytes() == 4_000_000_000
    assert DaskOptions(memory_limit="auto").memory_bytes() is None and DaskOptions(memory_limit=0).memory_bytes() == 0
    with pytest.raises(ValueError, match="executor: expected one of 'local', 'dask', got 'ray'"):
        run_config(None, executor="ray")
    with pytest.raises(ValueError, match="dask_options is for the Dask executor"):
        run_config(None, dask_options={"workers": 2})
    with pytest.raises(ValueError, match=r"dask_options: .*unexpected keyword argument 'n_workers'"):
        run_config(None, executor="dask", dask_options={"n_workers": 2})


def test_an_unreachable_scheduler_is_named_within_the_timeout():
    start = time.perf_counter()
    options = DaskOptions(scheduler="tcp://127.0.0.1:9", timeout=2)
    expected = r"scheduler \(--scheduler\): no Dask scheduler answered at tcp://127.0.0.1:9 within 2 s"
    with pytest.raises(DaskSetupError, match=expected):
        with dask_client(options):
            pass
    assert time.perf_counter() - start < 20


def test_without_dask_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "scene2brain\[dask\]"'):
        require_distributed()
    result = CliRunner().invoke(app, ["run", str(tmp_path / "x.toml"), "--executor", "dask"], terminal_width=200)
    assert result.exit_code == 2 and 'install it with: pip install "scene2brain[dask]"' in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--executor", "dask", "--workers", "0"], "workers (--workers): expected a whole number of at least 1, got 0"),
        (["--workers", "2"], "--workers: options of the Dask executor; add --executor dask"),
        (["--executor", "dask", "--workers", "2", "--scheduler", "tcp://h:1"], "not both"),
        (["--executor", "dask", "--scheduler", "tcp://h:1", "--threads-per-worker", "2"], "--threads-per-worker with"),
        (["--executor", "dask", "--memory-limit", "lots"], "expected a size such as 4GB"),
    ],
)
def test_cli_refuses_contradictory_or_out_of_range_options(tmp_path, args, message):
    config = write_config(tmp_path)  # a valid configuration: only the options are wrong
    result = CliRunner().invoke(app, ["run", str(tmp_path / "study.toml"), *args], terminal_width=300)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not Path(config.run.output).exists()  # refused before any work


# -- a real run: the demo-like configuration, local and Dask, compared table by table ---------------------------------

TWO_BY_TWO = {
    "dataset": {"subjects": [1, 2]},
    "features": [
        {"name": "gabor", "model": "gabor", "options": {"image_size": 32}, "reduction": "standardise"},
        {
            "name": "effnet",
            "model": "efficientnet-lite0",
            "layers": ["head"],
            "reduction": {"method": "pca", "n_components": 16},
        },
    ],
    "decoding": {"labels": "face", "decoders": ["ridge"], "n_permutations": 20},
    "rsa": {"n_bootstraps": 20, "n_permutations": 20, "labels": "coarse_class"},
}


def assert_same_tables(a: Path, b: Path) -> None:
    """Every stored table of two results folders: the same columns, text and integers; numbers within 1e-6 relative.

    Relative to the column's largest magnitude: a BLAS thread count may change the last bits of float32
    sums (an r of 0.004 by 1e-7), nothing more; so tiny values are compared at the column's scale.
    """
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert sum(n.endswith(".parquet") for n in names) >= 8
    for name in names:
        if name.endswith(".parquet"):  # the .csv files are copies of these
            x, y = pd.read_parquet(a / name), pd.read_parquet(b / name)
            assert list(x.columns) == list(y.columns) and len(x) == len(y), name
            for column in x.columns:
                assert_close(x[column], y[column], (name, column))
        elif name.endswith(".npz"):
            with np.load(a / name) as x, np.load(b / name) as y:
                assert sorted(x.files) == sorted(y.files), name
                for key in x.files:
                    assert_close(pd.Series(x[key].ravel()), pd.Series(y[key].ravel()), (name, key))
        elif name.endswith(".json") and name != "stage.json":  # stage.json: timings
            x, y = (pd.json_normalize(json.loads((root / name).read_text())) for root in (a, b))
            assert list(x.columns) == list(y.columns), name
            for column in x.columns:
                assert_close(x[column], y[column], (name, column))


def assert_close(x: pd.Series, y: pd.Series, where: tuple) -> None:
    """Equal, or for floats within 1e-6 of the larger of the two columns' largest magnitudes."""
    u, w = x.to_numpy(), y.to_numpy()
    if u.dtype.kind != "f":
        assert x.equals(y), where
        return
    assert (np.isnan(u) == np.isnan(w)).all(), where
    u, w = u[~np.isnan(u)], w[~np.isnan(w)]
    scale = max(np.abs(u).max(initial=0.0), np.abs(w).max(initial=0.0))
    worst = np.abs(u - w).max(initial=0.0) / (scale or 1.0)
    assert worst <= 1e-6, (*where, worst)


@pytest.mark.slow
def test_cli_dask_run_gives_the_local_runs_tables(tmp_path):
    """2 simulated subjects x 2 spaces with decoding and RSA (38 stages): ``--executor dask`` on a 2-worker cluster."""
    (tmp_path / "local").mkdir()
    (tmp_path / "dask").mkdir()
    # the reference runs with every BLAS and PyTorch thread, the workers' tasks with one each
    local = run_config(write_config(tmp_path / "local", TWO_BY_TWO), progress=False)
    write_config(tmp_path / "dask", TWO_BY_TWO)
    args = ["run", str(tmp_path / "dask" / "study.toml"), "--executor", "dask", "--workers", "2"]
    result = CliRunner().invoke(app, [*args, "--threads-per-worker", "1", "--memory-limit", "4GB"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Dask cluster at tcp://" in result.output and "2 workers, 2 threads" in result.output
    assert "dashboard" in result.output and "  finished encode/sim02/effnet:head in" in result.output
    record = json.loads((tmp_path / "dask" / "results" / "run.json").read_text())
    assert record["executor"] == "dask" and record["computed"] == local.computed  # the same stages, in graph order
    assert len(local.computed) > 30
    assert_same_tables(tmp_path / "local" / "results" / "tables", tmp_path / "dask" / "results" / "tables")
    # what the command printed (the summary tables) is the same as for a local run of the same folder's tables
    printed = [line for line in result.output.splitlines() if "HV" in line or "EV" in line]
    assert printed
    again = CliRunner().invoke(app, ["run", str(tmp_path / "local" / "study.toml"), "--quiet"], terminal_width=200)
    assert [line for line in again.output.splitlines() if "HV" in line or "EV" in line] == printed


def test_the_table_comparison_catches_a_difference_above_a_millionth(tmp_path):
    """The comparison of the run test is not blind: 2e-6 of the column's scale (or a changed label) fails it."""
    frame = pd.DataFrame({"roi": ["EV", "HV"] * 5, "score": np.linspace(0.1, 0.9, 10)})
    for folder in ("a", "b", "c", "d"):
        (tmp_path / folder).mkdir()
    for i in range(8):
        for folder in ("a", "b"):
            frame.to_parquet(tmp_path / folder / f"t{i}.parquet")
        changed = frame.assign(score=frame.score + np.r_[2e-6 * 0.9, np.zeros(9)])
        changed.to_parquet(tmp_path / "c" / f"t{i}.parquet")
        frame.assign(roi=frame.roi.replace("HV", "FACE")).to_parquet(tmp_path / "d" / f"t{i}.parquet")
    assert_same_tables(tmp_path / "a", tmp_path / "b")
    for broken in ("c", "d"):
        with pytest.raises(AssertionError):
            assert_same_tables(tmp_path / "a", tmp_path / broken)
