"""End-to-end demo at reduced size: the pipeline must recover the simulation's ground truth."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scene2brain.cli import app
from scene2brain.data import load_experiment
from scene2brain.pipeline.demo import DemoSettings, run_demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    settings = DemoSettings(n_stimuli=480, n_voxels=600, seed=0, progress=False)
    first = run_demo(out, settings)
    second = run_demo(out, settings)
    return out, first, second


@pytest.mark.slow
def test_cli_demo_prints_summary_and_report_path(demo_run, tmp_path):
    out, _, _ = demo_run
    args = ["demo", "--out", str(tmp_path / "cli"), "--n-stimuli", "480", "--n-voxels", "600"]
    result = CliRunner().invoke(app, [*args, "--cache-dir", str(out / "cache"), "--quiet"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for text in ("Per-ROI summary", "EV", "gabor", "effnet:head", "PASS", "Report:"):
        assert text in result.output
    assert "FAIL" not in result.output
    assert (tmp_path / "cli" / "index.html").is_file()


@pytest.mark.slow
def test_demo_recovers_ground_truth(demo_run):
    _, result, _ = demo_run
    summary = result.roi_summary.set_index("roi")
    assert summary.loc["EV", "best_space"] == "gabor"
    assert summary.loc["HV", "best_space"] == "effnet:head"
    cal = result.voxel_metrics[result.voxel_metrics["roi"] == "CAL"]
    recovered = (cal["r[effnet:head]"].clip(lower=0) ** 2 / cal["true_noise_ceiling"]).median()
    assert recovered >= 0.8
    assert all(check["passed"] for check in result.checks.values()), result.checks


@pytest.mark.slow
def test_demo_writes_report_and_reuses_cache(demo_run):
    out, first, second = demo_run
    for name in ("index.html", "metrics.json", "roi_summary.csv", "voxel_metrics.csv", "figures/roi_accuracy.png"):
        assert (out / name).is_file(), name
    html = (out / "index.html").read_text()
    for src in ("roi_accuracy.png", "layer_hierarchy.png", "noise_ceiling.png", "calibration.png"):
        assert f"figures/{src}" in html and (out / "figures" / src).stat().st_size > 1000
    metrics = json.loads((out / "metrics.json").read_text())
    assert {row["roi"] for row in metrics["roi_summary"]} == {"EV", "HV", "FACE", "CAL"}
    voxels = pd.read_csv(out / "voxel_metrics.csv")
    assert len(voxels) == first.experiment.responses.n_voxels
    assert not any(first.cache_hits.values()) and all(second.cache_hits.values())
    assert second.timings["features"] < 0.2 * first.timings["features"]
    pd.testing.assert_frame_equal(first.voxel_metrics, second.voxel_metrics)
    saved = load_experiment(out / "experiment")
    np.testing.assert_array_equal(saved.responses.data, second.experiment.responses.data)
    pd.testing.assert_frame_equal(saved.voxels, second.experiment.voxels)
    pd.testing.assert_frame_equal(saved.stimuli.table, second.experiment.stimuli.table)


def test_cli_help_on_every_command():
    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "demo" in result.output
    for command in ("demo", "version"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
    assert "--n-stimuli" in runner.invoke(app, ["demo", "--help"]).output


def test_cli_rejects_bad_sizes():
    result = CliRunner().invoke(app, ["demo", "--n-stimuli", "10"])
    assert result.exit_code != 0 and "n_stimuli" in result.output


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "scene2brain", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "demo" in proc.stdout
