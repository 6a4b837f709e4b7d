"""Retina warp: eccentricity-dependent resampling that magnifies the centre of the image.

The mapping is the one of ``dicarlolab/retinawarp`` used by the CS431 project: sample
radii grow by steps ``d_i = (pi rf)**-0.5 * exp(a r_i / 2)`` with
``a = ln(max_ratio) / r_max``, so the sampling spacing grows by ``sqrt(max_ratio)``
from the fovea to the edge; ``rf`` is found with Brent's method on [0.01, 5] so that
the last radius reaches the input's half-size, and ``r_in = alpha r_out**2 + beta r_out``
(alpha, beta >= 0) is fitted to the sampled radii. Unlike the original, sampling is
bilinear (``torch.nn.functional.grid_sample``) with the input and output centres
aligned (no 2-pixel pad offset), and each output pixel reads from an input blurred in
proportion to the local sampling spacing (anti-aliasing), so the periphery does not
alias.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import brenth, nnls
from torch.nn import functional as F

from scene2brain.features.preprocessing import GaussianBlur


@functools.lru_cache(maxsize=32)
def radius_map(n_in: int, n_out: int, max_ratio: float) -> tuple[float, float]:
    """Coefficients ``(alpha, beta)`` of ``r_in = alpha r_out**2 + beta r_out`` (pixels).

    Parameters
    ----------
    n_in : int
        Input size (the shorter side of the image), pixels.
    n_out : int
        Output size, pixels.
    max_ratio : float
        Ratio of sampling density (per area) between fovea and edge; 1 is uniform.
    """
    if max_ratio < 1:
        raise ValueError(f"max_ratio: expected >= 1, got {max_ratio}")
    half_out = n_out // 2
    a = math.log(max_ratio) / (n_in // 2)

    def radii(rf: float) -> np.ndarray:
        r = np.zeros(half_out + 1)
        step = (math.pi * rf) ** -0.5
        with np.errstate(over="ignore"):
            for i in range(half_out):
                r[i + 1] = r[i] + step * np.exp(a * r[i] / 2)
        return r

    def overshoot(rf: float) -> float:
        last = radii(rf)[-1]
        return last - n_in / 2 if np.isfinite(last) else np.inf

    lo, hi = 0.01, 5.0
    if np.sign(overshoot(lo)) == np.sign(overshoot(hi)):
        raise ValueError(
            f"retina warp: no sampling density in [{lo}, {hi}] maps {n_in} px to {n_out} px with "
            f"max_ratio={max_ratio}; use an output size nearer the input size"
        )
    r = radii(brenth(overshoot, lo, hi))[:half_out]
    r_out = np.arange(half_out, dtype=float)
    (alpha, beta), _ = nnls(np.column_stack([r_out**2, r_out]), r)  # least squares with alpha, beta >= 0
    return float(alpha), float(beta)


@dataclass(frozen=True)
class RetinaWarp:
    """Fish-eye resampling of images to ``output_size`` x ``output_size`` pixels.

    Usable as a :class:`~scene2brain.features.preprocessing.Preprocessing` step, where
    it produces the network input itself: ``output_size`` must be the model's input
    size, and ``prep.with_steps(RetinaWarp(prep.size))`` turns off the model's resize
    and centre crop (``resize=None``). The warp samples the disc inscribed in the
    image's shorter side out to the middle of each output edge; a resize + centre crop
    after it (torchvision's 256 -> 224) would upsample that and cut off the periphery.

    Parameters
    ----------
    output_size : int
        Side of the warped image.
    max_ratio : float
        Fovea-to-edge ratio of sampling density (10 in the original).
    antialias : bool
        Blur the input by the local sampling spacing before sampling
        (Gaussian sigma ``(spacing - 1) / 2`` input pixels where spacing > 1).
    """

    output_size: int = 224
    max_ratio: float = 10.0
    antialias: bool = True

    def sampling(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Input coordinates (pixels, (H, W, 2) as x, y) and local spacing of every output pixel."""
        n = self.output_size
        alpha, beta = radius_map(min(height, width), n, self.max_ratio)
        coords = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        dy, dx = torch.meshgrid(coords, coords, indexing="ij")
        r_out = torch.hypot(dx, dy)
        theta = torch.atan2(dy, dx)
        r_in = alpha * r_out**2 + beta * r_out
        x = (width - 1) / 2 + r_in * torch.cos(theta)
        y = (height - 1) / 2 + r_in * torch.sin(theta)
        spacing = 2 * alpha * r_out + beta  # radial dr_in/dr_out, never below the tangential r_in/r_out
        return torch.stack([x, y], dim=-1), spacing

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(n, C, H, W) float tensor -> (n, C, output_size, output_size)."""
        h, w = x.shape[-2:]
        xy, spacing = self.sampling(h, w)
        grid = torch.stack([xy[..., 0] / (w - 1) * 2 - 1, xy[..., 1] / (h - 1) * 2 - 1], dim=-1)
        grid = grid.to(x.dtype)[None].expand(len(x), -1, -1, -1)

        def sample(image: torch.Tensor) -> torch.Tensor:
            return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

        sigma = torch.clamp((spacing - 1) / 2, min=0).to(x.dtype)
        sigma_max = float(sigma.max())
        if not self.antialias or sigma_max == 0:
            return sample(x)
        # Blur at a few levels and interpolate per output pixel between the two nearest ones.
        levels = np.linspace(0.0, sigma_max, max(2, math.ceil(sigma_max / 0.5) + 1))
        step = levels[1] - levels[0]
        out = torch.zeros(*x.shape[:2], self.output_size, self.output_size, dtype=x.dtype)
        for level in levels:
            weight = torch.clamp(1 - (sigma - level).abs() / step, min=0)
            if weight.any():
                out += weight * sample(GaussianBlur(float(level))(x))
        return out
