"""A torch multilayer-perceptron classifier with the scikit-learn API.

The architecture of the decoding-thoughts project's fMRI decoder: ``[Linear -> BatchNorm
-> ReLU -> Dropout] x len(hidden_layers) -> Linear(n_classes)``, trained with Adam on the
cross-entropy, with class-balanced sampling (``WeightedRandomSampler`` weights 1 / class
count). Unlike the seed project it keeps the weights of the epoch with the lowest loss
on a validation part carved from the training rows (not the last epoch's), and predicts
in eval mode (batch-norm running statistics, dropout off), so a row's prediction does not
depend on the other rows of its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from scene2brain.utils.training import EarlyStopping

BALANCES = ("sampler", "loss", None)


def _network(n_in: int, hidden: Sequence[int], n_out: int, batch_norm: bool, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers.append(nn.Linear(n_in, int(width)))
        if batch_norm:
            layers.append(nn.BatchNorm1d(int(width)))
        layers += [nn.ReLU(), nn.Dropout(dropout)]
        n_in = int(width)
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def validation_split(n: int, fraction: float, groups: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices; whole groups go to one side.

    ``round(fraction * n_groups)`` groups (at least one) drawn with ``seed`` form the
    validation part; ``fraction == 0`` gives an empty one.
    """
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if len(groups) != n:
        raise ValueError(f"groups: expected {n} entries, got {len(groups)}")
    units, unit_of_row = np.unique(groups, return_inverse=True)
    if fraction <= 0:
        return np.arange(n), np.array([], dtype=np.int64)
    if not fraction < 1:
        raise ValueError(f"validation_fraction: expected a value in [0, 1), got {fraction}")
    if len(units) < 2:
        raise ValueError("early stopping needs at least two groups of training rows")
    n_val = min(max(1, round(fraction * len(units))), len(units) - 1)
    chosen = np.zeros(len(units), dtype=bool)
    chosen[np.random.default_rng(seed).permutation(len(units))[:n_val]] = True
    in_val = chosen[unit_of_row]
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


class MLPDecoder(ClassifierMixin, BaseEstimator):
    """Multilayer-perceptron classifier (torch), seeded and deterministic on CPU.

    Parameters
    ----------
    hidden_layers : sequence of int
        Widths of the hidden layers; default ``(512, 512, 100)`` as the seed project.
    dropout : float
        Dropout probability after each hidden layer (0.6 in the seed project).
    batch_norm : bool
        Batch normalisation after each hidden linear layer.
    balance : {"sampler", "loss", None}
        ``"sampler"``: draw each epoch's rows with replacement, with probability
        proportional to 1 / class count (the seed's ``WeightedRandomSampler``);
        ``"loss"``: one pass over shuffled rows with the cross-entropy weighted by
        ``n / (K * class count)``; None: neither. With either balance the validation loss
        is class-weighted too.
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam weight decay (L2).
    batch_size : int
    max_epochs : int
    patience : int
        Stop after this many epochs without a lower validation loss.
    validation_fraction : float
        Share of the training groups held out for early stopping (0: no validation, the
        last epoch is kept).
    random_state : int
        Seeds the validation split, the initial weights, the row sampling and dropout.
    device : str
        ``"cpu"`` or ``"cuda"`` (used when available, else CPU).

    Attributes
    ----------
    classes_ : ndarray
    module_ : torch.nn.Sequential
        The network, in eval mode, holding the best epoch's weights.
    validation_curve_ : ndarray
        Validation loss after each epoch (eval mode).
    best_epoch_ : int
        Index of the epoch whose weights were kept.
    validation_indices_ : ndarray
        Rows of ``X`` (as passed to ``fit``) used for validation.
    """

    def __init__(
        self,
        hidden_layers: Sequence[int] = (512, 512, 100),
        dropout: float = 0.6,
        batch_norm: bool = True,
        balance: str | None = "sampler",
        lr: float = 0.01,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float = 0.1,
        random_state: int = 0,
        device: str = "cpu",
    ) -> None:
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.balance = balance
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device

    def _device(self) -> torch.device:
        if str(self.device).startswith("cuda") and torch.cuda.is_available():
            return torch.device(self.device)
        return torch.device("cpu")

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> MLPDecoder:
        """Train with early stopping on a (grouped) validation part of the rows.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), optional
            Rows that must fall on the same side of the validation split (e.g. repeats
            of one stimulus).

        Returns
        -------
        MLPDecoder
        """
        if self.balance not in BALANCES:
            raise ValueError(f"balance: unknown {self.balance!r}; valid choices: {list(BALANCES)}")
        X = np.asarray(X, dtype=np.float32)
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y: expected at least two classes")
        self.n_features_in_ = X.shape[1]
        train, val = validation_split(len(X), self.validation_fraction, groups, self.random_state)
        self.validation_indices_ = val
        device = self._device()
        k = len(self.classes_)
        counts = np.bincount(codes[train], minlength=k).astype(np.float64)
        class_weight = np.where(counts > 0, len(train) / (k * np.maximum(counts, 1)), 0.0)
        weight = torch.as_tensor(class_weight, dtype=torch.float32, device=device)
        Xt = torch.as_tensor(X, device=device)
        yt = torch.as_tensor(codes, dtype=torch.long, device=device)
        fork = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork):
            torch.manual_seed(self.random_state)
            generator = torch.Generator().manual_seed(self.random_state)
            net = _network(X.shape[1], self.hidden_layers, k, self.batch_norm, self.dropout).to(device)
            optimiser = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            train_loss = nn.CrossEntropyLoss(weight=weight if self.balance == "loss" else None)
            val_loss = nn.CrossEntropyLoss(weight=weight if self.balance is not None else None)
            row_weight = torch.as_tensor(class_weight[codes[train]], dtype=torch.float64)
            train_t = torch.as_tensor(train)
            curve: list[float] = []
            stopping = EarlyStopping(self.patience)
            for _epoch in range(int(self.max_epochs)):
                net.train()
                if self.balance == "sampler":
                    order = train_t[torch.multinomial(row_weight, len(train), replacement=True, generator=generator)]
                else:
                    order = train_t[torch.randperm(len(train), generator=generator)]
                for start in range(0, len(order), int(self.batch_size)):
                    batch = order[start : start + int(self.batch_size)].to(device)
                    if len(batch) < 2 and self.batch_norm:
                        continue  # batch norm cannot train on a single row
                    optimiser.zero_grad()
                    train_loss(net(Xt[batch]), yt[batch]).backward()
                    optimiser.step()
                if len(val) == 0:
                    continue
                net.eval()
                with torch.no_grad():
                    loss = float(val_loss(net(Xt[val]), yt[val]))
                curve.append(loss)
                if stopping.step(loss, net):
                    break
            stopping.restore(net)
        net.eval()
        self.module_ = net
        self.validation_curve_ = np.array(curve)
        self.best_epoch_ = int(np.argmin(curve)) if curve else int(self.max_epochs) - 1
        return self

    def _logits(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "module_")
        X = np.asarray(X, dtype=np.float32)
        device = next(self.module_.parameters()).device
        self.module_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(X), 4096):
                out.append(self.module_(torch.as_tensor(X[start : start + 4096], device=device)).cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(self.classes_)))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Logits (n, K); with two classes the logit difference of the second class (n,)."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Softmax class probabilities (n, K), eval mode."""
        logits = self._logits(X)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The class with the largest logit."""
        return self.classes_[np.argmax(self._logits(X), axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
