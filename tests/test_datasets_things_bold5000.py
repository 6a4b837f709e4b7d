"""THINGS-fMRI and BOLD5000 loaders on format-faithful fixtures."""

import numpy as np
import pandas as pd
import pytest
from dataset_fixtures import write_bold5000, write_things, write_things_concepts

from scene2brain.data.datasets import DatasetFileError, load_bold5000, load_things_fmri


def test_things_voxels_are_rows_and_trials_keep_their_images(tmp_path):
    truth = write_things(tmp_path)
    exp = load_things_fmri(tmp_path, "sub-01")
    trials = truth["trials"]
    keep = (trials["trial_type"] != "catch").to_numpy()
    np.testing.assert_allclose(exp.responses.data, truth["values"][:, keep].T, rtol=1e-6)
    shown = exp.stimuli.table["stimulus_id"].to_numpy()[exp.responses.trial_stimulus]
    assert shown.tolist() == trials["stimulus"][keep].tolist()
    _, counts = exp.responses.repeat_counts()
    assert sorted(counts.tolist()) == [1] * 6 + [3, 3]  # test images repeated, single-trial rows kept
    test_names = set(exp.stimuli.table.loc[exp.splits["test"], "stimulus_id"])
    assert test_names == {"cake_13s.jpg", "boat_05n.jpg"}
    assert exp.stimuli.table.set_index("stimulus_id").loc["aardvark_02s.jpg", "concept"] == "aardvark"
    np.testing.assert_allclose(exp.voxels["noise_ceiling"], truth["voxels"]["nc_testset"] / 100)
    sub = load_things_fmri(tmp_path, 1, rois=["V1", "lFFA"], include_catch=True)
    assert sub.voxels["voxel_id"].tolist() == [1000, 1001, 1002, 1006]
    assert sub.responses.n_trials == len(trials) and "catch" in sub.splits


def test_things_categories_from_the_concept_table(tmp_path):
    write_things(tmp_path)
    truth = write_things_concepts(tmp_path / "things_concepts.tsv")
    exp = load_things_fmri(tmp_path, 1, concepts="things_concepts.tsv")  # relative to root
    table = exp.stimuli.table
    assert table["category"].tolist() == [truth[c] for c in table["concept"]]
    assert set(table["category"]) == {"animal", "dessert", "vehicle"}
    assert exp.metadata["category_column"] == "Bottom-up Category (Human Raters)"
    wordnet = load_things_fmri(tmp_path, 1, concepts=tmp_path / "things_concepts.tsv",
                               category_column="Top-down Category (WordNet)").stimuli.table  # fmt: skip
    by_concept = dict(zip(wordnet["concept"], wordnet["category"], strict=True))
    assert by_concept["cake"] == "food" and pd.isna(by_concept["zebra"])  # an empty cell: no category
    with_catch = load_things_fmri(tmp_path, 1, include_catch=True, concepts="things_concepts.tsv").stimuli.table
    catch = with_catch["trial_type"] == "catch"
    assert catch.any() and with_catch.loc[catch, "category"].isna().all()  # catch images are no concept
    assert "category" not in load_things_fmri(tmp_path, 1).stimuli.table


def test_things_concept_table_errors(tmp_path):
    write_things(tmp_path)
    with pytest.raises(DatasetFileError, match=r"things_concepts\.tsv: missing"):
        load_things_fmri(tmp_path, 1, concepts="things_concepts.tsv")
    path = tmp_path / "things_concepts.tsv"
    write_things_concepts(path)
    with pytest.raises(DatasetFileError, match=r"columns \['Category'\] missing; expected the THINGS concept"):
        load_things_fmri(tmp_path, 1, concepts=path, category_column="Category")
    table = pd.read_csv(path, sep="\t")
    table[table["uniqueID"] != "zebra"].to_csv(path, sep="\t", index=False)
    with pytest.raises(DatasetFileError, match=r"concepts \['zebra'\] of sub-01's images .* are not uniqueIDs"):
        load_things_fmri(tmp_path, 1, concepts=path)
    pd.concat([table, table.head(1)]).to_csv(path, sep="\t", index=False)
    with pytest.raises(DatasetFileError, match=r"uniqueID must be unique, 'aardvark' appears more than once"):
        load_things_fmri(tmp_path, 1, concepts=path)


def test_things_errors(tmp_path):
    write_things(tmp_path)
    with pytest.raises(ValueError, match=r"rois: \['hV4'\] are not columns"):
        load_things_fmri(tmp_path, 1, rois=["hV4"])
    with pytest.raises(DatasetFileError, match=r"sub-02_VoxelMetadata\.csv: missing"):
        load_things_fmri(tmp_path, 2)
    meta = tmp_path / "sub-01_StimulusMetadata.csv"
    meta.write_text("\n".join(meta.read_text().splitlines()[:-2]) + "\n")
    with pytest.raises(DatasetFileError, match=r"trial columns, but sub-01_StimulusMetadata\.csv lists"):
        load_things_fmri(tmp_path, 1)


def test_bold5000_rois_trials_and_sources(tmp_path):
    truth = write_bold5000(tmp_path)
    exp = load_bold5000(tmp_path, "CSI1", rois=["PPA", "LOC"])
    r = truth["rois"]
    expected = np.hstack([r["LHPPA"], r["RHPPA"], r["LHLOC"], r["RHLOC"]])
    np.testing.assert_allclose(exp.responses.data, expected, rtol=1e-6)
    assert exp.voxels["roi"].tolist() == ["PPA"] * 6 + ["LOC"] * 8
    assert exp.voxels["hemisphere"].tolist()[:6] == ["lh"] * 3 + ["rh"] * 3
    table = exp.stimuli.table
    shown = table["stimulus_id"].to_numpy()[exp.responses.trial_stimulus]
    assert shown.tolist() == truth["names"]
    assert table["stimulus_id"].tolist()[:3] == truth["names"][:3]  # order of first presentation
    assert table["source"].tolist() == ["coco", "imagenet", "scenes", "scenes", "imagenet"]
    assert set(table.loc[exp.splits["test"], "stimulus_id"]) == {truth["names"][0], truth["names"][1]}
    with pytest.raises(DatasetFileError, match=r"CSI1_ROIs_TR3\.mat: missing"):
        load_bold5000(tmp_path, 1, tr="3")
    with pytest.raises(ValueError, match="rois: expected a non-empty subset"):
        load_bold5000(tmp_path, 1, rois=["FFA"])
