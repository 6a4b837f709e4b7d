"""Model registry, layers, pooling, preprocessing and extraction."""

import urllib.error

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from torch import nn

from scene2brain.features import (
    FeatureModel,
    Preprocessing,
    WeightsUnavailableError,
    available_models,
    extract_features,
    list_layers,
    load_model,
    pool,
    to_unit_range,
)
from scene2brain.features.models import hub_checkpoint

IMAGENET_CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _images(n=3, size=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


class TinyNet(nn.Module):
    """A user module: conv -> relu -> token sequence -> linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2)
        self.relu = nn.ReLU()
        self.proj = nn.Linear(6, 5)

    def forward(self, x):
        h = self.relu(self.conv(x))
        tokens = h.flatten(2).transpose(1, 2)  # (n, tokens, 6)
        return self.proj(tokens)  # (n, tokens, 5)


def _tiny_model(seed=0, size=16):
    torch.manual_seed(seed)
    return FeatureModel.from_module(TinyNet(), Preprocessing(size, None), name="tiny")


def test_pretrained_efficientnet_lite0_classifies_chelsea_as_a_cat():
    out = extract_features(np.stack([data.chelsea(), data.rocket()[:300, :451]]), layers=["output"], progress=False)
    probs = torch.from_numpy(out["output"]).softmax(-1)
    assert int(probs[0].argmax()) in IMAGENET_CAT_CLASSES
    assert float(probs[0, list(IMAGENET_CAT_CLASSES)].sum()) > 0.8
    assert int(probs[1].argmax()) not in IMAGENET_CAT_CLASSES


@pytest.mark.parametrize(
    ("name", "layers", "size"),
    [  # layer -> (output shape per image as list_layers reports it, shape after pooling)
        ("efficientnet-lite0", {"_blocks.3": ((40, 28, 28), (40,)), "head": ((1280, 7, 7), (1280,))}, 224),
        ("alexnet", {"features.2": ((64, 27, 27), (64,)), "classifier.4": ((4096,), (4096,))}, 224),
        ("vgg16", {"features.29": ((512, 14, 14), (512,)), "classifier.1": ((4096,), (4096,))}, 224),
        ("resnet50", {"layer2": ((512, 28, 28), (512,)), "avgpool": ((2048, 1, 1), (2048,))}, 224),
        ("inception_v3", {"Mixed_5b": ((256, 35, 35), (256,)), "fc": ((1000,), (1000,))}, 299),
        ("mobilenet_v3_small", {"features.3": ((24, 28, 28), (24,)), "output": ((1000,), (1000,))}, 224),
        ("clip-vit-b-32", {"transformer.resblocks.5": ((50, 768), (768,)), "output": ((512,), (512,))}, 224),
    ],
)
def test_registry_models_build_and_extract_layers_in_one_pass(name, layers, size):
    model = load_model(name, weights="random")
    assert model.preprocessing.size == size and model.weights == "random(seed=0)"
    table = list_layers(model).set_index("layer")
    assert set(layers) <= set(table.index)
    pooling = {layer: "cls" if "resblocks" in layer else "avg" for layer in layers}
    out = extract_features(_images(2), model, list(layers), pooling, batch_size=2, progress=False)
    for layer, (layer_shape, pooled) in layers.items():
        assert tuple(table.loc[layer, "shape"]) == layer_shape
        assert out[layer].shape == (2, *pooled) and out[layer].dtype == np.float32
        assert np.isfinite(out[layer]).all()


def test_any_torchvision_classification_model_is_available():
    names = available_models()
    assert names[:2] == ["efficientnet-lite0", "clip-vit-b-32"]
    assert {"alexnet", "vgg16", "resnet50", "inception_v3", "convnext_tiny", "vit_b_16"} <= set(names)
    assert load_model("inception_v3", "random").preprocessing.resize == 342
    with pytest.raises(ValueError, match="unknown name 'alexnot'"):
        load_model("alexnot", "random")


def test_registered_user_models_load_by_name():
    from scene2brain.features import register_model
    from scene2brain.features.models import _REGISTRY

    seen = []

    def factory(weights):
        seen.append(weights)
        return FeatureModel.from_module(TinyNet(), Preprocessing(16, None), name="tiny")

    register_model("tiny-test", factory)
    try:
        assert "tiny-test" in available_models()
        a, b = load_model("tiny-test", "random", seed=5), load_model("tiny-test", "random", seed=5)
        assert seen == ["random", "random"] and a.weights == "random(seed=5)"
        assert a.weights_digest == b.weights_digest != load_model("tiny-test", "random", seed=6).weights_digest
    finally:
        _REGISTRY.pop("tiny-test")


def test_layer_list_and_pooling_shapes():
    table = list_layers(load_model("efficientnet-lite0", "random")).set_index("layer")
    assert table.loc["_blocks.15", "shape"] == (320, 7, 7)
    assert table.loc["head", "shape"] == (1280, 7, 7)
    assert table.loc["output", "shape"] == (1000,)
    fmap, tokens, vec = torch.rand(2, 3, 4, 6), torch.rand(2, 5, 7), torch.rand(2, 9)
    assert pool(fmap, "flatten").shape == (2, 72)
    torch.testing.assert_close(pool(fmap, "avg"), fmap.mean(dim=(2, 3)))
    torch.testing.assert_close(pool(fmap, "max"), fmap.amax(dim=(2, 3)))
    torch.testing.assert_close(pool(fmap, "adaptive2"), fmap.reshape(2, 3, 2, 2, 2, 3).mean(dim=(3, 5)).flatten(1))
    torch.testing.assert_close(pool(tokens, "cls"), tokens[:, 0])
    torch.testing.assert_close(pool(tokens, "mean_token"), tokens.mean(dim=1))
    assert pool(tokens, "flatten").shape == (2, 35)
    for pooling in ("flatten", "avg", "cls"):
        torch.testing.assert_close(pool(vec, pooling), vec)
    with pytest.raises(ValueError, match="does not apply to layer 'x', a token sequence"):
        pool(tokens, "avg", "x")
    with pytest.raises(ValueError, match="does not apply to layer 'x', a feature map"):
        pool(fmap, "cls", "x")
    with pytest.raises(ValueError, match="pooling: expected one of"):
        extract_features(_images(1), _tiny_model(), ["conv"], "median", progress=False)


def test_user_module_layers_match_a_manual_forward_pass():
    model = _tiny_model()
    images = _images(5, 16)
    out = extract_features(
        images, model, ["conv", "relu", "output"], {"conv": "adaptive2", "relu": "max", "output": "cls"},
        batch_size=2, progress=False,
    )  # fmt: skip
    x = model.preprocessing(images)
    with torch.inference_mode():
        conv = model.module.conv(x)
        expected_out = model.module(x)
    np.testing.assert_allclose(out["conv"], torch.nn.functional.adaptive_avg_pool2d(conv, 2).flatten(1), atol=1e-6)
    np.testing.assert_allclose(out["relu"], conv.relu().amax(dim=(2, 3)), atol=1e-6)
    np.testing.assert_allclose(out["output"], expected_out[:, 0], atol=1e-6)
    with pytest.raises(ValueError, match=r"\['fc7'\] not in the model"):
        extract_features(images, model, ["fc7"], progress=False)


def test_extraction_is_deterministic_and_independent_of_batch_size():
    model = load_model("efficientnet-lite0")
    images = _images(5)
    a = extract_features(images, model, ["_blocks.8"], batch_size=2, progress=False)["_blocks.8"]
    b = extract_features(images, model, ["_blocks.8"], batch_size=2, progress=False)["_blocks.8"]
    c = extract_features(images, model, ["_blocks.8"], batch_size=5, progress=False)["_blocks.8"]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)
    assert not model.module.training


def test_grayscale_images_equal_their_rgb_replication():
    model = load_model("efficientnet-lite0")
    gray = _images(2)[..., 0]
    a = extract_features(gray, model, ["head"], progress=False)["head"]
    b = extract_features(np.repeat(gray[..., None], 3, axis=-1), model, ["head"], progress=False)["head"]
    np.testing.assert_array_equal(a, b)


def test_kay_like_float_grayscale_stimuli(tmp_path):
    rng = np.random.default_rng(0)
    kay = rng.normal(0, 0.3, (3, 32, 32)).astype(np.float32)  # grayscale floats on their own scale
    model = _tiny_model()
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*to_unit_range"):
        extract_features(kay, model, ["conv"], progress=False)
    unit = to_unit_range(kay)
    assert unit.min() == 0 and unit.max() == 1
    as_uint8 = np.round(unit * 255).astype(np.uint8)
    a = extract_features(unit, model, ["conv"], progress=False)["conv"]
    b = extract_features(as_uint8, model, ["conv"], progress=False)["conv"]
    np.testing.assert_allclose(a, b, atol=0.01)


def test_folder_hdf5_and_array_sources_give_the_same_features(tmp_path):
    images = _images(4, 24)
    folder = tmp_path / "stimuli"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"img_{i:03d}.png")
    (folder / "notes.txt").write_text("not an image")
    with h5py.File(tmp_path / "brick.hdf5", "w") as f:
        f["imgBrick"] = images
    model = _tiny_model()
    ref = extract_features(images, model, ["conv"], progress=False)["conv"]
    for source in (folder, str(tmp_path / "brick.hdf5"), f"{tmp_path / 'brick.hdf5'}:imgBrick"):
        np.testing.assert_allclose(extract_features(source, model, ["conv"], progress=False)["conv"], ref, atol=1e-6)
    # a folder of images of different sizes is processed image by image
    Image.fromarray(_images(1, 40)[0]).save(folder / "img_999.png")
    assert extract_features(folder, model, ["conv"], progress=False)["conv"].shape == (5, 6)
    with pytest.raises(ValueError, match="no dataset 'stimuli'"):
        extract_features(f"{tmp_path / 'brick.hdf5'}:stimuli", model, ["conv"], progress=False)
    with pytest.raises(FileNotFoundError, match="folder not found"):
        extract_features(tmp_path / "missing", model, ["conv"], progress=False)


def test_preprocessing_matches_torchvision_transforms():
    from torchvision.transforms import v2

    image = data.astronaut()[:300, :400]
    prep = Preprocessing(224, 256)
    reference = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(256, antialias=True),
            v2.CenterCrop(224),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(prep.mean, prep.std),
        ]
    )(image)
    got = prep(image[None])[0]
    assert got.shape == (3, 224, 224)
    # torchvision resizes uint8 tensors and rounds to uint8 before scaling; we resize floats
    assert float((got - reference).abs().mean()) < 0.01


def test_local_weights_files_load_and_bad_files_fail(tmp_path):
    random_net = load_model("alexnet", "random", seed=3)
    path = tmp_path / "alexnet.pth"
    torch.save(random_net.module.state_dict(), path)
    loaded = load_model("alexnet", path)
    assert loaded.weights_digest == random_net.weights_digest
    assert loaded.weights_digest != load_model("alexnet", "random", seed=4).weights_digest
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not match alexnet"):
        load_model("alexnet", tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not match EfficientNet-Lite0"):
        load_model("efficientnet-lite0", tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="weights: file not found"):
        load_model("alexnet", tmp_path / "missing.pth")


def test_pretrained_weights_come_from_the_hub_cache_and_fail_clearly_offline(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    url = torchvision.models.AlexNet_Weights.DEFAULT.url
    with pytest.raises(WeightsUnavailableError, match=r"put it at .*alexnet-owt-7be5be79\.pth"):
        load_model("alexnet")
    # a copy placed in the cache is used without any download
    reference = load_model("alexnet", "random", seed=1)
    hub_checkpoint(url).parent.mkdir(parents=True, exist_ok=True)
    torch.save(reference.module.state_dict(), hub_checkpoint(url))
    assert load_model("alexnet").weights_digest == reference.weights_digest


def test_clip_without_cached_weights_fails_clearly_offline(monkeypatch):
    import open_clip.factory

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(open_clip.factory, "download_pretrained", offline)
    with pytest.raises(WeightsUnavailableError, match="clip-vit-b-32: the OpenAI weights"):
        load_model("clip-vit-b-32")
