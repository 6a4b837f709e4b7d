"""Helpers of torch training loops shared by the estimators (decoders, sparse autoencoders)."""

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
