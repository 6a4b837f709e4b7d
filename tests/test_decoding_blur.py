"""Fixed-level image blur (features.blur) against scipy.ndimage and a hand-computed window mean."""

import numpy as np
import pytest
from scipy import ndimage

from scene2brain.features.blur import box_blur, box_equivalent_sigma, gaussian_blur


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (3, 17, 20, 3), dtype=np.uint8)


def test_gaussian_blur_matches_scipy_per_channel(images):
    out = gaussian_blur(images, 1.7)
    assert out.shape == images.shape and out.dtype == np.uint8
    for i in range(len(images)):
        for c in range(3):
            ref = ndimage.gaussian_filter(images[i, :, :, c].astype(float), 1.7, mode="mirror")
            np.testing.assert_array_equal(out[i, :, :, c], np.clip(np.rint(ref), 0, 255).astype(np.uint8))
    grey = images[..., 0]
    np.testing.assert_array_equal(gaussian_blur(grey, 1.7), out[..., 0])
    floats = images.astype(np.float32) / 255
    res = gaussian_blur(floats, 1.7)
    assert res.dtype == np.float32
    np.testing.assert_allclose(
        res[0, :, :, 1], ndimage.gaussian_filter(floats[0, :, :, 1].astype(float), 1.7, mode="mirror"), atol=1e-6
    )


def _box_reference(image: np.ndarray, k: int) -> np.ndarray:
    """Mean over the k x k window, borders mirrored without repeating the edge (reflect-101), by loops."""
    r = k // 2
    h, w = image.shape

    def mirror(i: int, n: int) -> int:
        while i < 0 or i >= n:
            i = -i if i < 0 else 2 * (n - 1) - i
        return i

    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            out[y, x] = np.mean(
                [image[mirror(y + dy, h), mirror(x + dx, w)] for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
            )
    return out


@pytest.mark.parametrize("k", [3, 5])
def test_box_blur_is_the_window_mean_with_mirrored_borders(images, k):
    out = box_blur(images, k)
    assert out.shape == images.shape and out.dtype == np.uint8
    for c in range(3):
        ref = _box_reference(images[1, :, :, c].astype(float), k)
        np.testing.assert_array_equal(out[1, :, :, c], np.rint(ref).astype(np.uint8))
    # corner by hand: k=3 at (0, 0) averages rows/columns (1, 0, 1)
    img = images[0, :, :, 0].astype(float)
    corner = np.mean([img[a, b] for a in (1, 0, 1) for b in (1, 0, 1)])
    assert box_blur(images[:1, :, :, 0], 3)[0, 0, 0] == np.rint(corner)


def test_identities_and_errors(images):
    np.testing.assert_array_equal(gaussian_blur(images, 0), images)
    np.testing.assert_array_equal(box_blur(images, 1), images)
    assert gaussian_blur(images, 0) is not images
    for bad in (2, 0, -3):
        with pytest.raises(ValueError, match="odd"):
            box_blur(images, bad)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(images, -1)
    with pytest.raises(ValueError, match="images"):
        gaussian_blur(images[0, 0], 1.0)
    assert box_equivalent_sigma(3) == pytest.approx(np.sqrt(8 / 12))
    assert box_equivalent_sigma(7) == pytest.approx(2.0)


def _high_frequency_energy(images: np.ndarray) -> float:
    spectrum = np.abs(np.fft.fft2(images.astype(float) - images.mean(), axes=(1, 2))) ** 2
    fy = np.abs(np.fft.fftfreq(images.shape[1]))[:, None]
    fx = np.abs(np.fft.fftfreq(images.shape[2]))[None, :]
    return float(spectrum[:, (fy > 0.2) | (fx > 0.2)].sum())


def test_blur_reduces_high_frequency_energy_monotonically(images):
    gauss = [_high_frequency_energy(gaussian_blur(images, s)) for s in (0, 0.5, 1, 2, 4)]
    box = [_high_frequency_energy(box_blur(images, k)) for k in (1, 3, 5, 9)]
    assert all(np.diff(gauss) < 0) and all(np.diff(box) < 0)
    assert gauss[-1] < 0.05 * gauss[0]


def test_model_input_steps_equal_the_array_blur(images):
    """The torch steps (model preprocessing) and the array functions share one kernel and one border rule."""
    import torch

    from scene2brain.features.preprocessing import BoxBlur, GaussianBlur

    x = torch.from_numpy(images.astype(np.float64)).permute(0, 3, 1, 2)
    for step, blurred in ((GaussianBlur(1.7), gaussian_blur(images.astype(np.float64), 1.7)),
                          (BoxBlur(5), box_blur(images.astype(np.float64), 5))):  # fmt: skip
        np.testing.assert_allclose(step(x).permute(0, 2, 3, 1).numpy(), blurred, atol=1e-10)
