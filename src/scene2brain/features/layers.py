"""Layer outputs of a network: forward hooks, pooling, and the list of extractable layers.

A layer is any named submodule (``model.named_modules()``), plus ``"output"`` for what
the model returns. Several layers come out of one forward pass. A module called more
than once in a pass (a shared activation, say) yields its last call's output; a module
returning a tuple yields its first tensor.

Pooling turns a layer output into one row per image:

==============  =============================================================
``flatten``     every value
``avg``         mean over space (n, C, H, W) -> (n, C)
``max``         max over space
``adaptiveK``   average pooling to a K x K grid, flattened, e.g. ``adaptive2``
``cls``         first token of a token sequence (n, T, D) -> (n, D)
``mean_token``  mean over the tokens of a sequence
==============  =============================================================

Outputs that are already vectors (n, D) pass through every pooling unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from scene2brain.features.models import FeatureModel

OUTPUT = "output"  # layer name of the model's final output
POOLINGS = ("flatten", "avg", "max", "adaptiveK", "cls", "mean_token")
_SPATIAL = {"avg", "max"}
_TOKEN = {"cls", "mean_token"}


def check_pooling(pooling: str) -> str:
    """Validate a pooling name (see the module docstring)."""
    if pooling in ("flatten", *_SPATIAL, *_TOKEN) or re.fullmatch(r"adaptive[1-9]\d*", pooling):
        return pooling
    raise ValueError(f"pooling: expected one of {', '.join(POOLINGS)} (e.g. adaptive2), got {pooling!r}")


def pool(h: torch.Tensor, pooling: str, layer: str = "layer") -> torch.Tensor:
    """Pool one layer output (n, ...) to (n, features)."""
    if h.ndim == 2 or pooling == "flatten":
        return h.flatten(1)
    if h.ndim == 4 and (pooling in _SPATIAL or pooling.startswith("adaptive")):
        if pooling == "avg":
            return h.mean(dim=(2, 3))
        if pooling == "max":
            return h.amax(dim=(2, 3))
        return F.adaptive_avg_pool2d(h, int(pooling.removeprefix("adaptive"))).flatten(1)
    if h.ndim == 3 and pooling in _TOKEN:
        return h[:, 0] if pooling == "cls" else h.mean(dim=1)
    kind = {3: "token sequence (n, tokens, dim)", 4: "feature map (n, C, H, W)"}.get(h.ndim, f"{h.ndim}-D tensor")
    allowed = {3: "flatten, cls, mean_token", 4: "flatten, avg, max, adaptiveK"}.get(h.ndim, "flatten")
    raise ValueError(f"pooling {pooling!r} does not apply to layer {layer!r}, a {kind}; use {allowed}")


def first_tensor(out: object) -> torch.Tensor | None:
    """The tensor of a module output: itself, or the first tensor of a tuple, list or dict."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Sequence | tuple) and out:
        return first_tensor(out[0])
    if isinstance(out, Mapping) and out:
        return first_tensor(next(iter(out.values())))
    return None


@contextmanager
def capture(module: nn.Module, layers: Mapping[str, str]) -> Iterator[dict[str, torch.Tensor]]:
    """Hook ``layers`` (name -> pooling) of ``module``; yield the dict the hooks fill.

    The hooks are removed on exit, also after an error. ``"output"`` is not a
    submodule and is filled by the caller.
    """
    modules = dict(module.named_modules())
    unknown = [name for name in layers if name != OUTPUT and name not in modules]
    if unknown:
        raise ValueError(
            f"layers: {unknown} not in the model; list them with `scene2brain features layers MODEL` "
            "or scene2brain.features.list_layers"
        )
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str, pooling: str):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            tensor = first_tensor(output)
            if tensor is not None:
                captured[name] = pool(tensor, pooling, name)

        return hook

    try:
        for name, pooling in layers.items():
            if name != OUTPUT:
                handles.append(modules[name].register_forward_hook(hook_for(name, pooling)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def list_layers(model: FeatureModel) -> pd.DataFrame:
    """Every extractable layer with its output shape for one image, in execution order.

    Returns
    -------
    DataFrame with columns ``layer``, ``module`` (class name) and ``shape``
    (output shape without the batch axis).
    """
    shapes: dict[str, tuple[str, tuple[int, ...]]] = {}
    handles = []

    def hook_for(name: str):
        def hook(module: nn.Module, _inputs: object, output: object) -> None:
            tensor = first_tensor(output)
            if tensor is not None:
                shapes[name] = (type(module).__name__, tuple(tensor.shape[1:]))

        return hook

    for name, sub in model.module.named_modules():
        if name:
            handles.append(sub.register_forward_hook(hook_for(name)))
    size = model.preprocessing.size
    x = model.preprocessing(np.full((1, size, size, 3), 128, dtype=np.uint8))
    try:
        with torch.inference_mode():
            out = first_tensor(model.module.eval()(x))
    finally:
        for handle in handles:
            handle.remove()
    rows = [(name, module, shape) for name, (module, shape) in shapes.items()]
    if out is not None:
        rows.append((OUTPUT, type(model.module).__name__, tuple(out.shape[1:])))
    return pd.DataFrame(rows, columns=["layer", "module", "shape"])
