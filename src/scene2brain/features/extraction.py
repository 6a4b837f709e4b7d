"""Batched, cached extraction of several layers from one forward pass per batch.

Images are read from their source one batch at a time (an HDF5 brick, a folder or a
zarr array is never loaded whole), so memory is one batch of images plus the features:
with a store, only one batch of features too (rows go to the store as they come).
Writers of one store may run at once (Dask workers, several runs): see
:mod:`scene2brain.features.store`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scene2brain.data.images import READER_VERSION, ImageSource, as_image_source
from scene2brain.features.layers import check_pooling
from scene2brain.features.models import Extractor, LazyModel, Weights
from scene2brain.features.store import FeatureStore, StoreEntry, lock_entries


def feature_key(model: Extractor, layer: str, pooling: str, stimuli_digest: str) -> dict[str, Any]:
    """Cache key of one layer: model, weights digest, preprocessing, layer, pooling, stimuli, image reader."""
    return {**model.key(), "layer": layer, "pooling": pooling, "stimuli": stimuli_digest, "reader": READER_VERSION}


def _poolings(layers: Sequence[str], pooling: str | Mapping[str, str]) -> dict[str, str]:
    if not layers:
        raise ValueError("layers: expected at least one layer name")
    if isinstance(pooling, str):
        return {layer: check_pooling(pooling) for layer in layers}
    missing = [layer for layer in layers if layer not in pooling]
    if missing:
        raise ValueError(f"pooling: no pooling given for layers {missing}")
    return {layer: check_pooling(pooling[layer]) for layer in layers}


def extract_features(
    images: Any,
    model: Extractor | str = "efficientnet-lite0",
    layers: Sequence[str] = ("head",),
    pooling: str | Mapping[str, str] = "avg",
    *,
    weights: Weights = "pretrained",
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    amp: bool = False,
    store: FeatureStore | str | Path | None = None,
    lazy: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Features of ``layers`` for every image, one forward pass per batch.

    Parameters
    ----------
    images : ndarray, Stimuli, image source, folder path, ``"file.hdf5[:dataset]"`` or ``.npy`` file
        uint8 images (n, H, W[, C]); grayscale is repeated over three channels. See
        :func:`~scene2brain.data.images.as_image_source`; the stimuli's digest is
        computed once per source object (pass the same source, or a Stimuli, to reuse it).
    model : Extractor or str
        A feature model or a registry name (see :func:`~scene2brain.features.available_models`).
        A name (or a :class:`~scene2brain.features.models.LazyModel`) is built only when some
        layer is not complete in the store: its key is recorded in the store when it is built.
    layers : sequence of str
        Layer names (:func:`~scene2brain.features.list_layers`), ``"output"`` for the model output.
    pooling : str or mapping of layer -> str
        See :mod:`scene2brain.features.layers`.
    weights : "pretrained", "random" or path
        Used when ``model`` is a name.
    batch_size : int
        Images per forward pass (and rows per stored chunk).
    device : str or torch.device
        "cpu", "cuda", ...
    amp : bool
        Mixed precision (float16 autocast) on CUDA; ignored on the CPU. Features are
        stored as float32 either way.
    store : FeatureStore, path or URL, optional
        Feature store (a folder, or an object-store URL such as ``s3://bucket/prefix``:
        see :class:`~scene2brain.features.store.FeatureStore`). Layers already complete
        there are read, not computed; the others are written batch by batch and resume
        after an interruption. Another writer computing the same layers at the same time
        (a local store) is waited for, and its layers are read, not computed again.
    lazy : bool
        With a store, return zarr arrays instead of loading the matrices into memory.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict of layer -> array of shape (n_images, n_features), float32
    """
    if store is not None:
        entries, _ = extract_to_store(
            images, model, layers, pooling, store, weights=weights, batch_size=batch_size, device=device, amp=amp,
            progress=progress,
        )  # fmt: skip
        return {layer: entry.read(lazy=lazy) for layer, entry in entries.items()}
    source, model, poolings = _checked(images, model, layers, pooling, weights, batch_size, None)
    out: dict[str, np.ndarray] = {}
    for start, batch in model.batches(source, poolings, 0, batch_size, device=device, amp=amp, progress=progress):
        for layer, block in batch.items():
            if layer not in out:  # one matrix per layer, filled batch by batch (never a second copy)
                out[layer] = np.empty((len(source), block.shape[1]), dtype=np.float32)
            out[layer][start : start + len(block)] = block
    return {layer: out[layer] for layer in poolings}


def extract_to_store(
    images: Any,
    model: Extractor | str,
    layers: Sequence[str],
    pooling: str | Mapping[str, str],
    store: FeatureStore | str | Path,
    *,
    weights: Weights = "pretrained",
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    amp: bool = False,
    progress: bool = True,
) -> tuple[dict[str, StoreEntry], list[str]]:
    """Complete the store entry of every layer; see :func:`extract_features` for the parameters.

    Layers already complete are left alone; the others are computed together, one
    forward pass per batch, resuming each from its last stored batch. A model given by
    name, or as a :class:`~scene2brain.features.models.LazyModel`, is built only when some
    layer must be computed; until then its key comes from the store's record of it
    (:meth:`FeatureStore.memo() <scene2brain.features.store.FeatureStore.memo>`).

    Returns
    -------
    entries : dict of layer -> StoreEntry
        All complete on return.
    computed : list of str
        The layers this call computed (the others were already in the store).
    """
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    source, model, poolings = _checked(images, model, layers, pooling, weights, batch_size, store)
    entries = store_entries(source, model, layers, pooling, store)
    todo = {layer: entry for layer, entry in entries.items() if not entry.complete}
    if todo and isinstance(model, LazyModel) and not model.built:
        # computing needs the network: build it, and file the features under the built model's own key
        # (the recorded one could be stale had the weights file changed without its stamp changing)
        model.load()
        entries = store_entries(source, model, layers, pooling, store)
        todo = {layer: entry for layer, entry in entries.items() if not entry.complete}
    computed: list[str] = []
    if todo:
        # several writers (Dask workers, runs sharing the store): hold the entries' locks from the check to the last
        # row, so that the same entry is computed once and a waiting writer finds it complete (local stores)
        with lock_entries(todo.values(), on_wait=_waiting(model, progress)):
            todo = {layer: entry for layer, entry in todo.items() if not entry.complete}
            if todo:
                _compute(source, model, {layer: poolings[layer] for layer in todo}, todo, images, batch_size,
                         device=device, amp=amp, progress=progress)  # fmt: skip
                computed = list(todo)
    return entries, computed


def _compute(
    source: ImageSource,
    model: Extractor,
    poolings: dict[str, str],
    todo: dict[str, StoreEntry],
    images: Any,
    batch_size: int,
    **options: Any,
) -> None:
    """Fill the entries of ``todo`` (layer -> entry) batch by batch, each from its last stored batch."""
    info = _source_info(images, source)
    done = {layer: _resume_point(entry, batch_size) for layer, entry in todo.items()}
    started: set[str] = set()
    for start, batch in model.batches(source, poolings, min(done.values()), batch_size, **options):
        for layer, block in batch.items():
            entry = todo[layer]
            if layer not in started:
                done[layer] = min(done[layer], entry.start(len(source), block.shape[1], batch_size, info))
                started.add(layer)
            if start + len(block) > done[layer]:
                entry.write_rows(start, block, written_from=done[layer])  # its rows from there on: this call's


def _checked(
    images: Any,
    model: Extractor | str,
    layers: Sequence[str],
    pooling: str | Mapping[str, str],
    weights: Weights,
    batch_size: int,
    store: FeatureStore | None,
) -> tuple[ImageSource, Extractor, dict[str, str]]:
    """Validate the arguments of an extraction; resolve the image source and the model (a name: unbuilt)."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    poolings = _poolings(layers, pooling)
    source = as_image_source(images)
    if len(source) == 0:
        raise ValueError("images: no images to extract features from")
    if isinstance(model, str):
        model = LazyModel(model, weights, memo=None if store is None else store.memo())
    return source, model, poolings


def store_entries(
    images: Any,
    model: Extractor,
    layers: Sequence[str],
    pooling: str | Mapping[str, str],
    store: FeatureStore | str | Path,
) -> dict[str, StoreEntry]:
    """The store entry of each layer (``entry.complete`` tells whether extraction would compute it)."""
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    digest = as_image_source(images).digest()
    return {
        layer: store.entry(model.name, feature_key(model, layer, p, digest))
        for layer, p in _poolings(layers, pooling).items()
    }


def _waiting(model: Extractor, progress: bool) -> Callable[[], None] | None:
    """What to say when another writer holds an entry this extraction would write (with progress output)."""
    if not progress:
        return None
    told: list[bool] = []

    def say() -> None:
        if not told:
            told.append(True)
            print(f"{model.name} features: waiting for another writer of the same entries", file=sys.stderr, flush=True)

    return say


def _resume_point(entry: StoreEntry, batch_size: int) -> int:
    """First row to compute for an incomplete entry, aligned to whole batches."""
    return entry.rows_done // batch_size * batch_size


def _source_info(images: Any, source: ImageSource) -> dict[str, Any]:
    info: dict[str, Any] = {"n_images": len(source), "images": source.describe()}
    if isinstance(images, str | Path):
        info["stimuli"] = str(images)
    return info
