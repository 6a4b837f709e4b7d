"""Static random weight masks with Erdős–Rényi-Kernel (ERK) per-layer densities.

The seed project sparsified its autoencoder with jaxpruner's ``static_sparse`` updater
(``dist_type="erk"``): one random mask per weight matrix, drawn once at initialisation and
re-applied after every optimiser step. The per-layer densities follow the ERK rule of
RigL (Evci et al. 2020, ``sparse_utils.get_sparsities_erdos_renyi``) and jaxpruner:
the density of a dense layer with ``n_in`` inputs and ``n_out`` outputs is proportional to
``(n_in + n_out) / (n_in * n_out)``, scaled so that the masked layers together keep the
requested fraction of their weights; a layer whose density would exceed 1 is kept dense
and the remaining budget is redistributed over the others (repeated until no density
exceeds 1). Biases and batch-norm parameters are never masked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def erk_densities(shapes: Sequence[tuple[int, int]], density: float) -> np.ndarray:
    """Erdős–Rényi-Kernel density of each weight matrix for an overall ``density``.

    Parameters
    ----------
    shapes : sequence of (n_out, n_in)
        Shapes of the weight matrices that are masked.
    density : float
        Fraction of all their weights kept, in ``(0, 1]`` (``1 - weight_sparsity``).

    Returns
    -------
    ndarray of shape (n_layers,)
        Per-layer densities in ``(0, 1]``; ``sum(density_l * n_l) == density * sum(n_l)``.

    Examples
    --------
    >>> erk_densities([(10, 10), (100, 10)], 0.9).round(6).tolist()
    [1.0, 0.89]
    """
    if not shapes:
        raise ValueError("shapes: expected at least one weight matrix, got none")
    if not 0 < density <= 1:
        raise ValueError(f"density: expected a value in (0, 1], got {density}")
    sizes = np.array([int(a) * int(b) for a, b in shapes], dtype=np.float64)
    if np.any(sizes <= 0):
        raise ValueError(f"shapes: expected positive dimensions, got {list(shapes)}")
    raw = np.array([(int(a) + int(b)) / (int(a) * int(b)) for a, b in shapes], dtype=np.float64)
    dense = np.zeros(len(shapes), dtype=bool)
    while not dense.all():
        # weights still to place in the non-dense layers, once the dense ones are full
        budget = density * sizes.sum() - sizes[dense].sum()
        divisor = (raw * sizes)[~dense].sum()
        epsilon = budget / divisor
        probs = np.where(dense, 1.0, epsilon * raw)
        if np.all(probs[~dense] <= 1.0 + 1e-12):
            return np.minimum(probs, 1.0)
        biggest = probs[~dense].max()
        dense |= (~dense) & np.isclose(probs, biggest, rtol=0, atol=1e-12)
    return np.ones(len(shapes))


def random_masks(
    shapes: Sequence[tuple[int, int]], weight_sparsity: float, generator: torch.Generator
) -> list[torch.Tensor]:
    """Random boolean masks with ERK densities, exactly ``round(density_l * n_l)`` ones each.

    Parameters
    ----------
    shapes : sequence of (n_out, n_in)
    weight_sparsity : float
        Overall fraction of masked (zero) weights, in ``[0, 1)``.
    generator : torch.Generator
        Source of the random positions (CPU).

    Returns
    -------
    list of bool tensors
        One per shape, True where a weight is kept.
    """
    densities = erk_densities(shapes, 1.0 - weight_sparsity)
    masks = []
    for (n_out, n_in), d in zip(shapes, densities, strict=True):
        n = int(n_out) * int(n_in)
        keep = round(float(d) * n)
        flat = torch.zeros(n, dtype=torch.bool)
        flat[torch.randperm(n, generator=generator)[:keep]] = True
        masks.append(flat.reshape(int(n_out), int(n_in)))
    return masks
