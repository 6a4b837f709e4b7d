"""Cortical maps: values land on the right fsaverage vertices and are drawn (loading the meshes: test_fsaverage.py)."""

import numpy as np
import pytest
from dataset_fixtures import write_algonauts_subject

from scene2brain.data.datasets import load_algonauts2023
from scene2brain.data.fsaverage import N_FSAVERAGE5_VERTICES, load_surface
from scene2brain.data.fsaverage import N_FSAVERAGE_VERTICES as N_FS
from scene2brain.data.simulate import place_on_fsaverage5
from scene2brain.viz.surface import figure_surface_map, voxels_to_surface


def test_challenge_values_land_on_their_fsaverage_vertices(tmp_path):
    truth = write_algonauts_subject(tmp_path, 1, n_vertices=(30, 40))
    experiment = load_algonauts2023(tmp_path, 1, roi_families=())
    values = np.arange(experiment.responses.n_voxels, dtype=float) + 1  # lh vertices first, then rh
    maps = voxels_to_surface(values, experiment.voxels, N_FS)
    start = 0
    for hemi in ("lh", "rh"):
        vertices = truth["vertices"][hemi]  # written by the fixture: known fsaverage ids
        expected = np.full(N_FS, np.nan)
        expected[vertices] = values[start : start + len(vertices)]
        np.testing.assert_array_equal(maps[hemi], expected)
        start += len(vertices)
    # fsaverage5 keeps the values of fsaverage's first 10,242 vertices (nested icosahedra).
    small = voxels_to_surface(values, experiment.voxels, N_FSAVERAGE5_VERTICES)
    for hemi in ("lh", "rh"):
        np.testing.assert_array_equal(small[hemi], maps[hemi][:N_FSAVERAGE5_VERTICES])


def test_hand_made_voxel_table_and_errors():
    import pandas as pd

    voxels = pd.DataFrame({"hemisphere": ["rh", "lh", "rh"], "vertex": [5, 7, 10_300]})
    maps = voxels_to_surface(np.array([1.0, 2.0, 3.0]), voxels, N_FSAVERAGE5_VERTICES)
    assert maps["lh"][7] == 2.0 and maps["rh"][5] == 1.0 and np.isfinite(maps["rh"]).sum() == 1
    with pytest.raises(ValueError, match="one per voxel"):
        voxels_to_surface(np.zeros(2), voxels, N_FS)
    with pytest.raises(ValueError, match="'hemisphere' and 'vertex'"):
        voxels_to_surface(np.zeros(3), voxels[["vertex"]], N_FS)


def test_simulated_voxels_sit_posterior_early_rois_first():
    rng = np.random.default_rng(0)
    roi = np.array(["EV"] * 300 + ["HV"] * 200 + ["FACE"] * 100)
    hemi = np.where(rng.random(len(roi)) < 0.5, "lh", "rh")
    vertex = place_on_fsaverage5(roi, hemi)
    surface = load_surface("fsaverage5")
    for h in ("lh", "rh"):
        rows = hemi == h
        assert len(np.unique(vertex[rows])) == rows.sum() and vertex[rows].max() < N_FSAVERAGE5_VERTICES
        y = np.asarray(surface.meshes[h].coordinates)[vertex[rows], 1]
        assert y[roi[rows] == "EV"].max() <= y[roi[rows] == "HV"].min() + 1e-9  # EV behind HV
        assert y.max() < np.median(np.asarray(surface.meshes[h].coordinates)[:, 1])  # all in the back half
    assert place_on_fsaverage5(np.array(["EV"] * 10_243), np.array(["lh"] * 10_243)) is None


def test_surface_figure_draws_both_hemispheres_in_each_view():
    surface = load_surface("fsaverage5")
    maps = {h: np.where(np.arange(N_FSAVERAGE5_VERTICES) < 500, 1.0, np.nan) for h in ("lh", "rh")}
    fig = figure_surface_map(maps, surface, "test", ("lateral", "ventral"), vmin=0, vmax=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["lh lateral", "lh ventral", "rh lateral", "rh ventral"]
    assert fig.texts[0].get_text() == "test (fsaverage5, inflated)"
