"""Torch parts of the bottleneck network: the residual trunk, per-subject heads, losses, optimisers, the training loop.

The network maps reduced image features to reduced responses (see
:mod:`scene2brain.encoding.bottleneck` for the reductions):

- the **trunk** (shared across subjects when pretrained): ``h = W_in x``, then ``depth``
  residual blocks ``h = h + act(W_k h)`` (F-BNet's "LinearResidualBlock"), then dropout;
- a **head** per subject: with the leak option, ``h = (h + leak * P(l)) / (1 + leak)``
  where ``l`` is a noisy copy of the target latents during training and zeros at
  evaluation (so inference is deterministic); then the readout ``z = W_out h``.

Dropout is ``torch.nn.Dropout``: a fresh mask for every batch in training mode and the
identity in evaluation mode (the seed drew one constant mask and used it at inference too).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from scene2brain.utils.training import EarlyStopping

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "prelu": nn.PReLU}
LOSSES = ("mse", "correlation", "racing")
OPTIMIZERS = ("adamw", "lion")
CHUNK = 4096  # rows per forward pass at evaluation


class Block(nn.Module):
    """``h + act(W h)``."""

    def __init__(self, width: int, activation: str) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.activation = ACTIVATIONS[activation]()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.activation(self.linear(h))


class Trunk(nn.Module):
    """Input projection, ``depth`` residual blocks, dropout (a fresh mask per batch in training mode)."""

    def __init__(self, n_in: int, width: int, depth: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.input = nn.Linear(n_in, width)
        self.blocks = nn.Sequential(*[Block(width, activation) for _ in range(depth)])
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.blocks(self.input(x)))


class Head(nn.Module):
    """One subject's readout, with the optional leak of the target latents into the bottleneck."""

    def __init__(self, width: int, n_out: int, leak: float) -> None:
        super().__init__()
        self.leak = float(leak)
        self.leak_projection = nn.Linear(n_out, width) if self.leak > 0 else None
        self.readout = nn.Linear(width, n_out)

    def forward(self, h: torch.Tensor, leak_input: torch.Tensor | None = None) -> torch.Tensor:
        """``leak_input`` (training only): the noisy target latents; None feeds zeros (evaluation)."""
        if self.leak_projection is not None:
            if leak_input is None:
                leak_input = torch.zeros(len(h), self.readout.out_features, device=h.device, dtype=h.dtype)
            h = (h + self.leak * self.leak_projection(leak_input)) / (1.0 + self.leak)
        return self.readout(h)


class Network(nn.Module):
    """A trunk and one head per subject (``heads`` keyed by subject name)."""

    def __init__(self, trunk: Trunk, heads: dict[str, Head]) -> None:
        super().__init__()
        self.trunk = trunk
        self.heads = nn.ModuleDict(heads)

    def forward(self, x: torch.Tensor, subject: str, leak_input: torch.Tensor | None = None) -> torch.Tensor:
        return self.heads[subject](self.trunk(x), leak_input)


# ----------------------------------------------------------------------------- losses


def _cosine_by_group(pred: torch.Tensor, target: torch.Tensor, slices: Sequence[slice]) -> torch.Tensor:
    """Mean over rows of the cosine similarity of each row's predicted and true latent vector, per group."""
    return torch.stack(
        [nn.functional.cosine_similarity(pred[:, s], target[:, s], dim=1, eps=1e-8).mean() for s in slices]
    )


def loss_value(name: str, pred: torch.Tensor, target: torch.Tensor, slices: Sequence[slice]) -> torch.Tensor:
    """The training loss ``name`` of latent predictions ``pred`` against ``target`` (rows x latents).

    - ``"mse"``: mean squared error over rows and latents;
    - ``"correlation"``: 1 - Pearson r over the rows of each latent, averaged over latents
      (scale-free: the predictions' scale is not fitted, so use it with Pearson r, not R^2);
    - ``"racing"``: MSE plus the seed's racing term ``1 - (min_g c_g + mean_g c_g) / 2``, where
      ``c_g`` is the mean over rows of the cosine similarity between the predicted and the true
      latent vector of voxel group ``g`` (a pattern similarity in latent space): the worst group
      (hemisphere) gets extra weight. F-BNet used the cosine term alone, which leaves the
      predictions' scale free; the MSE term fixes it.
    """
    if name == "mse":
        return torch.mean((pred - target) ** 2)
    if name == "correlation":
        a = pred - pred.mean(dim=0)
        b = target - target.mean(dim=0)
        r = (a * b).sum(dim=0) / torch.sqrt((a * a).sum(dim=0) * (b * b).sum(dim=0) + 1e-12)
        return 1.0 - r.mean()
    if name == "racing":
        c = _cosine_by_group(pred, target, slices)
        return torch.mean((pred - target) ** 2) + 1.0 - 0.5 * (c.min() + c.mean())
    raise ValueError(f"loss: expected one of {list(LOSSES)}, got {name!r}")


# ----------------------------------------------------------------------------- optimisers


def make_optimizer(name: str, parameters: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW (``torch.optim.AdamW``) or Lion (``lion_pytorch.Lion``, decoupled weight decay ``lr * wd``).

    Lion's updates are signs (each of size ``lr``): it is usually run with a learning rate 3-10
    times smaller and a weight decay 3-10 times larger than AdamW's.
    """
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    if name == "lion":
        try:
            from lion_pytorch import Lion
        except ImportError as err:  # pragma: no cover - an optional dependency
            raise ImportError(
                "optimizer='lion' needs the lion-pytorch package: pip install 'lion-pytorch>=0.2'"
            ) from err
        return Lion(parameters, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer: expected one of {list(OPTIMIZERS)}, got {name!r}")


# ----------------------------------------------------------------------------- training


@dataclass
class SubjectTensors:
    """One subject's training and validation rows, on the device, in reduced units."""

    name: str
    x_train: torch.Tensor
    z_train: torch.Tensor
    x_val: torch.Tensor
    z_val: torch.Tensor
    slices: list[slice]  # each voxel group's latents
    latent_sd: torch.Tensor  # per latent, over the training rows (scales the leak noise)


def predict_latents(net: Network, subject: str, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode latents in row chunks (leak input zeros)."""
    net.eval()
    with torch.no_grad():
        return torch.cat([net(x[s : s + CHUNK], subject) for s in range(0, len(x), CHUNK)])


def train(
    net: Network,
    subjects: list[SubjectTensors],
    *,
    loss: str,
    optimizer: str,
    lr: float,
    weight_decay: float,
    batch_size: int,
    max_epochs: int,
    patience: int,
    leak_noise: float,
    generator: torch.Generator,
) -> dict[str, np.ndarray]:
    """Train ``net`` on the subjects' rows; keep the epoch with the lowest validation loss.

    Each epoch shuffles every subject's training rows, cuts them into batches of one subject
    each and visits all batches in a shuffled order. The validation loss (eval mode: no
    dropout, leak input zeros) is the training loss on each subject's whole validation part,
    averaged over subjects weighted by their validation rows. Without validation rows the
    last epoch is kept. Returns the history: ``train_loss``, ``validation_loss`` (empty
    without validation rows) and ``elapsed`` seconds per epoch.
    """
    opt = make_optimizer(optimizer, net.parameters(), lr, weight_decay)
    device = subjects[0].x_train.device
    leaking = any(head.leak > 0 for head in net.heads.values())
    n_val = sum(len(s.x_val) for s in subjects)
    history: dict[str, list[float]] = {"train_loss": [], "validation_loss": [], "elapsed": []}
    stopping = EarlyStopping(patience)
    started = time.perf_counter()
    for epoch in range(int(max_epochs)):
        net.train()
        batches = []
        for k, s in enumerate(subjects):
            order = torch.randperm(len(s.x_train), generator=generator)
            batches += [(k, order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
        total, seen = 0.0, 0
        for b in torch.randperm(len(batches), generator=generator).tolist():
            k, rows = batches[b]
            s = subjects[k]
            if len(rows) < 2:
                continue  # a correlation or a batch statistic needs two rows
            rows = rows.to(device)
            z = s.z_train[rows]
            leak_input = None
            if leaking:
                noise = torch.randn(z.shape, generator=generator).to(device)
                leak_input = z + leak_noise * s.latent_sd * noise
            value = loss_value(loss, net(s.x_train[rows], s.name, leak_input), z, s.slices)
            opt.zero_grad()
            value.backward()
            opt.step()
            total += float(value.detach()) * len(rows)
            seen += len(rows)
        history["train_loss"].append(total / max(seen, 1))
        if not np.isfinite(history["train_loss"][-1]):
            raise ValueError(
                f"lr: training diverged (non-finite loss in epoch {epoch + 1}) with lr={lr}; "
                "use a smaller learning rate"
            )
        if n_val:
            val = sum(
                float(loss_value(loss, predict_latents(net, s.name, s.x_val), s.z_val, s.slices)) * len(s.x_val)
                for s in subjects
                if len(s.x_val)
            )
            history["validation_loss"].append(val / n_val)
        history["elapsed"].append(time.perf_counter() - started)
        if n_val and stopping.step(history["validation_loss"][-1], net):
            break
    stopping.restore(net)
    net.eval()
    return {name: np.array(values) for name, values in history.items()}
