"""Sparse autoencoders of brain responses (torch), with the scikit-learn transformer API.

:class:`SparseAutoencoder` learns non-negative sparse codes ``Z`` of response patterns
``X`` (stimuli x voxels) and a decoder that maps them back. Two architectures:

``"dictionary"`` (default)
    A one-layer sparse autoencoder (dictionary learning by amortised inference):
    ``z = act(W_enc (x - b_dec) + b_enc)``, ``x_hat = W_dec z + b_dec``, with ``act`` the
    ReLU (``sparsity="l1"``) or the ReLU of the ``k`` largest pre-activations
    (``sparsity="topk"``). The decoder's columns (the dictionary's atoms) are rescaled to
    unit norm after every optimiser step, so the L1 penalty cannot be dodged by shrinking
    ``z`` and growing the atoms. ``tied=True`` uses one matrix ``W`` for both
    (``W_enc = W``, ``W_dec = W.T``; its rows are the atoms, renormalised). Overcomplete
    codes (``n_latents > n_voxels``) are allowed.
``"mlp"``
    The seed project's undercomplete autoencoder (P1, bragg13): ``Linear(D//3) -> BatchNorm
    -> ReLU -> Linear(D//6) -> BatchNorm -> ReLU -> Linear(n_latents) -> ReLU``, decoder
    mirrored with a linear output (batch norm: eps 1e-5, torch momentum 0.1, i.e. flax's
    0.9). ``hidden`` overrides the widths. Weights start from torch's default
    initialisation (the seed used flax's LeCun-normal).

Both minimise ``mean((x_hat - x)**2) + l1 * mean(|z|)`` with AdamW, on responses
z-scored per voxel with the mean and SD of the rows given to ``fit`` (never per class or
per split; ``transform`` applies those statistics). Optional static random weight masks
with ERK densities (``weight_sparsity``, see :mod:`scene2brain.representation._sae_masks`)
reproduce the seed's jaxpruner ``static_sparse`` setting.

What the seed got wrong and what this module does instead:

- training rows leaked into the analysis set (positional indices): ``fit`` records the
  stimulus ids it trained on and ``transform`` refuses ids among them (``ValueError``
  naming them) unless ``allow_training=True``;
- one scalar z-score per split and per class: per-voxel statistics of the training rows;
- batch norm evaluated with the evaluation batch's statistics: ``transform`` runs in eval
  mode (running statistics), so a row's code does not depend on the other rows;
- validation always on the same batch: early stopping on the whole validation part
  (grouped by stimulus when ids or groups are given), restoring the best epoch's weights.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from torch import nn

from scene2brain.evaluation.metrics import r2_score
from scene2brain.representation._sae_masks import erk_densities, random_masks
from scene2brain.utils.arrays import check_matrix
from scene2brain.utils.training import EarlyStopping, torch_device

__all__ = ["ARCHITECTURES", "SPARSITIES", "SparseAutoencoder", "dead_units", "erk_densities", "sparsity_stats"]

ARCHITECTURES = ("dictionary", "mlp")
SPARSITIES = ("l1", "topk")

_CHUNK = 4096  # rows per forward pass at evaluation


def _activate(pre: torch.Tensor, sparsity: str, k: int) -> torch.Tensor:
    """ReLU, or the ReLU of the ``k`` largest entries of each row (others exactly 0)."""
    if sparsity == "topk":
        values, index = pre.topk(k, dim=1)
        return torch.zeros_like(pre).scatter(1, index, torch.relu(values))
    return torch.relu(pre)


class _Dictionary(nn.Module):
    """One-layer SAE; atoms are the decoder's columns (``W_dec``: n_voxels x n_latents)."""

    def __init__(self, n_in: int, n_latents: int, tied: bool, sparsity: str, k: int) -> None:
        super().__init__()
        self.tied, self.sparsity, self.k = tied, sparsity, k
        atoms = torch.randn(n_latents, n_in)
        atoms /= atoms.norm(dim=1, keepdim=True).clamp_min(1e-12)
        if tied:
            self.W = nn.Parameter(atoms)
        else:
            self.W_enc = nn.Parameter(atoms.clone())
            self.W_dec = nn.Parameter(atoms.T.contiguous())
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        self.b_dec = nn.Parameter(torch.zeros(n_in))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        w_enc = self.W if self.tied else self.W_enc
        return _activate((x - self.b_dec) @ w_enc.T + self.b_enc, self.sparsity, self.k)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        w_dec = self.W.T if self.tied else self.W_dec
        return z @ w_dec.T + self.b_dec

    def masked_weights(self) -> list[nn.Parameter]:
        return [self.W] if self.tied else [self.W_enc, self.W_dec]

    @torch.no_grad()
    def constrain(self) -> None:
        """Atoms to unit norm: rows of the tied ``W``, else columns of ``W_dec``."""
        if self.tied:
            self.W /= self.W.norm(dim=1, keepdim=True).clamp_min(1e-12)
        else:
            self.W_dec /= self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-12)

    def atoms(self) -> torch.Tensor:
        """n_latents x n_voxels, standardised units."""
        return (self.W if self.tied else self.W_dec.T).detach()


def _stack(widths: Sequence[int]) -> list[nn.Module]:
    """Linear layers through ``widths``; batch norm and ReLU after each but the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers += [nn.BatchNorm1d(b, eps=1e-5, momentum=0.1), nn.ReLU()]
    return layers


class _MLP(nn.Module):
    """The seed's autoencoder: hidden layers with batch norm and ReLU, ReLU latent, linear output."""

    def __init__(self, n_in: int, n_latents: int, hidden: Sequence[int], sparsity: str, k: int) -> None:
        super().__init__()
        self.sparsity, self.k = sparsity, k
        self.encoder = nn.Sequential(*_stack([n_in, *hidden, n_latents]))
        self.decoder = nn.Sequential(*_stack([n_latents, *reversed(hidden), n_in]))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return _activate(self.encoder(x), self.sparsity, self.k)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def masked_weights(self) -> list[nn.Parameter]:
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]

    def constrain(self) -> None:
        """Nothing to constrain: the MLP's weights are free (the dictionary renormalises its atoms)."""


def _check_ids(ids: Any, n: int, name: str) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) != n:
        raise ValueError(f"{name}: expected one id per row of X ({n}), got shape {ids.shape}")
    return ids


def sparsity_stats(Z: np.ndarray) -> dict[str, float]:
    """How sparse codes are.

    Parameters
    ----------
    Z : ndarray of shape (n_stimuli, n_latents)

    Returns
    -------
    dict
        ``fraction_zero`` (share of exactly-zero entries), ``l0_mean`` and ``l0_median``
        (number of non-zero latents per stimulus: mean and median over stimuli).

    Examples
    --------
    >>> sparsity_stats(np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]]))
    {'fraction_zero': 0.5, 'l0_mean': 1.5, 'l0_median': 1.5}
    """
    Z = check_matrix(Z, "Z")
    if Z.size == 0:
        raise ValueError(f"Z: expected at least one stimulus and one latent, got shape {Z.shape}")
    l0 = np.count_nonzero(Z, axis=1)
    return {
        "fraction_zero": float(1.0 - np.count_nonzero(Z) / Z.size),
        "l0_mean": float(l0.mean()),
        "l0_median": float(np.median(l0)),
    }


def dead_units(Z: np.ndarray) -> np.ndarray:
    """Latents never active (never non-zero) on the given rows.

    Parameters
    ----------
    Z : ndarray of shape (n_stimuli, n_latents)

    Returns
    -------
    ndarray of bool, shape (n_latents,)
        True for a latent that is zero on every row.

    Examples
    --------
    >>> dead_units(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])).tolist()
    [True, False, False]
    """
    Z = check_matrix(Z, "Z")
    if Z.shape[0] == 0:
        raise ValueError(f"Z: expected at least one stimulus, got shape {Z.shape}")
    return ~np.any(Z != 0, axis=0)


class SparseAutoencoder(TransformerMixin, BaseEstimator):
    """Sparse autoencoder of response patterns; seeded and deterministic on CPU.

    Parameters
    ----------
    n_latents : int
        Size of the code (may exceed the number of voxels for ``"dictionary"``).
    architecture : {"dictionary", "mlp"}
        One-layer SAE with unit-norm atoms, or the seed's batch-norm MLP (module docstring).
    sparsity : {"l1", "topk"}
        ReLU codes, or only the ``k`` largest (ReLU'd) pre-activations per row kept.
    l1 : float
        Weight of ``mean(|z|)`` in the loss (added for either ``sparsity``; use 0 for a
        pure top-k SAE).
    k : int
        Active latents per row for ``sparsity="topk"``; at most ``n_latents``.
    tied : bool
        ``"dictionary"`` only: one matrix for encoder and decoder (``W_dec = W_enc.T``).
    hidden : sequence of int, optional
        ``"mlp"`` only: encoder widths (decoder mirrored); default ``(D // 3, D // 6)``
        for ``D`` voxels, as the seed.
    weight_sparsity : float
        0 for dense weights; else the fraction of weights (of all linear layers' weight
        matrices together, not biases or batch norm) fixed at zero by static random masks
        with ERK per-layer densities, drawn at initialisation and re-applied after every
        optimiser step (the seed used 0.8 and 0.85).
    lr : float
        AdamW learning rate (the seed: 1e-4).
    weight_decay : float
        AdamW weight decay (optax's default 1e-4, as the seed).
    batch_size : int
    max_epochs : int
    patience : int
        Stop after this many epochs without a lower validation loss; the weights of the
        best epoch are restored.
    validation_fraction : float
        Share of the training rows (of their groups, with ``groups`` or ``stimulus_ids``)
        held out for early stopping, in ``[0, 1)``; 0 trains ``max_epochs`` epochs and
        keeps the last.
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda[:i]"``.
    random_state : int
        Seeds the validation split, the initial weights, the masks and the row order.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_voxels,)
        Per-voxel mean and SD of the rows given to ``fit`` (SD 0 is replaced by 1).
    module_ : torch.nn.Module
        The network in eval mode, holding the best epoch's weights.
    masks_ : list of ndarray of bool
        The weight masks (True = kept), in the order of the network's weight matrices;
        empty when ``weight_sparsity == 0``.
    layer_densities_ : ndarray
        The ERK density of each masked matrix.
    history_ : dict of ndarray
        Per epoch: ``train_loss`` (mean over the epoch's batches, training mode),
        ``validation_loss`` and ``validation_mse`` (eval mode, whole validation part;
        empty without one), ``elapsed`` (seconds from the start of training to the end
        of the epoch, validation included).
    best_epoch_ : int
        0-based epoch whose weights were kept.
    n_epochs_ : int
        Epochs run.
    validation_indices_ : ndarray
        Rows of ``X`` (as given to ``fit``) used for validation.
    training_ids_ : ndarray or None
        The ``stimulus_ids`` given to ``fit`` (all of them, the validation part included).
    dictionary_ : ndarray of shape (n_latents, n_voxels)
        Atoms in standardised units. ``"dictionary"``: the decoder's unit-norm columns.
        ``"mlp"``: the decoder's response to each latent alone,
        ``decode(c_k e_k) - decode(0)``, with ``c_k`` the latent's median positive
        activation on the training rows (``latent_scale_``); NaN for a latent never
        active on them.
    latent_scale_ : ndarray of shape (n_latents,)
        ``"mlp"``: the ``c_k`` above (NaN for a dead latent); ``"dictionary"``: ones.
    """

    def __init__(
        self,
        n_latents: int = 64,
        architecture: str = "dictionary",
        sparsity: str = "l1",
        l1: float = 0.1,
        k: int = 8,
        tied: bool = False,
        hidden: Sequence[int] | None = None,
        weight_sparsity: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 256,
        max_epochs: int = 200,
        patience: int = 10,
        validation_fraction: float = 0.1,
        device: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.n_latents = n_latents
        self.architecture = architecture
        self.sparsity = sparsity
        self.l1 = l1
        self.k = k
        self.tied = tied
        self.hidden = hidden
        self.weight_sparsity = weight_sparsity
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state

    # ---------------------------------------------------------------- checks

    def check_params(self) -> None:
        """Check the parameters before any data is seen (a configuration does this before a run starts).

        Raises ValueError naming the parameter. What depends on the data (the default
        ``hidden`` widths, rows enough for a validation part) is checked by :meth:`fit`.
        """
        self._check_params(n_voxels=600)

    def _check_params(self, n_voxels: int) -> tuple[int, ...]:
        def integer(name: str, minimum: int) -> int:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
                raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
            return int(value)

        n_latents = integer("n_latents", 1)
        integer("batch_size", 1)
        integer("max_epochs", 1)
        integer("patience", 1)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture: unknown {self.architecture!r}; valid choices: {list(ARCHITECTURES)}")
        if self.sparsity not in SPARSITIES:
            raise ValueError(f"sparsity: unknown {self.sparsity!r}; valid choices: {list(SPARSITIES)}")
        if self.sparsity == "topk":
            k = integer("k", 1)
            if k > n_latents:
                raise ValueError(f"k: expected at most n_latents ({n_latents}) active latents, got {k}")
        for name in ("l1", "weight_decay"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name}: expected a finite value >= 0, got {value!r}")
        if not np.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr: expected a finite value > 0, got {self.lr!r}")
        if not 0 <= self.weight_sparsity < 1:
            raise ValueError(f"weight_sparsity: expected a value in [0, 1), got {self.weight_sparsity!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction: expected a value in [0, 1), got {self.validation_fraction!r}")
        if self.tied and self.architecture != "dictionary":
            raise ValueError(f"tied: only the 'dictionary' architecture has tied weights, got {self.architecture!r}")
        if self.architecture == "mlp" and self.batch_size < 2:
            raise ValueError(
                f"batch_size: the 'mlp' architecture (batch norm) needs batches of >= 2 rows, got {self.batch_size}"
            )
        if self.architecture == "dictionary":
            if self.hidden is not None:
                raise ValueError(f"hidden: only the 'mlp' architecture has hidden layers, got {self.hidden!r}")
            return ()
        hidden = (n_voxels // 3, n_voxels // 6) if self.hidden is None else tuple(self.hidden)
        if not hidden or any(isinstance(h, bool) or not isinstance(h, int | np.integer) or h < 1 for h in hidden):
            raise ValueError(
                f"hidden: expected positive integer widths, got {hidden!r}"
                + (f" (the default D//3, D//6 for {n_voxels} voxels; pass hidden)" if self.hidden is None else "")
            )
        return tuple(int(h) for h in hidden)

    def _split(self, n: int, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if self.validation_fraction == 0:
            return np.arange(n), np.array([], dtype=np.int64)
        units = n if groups is None else len(np.unique(groups))
        n_val = int(np.ceil(self.validation_fraction * units))
        if units < 2 or units - n_val < 2:
            what = "rows" if groups is None else "groups"
            raise ValueError(
                f"X: {units} training {what} are too few for a validation part of validation_fraction="
                f"{self.validation_fraction} (expected at least 2 {what} left for training); "
                "give more rows or set validation_fraction=0"
            )
        if groups is None:
            splitter: Any = ShuffleSplit(n_splits=1, test_size=n_val, random_state=self.random_state)
            train, val = next(splitter.split(np.zeros(n)))
        else:
            splitter = GroupShuffleSplit(n_splits=1, test_size=n_val, random_state=self.random_state)
            train, val = next(splitter.split(np.zeros(n), groups=groups))
        return np.sort(train), np.sort(val)

    # ---------------------------------------------------------------- fit

    def fit(
        self,
        X: np.ndarray,
        y: None = None,
        *,
        stimulus_ids: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ) -> SparseAutoencoder:
        """Standardise per voxel, then train with early stopping on a validation part.

        Parameters
        ----------
        X : ndarray of shape (n_stimuli, n_voxels)
            Training responses (rows: stimuli or trials).
        y : None
            Ignored (scikit-learn convention).
        stimulus_ids : array-like of shape (n_stimuli,), optional
            Identity of each row's stimulus; recorded as ``training_ids_`` so that
            :meth:`transform` can refuse them, and used as ``groups`` when none are given
            (repeats of a stimulus fall on one side of the validation split).
        groups : array-like of shape (n_stimuli,), optional
            Rows that must fall on the same side of the validation split
            (``GroupShuffleSplit``); without groups or ids the split is by row, at random.

        Returns
        -------
        SparseAutoencoder
        """
        X = check_matrix(X, "X")
        n, n_voxels = X.shape
        if n < 2:
            raise ValueError(f"X: expected at least 2 training rows, got {n}")
        hidden = self._check_params(n_voxels)
        ids = None if stimulus_ids is None else _check_ids(stimulus_ids, n, "stimulus_ids")
        if groups is not None:
            groups = _check_ids(groups, n, "groups")
        elif ids is not None:
            groups = ids
        device = torch_device(self.device)
        train, val = self._split(n, groups)

        scaler = StandardScaler().fit(X)
        self.mean_, self.scale_ = scaler.mean_, scaler.scale_
        Xt = torch.as_tensor(scaler.transform(X), dtype=torch.float32, device=device)
        self.n_features_in_ = n_voxels
        self.training_ids_ = None if ids is None else ids.copy()
        self.validation_indices_ = val
        k = int(self.k) if self.sparsity == "topk" else 0
        fork = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork):
            torch.manual_seed(self.random_state)
            generator = torch.Generator().manual_seed(self.random_state)
            if self.architecture == "dictionary":
                net: Any = _Dictionary(n_voxels, int(self.n_latents), bool(self.tied), self.sparsity, k)
            else:
                net = _MLP(n_voxels, int(self.n_latents), hidden, self.sparsity, k)
            net = net.to(device)
            weights = net.masked_weights()
            shapes = [tuple(w.shape) for w in weights]
            if self.weight_sparsity > 0:
                self.layer_densities_ = erk_densities(shapes, 1.0 - self.weight_sparsity)
                masks = [m.to(device) for m in random_masks(shapes, self.weight_sparsity, generator)]
            else:
                self.layer_densities_, masks = np.ones(len(shapes)), []

            def project() -> None:
                with torch.no_grad():
                    for w, m in zip(weights, masks, strict=False):  # no masks when dense
                        w.mul_(m)
                    net.constrain()

            project()
            optimiser = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            train_t = torch.as_tensor(train)
            batch = int(self.batch_size)
            history: dict[str, list[float]] = {
                "train_loss": [],
                "validation_loss": [],
                "validation_mse": [],
                "elapsed": [],
            }
            started = time.perf_counter()
            stopping = EarlyStopping(self.patience)
            for _epoch in range(int(self.max_epochs)):
                net.train()
                order = train_t[torch.randperm(len(train), generator=generator)].to(device)
                total, seen = torch.zeros((), dtype=torch.float64, device=device), 0
                for start in range(0, len(order), batch):
                    rows = order[start : start + batch]
                    if len(rows) < 2 and self.architecture == "mlp":
                        continue  # batch norm cannot train on one row
                    x = Xt[rows]
                    z = net.encode(x)
                    loss = torch.mean((net.decode(z) - x) ** 2) + self.l1 * torch.mean(torch.abs(z))
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    project()
                    total += loss.detach() * len(rows)
                    seen += len(rows)
                history["train_loss"].append(float(total) / max(seen, 1))
                if not np.isfinite(history["train_loss"][-1]):
                    raise ValueError(
                        f"lr: training diverged (non-finite loss in epoch {len(history['train_loss'])}) "
                        f"with lr={self.lr}; use a smaller learning rate"
                    )
                if len(val) == 0:
                    history["elapsed"].append(time.perf_counter() - started)
                    continue
                net.eval()
                mse, penalty = self._losses(net, Xt[torch.as_tensor(val, device=device)])
                history["validation_mse"].append(mse)
                history["validation_loss"].append(mse + self.l1 * penalty)
                history["elapsed"].append(time.perf_counter() - started)
                if stopping.step(history["validation_loss"][-1], net):
                    break
            stopping.restore(net)
        net.eval()
        self.module_ = net
        self.masks_ = [m.cpu().numpy() for m in masks]
        self.history_ = {name: np.array(values) for name, values in history.items()}
        self.n_epochs_ = len(history["train_loss"])
        self.best_epoch_ = int(np.argmin(history["validation_loss"])) if len(val) else self.n_epochs_ - 1
        self._set_dictionary(Xt)
        return self

    @staticmethod
    def _losses(net: Any, x: torch.Tensor) -> tuple[float, float]:
        """Mean squared reconstruction error and mean |z| over ``x`` (eval mode, in chunks)."""
        sq, ab = 0.0, 0.0
        with torch.no_grad():
            for start in range(0, len(x), _CHUNK):
                xb = x[start : start + _CHUNK]
                z = net.encode(xb)
                sq += float(torch.sum((net.decode(z) - xb).double() ** 2))
                ab += float(torch.sum(torch.abs(z).double()))
        return sq / x.numel(), ab / (len(x) * z.shape[1])

    def _set_dictionary(self, Xt: torch.Tensor) -> None:
        net = self.module_
        if self.architecture == "dictionary":
            self.latent_scale_ = np.ones(int(self.n_latents))
            self.dictionary_ = net.atoms().cpu().numpy().astype(np.float64)
            return
        Z = self._encode(Xt)
        positive = np.where(Z > 0, Z, np.nan)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="All-NaN slice")  # a dead latent
            scale = np.nanmedian(positive, axis=0)
        self.latent_scale_ = scale.astype(np.float64)
        device = next(net.parameters()).device
        codes = torch.as_tensor(np.diag(np.nan_to_num(scale)), dtype=torch.float32, device=device)
        with torch.no_grad():
            atoms = net.decode(codes) - net.decode(torch.zeros(1, codes.shape[1], device=device))
        atoms = atoms.cpu().numpy().astype(np.float64)
        atoms[np.isnan(scale)] = np.nan
        self.dictionary_ = atoms

    # ---------------------------------------------------------------- use

    def _encode(self, Xt: torch.Tensor) -> np.ndarray:
        self.module_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(Xt), _CHUNK):
                out.append(self.module_.encode(Xt[start : start + _CHUNK]).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, int(self.n_latents)), dtype=np.float32)

    def _standardised(self, X: Any, name: str = "X") -> torch.Tensor:
        check_is_fitted(self, "module_")
        X = check_matrix(X, name, self.n_features_in_)
        device = next(self.module_.parameters()).device
        return torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=device)

    def check_not_training(self, stimulus_ids: np.ndarray, n_rows: int | None = None) -> None:
        """Raise ``ValueError`` if any of ``stimulus_ids`` was a training id.

        Parameters
        ----------
        stimulus_ids : array-like
            Ids of the rows to analyse.
        n_rows : int, optional
            Expected number of ids (the rows of the matching ``X``).
        """
        check_is_fitted(self, "module_")
        ids = np.asarray(stimulus_ids)
        if n_rows is not None:
            ids = _check_ids(ids, n_rows, "stimulus_ids")
        if self.training_ids_ is None:
            raise ValueError("stimulus_ids: given, but fit was called without stimulus_ids, so nothing can be checked")
        overlap = np.unique(ids[np.isin(ids, self.training_ids_)])
        if len(overlap):
            shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in overlap[:5])
            raise ValueError(
                f"stimulus_ids: {len(overlap)} of the analysed stimuli were training stimuli of this "
                f"autoencoder (e.g. {shown}); analyse held-out stimuli, or pass allow_training=True "
                "to get the training split's own codes"
            )

    def transform(
        self, X: np.ndarray, *, stimulus_ids: np.ndarray | None = None, allow_training: bool = False
    ) -> np.ndarray:
        """Codes of ``X`` (eval mode: a row's code does not depend on the other rows).

        Parameters
        ----------
        X : ndarray of shape (n_stimuli, n_voxels)
            Responses in the units given to ``fit``; standardised with ``mean_``, ``scale_``.
        stimulus_ids : array-like of shape (n_stimuli,), optional
            When given (and ``fit`` had ids), training stimuli are refused: ``ValueError``
            naming them. Without ids nothing is checked.
        allow_training : bool
            Allow training stimuli (the training split's own codes, on purpose).

        Returns
        -------
        ndarray of shape (n_stimuli, n_latents), float32, non-negative
        """
        Xt = self._standardised(X)
        if stimulus_ids is not None and not allow_training:
            self.check_not_training(stimulus_ids, len(Xt))
        return self._encode(Xt)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Reconstructions, in the original units, of codes ``Z``.

        Parameters
        ----------
        Z : ndarray of shape (n_stimuli, n_latents)

        Returns
        -------
        ndarray of shape (n_stimuli, n_voxels), float64
        """
        check_is_fitted(self, "module_")
        Z = check_matrix(Z, "Z", int(self.n_latents))
        device = next(self.module_.parameters()).device
        self.module_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(Z), _CHUNK):
                zb = torch.as_tensor(Z[start : start + _CHUNK], dtype=torch.float32, device=device)
                out.append(self.module_.decode(zb).cpu().numpy())
        x = np.concatenate(out).astype(np.float64) if out else np.zeros((0, self.n_features_in_))
        return x * self.scale_ + self.mean_

    def reconstruct(
        self, X: np.ndarray, *, stimulus_ids: np.ndarray | None = None, allow_training: bool = False
    ) -> np.ndarray:
        """``inverse_transform(transform(X))``: reconstructions in the original units."""
        return self.inverse_transform(self.transform(X, stimulus_ids=stimulus_ids, allow_training=allow_training))

    def reconstruction_r2(
        self,
        X: np.ndarray,
        *,
        noise_ceiling: np.ndarray | None = None,
        stimulus_ids: np.ndarray | None = None,
        allow_training: bool = False,
    ) -> np.ndarray:
        """Per-voxel R^2 of the reconstruction of ``X``, in the original units.

        ``1 - sum((x - x_hat)**2) / sum((x - mean(x))**2)`` per voxel, the mean being that of
        the given rows (not the training mean): scikit-learn's
        ``r2_score(X, x_hat, multioutput="raw_values")``. NaN for a voxel constant on the
        given rows.

        Parameters
        ----------
        X : ndarray of shape (n_stimuli, n_voxels)
            At least 2 rows (held-out stimuli, normally).
        noise_ceiling : ndarray of shape (n_voxels,), optional
            Per-voxel noise ceiling as a fraction of variance in ``[0, 1]`` (not percent).
            When given, returns the noise-normalised R^2, ``R^2 / NC`` where ``NC > 0`` and
            NaN elsewhere. It is not bounded by 1: the autoencoder encodes the noisy
            response itself and can reconstruct part of its noise too (an encoding model,
            which never sees the response, cannot); above 1 means exactly that.
        stimulus_ids, allow_training
            As in :meth:`transform`.

        Returns
        -------
        ndarray of shape (n_voxels,)
        """
        X = check_matrix(X, "X", getattr(self, "n_features_in_", None))
        if len(X) < 2:
            raise ValueError(f"X: expected at least 2 rows for an R^2, got {len(X)}")
        r2 = r2_score(X, self.reconstruct(X, stimulus_ids=stimulus_ids, allow_training=allow_training))
        if noise_ceiling is None:
            return r2
        nc = np.asarray(noise_ceiling, dtype=np.float64)
        if nc.shape != r2.shape:
            raise ValueError(f"noise_ceiling: expected shape {r2.shape} (one value per voxel), got {nc.shape}")
        finite = nc[np.isfinite(nc)]
        if np.any((finite < 0) | (finite > 1)):
            raise ValueError(
                f"noise_ceiling: expected fractions in [0, 1], got values in [{finite.min()}, {finite.max()}] "
                "(a ceiling in percent must be divided by 100)"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(nc > 0, r2 / nc, np.nan)

    def score(self, X: np.ndarray, y: None = None) -> float:
        """Mean over voxels of :meth:`reconstruction_r2` (voxels with NaN R^2 left out)."""
        return float(np.nanmean(self.reconstruction_r2(X)))

    def dictionary_voxels(self) -> np.ndarray:
        """The dictionary in voxel units: ``dictionary_ * scale_`` (n_latents x n_voxels)."""
        check_is_fitted(self, "dictionary_")
        return self.dictionary_ * self.scale_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.allow_nan = False
        return tags
