import numpy as np
import pytest

from scene2brain.features import GaborPyramid, to_grayscale


def test_gabor_channel_counts():
    assert GaborPyramid(64).n_channels == 2729
    assert GaborPyramid(128, (1, 2, 4, 8, 16, 32)).n_channels == 10921
    assert len(GaborPyramid(64).channels()) == 2729
    with pytest.raises(ValueError, match="Nyquist"):
        GaborPyramid(16, (1, 8))


def test_gabor_wavelets_are_zero_mean_unit_length():
    cos_w, sin_w = (w.toarray() for w in GaborPyramid(32, (1, 2, 4, 8)).wavelets())
    np.testing.assert_allclose(cos_w[:, :-1].sum(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(cos_w, axis=0), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(sin_w[:, :-1], axis=0), 1, rtol=1e-5)


def _direct_energy(images, channel, size, aperture=False):
    """One channel's contrast energy, built from the formulas on the full pixel grid."""
    if channel["kind"] == "luminance":
        return np.sqrt(2) * np.abs(images.sum(axis=(1, 2)) / size)
    coords = (np.arange(size) + 0.5) / size
    xx, yy = np.meshgrid(coords, coords)
    sigma = 3 * np.sqrt(2 * np.log(2)) / (2 * np.pi) / channel["frequency"]
    dx, dy = xx - channel["x"], yy - channel["y"]
    env = np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    env[env < 0.01] = 0
    if aperture and env[np.hypot(xx - 0.5, yy - 0.5) > 0.45].sum() > 0.5 * env.sum():
        return np.zeros(len(images))
    energy = 0.0
    for carrier in (np.cos, np.sin):
        theta = channel["orientation"]
        w = env * carrier(2 * np.pi * channel["frequency"] * (dx * np.cos(theta) + dy * np.sin(theta)))
        w[env > 0] -= w[env > 0].mean()
        w /= np.linalg.norm(w)
        energy = energy + ((images * w).sum(axis=(1, 2))) ** 2
    return np.sqrt(energy)


@pytest.mark.parametrize("aperture", [False, True])
def test_gabor_transform_matches_direct_per_wavelet_computation(aperture):
    size = 16
    pyramid = GaborPyramid(size, (1, 2, 4), n_orientations=4, aperture=aperture)
    images = np.random.default_rng(0).random((2, size, size))
    table = pyramid.channels()
    expected = np.stack([_direct_energy(images, ch, size, aperture) for _, ch in table.iterrows()], axis=1)
    np.testing.assert_allclose(pyramid.transform(images), expected, rtol=1e-4, atol=1e-5)
    assert (expected[:, :-1] == 0).all(axis=0).any() == aperture


def test_kay2008_pyramid_at_128_px_matches_direct_computation_on_sampled_channels():
    pyramid = GaborPyramid.kay2008(128)
    assert pyramid.frequencies == (1, 2, 4, 8, 16, 32) and pyramid.n_channels == 10921
    assert GaborPyramid.kay2008(64).frequencies == (1, 2, 4, 8, 16)
    cos_w, sin_w = pyramid.wavelets()
    assert cos_w.shape == sin_w.shape == (128 * 128, 10921)
    images = np.random.default_rng(1).random((3, 128, 128))
    got = pyramid.transform(images)
    table = pyramid.channels()
    sample = np.random.default_rng(2).choice(len(table), 120, replace=False)
    for c in [*sample, len(table) - 1]:
        np.testing.assert_allclose(got[:, c], _direct_energy(images, table.iloc[c], 128, True), rtol=1e-4, atol=1e-5)
    # corner wavelets of the finest scale lie outside the circular aperture, centre ones inside
    finest = table.index[(table["frequency"] == 32)]
    corner = finest[(table.loc[finest, "x"] < 0.05) & (table.loc[finest, "y"] < 0.05)]
    centre = finest[(abs(table.loc[finest, "x"] - 0.5) < 0.05) & (abs(table.loc[finest, "y"] - 0.5) < 0.05)]
    assert (got[:, corner] == 0).all() and (got[:, centre] > 0).all()


def test_gabor_prefers_the_grating_orientation_and_frequency():
    pyramid = GaborPyramid(64)
    coords = (np.arange(64) + 0.5) / 64
    xx, yy = np.meshgrid(coords, coords)
    theta = np.pi / 4
    grating = np.cos(2 * np.pi * 8 * (xx * np.cos(theta) + yy * np.sin(theta)))
    energy = pyramid.transform(grating[None])[0, :-1]
    best = pyramid.channels().iloc[int(np.argmax(energy))]
    assert best["frequency"] == 8 and best["orientation"] == pytest.approx(theta)


def test_gabor_is_an_extractor_behind_the_store_api(tmp_path):
    from scene2brain.features import FeatureStore, extract_features, load_model
    from scene2brain.features.extraction import extract_to_store

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (37, 40, 40, 3), dtype=np.uint8)
    gabor = load_model("gabor", image_size=32)
    direct = GaborPyramid.kay2008(32, aperture=False).transform(to_grayscale(images, 32))
    stored = extract_features(images, gabor, ["energy"], store=tmp_path, batch_size=8, progress=False)["energy"]
    np.testing.assert_array_equal(stored, direct)  # batching does not change the energies
    _, computed = extract_to_store(
        images, load_model("gabor", image_size=32), ["energy"], "avg", FeatureStore(tmp_path)
    )
    assert computed == []  # found in the store
    _, computed = extract_to_store(
        images, load_model("gabor", image_size=16), ["energy"], "avg", FeatureStore(tmp_path)
    )
    assert computed == ["energy"]  # another pyramid is another entry
    with pytest.raises(ValueError, match="the Gabor pyramid has one layer, 'energy'"):
        extract_features(images, gabor, ["conv1"], progress=False)
    with pytest.raises(ValueError, match="model 'gabor' has no weights"):
        load_model("gabor", weights="random")
    with pytest.raises(ValueError, match=r"options: \['size'\] are not options of model 'gabor'"):
        load_model("gabor", size=3)
