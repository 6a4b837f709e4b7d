import numpy as np
import pytest
import torch
from skimage import data

from scene2brain.features import (
    LAYER_NAMES,
    FeatureCache,
    GaborPyramid,
    extract_efficientnet_features,
    load_efficientnet_lite0,
    pca_reduce,
    preprocess_images,
)

IMAGENET_CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_bundled_weights_classify_chelsea_as_a_cat():
    model = load_efficientnet_lite0("imagenet")
    with torch.inference_mode():
        probs = model(preprocess_images(data.chelsea()[None])).softmax(-1)[0]
    top = int(probs.argmax())
    assert top in IMAGENET_CAT_CLASSES, f"top class {top}"
    assert probs[list(IMAGENET_CAT_CLASSES)].sum() > 0.8
    # and a rocket is not a cat
    with torch.inference_mode():
        rocket = model(preprocess_images(data.rocket()[None])).softmax(-1)[0]
    assert int(rocket.argmax()) not in IMAGENET_CAT_CLASSES


def test_weights_from_a_local_file_and_bad_files(tmp_path):
    torch.manual_seed(0)
    random_model = load_efficientnet_lite0(None)
    path = tmp_path / "w.pth"
    torch.save(random_model.state_dict(), path)
    loaded = load_efficientnet_lite0(path)
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), random_model(x))
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        load_efficientnet_lite0(tmp_path / "missing.pth")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not match EfficientNet-Lite0"):
        load_efficientnet_lite0(tmp_path / "bad.pth")


def test_layer_extraction_shapes_and_pooling():
    images = np.random.default_rng(0).integers(0, 255, (3, 40, 40, 3), dtype=np.uint8)
    out = extract_efficientnet_features(
        images, ["blocks.2", "head", "logits"], batch_size=2, weights=None, progress=False
    )
    assert out["blocks.2"].shape == (3, 24) and out["head"].shape == (3, 1280) and out["logits"].shape == (3, 1000)
    flat = extract_efficientnet_features(images[:1], ["blocks.15"], pooling="flatten", weights=None, progress=False)
    assert flat["blocks.15"].shape == (1, 320 * 7 * 7)
    gray = extract_efficientnet_features(images[..., 0], ["head"], weights=None, progress=False)
    assert gray["head"].shape == (3, 1280)
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite0 layers"):
        extract_efficientnet_features(images, ["fc7"], weights=None, progress=False)
    assert len(LAYER_NAMES) == 19


def test_gabor_channel_counts():
    assert GaborPyramid(64).n_channels == 2729
    assert GaborPyramid(128, (1, 2, 4, 8, 16, 32)).n_channels == 10921
    assert len(GaborPyramid(64).channels()) == 2729
    with pytest.raises(ValueError, match="Nyquist"):
        GaborPyramid(16, (1, 8))


def test_gabor_wavelets_are_zero_mean_unit_length():
    cos_w, sin_w = GaborPyramid(32, (1, 2, 4, 8)).wavelets()
    np.testing.assert_allclose(cos_w[:, :-1].sum(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(cos_w, axis=0), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(sin_w[:, :-1], axis=0), 1, rtol=1e-5)


def test_gabor_transform_matches_direct_per_wavelet_computation():
    size, freqs = 16, (1, 2, 4)
    pyramid = GaborPyramid(size, freqs, n_orientations=4)
    images = np.random.default_rng(0).random((2, size, size))
    table = pyramid.channels()
    coords = (np.arange(size) + 0.5) / size
    xx, yy = np.meshgrid(coords, coords)
    expected = np.zeros((2, len(table)))
    for c, ch in table.iterrows():
        if ch["kind"] == "luminance":
            expected[:, c] = np.sqrt(2) * np.abs(images.sum(axis=(1, 2)) / size)
            continue
        sigma = 3 * np.sqrt(2 * np.log(2)) / (2 * np.pi) / ch["frequency"]
        dx, dy = xx - ch["x"], yy - ch["y"]
        env = np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
        env[env < 0.01] = 0
        energy = 0.0
        for carrier in (np.cos, np.sin):
            w = env * carrier(
                2 * np.pi * ch["frequency"] * (dx * np.cos(ch["orientation"]) + dy * np.sin(ch["orientation"]))
            )
            w[env > 0] -= w[env > 0].mean()
            w /= np.linalg.norm(w)
            energy = energy + ((images * w).sum(axis=(1, 2))) ** 2
        expected[:, c] = np.sqrt(energy)
    np.testing.assert_allclose(pyramid.transform(images), expected, rtol=1e-4, atol=1e-5)


def test_gabor_prefers_the_grating_orientation_and_frequency():
    pyramid = GaborPyramid(64)
    coords = (np.arange(64) + 0.5) / 64
    xx, yy = np.meshgrid(coords, coords)
    theta = np.pi / 4
    grating = np.cos(2 * np.pi * 8 * (xx * np.cos(theta) + yy * np.sin(theta)))
    energy = pyramid.transform(grating[None])[0, :-1]
    best = pyramid.channels().iloc[int(np.argmax(energy))]
    assert best["frequency"] == 8 and best["orientation"] == pytest.approx(theta)


def test_pca_is_fitted_on_training_rows_only():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 10))
    train = np.arange(30)
    reduced, _ = pca_reduce(X, train, 4)
    X_changed = X.copy()
    X_changed[30:] *= 100  # test rows must not influence the projection
    reduced2, _ = pca_reduce(X_changed, train, 4)
    np.testing.assert_allclose(np.abs(reduced[:30]), np.abs(reduced2[:30]), rtol=1e-5)
    assert reduced.shape == (50, 4) and reduced.dtype == np.float32


def test_feature_cache_hits_and_keys(tmp_path):
    cache = FeatureCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    a, hit_a = cache.get_or_compute("x", {"layer": "a"}, compute)
    b, hit_b = cache.get_or_compute("x", {"layer": "a"}, compute)
    _, hit_c = cache.get_or_compute("x", {"layer": "b"}, compute)
    assert (hit_a, hit_b, hit_c) == (False, True, False) and len(calls) == 2
    np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left
