"""RSA core (scene2brain.representation) against rsatoolbox, the reference implementation, and brute force."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from scene2brain.representation import (
    COMPARATORS,
    DISTANCES,
    compare_models,
    compare_rdms,
    compute_rdms,
    crossvalidated_rdm,
    from_rsatoolbox,
    noise_ceiling,
    noise_precision,
    rdm_matrix,
    rdm_vector,
    repeat_noise_ceiling,
    to_rsatoolbox,
)

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.data.noise import prec_from_residuals  # noqa: E402
from rsatoolbox.inference import boot_noise_ceiling, eval_bootstrap, eval_bootstrap_pattern  # noqa: E402
from rsatoolbox.model import ModelFixed  # noqa: E402
from rsatoolbox.rdm import RDMs, calc_rdm  # noqa: E402
from rsatoolbox.rdm import compare as rsa_compare  # noqa: E402
from rsatoolbox.util.inference_util import bootstrap_pair_tests  # noqa: E402

METHODS = list(COMPARATORS)


def _models(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Model RDMs of mixed kinds: related, unrelated, and a categorical one with many ties."""
    n = len(x)
    category = np.repeat(np.arange(3), int(np.ceil(n / 3)))[:n]
    categorical = (category[:, None] != category[None, :]).astype(float)
    return np.vstack(
        [
            compute_rdms(x + 0.5 * rng.standard_normal(x.shape), "correlation"),
            compute_rdms(rng.standard_normal((n, 6)), "euclidean"),
            rdm_vector(categorical)[None],
        ]
    )


@pytest.fixture
def subjects() -> tuple[np.ndarray, np.ndarray]:
    """5 subjects sharing a latent structure (plus subject noise), 14 stimuli, and 3 model RDMs."""
    rng = np.random.default_rng(1)
    n = 14
    shared = rng.standard_normal((n, 40))
    data = compute_rdms([shared + 0.8 * rng.standard_normal((n, 40)) for _ in range(5)], "correlation")
    return data, _models(rng, shared)


def _resamples(seed: int, n: int, n_boot: int) -> np.ndarray:
    """The stimulus draws rsatoolbox's eval_bootstrap_pattern makes after np.random.seed(seed)."""
    np.random.seed(seed)  # noqa: NPY002 (rsatoolbox's global RNG)
    return np.stack([np.random.randint(0, n, size=n) for _ in range(n_boot)])  # noqa: NPY002 (rsatoolbox's global RNG)


def _fixed_models(models: np.ndarray) -> list:
    return [ModelFixed(f"m{i}", RDMs(m[None])) for i, m in enumerate(models)]


# --------------------------------------------------------------------------- distances


@pytest.mark.parametrize("distance", ["correlation", "euclidean"])
def test_distances_equal_rsatoolbox(distance: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((23, 57)) + rng.standard_normal((23, 1)) * 3  # rows with different means
    ours = compute_rdms(x, distance)
    ref = calc_rdm(Dataset(x), method=distance).get_vectors()
    assert ours.shape == (1, 23 * 22 // 2) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_cosine_and_normalise_equal_references() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((17, 31)) * rng.uniform(0.1, 5, 31) + rng.uniform(-3, 3, 31)
    np.testing.assert_allclose(compute_rdms(x, "cosine")[0], pdist(x, "cosine"), rtol=1e-10, atol=1e-12)
    z = (x - x.mean(0)) / x.std(0)
    for distance in ("correlation", "euclidean"):
        ref = calc_rdm(Dataset(z), method=distance).get_vectors()
        np.testing.assert_allclose(compute_rdms(x, distance, normalise=True), ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(compute_rdms(x, "cosine", normalise=True)[0], pdist(z, "cosine"), rtol=1e-9)
    # a large common offset (raw BOLD): the channels are centred first, so no precision is lost
    offset = x + 1e5
    direct = pdist(offset, "sqeuclidean") / offset.shape[1]
    np.testing.assert_allclose(compute_rdms(offset, "euclidean")[0], direct, rtol=1e-9)


@pytest.mark.parametrize("distance", ["correlation", "euclidean", "cosine"])
def test_chunked_equals_unchunked(distance: str) -> None:
    rng = np.random.default_rng(3)
    rois = [rng.standard_normal((30, 101)).astype(np.float32), rng.standard_normal((30, 13)).astype(np.float32)]
    rois64 = [r.astype(np.float64) for r in rois]
    whole = compute_rdms(rois, distance)
    assert whole.shape == (2, 435) and whole.dtype == np.float64
    for normalise in (False, True):
        a = compute_rdms(rois64, distance, normalise=normalise)
        b = compute_rdms(rois64, distance, normalise=normalise, chunk_size=7)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)  # float64 input: float64 throughout
        for chunk in (None, 7):  # float32 input: float32 products per chunk, float64 sums: float32 precision
            c = compute_rdms(rois, distance, normalise=normalise, chunk_size=chunk)
            np.testing.assert_allclose(c, a, rtol=2e-6, atol=2e-7)
    if distance == "cosine":
        ref = np.vstack([pdist(r, "cosine") for r in rois64])
    else:
        ref = np.vstack([calc_rdm(Dataset(r), method=distance).get_vectors() for r in rois64])
    np.testing.assert_allclose(compute_rdms(rois64, distance), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("distance", ["correlation", "euclidean"])
def test_float32_distances_equal_rsatoolbox(distance: str) -> None:
    """float32 patterns (rsatoolbox computes in float32 too): agreement at float32 precision."""
    rng = np.random.default_rng(15)
    x = rng.standard_normal((40, 12)) @ rng.standard_normal((12, 9000)) + rng.standard_normal((40, 9000)) + 5.0
    x = x.astype(np.float32)  # more channels than one float32 chunk
    ours = compute_rdms(x, distance)
    ref = calc_rdm(Dataset(x), method=distance).get_vectors()
    exact = calc_rdm(Dataset(x.astype(np.float64)), method=distance).get_vectors()
    scale = np.abs(exact).max()
    assert np.abs(ours - exact).max() <= 2e-6 * scale
    assert np.abs(ours - ref).max() <= 5e-6 * scale
    np.testing.assert_allclose(compute_rdms(x.astype(np.float64), distance), exact, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["shrinkage_diag", "shrinkage_eye", "diag", "full"])
def test_noise_precision_equals_rsatoolbox(method: str) -> None:
    rng = np.random.default_rng(4)
    res = rng.standard_normal((40, 12)) @ rng.standard_normal((12, 12))
    np.testing.assert_allclose(noise_precision(res, method), prec_from_residuals(res, method=method), rtol=1e-9)
    np.testing.assert_allclose(
        noise_precision(res, method, dof=30), prec_from_residuals(res, dof=30, method=method), rtol=1e-9
    )


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # rsatoolbox's descriptor handling
@pytest.mark.parametrize("with_noise", [False, True])
def test_crossnobis_equals_rsatoolbox(with_noise: bool) -> None:
    rng = np.random.default_rng(5)
    n_cond, n_part, n_rep, p = 7, 4, 2, 15
    means = rng.standard_normal((n_cond, p))
    cond = np.tile(np.repeat(np.arange(n_cond), n_rep), n_part)
    part = np.repeat(np.arange(n_part), n_cond * n_rep)
    data = means[cond] + rng.standard_normal((len(cond), p))
    order = rng.permutation(len(cond))  # trials in any order
    data, cond, part = data[order], np.array([f"s{c}" for c in cond[order]]), part[order]
    labels_all, inv = np.unique(cond, return_inverse=True)
    noise = None
    if with_noise:
        cm = np.stack([data[inv == k].mean(0) for k in range(n_cond)])
        noise = noise_precision(data - cm[inv], "shrinkage_diag")
    ours, labels = crossvalidated_rdm(data, cond, part, noise=noise)
    ds = Dataset(data, obs_descriptors={"stim": cond, "run": part})
    ref = calc_rdm(ds, method="crossnobis", descriptor="stim", cv_descriptor="run", noise=noise)
    np.testing.assert_allclose(ours, ref.get_vectors()[0], rtol=1e-10, atol=1e-12)
    assert list(labels) == list(ref.pattern_descriptors["stim"]) == list(labels_all)
    with pytest.raises(ValueError, match="no trial"):
        crossvalidated_rdm(data[part != 1], cond[part != 1], np.where(cond[part != 1] == "s0", 9, part[part != 1]))


# --------------------------------------------------------------------------- comparators


@pytest.mark.parametrize("method", METHODS)
def test_comparators_equal_rsatoolbox(method: str, subjects) -> None:
    data, models = subjects
    ours = compare_rdms(data, models, method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = rsa_compare(RDMs(data), RDMs(models), method=COMPARATORS[method])
    assert ours.shape == (5, 3)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
    # the data RDMs are related to model 0, not to model 1
    if method != "cosine":  # cosine does not centre: all positive RDMs look alike
        assert ours[:, 0].mean() > ours[:, 1].mean() + 0.1


def test_spearman_and_tau_a_against_scipy(subjects) -> None:
    data, models = subjects
    assert compare_rdms(data[0], models[2], "spearman")[0, 0] == pytest.approx(
        stats.spearmanr(data[0], models[2]).statistic, abs=1e-12
    )
    x, y = data[0], models[2]  # y is categorical: many ties
    sign = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    tau_a = sign[np.triu_indices(len(x), 1)].sum() / (len(x) * (len(x) - 1) / 2)
    assert compare_rdms(x, y, "kendall_tau_a")[0, 0] == pytest.approx(tau_a, abs=1e-12)


# --------------------------------------------------------------------------- stored form


def test_stored_form_excludes_the_diagonal_and_full_matrices_are_refused() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 8))
    v = compute_rdms(x, "cosine")[0]
    assert v.shape == (10,)  # 5 * 4 / 2: no diagonal, one triangle
    np.testing.assert_allclose(v, squareform(squareform(pdist(x, "cosine")), checks=False), rtol=1e-10)
    square = rdm_matrix(v)
    assert square.shape == (5, 5) and np.all(np.diag(square) == 0)
    np.testing.assert_array_equal(rdm_vector(square), v)
    with pytest.raises(ValueError, match="full square matrix"):
        compare_rdms(square, v)
    with pytest.raises(ValueError, match="full square matrix"):
        compare_rdms(v, square[None])
    with pytest.raises(ValueError, match="full square matrix"):
        compare_models(square, v[None])
    # a similarity matrix (non-zero diagonal) whose size is a triangular number is not read as a stack of RDMs
    similarity = np.corrcoef(rng.standard_normal((10, 30)))
    for call in (lambda: compare_rdms(similarity, similarity), lambda: noise_ceiling(similarity)):
        with pytest.raises(ValueError, match="full square matrix"):
            call()
    with pytest.raises(ValueError, match="n\\*\\(n-1\\)/2"):
        compare_rdms(square.ravel(), square.ravel())  # diagonal and both triangles, flattened
    wrong = square.copy()
    wrong[0, 1] += 1.0
    with pytest.raises(ValueError, match="not symmetric"):
        rdm_vector(wrong)
    diag = square + np.eye(5)
    with pytest.raises(ValueError, match="diagonal"):
        rdm_vector(diag)
    with pytest.raises(ValueError, match="crossvalidated_rdm"):
        compute_rdms(x, "crossnobis")
    assert "crossnobis" in DISTANCES


def test_core_does_not_import_rsatoolbox() -> None:
    import subprocess

    code = "import sys, scene2brain.representation; print('rsatoolbox' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_round_trip_rsatoolbox() -> None:
    rng = np.random.default_rng(7)
    v = compute_rdms([rng.standard_normal((6, 9)) for _ in range(3)], "euclidean")
    pattern = {"stimulus_id": [f"img{i}" for i in range(6)], "category": list("aabbcc")}
    obj = to_rsatoolbox(v, distance="euclidean", names=["V1", "V4", "IT"], pattern_descriptors=pattern)
    assert isinstance(obj, RDMs) and obj.n_rdm == 3 and obj.n_cond == 6
    back, desc = from_rsatoolbox(obj)
    np.testing.assert_array_equal(back, v)
    assert desc["names"] == ["V1", "V4", "IT"] and desc["distance"] == "euclidean"
    assert {k: desc["pattern_descriptors"][k] for k in pattern} == pattern
    again = to_rsatoolbox(
        back, distance=desc["distance"], names=desc["names"], pattern_descriptors=desc["pattern_descriptors"]
    )
    assert again == obj
    ref = calc_rdm(Dataset(rng.standard_normal((6, 4))), method="correlation")
    vec, d = from_rsatoolbox(ref)
    np.testing.assert_array_equal(vec, ref.get_vectors())
    assert d["names"] is None and d["distance"] == "correlation"


# --------------------------------------------------------------------------- noise ceilings


@pytest.mark.parametrize("method", METHODS)
def test_noise_ceiling_equals_rsatoolbox(method: str, subjects) -> None:
    data, _ = subjects
    low, high = noise_ceiling(data, method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_low, ref_high = boot_noise_ceiling(RDMs(data), method=COMPARATORS[method])
    assert low == pytest.approx(ref_low, abs=1e-10) and high == pytest.approx(ref_high, abs=1e-10)
    assert 0 < low < high < 1


def test_repeat_noise_ceiling() -> None:
    rng = np.random.default_rng(8)
    n_cond, n_rep, p = 12, 4, 30
    means = rng.standard_normal((n_cond, p))
    cond = np.tile(np.arange(n_cond), n_rep)
    trials = means[cond] + 0.8 * rng.standard_normal((len(cond), p))
    order = rng.permutation(len(cond))
    trials, cond = trials[order], cond[order]
    low, high = repeat_noise_ceiling(trials, cond, distance="correlation", method="spearman")
    # by hand: the k-th presentation of every stimulus forms repeat k
    rep = np.zeros(len(cond), int)
    for c in range(n_cond):
        rep[cond == c] = np.arange(n_rep)
    per_rep = np.vstack(
        [
            calc_rdm(
                Dataset(trials[rep == r], obs_descriptors={"c": cond[rep == r]}), method="correlation", descriptor="c"
            ).get_vectors()
            for r in range(n_rep)
        ]
    )
    ref_low, ref_high = boot_noise_ceiling(RDMs(per_rep), method="spearman")
    assert (low, high) == pytest.approx((ref_low, ref_high), abs=1e-10)
    assert repeat_noise_ceiling(trials, cond, partitions=rep) == pytest.approx((low, high), abs=1e-12)
    c_low, c_high = repeat_noise_ceiling(trials, cond, spearman_brown=True)
    expected = [np.sqrt(n_rep * b**2 / (1 + (n_rep - 1) * b**2)) for b in (low, high)]
    assert (c_low, c_high) == pytest.approx(expected, abs=1e-12)
    assert low < c_low <= c_high <= 1


# --------------------------------------------------------------------------- bootstrap and tests


def _brute_force_bootstrap(data: np.ndarray, models: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Resample the square matrices, drop self-pairs, rank and correlate: one resample at a time."""
    out = []
    for draw in idx:
        s = np.sort(draw)
        a, b = np.triu_indices(len(s), 1)
        keep = s[a] != s[b]
        d = rdm_matrix(data)[np.ix_(s, s)][a[keep], b[keep]]
        out.append([stats.spearmanr(d, rdm_matrix(m)[np.ix_(s, s)][a[keep], b[keep]]).statistic for m in models])
    return np.array(out)


def test_stimulus_bootstrap_equals_brute_force(subjects) -> None:
    data, models = subjects
    idx = np.random.default_rng(9).integers(0, 14, size=(25, 14))
    res = compare_models(data[0], models, method="spearman", resamples=idx)
    np.testing.assert_allclose(res.samples, _brute_force_bootstrap(data[0], models, idx), rtol=1e-10, atol=1e-12)
    assert res.samples.shape == (25, 3) and res.bootstrap == "stimuli"
    np.testing.assert_allclose(res.similarity, compare_rdms(data[0], models)[0])


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
def test_batched_stimulus_bootstrap_with_ties_equals_brute_force(method: str, subjects) -> None:
    """Several batches of resamples, tied data and models, a constant model and degenerate resamples."""
    data, models = subjects
    rng = np.random.default_rng(16)
    coarse = compute_rdms(rng.integers(0, 3, (14, 2)).astype(float), "euclidean")  # many tie groups
    extra = np.vstack([coarse, np.full((1, models.shape[1]), 0.7)])  # and a constant model
    models = np.vstack([models, extra])
    idx = rng.integers(0, 14, size=(75, 14))  # more than one batch
    idx[3] = 5  # one distinct stimulus: NaN
    idx[4, :] = np.resize([1, 2], 14)  # two: NaN
    idx[5, :] = np.resize([1, 2, 9], 14)  # three: a valid resample
    for d in (data[0], models[2], coarse[0]):  # a data RDM without ties, categorical, many tie groups
        res = compare_models(d, models, method=method, resamples=idx)
        expected = np.full((75, len(models)), np.nan)
        for b, draw in enumerate(idx):
            s = np.sort(draw)
            a, c = np.triu_indices(14, 1)
            keep = s[a] != s[c]
            if len(np.unique(draw)) < 3:
                continue
            v = rdm_matrix(np.vstack([d, models]))[:, s][:, :, s][:, a[keep], c[keep]]
            if method == "spearman":
                v = stats.rankdata(v, axis=1)
            if method != "cosine":
                v = v - v.mean(axis=1, keepdims=True)
                v[np.ptp(v, axis=1) == 0] = 0.0  # exactly constant on the resample
            norm = np.linalg.norm(v, axis=1)
            expected[b] = np.divide(v[1:] @ v[0], norm[1:] * norm[0], out=np.zeros(len(v) - 1), where=norm[1:] > 0)
            expected[b] *= norm[0] > 0
        np.testing.assert_allclose(res.samples, expected, rtol=1e-10, atol=1e-12)
        assert np.isnan(res.samples[[3, 4]]).all() and np.isfinite(res.samples[5]).all()
        if method != "cosine":  # a constant model has no spread: similarity 0 (cosine does not centre)
            assert (res.samples[np.isfinite(res.samples[:, 0]), -1] == 0).all()


@pytest.mark.parametrize("method", METHODS)
def test_stimulus_bootstrap_equals_rsatoolbox(method: str, subjects) -> None:
    data, models = subjects
    idx = _resamples(11, 14, 15)
    res = compare_models(data[0], models, method=method, resamples=idx)
    np.random.seed(11)  # noqa: NPY002 (rsatoolbox's global RNG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = eval_bootstrap_pattern(
            _fixed_models(models), RDMs(data[:1]), method=COMPARATORS[method], N=15, boot_noise_ceil=False
        )
    np.testing.assert_allclose(res.samples, ref.evaluations, rtol=1e-9, atol=1e-12)


def test_both_and_subject_bootstrap_equal_rsatoolbox(subjects) -> None:
    data, models = subjects
    n_boot = 12
    np.random.seed(12)  # noqa: NPY002 (rsatoolbox's global RNG)
    subj, stim = [], []
    for _ in range(n_boot):  # the order of rsatoolbox's bootstrap_sample draws
        subj.append(np.random.randint(0, 5, size=5))  # noqa: NPY002 (rsatoolbox's global RNG)
        stim.append(np.random.randint(0, 14, size=14))  # noqa: NPY002 (rsatoolbox's global RNG)
    res = compare_models(
        data, models, method="pearson", bootstrap="both", resamples=np.stack(stim), subject_resamples=np.stack(subj)
    )
    np.random.seed(12)  # noqa: NPY002 (rsatoolbox's global RNG)
    ref = eval_bootstrap(_fixed_models(models), RDMs(data), method="corr", N=n_boot, boot_noise_ceil=False)
    np.testing.assert_allclose(res.samples, ref.evaluations, rtol=1e-9, atol=1e-12)
    sub = compare_models(data, models, method="spearman", subject_resamples=np.stack(subj))
    assert sub.bootstrap == "subjects"
    per_subject = compare_rdms(data, models)
    np.testing.assert_allclose(sub.samples, np.stack([per_subject[s].mean(0) for s in subj]), rtol=1e-12)


def test_pairwise_tests_equal_rsatoolbox(subjects) -> None:
    data, models = subjects
    res = compare_models(data[0], models, n_bootstrap=200, seed=3)
    ref = bootstrap_pair_tests(res.samples)
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(res.pairwise_p[off], ref[off], rtol=1e-12)
    iu = np.triu_indices(3, 1)
    np.testing.assert_allclose(res.pairwise_p_fdr[iu], stats.false_discovery_control(ref[iu]), rtol=1e-12)
    assert np.isnan(np.diag(res.pairwise_p)).all()
    assert res.pairwise_p[0, 1] < 0.05  # the related model beats the unrelated one


def test_bootstrap_ci_covers_the_truth() -> None:
    """Stimuli drawn from a population: the interval covers the population similarity most of the time."""
    rng = np.random.default_rng(13)
    weights = rng.standard_normal((8, 30))

    def rdms(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return compute_rdms(z @ weights, "euclidean")[0], compute_rdms(z[:, :4], "euclidean")

    big = rng.standard_normal((1200, 8))
    truth = compare_rdms(*rdms(big), "pearson")[0, 0]
    covered, widths = [], []
    for _ in range(40):
        data, model = rdms(rng.standard_normal((30, 8)))
        res = compare_models(data, model, method="pearson", n_bootstrap=300, seed=int(rng.integers(1 << 30)))
        covered.append(res.ci_low[0] <= truth <= res.ci_high[0])
        widths.append(res.ci_high[0] - res.ci_low[0])
    assert 0.8 <= np.mean(covered) and 0 < np.median(widths) < 0.6


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_a", "cosine_cov"])
def test_permutation_p_equals_brute_force(method: str, subjects) -> None:
    data, models = subjects
    n_perm = 40
    res = compare_models(data[:2], models, method=method, n_bootstrap=0, n_permutations=n_perm, seed=5)
    rng = np.random.default_rng(5)
    squares = rdm_matrix(data[:2])
    null = []
    for _ in range(n_perm):
        perm = rng.permutation(14)
        permuted = rdm_vector(squares[:, perm][:, :, perm])
        null.append(compare_rdms(permuted, models, method).mean(0))
    observed = compare_rdms(data[:2], models, method).mean(0)
    expected = (1 + (np.array(null) >= observed - 1e-12).sum(0)) / (1 + n_perm)
    np.testing.assert_allclose(res.p_value, expected)
    assert np.isnan(res.ci_low).all() and res.samples.shape == (0, 3)


def test_permutation_p_null_and_related() -> None:
    rng = np.random.default_rng(14)
    x = rng.standard_normal((25, 20))
    data = compute_rdms(x + 0.5 * rng.standard_normal((25, 20)), "correlation")
    models = np.vstack([compute_rdms(x, "correlation"), compute_rdms(rng.standard_normal((25, 20)), "correlation")])
    res = compare_models(data, models, n_bootstrap=0, n_permutations=500, seed=1)
    assert res.p_value[0] == pytest.approx(1 / 501)  # nothing in the null reaches the related model
    assert res.p_value[1] > 0.05
    unrelated = [
        compare_models(
            compute_rdms(rng.standard_normal((12, 5)), "euclidean"),
            compute_rdms(rng.standard_normal((12, 5)), "euclidean"),
            n_bootstrap=0,
            n_permutations=99,
            seed=s,
        ).p_value[0]
        for s in range(20)
    ]
    assert 0.3 < np.mean(unrelated) < 0.7 and np.mean(np.array(unrelated) < 0.05) <= 0.2


def test_compare_models_table_and_errors(subjects) -> None:
    data, models = subjects
    res = compare_models(data, models, n_bootstrap=50)
    assert res.bootstrap == "subjects"
    table = res.table(["a", "b", "c"])
    assert list(table.columns) == ["model", "similarity", "ci_low", "ci_high", "p_value"]
    assert (table["ci_low"] <= table["similarity"] + 1e-12).all()
    with pytest.raises(ValueError, match="n_stimuli"):
        compare_models(data, models, n_stimuli=15)
    with pytest.raises(ValueError, match="comparator"):
        compare_models(data, models, method="kendall")
