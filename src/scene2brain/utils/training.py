"""Helpers of torch training shared by the estimators (decoders, sparse autoencoders): early stopping, devices."""

from __future__ import annotations

import math
from typing import Any


class EarlyStopping:
    """Keep the weights of the epoch with the lowest validation loss; stop after ``patience`` epochs without one.

    Parameters
    ----------
    patience : int
        Epochs without a lower validation loss after which :meth:`step` says stop.

    Examples
    --------
    >>> import torch
    >>> net, stop = torch.nn.Linear(1, 1), EarlyStopping(patience=2)
    >>> [stop.step(loss, net) for loss in (3.0, 2.0, 2.5, 2.1)]
    [False, False, False, True]
    >>> stop.best
    2.0
    """

    def __init__(self, patience: int):
        self.patience = int(patience)
        self.best = math.inf
        self.waited = 0
        self.state: dict[str, Any] | None = None

    def step(self, loss: float, module: Any) -> bool:
        """Record one epoch's validation loss (copying the weights when it is the lowest); True: stop now."""
        if loss < self.best:
            self.best, self.waited = loss, 0
            self.state = {name: t.detach().clone() for name, t in module.state_dict().items()}
            return False
        self.waited += 1
        return self.waited >= self.patience

    def restore(self, module: Any) -> None:
        """Load the best epoch's weights into ``module`` (nothing when no epoch was recorded)."""
        if self.state is not None:
            module.load_state_dict(self.state)


def torch_device(device: str) -> Any:
    """The torch device ``device`` names: ``"auto"`` (CUDA when available), ``"cpu"`` or an available ``"cuda[:i]"``.

    Raises
    ------
    ValueError
        Naming ``device``: not one of those forms, or a CUDA device this machine does not have.

    Examples
    --------
    >>> torch_device("cpu")
    device(type='cpu')
    """
    import torch

    text = str(device)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(text)
    except RuntimeError:
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda[:i]', got {device!r}")
    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if parsed.type == "cuda" and (parsed.index or 0) >= found:
        raise ValueError(
            f"device: {text!r} is not available on this machine ({found} CUDA devices); use 'cpu' or 'auto'"
        )
    return parsed
