"""COCO categories through the NSD crop, and `scene2brain datasets` listing and check."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from dataset_fixtures import write_algonauts_subject
from typer.testing import CliRunner

from scene2brain.cli import app
from scene2brain.data.datasets import DatasetFileError, check_dataset, nsd_coco_categories
from scene2brain.data.datasets.coco import nsd_coco_labels, visible_fraction


def _coco_fixture(tmp_path):
    ann = {
        "info": {}, "licenses": [],
        "categories": [{"id": 1, "name": "person", "supercategory": "person"},
                       {"id": 18, "name": "dog", "supercategory": "animal"}],
        "images": [{"id": 532481, "height": 400, "width": 600, "file_name": "a.jpg"},
                   {"id": 139, "height": 400, "width": 600, "file_name": "b.jpg"}],
        "annotations": [
            # a person in the top 40 px of image 532481, cut away when the top 20 % is cropped
            {"id": 1, "image_id": 532481, "category_id": 1, "bbox": [100, 0, 50, 40], "area": 2000, "iscrowd": 0},
            {"id": 2, "image_id": 532481, "category_id": 18, "bbox": [200, 200, 100, 100], "area": 1e4, "iscrowd": 0},
            {"id": 3, "image_id": 139, "category_id": 1, "bbox": [0, 300, 80, 100], "area": 8000, "iscrowd": 0},
        ],
    }  # fmt: skip
    (tmp_path / "instances_val2017.json").write_text(json.dumps(ann))
    return pd.DataFrame(
        {"nsdId": [0, 1], "cocoId": [532481, 139], "cocoSplit": ["val2017", "val2017"],
         "cropBox": [(0.2, 0.0, 0.1, 0.1), (0.0, 0.0, 0.0, 0.0)]}
    )  # fmt: skip


def test_coco_categories_respect_the_crop(tmp_path):
    info = _coco_fixture(tmp_path)
    labels = nsd_coco_categories(info, tmp_path)
    assert list(labels.columns) == ["person", "dog"]
    assert labels.loc[0].tolist() == [False, True]  # the person was cropped away
    assert labels.loc[1].tolist() == [True, False]
    uncropped = info.assign(cropBox=[(0.0, 0.0, 0.0, 0.0)] * 2)
    assert nsd_coco_categories(uncropped, tmp_path).loc[0, "person"]
    assert visible_fraction([0, 0, 10, 10], (0.0, 0.0, 0.25, 0.0), 10, 20) == pytest.approx(0.5)
    with pytest.raises(DatasetFileError, match=r"instances_train2017\.json: missing"):
        nsd_coco_categories(info.assign(cocoSplit="train2017"), tmp_path)


def test_coco_labels_person_supercategories_and_main_supercategory(tmp_path):
    info = _coco_fixture(tmp_path)
    labels = nsd_coco_labels(info, tmp_path)
    assert list(labels.columns) == [
        "has_person", "person", "main_supercategory", "supercategory_person", "supercategory_animal"
    ]  # fmt: skip
    assert labels.loc[0].tolist() == [False, "non-person", "animal", False, True]  # the person was cropped away
    assert labels.loc[1].tolist() == [True, "person", "person", True, False]
    # the main supercategory goes by visible area: uncropped, the dog (10000) beats the person (2000) ...
    uncropped = info.assign(cropBox=[(0.0, 0.0, 0.0, 0.0)] * 2)
    assert nsd_coco_labels(uncropped, tmp_path).loc[0, "main_supercategory"] == "animal"
    # ... but with x > 210 cut away 10 % of the dog's box is left (visible area 1000 < 2000)
    cut = info.assign(cropBox=[(0.0, 0.0, 0.0, 0.65), (0.0, 0.0, 0.0, 0.0)])
    row = nsd_coco_labels(cut, tmp_path).loc[0]
    assert row["main_supercategory"] == "person" and row["has_person"] and row["supercategory_animal"]
    # a stricter visibility rule: the 10 % of the dog left no longer counts
    strict = nsd_coco_labels(cut, tmp_path, min_visible_fraction=0.5).loc[0]
    assert not strict["supercategory_animal"] and strict["main_supercategory"] == "person"
    data = json.loads((tmp_path / "instances_val2017.json").read_text())
    for category in data["categories"]:
        del category["supercategory"]
    (tmp_path / "instances_val2017.json").write_text(json.dumps(data))
    with pytest.raises(DatasetFileError, match=r"COCO categories \['person', 'dog'\] have no 'supercategory'"):
        nsd_coco_labels(info, tmp_path)


def test_coco_without_pycocotools_says_how_to_install(tmp_path, monkeypatch):
    info = _coco_fixture(tmp_path)
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    with pytest.raises(ImportError, match=r"pip install 'scene2brain\[coco\]'"):
        nsd_coco_categories(info, tmp_path)
    with pytest.raises(ImportError, match=r"nsd_coco_labels needs pycocotools"):
        nsd_coco_labels(info, tmp_path)


def test_check_reports_missing_and_malformed_files(tmp_path):
    write_algonauts_subject(tmp_path, 1)
    assert all(status == "ok" for _, status in check_dataset("algonauts2023", tmp_path))
    (tmp_path / "subj01/roi_masks/mapping_streams.npy").unlink()
    fmri = tmp_path / "subj01/training_split/training_fmri/rh_training_fmri.npy"
    fmri.write_bytes(fmri.read_bytes()[:40])
    report = dict(check_dataset("algonauts2023", tmp_path))
    assert report["subj01/roi_masks/mapping_streams.npy"] == "missing"
    assert report["subj01/training_split/training_fmri/rh_training_fmri.npy"].startswith("malformed")
    assert sum(s != "ok" for s in report.values()) == 2

    runner = CliRunner()
    result = runner.invoke(app, ["datasets", "check", "algonauts2023", str(tmp_path)])
    assert result.exit_code == 1
    assert "mapping_streams.npy" in result.output and "malformed" in result.output
    listing = runner.invoke(app, ["datasets"])
    assert listing.exit_code == 0
    for name in ("algonauts2023", "nsd", "kay2008", "things-fmri", "bold5000", "coco"):
        assert name in listing.output
    bad = runner.invoke(app, ["datasets", "check", "hcp", str(tmp_path)])
    assert bad.exit_code != 0 and "expected one of" in bad.output


def test_check_prints_notes_about_partial_nan(tmp_path):
    write_algonauts_subject(tmp_path, 1)
    fmri = tmp_path / "subj01/training_split/training_fmri/lh_training_fmri.npy"
    data = np.load(fmri)
    data[0, :2] = np.nan
    np.save(fmri, data)
    result = CliRunner().invoke(app, ["datasets", "check", "algonauts2023", str(tmp_path)], terminal_width=300)
    assert result.exit_code == 0, result.output
    note = next(line for line in result.output.splitlines() if line.startswith("note"))
    assert "lh_training_fmri.npy" in note and "2 NaN" in note
    assert "nan_policy" in result.output  # a run with the default policy refuses this copy: say how to allow it


def test_every_listed_loader_exists():
    """`scene2brain datasets` names a function per dataset; each must be importable under that name."""
    import importlib

    from scene2brain.data.datasets import DATASETS

    for info in DATASETS.values():
        module, _, name = info.loader.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name, None)), f"{info.name}: {info.loader}"
