"""RSA figures (scene2brain.viz.rsa): they draw what they are given."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from scene2brain.representation import compare_models, compute_rdms, noise_ceiling
from scene2brain.viz.rsa import figure_mds, figure_model_comparison, figure_rdms


def _rdms(rng: np.random.Generator, n: int = 12) -> dict[str, np.ndarray]:
    x = rng.standard_normal((n, 20))
    return {f"roi{i}": compute_rdms(x + i * rng.standard_normal(x.shape))[0] for i in range(4)}


def test_figure_rdms_orders_by_category_and_draws_boundaries() -> None:
    rng = np.random.default_rng(0)
    rdms = _rdms(rng)
    labels = np.array(list("abc" * 4))
    fig = figure_rdms(rdms, labels=labels)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    image = np.ma.filled(ax.get_images()[0].get_array(), np.nan)
    assert image.shape == (12, 12) and np.isnan(np.diag(image)).all()
    assert np.nanmin(image) >= 0 and np.nanmax(image) == 100  # percentiles of the ranks
    assert len(ax.lines) == 4  # 2 boundaries x (horizontal, vertical)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]


def test_figure_model_comparison_and_mds() -> None:
    rng = np.random.default_rng(1)
    rdms = _rdms(rng)
    data = np.vstack([v + 0.05 * rng.standard_normal(v.shape) for v in list(rdms.values())[:1] * 3])
    res = compare_models(data, np.vstack(list(rdms.values())), n_bootstrap=100, n_permutations=50)
    fig = figure_model_comparison(res.table(list(rdms)), noise_ceiling(data), res.pairwise_p_fdr, method="spearman")
    ax = fig.axes[0]
    assert len(ax.patches) == 5  # 4 bars and the noise-ceiling band
    assert ax.get_title().startswith("model RDMs vs data")
    fig = figure_mds(rdms)
    assert len(fig.axes[0].texts) == 4
