"""Blur perturbations and the retina warp."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from scene2brain.features import BoxBlur, GaussianBlur, Preprocessing, RetinaWarp, box_equivalent_sigma
from scene2brain.features.retina import radius_map


def _image(size=48, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((1, 3, size, size)).astype(np.float32))


@pytest.mark.parametrize("sigma", [0.7, 2.0, 4.0])
def test_gaussian_blur_matches_scipy_and_torchvision(sigma):
    from torchvision.transforms.functional import gaussian_blur

    x = _image()
    blurred = GaussianBlur(sigma)(x).numpy()
    # the documented boundary: scipy's "mirror" (reflect-101), kernel truncated at int(4 sigma + 0.5) px
    expected = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="mirror")
    np.testing.assert_allclose(blurred, expected, atol=1e-5)
    # torchvision pads with torch's "reflect" (the same reflect-101) and takes the kernel size as given
    size = 2 * int(4 * sigma + 0.5) + 1
    np.testing.assert_allclose(blurred, gaussian_blur(x, [size, size], [sigma, sigma]).numpy(), atol=1e-5)
    # the other symmetric boundary (edge pixel repeated) differs at the border: the test can tell them apart
    other = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="reflect")
    assert np.abs(blurred - other)[..., 0, :].max() > 1e-3


@pytest.mark.parametrize("k", [3, 7, 15])
def test_box_blur_matches_a_mirrored_uniform_filter(k):
    x = _image()
    expected = ndimage.uniform_filter(x.numpy(), size=(1, 1, k, k), mode="mirror")
    np.testing.assert_allclose(BoxBlur(k)(x).numpy(), expected, atol=1e-5)
    # a box of width k has the variance of a uniform distribution over k pixels
    impulse = torch.zeros(1, 1, 41, 41)
    impulse[..., 20, 20] = 1.0
    profile = BoxBlur(k)(impulse)[0, 0].sum(0).numpy()
    t = np.arange(41) - 20
    assert np.sqrt((profile * t**2).sum()) == pytest.approx(box_equivalent_sigma(k))
    with pytest.raises(ValueError, match="odd positive integer"):
        BoxBlur(4)


def test_blur_as_a_preprocessing_step_changes_features_and_key():
    prep = Preprocessing(32, None)
    blurred = prep.with_steps(GaussianBlur(2.0))
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert not torch.allclose(prep(images), blurred(images))
    assert blurred.key()["steps"] == [{"step": "GaussianBlur", "sigma": 2.0}]


def test_retina_warp_is_the_identity_when_max_ratio_is_one():
    x = _image(64)
    np.testing.assert_allclose(RetinaWarp(64, max_ratio=1.0)(x).numpy(), x.numpy(), atol=1e-4)
    alpha, beta = radius_map(500, 224, 1.0)
    assert alpha == pytest.approx(0, abs=1e-9) and beta == pytest.approx(500 / 224)


def test_retina_warp_magnifies_the_centre_and_compresses_the_periphery():
    n_in, n_out = 500, 224
    alpha, beta = radius_map(n_in, n_out, 10.0)
    r = np.arange(n_out // 2)
    spacing = 2 * alpha * r + beta  # input pixels per output pixel, radially
    uniform = n_in / n_out
    assert spacing[0] < uniform < spacing[-1]
    # sampling spacing grows by about sqrt(max_ratio) from fovea to edge, as in the original recursion
    assert spacing[-1] / spacing[0] == pytest.approx(np.sqrt(10), rel=0.15)
    # the quadratic fit to the exponential recursion reaches the edge within a few pixels
    assert alpha * (n_out / 2) ** 2 + beta * n_out / 2 == pytest.approx(n_in / 2, rel=0.05)
    # a centred disc of radius 40 input px covers more output pixels than uniform resampling gives it
    yy, xx = np.mgrid[:n_in, :n_in] - (n_in - 1) / 2
    disc = torch.from_numpy((np.hypot(xx, yy) < 40).astype(np.float32))[None, None].expand(1, 3, -1, -1)
    warped = RetinaWarp(n_out, 10.0, antialias=False)(disc)[0, 0]
    uniform_area = np.pi * (40 / uniform) ** 2
    assert float((warped > 0.5).sum()) > 1.3 * uniform_area
    # and stays centred: no pad offset
    rows, cols = np.nonzero(warped.numpy() > 0.5)
    assert rows.mean() == pytest.approx((n_out - 1) / 2, abs=0.5) and cols.mean() == pytest.approx(
        (n_out - 1) / 2, abs=0.5
    )


def test_retina_warp_antialiasing_suppresses_peripheral_aliasing():
    n = 256
    xx = np.mgrid[:n, :n][1]
    grating = 0.5 + 0.5 * np.cos(2 * np.pi * xx / 2.5)  # near the input Nyquist limit
    x = torch.from_numpy(grating.astype(np.float32))[None, None].expand(1, 3, -1, -1)
    plain = RetinaWarp(96, 10.0, antialias=False)(x)[0, 0].numpy()
    smooth = RetinaWarp(96, 10.0, antialias=True)(x)[0, 0].numpy()
    ring = np.hypot(*(np.mgrid[:96, :96] - 47.5)) > 35  # periphery, where the spacing exceeds 1 px
    inside = ring & (np.hypot(*(np.mgrid[:96, :96] - 47.5)) < 47)
    # aliased energy shows up as spurious low-frequency contrast; blurring removes it
    assert smooth[inside].std() < 0.5 * plain[inside].std()
    np.testing.assert_allclose(smooth[inside].mean(), 0.5, atol=0.05)


def _edge_ring(size=300):
    """Dark uint8 image with a bright ring just inside the inscribed circle (radius 0.9-1.0 of the half-size)."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(xx, yy) / (size / 2)
    img = np.where((r > 0.9) & (r < 1.0), 255, 0).astype(np.uint8)
    return np.repeat(img[None, ..., None], 3, axis=-1)


def test_retina_warp_field_of_view_survives_the_model_preprocessing():
    # A model whose recipe resizes to 256 and centre-crops 224 (torchvision's ImageNet recipe):
    # with the warp the network must see the whole warped field, ring at the border included,
    # not a 256-px upsampling of it with the periphery cut off.
    prep = Preprocessing(224, 256, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)).with_steps(RetinaWarp(224))
    out = prep(_edge_ring())[0, 0].numpy()
    assert out.shape == (224, 224)
    middle = slice(112 - 8, 112 + 8)
    border = np.concatenate([out[:3, middle].ravel(), out[-3:, middle].ravel(), out[middle, :3].ravel(),
                             out[middle, -3:].ravel()])  # fmt: skip
    assert border.max() > 0.5 and border.mean() > 0.25  # the ring reaches the edges of the network input
    # and what the network sees is exactly the warp of the image, with no resize or crop after it
    direct = RetinaWarp(224)(torch.from_numpy(_edge_ring()).permute(0, 3, 1, 2).float() / 255.0)
    np.testing.assert_allclose(out, direct[0, 0].numpy(), atol=1e-6)


def test_a_warp_that_is_not_the_network_input_is_refused():
    with pytest.raises(ValueError, match=r"resize=256 followed by a centre crop"):
        Preprocessing(224, 256, steps=(RetinaWarp(224),))
    with pytest.raises(ValueError, match=r"produces 112 x 112 px but the network input is 224 x 224"):
        Preprocessing(224).with_steps(RetinaWarp(112))
    blurred = Preprocessing(224, 256).with_steps(GaussianBlur(1.0))
    assert blurred.resize == 256  # steps that keep the image size leave the model's recipe alone
    warped = blurred.with_steps(RetinaWarp(224))
    assert warped.resize is None and warped.key()["resize"] is None
    assert [s["step"] for s in warped.key()["steps"]] == ["GaussianBlur", "RetinaWarp"]
