"""`scene2brain features` and `scene2brain extract`."""

import numpy as np
import zarr
from PIL import Image
from typer.testing import CliRunner

from scene2brain.cli import app

runner = CliRunner()


def test_features_lists_models_and_layers():
    result = runner.invoke(app, ["features"])
    assert result.exit_code == 0 and "efficientnet-lite0" in result.output and "inception_v3" in result.output
    result = runner.invoke(app, ["features", "layers", "efficientnet-lite0", "--contains", "_blocks.15"])
    assert result.exit_code == 0, result.output
    assert "_blocks.15" in result.output and "320 x 7 x 7" in result.output
    result = runner.invoke(app, ["features", "layers", "no-such-net"])
    assert result.exit_code != 0 and "unknown name 'no-such-net'" in result.output


def test_extract_writes_a_store_and_reuses_it(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 3), dtype=np.uint8)
    folder = tmp_path / "stimuli"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i}.png")
    args = ["extract", "--stimuli", str(folder), "--out", str(tmp_path / "store"), "--layers", "_blocks.1,head"]
    first = runner.invoke(app, [*args, "--weights", "random", "--batch-size", "2", "--quiet"])
    assert first.exit_code == 0, first.output
    assert first.output.count("computed") == 2 and "5 x 1280" in first.output
    second = runner.invoke(app, [*args, "--weights", "random", "--quiet"])
    assert second.exit_code == 0 and second.output.count("cached") == 2
    arrays = sorted((tmp_path / "store").rglob("features.zarr"))
    assert len(arrays) == 2 and {zarr.open_array(p).shape for p in arrays} == {(5, 24), (5, 1280)}
    np.save(tmp_path / "images.npy", images)
    from_array = runner.invoke(
        app, ["extract", "--stimuli", str(tmp_path / "images.npy"), "--out", str(tmp_path / "store2"), "--weights",
              "random", "--layers", "head", "--pool", "adaptive2", "--quiet"],
    )  # fmt: skip
    assert from_array.exit_code == 0 and "5 x 5120" in from_array.output
    bad = runner.invoke(app, [*args[:-1], "fc7", "--weights", "random", "--quiet"])
    assert bad.exit_code == 2 and "['fc7'] not in the model" in bad.output


def test_extract_retina_feeds_the_warp_straight_to_the_network(tmp_path):
    # alexnet's recipe resizes to 256 and centre-crops 224; with --retina the warp makes the
    # 224-px network input itself, so the stored key records no resize after it
    import json

    image = np.zeros((1, 96, 96, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", image)
    result = runner.invoke(
        app, ["extract", "--stimuli", str(tmp_path / "images.npy"), "--out", str(tmp_path / "store"), "--model",
              "alexnet", "--weights", "random", "--layers", "features.0", "--retina", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (key_file,) = (tmp_path / "store").rglob("key.json")
    prep = json.loads(key_file.read_text())["key"]["preprocessing"]
    assert prep["size"] == 224 and prep["resize"] is None
    assert [s["step"] for s in prep["steps"]] == ["RetinaWarp"] and prep["steps"][0]["output_size"] == 224
