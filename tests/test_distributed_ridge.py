"""Voxel-chunked RidgeCV / BandedRidgeCV on a real distributed LocalCluster vs the in-process fit."""

import logging
import re

import dask.array as da
import numpy as np
import pytest
import zarr
from dask_stages import blas_threads_in_task
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from scene2brain.encoding import BandedRidgeCV, RidgeCV
from scene2brain.encoding import _solver as sv
from scene2brain.encoding import distributed as chunked
from scene2brain.encoding._cv import for_tasks, prepare, share_factors
from scene2brain.encoding.distributed import fit_chunked

ALPHAS = np.logspace(-2, 4, 7)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with Client(cluster) as client:
        yield client


def _data(n, p, v, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * np.logspace(0, -1, p) + 1.0
    Y = X @ rng.standard_normal((p, v)) + rng.standard_normal((n, v)) * np.linspace(0.2, 6, v) + 3.0
    return X, Y.astype(dtype)


def _zarr(path, Y, width):
    array = zarr.create_array(str(path), shape=Y.shape, chunks=(Y.shape[0], width), dtype=Y.dtype)
    array[:] = Y
    return str(path)


ESTIMATORS = {
    "primal": (10, lambda: RidgeCV(ALPHAS, cv=KFold(4))),
    "dual": (120, lambda: RidgeCV(ALPHAS, cv=KFold(4), standardise=True)),
    "group_out": (120, lambda: RidgeCV(ALPHAS, cv=KFold(4))),
    "loo": (10, lambda: RidgeCV(ALPHAS, cv="loo")),
    "truncated": (10, lambda: RidgeCV(ALPHAS, cv=KFold(4), n_components=4)),
    "banded": (10, lambda: BandedRidgeCV([0] * 4 + [1] * 6, ALPHAS, cv=KFold(4), n_iter=5)),
    "banded_dual": (120, lambda: BandedRidgeCV(2, ALPHAS, cv=KFold(4), n_iter=3, solver="dual")),
}


def _assert_same(chunk, local, rtol=1e-7, score_tol=None):
    """Same choices exactly; coefficients and scores up to rounding."""
    np.testing.assert_array_equal(chunk.best_alphas_, local.best_alphas_)
    if isinstance(local, BandedRidgeCV):
        np.testing.assert_array_equal(chunk.band_weights_, local.band_weights_)
        np.testing.assert_array_equal(chunk.bands_, local.bands_)
    else:
        assert chunk.solver_ == local.solver_
        assert chunk.retained_variance_ == local.retained_variance_
    coef = np.asarray(chunk.coef_)
    assert coef.shape == local.coef_.shape
    scale = np.abs(local.coef_).max()
    np.testing.assert_allclose(coef, local.coef_, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(
        chunk.intercept_, local.intercept_, rtol=rtol, atol=rtol * np.abs(local.intercept_).max()
    )
    score_tol = rtol if score_tol is None else score_tol
    np.testing.assert_allclose(chunk.cv_scores_, local.cv_scores_, rtol=score_tol, atol=score_tol)
    assert chunk.n_features_in_ == local.n_features_in_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("form", list(ESTIMATORS))
def test_every_solver_form_matches_the_in_process_fit(client, form, dtype):
    p, make = ESTIMATORS[form]
    X, Y = _data(80, p, 30, dtype=dtype)
    local = make().fit(X, Y)
    chunk = fit_chunked(make(), X, da.from_array(Y, chunks=(40, 7)), client=client, chunk_size=7)
    # float32: the in-process fit of a subset of the columns differs from the whole fit's by up to ~1e-4 in the
    # leave-group-out scores (H_gg near the identity amplifies the rounding of the float32 products), so here too.
    _assert_same(chunk, local, *((1e-7, None) if dtype == np.float64 else (2e-5, 5e-4)))


@pytest.mark.parametrize("form", ["primal", "banded"])
@pytest.mark.parametrize("source", ["numpy", "dask", "zarr_path", "zarr_array", "memory_zarr"])
def test_every_response_source_matches_the_in_process_fit(client, tmp_path, form, source):
    p, make = ESTIMATORS[form]
    X, Y = _data(80, p, 37, seed=1)
    if source == "numpy":
        data = Y
    elif source == "dask":
        data = da.from_array(Y, chunks=(80, 8))
    elif source == "zarr_path":
        data = _zarr(tmp_path / "y.zarr", Y, 8)
    elif source == "zarr_array":
        data = zarr.open_array(_zarr(tmp_path / "y.zarr", Y, 8), mode="r")
    else:
        data = zarr.create_array(zarr.storage.MemoryStore(), shape=Y.shape, chunks=(80, 8), dtype=Y.dtype)
        data[:] = Y
    local = make().fit(X, Y)
    chunk = fit_chunked(make(), X, data, client=client)  # default chunk size: whole storage chunks
    _assert_same(chunk, local)


def test_float32_zarr_single_target_and_odd_chunks(client, tmp_path):
    X, Y = _data(90, 12, 23, seed=2, dtype=np.float32)
    local = RidgeCV(ALPHAS, cv=5).fit(X, Y)
    chunk = fit_chunked(RidgeCV(ALPHAS, cv=5), X, _zarr(tmp_path / "y.zarr", Y, 5), client=client, chunk_size=4)
    assert chunk.coef_.dtype == np.float32
    _assert_same(chunk, local, rtol=2e-5)
    one = fit_chunked(RidgeCV(ALPHAS, cv=5), X, Y[:, 3], client=client)
    ref = RidgeCV(ALPHAS, cv=5).fit(X, Y[:, 3])
    assert one.coef_.shape == (12,) and np.ndim(one.intercept_) == 0
    _assert_same(one, ref, rtol=2e-5)


def test_groups_reach_the_splitter(client):
    from sklearn.model_selection import GroupKFold

    X, Y = _data(60, 8, 9, seed=3)
    groups = np.repeat(np.arange(12), 5)
    local = RidgeCV(ALPHAS, cv=GroupKFold(4)).fit(X, Y, groups=groups)
    chunk = fit_chunked(RidgeCV(ALPHAS, cv=GroupKFold(4)), X, Y, client=client, groups=groups, chunk_size=4)
    _assert_same(chunk, local)
    with pytest.raises(ValueError, match="groups"):
        fit_chunked(RidgeCV(ALPHAS, cv=GroupKFold(4)), X, Y, client=client)


def test_writing_form_puts_the_coefficients_in_a_zarr_group(client, tmp_path):
    X, Y = _data(80, 10, 25, seed=4)
    local = BandedRidgeCV(2, ALPHAS, cv=KFold(4), n_iter=4).fit(X, Y)
    out = tmp_path / "fit.zarr"
    chunk = fit_chunked(BandedRidgeCV(2, ALPHAS, cv=KFold(4), n_iter=4), X, Y, client=client, chunk_size=6, out=out)
    assert isinstance(chunk.coef_, zarr.Array) and chunk.coef_.chunks == (10, 6)
    _assert_same(chunk, local)
    np.testing.assert_allclose(zarr.open_array(str(out), path="coef")[:], local.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(chunk.predict(X), local.predict(X), rtol=1e-7)
    with pytest.raises(TypeError, match="out: expected the path or URL of a zarr group"):
        fit_chunked(RidgeCV(ALPHAS), X, Y, client=client, out=zarr.storage.MemoryStore())


def test_tasks_recompute_the_factors_above_the_factor_budget(client):
    X, Y = _data(80, 10, 20, seed=5)
    make = ESTIMATORS["banded"][1]
    local = make().fit(X, Y)
    _assert_same(fit_chunked(make(), X, Y, client=client, chunk_size=6, factor_budget=0), local)


@pytest.mark.parametrize("form", list(ESTIMATORS))
def test_a_task_with_shared_factors_does_no_x_side_work(monkeypatch, form):
    """The shared decompositions serve the task: no decomposition of X in it, not even its float64 copy."""
    p, make = ESTIMATORS[form]
    X, Y = _data(80, p, 12, seed=6, dtype=np.float32)
    estimator = make()
    prepared = prepare(X, np.dtype(np.float32), folds=estimator._folds(X, Y, None), **estimator._cv_arguments(p))
    prepared.shared = share_factors(prepared)
    light = for_tasks(prepared)
    assert light.design.X64 is None and prepared.design.X64 is not None
    local = estimator.fit(X, Y)
    with monkeypatch.context() as m:
        for name in ("fold_factors", "full_factors", "loo_factors"):
            m.setattr(sv, name, _forbidden)
        fit = chunked._fit_block(light, Y[:, 4:9], slice(4, 9), 1, None)
        np.testing.assert_allclose(fit["coef"], np.asarray(local.coef_)[:, 4:9], rtol=1e-5, atol=1e-5)
        prepared.shared = None  # a task without them decomposes X itself
        with pytest.raises(AssertionError, match="X-side"):
            chunked._fit_block(prepared, Y[:, 4:9], slice(4, 9), 1, None)


def _forbidden(*args, **kwargs):
    raise AssertionError("X-side decomposition inside a task")


class _TaskBytes(SchedulerPlugin):
    """Bytes of every task result the scheduler records (what a task hands to another or the client)."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.nbytes = {}

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "memory":
            self.nbytes[key] = self.scheduler.tasks[key].nbytes


@pytest.mark.parametrize("source", ["dask", "zarr"])
def test_task_data_is_bounded_by_the_chunk_not_the_number_of_targets(cluster, client, tmp_path, source):
    n, p, chunk = 200, 8, 16
    largest = {}
    for v in (64, 512):
        X, Y = _data(n, p, v, seed=7)
        data = da.from_array(Y, chunks=(n, chunk)) if source == "dask" else _zarr(tmp_path / f"y{v}.zarr", Y, chunk)
        plugin = _TaskBytes(cluster.scheduler)
        cluster.scheduler.add_plugin(plugin, name=f"bytes-{source}-{v}")
        try:
            fit_chunked(RidgeCV(ALPHAS, cv=KFold(4)), X, data, client=client, chunk_size=chunk)
        finally:
            cluster.scheduler.remove_plugin(name=f"bytes-{source}-{v}")
        blocks = {str(k): b for k, b in plugin.nbytes.items() if not str(k).startswith("Prepared-")}
        assert sum(str(k).startswith("ridge-block-") for k in blocks) == v // chunk
        largest[v] = max(blocks.values())
    y_block = n * chunk * 8
    results = (p + 4 + len(ALPHAS)) * chunk * 8 + 4096  # coefficients, per-target vectors, scores, pickling
    assert largest[64] == largest[512]  # independent of the number of targets
    assert largest[512] <= (y_block + 1024 if source == "dask" else results)
    if source == "zarr":
        assert largest[512] < y_block  # responses are read by the tasks, never handed around


def test_tasks_set_their_blas_threads_despite_the_nanny(client):
    assert client.submit(blas_threads_in_task, None, pure=False).result(timeout=60) == [1]  # the nanny's OMP=1
    assert client.submit(blas_threads_in_task, 2, pure=False).result(timeout=60) == [2]


@pytest.fixture
def small():
    return _data(40, 6, 10, seed=8)


def test_bad_estimator_client_and_options(client, small):
    X, Y = small
    with pytest.raises(TypeError, match="estimator: expected a RidgeCV or BandedRidgeCV, got Ridge"):
        fit_chunked(Ridge(), X, Y, client=client)
    with pytest.raises(TypeError, match=r"client: expected a distributed\.Client, got str"):
        fit_chunked(RidgeCV(), X, Y, client="tcp://127.0.0.1:8786")
    closed = Client(client.scheduler.address)
    closed.close()
    with pytest.raises(ValueError, match=r"client: expected a connected distributed\.Client, got one whose status is"):
        fit_chunked(RidgeCV(), X, Y, client=closed)
    for name, value in (("chunk_size", 0), ("blas_threads", 0), ("chunk_size", 2.5), ("blas_threads", True)):
        with pytest.raises(ValueError, match=f"{name}: expected a positive integer, got {value!r}"):
            fit_chunked(RidgeCV(), X, Y, client=client, **{name: value})
    with pytest.raises(ValueError, match="factor_budget: expected a number of bytes >= 0, got -1"):
        fit_chunked(RidgeCV(), X, Y, client=client, factor_budget=-1)
    with pytest.raises(ValueError, match="backend: chunked fits on Dask run the numpy backend only, got 'torch'"):
        fit_chunked(RidgeCV(backend="torch", device="cpu"), X, Y, client=client)


def test_bad_responses(client, small, tmp_path):
    X, Y = small
    with pytest.raises(ValueError, match=r"X and Y: expected the same number of samples, got 40 and 39"):
        fit_chunked(RidgeCV(), X, Y[:39], client=client)
    with pytest.raises(ValueError, match=r"Y: expected a 1-D or 2-D array .* got shape \(40, 5, 2\)"):
        fit_chunked(RidgeCV(), X, Y.reshape(40, 5, 2), client=client)
    with pytest.raises(ValueError, match="Y: expected real numbers, got dtype <U1"):
        fit_chunked(RidgeCV(), X, np.full((40, 3), "a"), client=client)
    with pytest.raises(ValueError, match="Y: expected at least one target column, got 0"):
        fit_chunked(RidgeCV(), X, Y[:, :0], client=client)
    missing = tmp_path / "missing.zarr"
    with pytest.raises(ValueError, match=re.escape(f"Y: expected a zarr array at '{missing}', could not open one")):
        fit_chunked(RidgeCV(), X, missing, client=client)
    zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    with pytest.raises(ValueError, match=r"group\.zarr', could not open one"):
        fit_chunked(RidgeCV(), X, tmp_path / "group.zarr", client=client)
    unknown = da.from_array(Y, chunks=(40, 5))
    unknown = unknown[unknown[:, 0] > -np.inf]  # rows of unknown count
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        fit_chunked(RidgeCV(), X, unknown, client=client)
    bad = Y.copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="Y: target column 7 contains NaN or infinite values"):
        fit_chunked(RidgeCV(), X, _zarr(tmp_path / "nan.zarr", bad, 3), client=client, chunk_size=3)
    with pytest.raises(ValueError, match="Input X contains infinity"):
        fit_chunked(RidgeCV(), np.where(X > 0, X, np.inf), Y, client=client)


def test_a_worker_killed_mid_fit_loses_nothing(tmp_path):
    """Dask reruns the blocks of a killed worker (zarr responses: every task can be redone); same result."""
    import os
    import signal
    import threading
    import time

    X, Y = _data(120, 10, 400, seed=9)
    path = _zarr(tmp_path / "y.zarr", Y, 2)
    local = RidgeCV(ALPHAS, cv=KFold(4)).fit(X, Y)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0", silence_logs=logging.CRITICAL) as cl,
        Client(cl) as client,
    ):
        plugin = _TaskBytes(cl.scheduler)
        cl.scheduler.add_plugin(plugin, name="kill-test")
        result = {}

        def fit():
            result["model"] = fit_chunked(RidgeCV(ALPHAS, cv=KFold(4)), X, path, client=client, chunk_size=2)

        thread = threading.Thread(target=fit)
        thread.start()
        deadline = time.monotonic() + 60
        while sum(str(k).startswith("ridge-block-") for k in plugin.nbytes) < 20 and time.monotonic() < deadline:
            time.sleep(0.005)
        pids = client.run(os.getpid)
        victim = sorted(pids)[0]
        os.kill(pids[victim], signal.SIGKILL)
        assert thread.is_alive()  # killed mid-fit
        thread.join(120)
        assert not thread.is_alive()
        assert "model" in result
        _assert_same(result["model"], local)


def test_without_the_dask_extra_the_error_names_it(monkeypatch, small):
    import sys

    X, Y = small
    monkeypatch.setitem(sys.modules, "distributed", None)  # what a missing package looks like to import
    with pytest.raises(ImportError, match=re.escape('pip install "scene2brain[dask]"')):
        fit_chunked(RidgeCV(), X, Y, client=None)


def test_the_default_block_never_exceeds_the_memory_budget():
    """Storage chunks wider than the budget are read in parts rather than given whole to one task."""
    from types import SimpleNamespace

    from scene2brain.encoding.distributed import _default_chunk_size

    def size(budget, native, n_targets=100_000, threads=2):
        targets = SimpleNamespace(native=native, n_targets=n_targets)
        return _default_chunk_size(SimpleNamespace(size=budget), targets, threads)

    assert size(budget=28_448, native=40_000, n_targets=40_000) == 10_000  # not one task of 40,000
    assert size(budget=28_448, native=2_000) == 24_000  # whole storage chunks when they fit
    assert size(budget=1_000, native=None) == 1_000
