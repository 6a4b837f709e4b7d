import numpy as np
import pytest

from scene2brain.features import GaborPyramid


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
