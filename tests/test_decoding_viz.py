"""Decoding figures: they draw what the tables hold (points, nulls, stars, normalised cells, bands)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from scene2brain.viz.decoding import figure_blur_curves, figure_confusion, figure_decoding_accuracy, stars


def test_accuracy_figure_shows_nulls_and_stars():
    table = pd.DataFrame(
        {
            "subject": ["s1"] * 4,
            "target": ["roi", "roi", "space", "space"],
            "name": ["V1", "FFA", "vgg", "resnet"],
            "decoder": ["ridge", "ridge", "logistic", "logistic"],
            "label": ["V1", "FFA", "vgg", "resnet"],
            "balanced_accuracy": [0.62, 0.40, 0.75, 0.36],
            "chance": [1 / 3] * 4,
            "p_corrected": [0.004, 0.3, 0.0005, np.nan],
        }
    )
    rng = np.random.default_rng(0)
    null = {label: 1 / 3 + 0.03 * rng.standard_normal(100) for label in ["V1", "FFA", "vgg"]}
    fig = figure_decoding_accuracy(table, null)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    roi, space = fig.axes
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["**", "***"]  # V1 (p 0.004), vgg (p 0.0005); none for FFA and resnet
    assert sum(isinstance(c, PolyCollection) for c in roi.collections) == 2  # two violins
    assert sum(isinstance(c, PolyCollection) for c in space.collections) == 1  # resnet has no null
    assert [t.get_text() for t in roi.get_xticklabels()] == ["V1", "FFA"]
    assert [stars(p) for p in (0.0009, 0.009, 0.049, 0.05, np.nan)] == ["***", "**", "*", "", ""]


def test_confusion_figure_is_row_normalised():
    confusions = {
        "V1": (np.array([[8, 2], [1, 9]]), ["a", "b"]),
        "FFA": (np.array([[3, 1, 0], [0, 0, 0], [1, 1, 2]]), ["x", "y", "z"]),
    }
    fig = figure_confusion(confusions)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.8, 0.2], [0.1, 0.9]])
    cells = fig.axes[1].images[0].get_array()
    assert np.ma.getmaskarray(cells)[1].all() and cells[0, 0] == pytest.approx(0.75)  # empty row blank
    with pytest.raises(ValueError):
        figure_confusion({})


def test_blur_curves_have_bands_and_chance():
    rows = []
    for space in ("vgg", "resnet"):
        for kind, levels in (("gaussian", [0, 1, 2, 4]), ("box", [1, 3, 7, 15])):
            for i, level in enumerate(levels):
                acc = 0.8 - 0.1 * i
                rows.append(
                    {
                        "space": space,
                        "blur": kind,
                        "level": level,
                        "accuracy": acc,
                        "ci_low": acc - 0.05,
                        "ci_high": acc + 0.05,
                        "chance": 1 / 3,
                    }
                )
    fig = figure_blur_curves(pd.DataFrame(rows))
    assert len(fig.axes) == 2
    gauss, box = fig.axes
    assert len(gauss.lines) == 3 and len(gauss.collections) == 2  # 2 spaces + chance; 2 bands
    assert gauss.lines[-1].get_ydata()[0] == pytest.approx(1 / 3)
    assert "σ 2.0" in box.get_xticklabels()[2].get_text()
    one = figure_blur_curves(pd.DataFrame(rows).query("blur == 'gaussian'").assign(subject="s1"))
    assert len(one.axes) == 1
