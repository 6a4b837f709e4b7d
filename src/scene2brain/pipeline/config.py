"""Run configuration: one TOML file that says what a study computes.

A configuration names the dataset and subjects, the splits, the feature spaces (models x
layers x pooling x reduction), the encoder and the evaluation. :func:`load_config` reads
and validates it; every error names the file, the key and what is allowed.

Example (the demo ships as ``scene2brain/pipeline/configs/demo.toml``)::

    [run]
    output = "results"

    [dataset]
    name = "simulated"

    [[features]]
    name = "effnet"
    model = "efficientnet-lite0"
    layers = ["_blocks.6", "head"]
    reduction = { method = "pca", n_components = 64 }
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import tomllib
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from scene2brain.data.datasets.registry import experiment_datasets
from scene2brain.encoding.registry import ENCODERS, check_encoder_values
from scene2brain.features.layers import POOLINGS, check_pooling, pool
from scene2brain.features.models import OUTPUT, available_models, model_entry
from scene2brain.features.reduction import Reduction
from scene2brain.utils.files import file_url_path, url_protocol

SIMULATED = "simulated"
SIMULATED_SPLITS = ("train", "test")  # the splits of every simulated experiment


def _layers(names: list[str]) -> str:
    """A model's layer names for an error message (the first ones, and how to list them all)."""
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return f"its layers: {shown} (`scene2brain features layers MODEL` lists them with their shapes)"


def _one_of(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


class ConfigError(ValueError):
    """A run configuration that cannot be used; the message names the file and key."""


@functools.lru_cache(maxsize=32)
def _meta_extractor(name: str, options: tuple[tuple[str, Any], ...] = ()) -> Any:
    """The model ``name`` built without weights (on PyTorch's meta device: no memory, no download), or None."""
    import torch

    entry = model_entry(name)
    try:
        if not entry.has_weights:
            return entry.factory("pretrained", **dict(options))
        with torch.device("meta"):
            return entry.factory("random", **dict(options))
    except Exception:  # a model that cannot be built this way (CLIP): its layers are checked when it runs
        return None


def network_layers(name: str) -> list[str] | None:
    """The layer names of model ``name``: its fixed layers, or a network's named submodules plus ``output``.

    A network is built on PyTorch's meta device (no weights are read or allocated); None when
    it cannot be built that way, in which case its layers are checked when it runs.
    """
    entry = model_entry(name)
    if entry.layers is not None:
        return list(entry.layers)
    model = _meta_extractor(name)
    module = getattr(model, "module", None)
    if module is None:
        return None
    return [layer for layer, _ in module.named_modules() if layer] + [OUTPUT]


def layer_widths(name: str, layers: list[str], pooling: str, options: dict[str, Any]) -> dict[str, int] | None:
    """Number of features per image of each layer after pooling, from a forward pass on the meta device.

    None when the model cannot be run that way (the disk-space estimate then leaves it out).
    """
    import torch

    from scene2brain.features.layers import capture, first_tensor

    try:
        model = _meta_extractor(name, tuple(sorted(options.items())))
    except TypeError:  # unhashable option values
        return None
    if model is None:
        return None
    if not hasattr(model, "module"):  # the Gabor pyramid: one layer of contrast energies
        pyramid = getattr(model, "pyramid", None)
        return {layer: int(pyramid.n_channels) for layer in layers} if pyramid is not None else None
    size = model.preprocessing.size
    try:
        with torch.device("meta"), capture(model.module, {lay: pooling for lay in layers}) as captured:
            out = first_tensor(model.module(torch.empty(1, 3, size, size)))
            if OUTPUT in layers and out is not None:
                captured[OUTPUT] = pool(out, pooling, OUTPUT)
        return {layer: int(captured[layer][0].numel()) for layer in layers}
    except Exception:
        return None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSection(_Section):
    """``[run]``: where results go and the run-wide seed."""

    name: str = "run"
    output: Path = Path("results")
    #: The feature store: a folder (default ``<output>/cache``) or an fsspec URL (``s3://bucket/prefix``).
    cache: Path | str | None = None
    #: fsspec ``storage_options`` of a URL cache (credentials are better left to the environment).
    cache_options: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_location(cls, value: Any) -> Any:
        """A folder as a Path (``file://`` URLs too); any other URL kept as text for fsspec."""
        if not isinstance(value, str):
            return value
        protocol = url_protocol(value)
        if protocol is None:
            return Path(value)
        return file_url_path(value) if protocol == "file" else value

    @model_validator(mode="after")
    def _options_need_a_url(self) -> RunSection:
        if self.cache_options and not isinstance(self.cache, str):
            raise ValueError("cache_options: only for a cache at a URL (e.g. s3://bucket/prefix); cache is a folder")
        return self


#: The ground-truth checks of a simulated run (see :mod:`scene2brain.pipeline.analyses.ground_truth`).
GroundTruthCheck = Literal[
    "ev-gabor", "hv-driver", "cal-ceiling", "noise-ceiling",
    "face-decoding", "blind-decoding", "blur-probe", "rsa-ev-gabor", "rsa-hv-driver", "sae-recovery", "sae-face",
    "nonlinear-hv",
]  # fmt: skip
GROUND_TRUTH_CHECKS: tuple[str, ...] = typing.get_args(GroundTruthCheck)


class SimulationSection(_Section):
    """``[dataset.simulation]``: the stimuli of the simulated experiment and what drives its voxels.

    The stimuli are crops of the photographs bundled with scikit-image and scikit-learn
    plus LFW faces (``n_stimuli``, of which ``n_test`` are test stimuli, default one sixth),
    split by source photograph; or, with ``stimuli``, the
    user's own images (a folder or an HDF5 file ``path.h5[:dataset]``; any sizes,
    grayscale or colour), every one of them, with the test images listed in
    ``test_stimuli`` (a text file, one file name per line) or ``n_test`` drawn at random.
    ``skip_checks`` turns ground-truth checks off explicitly (a check whose inputs are
    missing otherwise fails the run).
    """

    n_stimuli: int = Field(1200, ge=60)
    stimuli: Path | None = None
    test_stimuli: Path | None = None
    n_test: int | None = Field(None, ge=1)
    n_voxels: int = Field(2000, ge=5)
    image_size: int = Field(128, ge=32)
    gabor_size: int = Field(64, ge=16)
    driver_model: str = "efficientnet-lite0"
    driver_layer: str = "head"
    n_components: int = Field(64, ge=2)
    skip_checks: list[GroundTruthCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _test_split(self) -> SimulationSection:
        if self.test_stimuli is not None and (self.stimuli is None or self.n_test is not None):
            raise ValueError("test_stimuli lists test images of `stimuli`: set stimuli, and not n_test with it")
        if self.stimuli is not None and "n_stimuli" in self.model_fields_set:
            raise ValueError("n_stimuli counts the bundled photographs; with `stimuli` every image is used: remove it")
        if self.driver_model not in available_models():
            raise ValueError(
                f"driver_model: unknown model {self.driver_model!r}; see `scene2brain features` for the available names"
            )
        layers = network_layers(self.driver_model)
        if layers is not None and self.driver_layer not in layers:
            raise ValueError(
                f"driver_layer: {self.driver_layer!r} is not a layer of {self.driver_model}; {_layers(layers)}"
            )
        return self


class DatasetSection(_Section):
    """``[dataset]``: which data, where, whose."""

    name: str
    path: Path | None = None
    subjects: list[int | str] = Field(default_factory=lambda: [1], min_length=1)
    roi_column: str = "roi"
    options: dict[str, Any] = Field(default_factory=dict)
    simulation: SimulationSection = Field(default_factory=SimulationSection)

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        allowed = experiment_datasets()
        if value not in allowed:
            raise ValueError(f"Input should be {_one_of(allowed)}")
        return value

    @model_validator(mode="after")
    def _path_needed(self) -> DatasetSection:
        if self.name != SIMULATED and self.path is None:
            raise ValueError(f"path is required for dataset {self.name!r} (the folder holding its files)")
        return self


class SplitsSection(_Section):
    """``[splits]``: names of the experiment's splits used to fit and to score."""

    train: str = "train"
    test: str = "test"

    @model_validator(mode="after")
    def _distinct(self) -> SplitsSection:
        if self.train == self.test:
            raise ValueError(f"train and test must be different splits, both are {self.train!r}")
        return self


class FeatureSection(_Section):
    """One ``[[features]]`` entry: a registered model (network or Gabor pyramid) and its layers.

    Each layer is one feature space, ``"<name>:<layer>"``. ``layers`` defaults to the
    model's fixed layers (the Gabor pyramid's ``energy``) or to its ``output``;
    ``options`` are the model's own options (``image_size`` of the Gabor pyramid).
    ``reduction`` is fitted on the training stimuli only; its ``seed`` defaults to
    ``run.seed``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    model: str
    layers: list[str] | None = Field(None, min_length=1)
    pooling: str = "avg"
    weights: str = "pretrained"
    options: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(32, ge=1)
    device: str = "cpu"
    reduction: Reduction = Field(default_factory=lambda: Reduction("pca", 64))

    @field_validator("reduction", mode="before")
    @classmethod
    def _reduction_shorthand(cls, value: Any) -> Any:
        return {"method": value} if isinstance(value, str) else value

    @field_validator("pooling")
    @classmethod
    def _known_pooling(cls, value: str) -> str:
        try:
            return check_pooling(value)
        except ValueError:
            raise ValueError(f"expected one of {', '.join(POOLINGS)} (e.g. adaptive2)") from None

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in available_models():
            raise ValueError(f"unknown model {value!r}; see `scene2brain features` for the available names")
        return value

    @model_validator(mode="after")
    def _model_rules(self) -> FeatureSection:
        entry = model_entry(self.model)
        unknown = sorted(set(self.options) - set(entry.options))
        if unknown:
            raise ValueError(f"options: {unknown} are not options of {self.model} (its options: {list(entry.options)})")
        if not entry.has_weights and self.weights != "pretrained":
            raise ValueError(f"weights: {self.model} has no weights (it is fixed); got {self.weights!r}")
        # Check the options' types against the factory's annotations (where it has them).
        try:
            hints = typing.get_type_hints(entry.factory)
        except Exception:  # unresolvable annotations of a user's factory: the factory checks its options
            hints = {}
        for key, value in self.options.items():
            if key in hints:
                try:
                    TypeAdapter(hints[key]).validate_python(value, strict=True)
                except ValidationError:
                    raise ValueError(
                        f"options.{key}: expected {getattr(hints[key], '__name__', hints[key])} for {self.model}, "
                        f"got {value!r}"
                    ) from None
        # Resolve the factory's defaults, so that equal extractions have equal settings (and keys).
        parameters = inspect.signature(entry.factory).parameters
        defaults = {
            k: parameters[k].default for k in entry.options if parameters[k].default is not inspect.Parameter.empty
        }
        object.__setattr__(self, "options", {**defaults, **self.options})
        problem = layer_problem(self.model, self.layers)
        if problem:
            raise ValueError(problem)
        layers = self.layer_names()
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers: each layer once, got {layers}")
        return self

    def layer_names(self) -> list[str]:
        """The layers, with the model's default when none are given."""
        if self.layers is not None:
            return list(self.layers)
        entry = model_entry(self.model)
        return list(entry.layers) if entry.layers is not None else [OUTPUT]

    def space(self, layer: str) -> str:
        """Feature-space name of one layer: ``"<name>:<layer>"``."""
        return f"{self.name}:{layer}"

    def extraction(self) -> dict[str, Any]:
        """What the values of this entry's feature spaces depend on, besides the stimuli and the layer."""
        return self.model_dump(mode="json", exclude={"name", "layers", "batch_size", "device"})


def _registered_encoder(value: str) -> str:
    if value not in ENCODERS:
        raise ValueError(f"Input should be {_one_of(list(ENCODERS))}")
    return value


class EncoderSection(_Section):
    """``[encoder]``: the voxelwise model fitted per feature space, and the folds every encoder shares.

    Its predictions are the run's: per-voxel tables, ROI summaries, identification and decoding
    from predicted responses use them. ``cv`` folds of the training stimuli (grouped by content,
    seeded by ``run.seed``) choose the hyperparameters of this encoder and of every
    ``[[encoders]]`` entry. ``options`` are the encoder's own (see ``[[encoders]]``); ``alphas``
    and ``backend`` are the ridge's, kept at the top level.
    """

    model: str = "ridge"
    alphas: list[float] | None = None
    cv: int = Field(5, ge=2)
    backend: Literal["numpy", "torch"] = "numpy"
    device: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("alphas")
    @classmethod
    def _positive(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (not value or min(value) <= 0):
            raise ValueError(f"alphas must be a non-empty list of positive numbers, got {value}")
        return value

    _model = field_validator("model")(_registered_encoder)

    @model_validator(mode="after")
    def _options(self) -> EncoderSection:
        check_encoder_values(self.model, self.fit_options())
        return self

    def fit_options(self) -> dict[str, Any]:
        """The options given to the encoder's fit: ``options`` plus ``alphas`` / ``backend`` when set."""
        top = {"alphas": self.alphas} if self.alphas is not None else {}
        if self.backend != "numpy":
            top["backend"] = self.backend
        return {**top, **self.options}

    def settings(self) -> dict[str, Any]:
        """What an encode stage reads: the model, the number of folds and the fit options."""
        return {"model": self.model, "cv": self.cv, "options": self.fit_options()}


class EncoderEntry(_Section):
    """``[[encoders]]``: one more encoder compared with ``[encoder]`` on the same splits and folds.

    ``name`` labels it in tables and figures; ``model`` is a registered encoder (``ridge``,
    ``ridge-shared``, ``ols``, ``lasso``, ``elasticnet``, ``multitask-lasso``,
    ``multitask-elasticnet``, ``pls``, ``knn``, ``tree``, ``forest``, ``kernel-ridge``,
    ``bottleneck``); ``options`` its keyword options (an unknown one is refused, with the list
    of allowed ones); ``spaces`` the feature spaces it is fitted on (default every space);
    ``voxel_groups`` a column of the voxel table (``hemisphere``, ``roi``) whose labels group
    the voxels for encoders that reduce responses per group (the bottleneck network's response
    PCA). ``device`` (torch encoders) changes how, not what, it computes.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    model: str
    options: dict[str, Any] = Field(default_factory=dict)
    spaces: list[str] | None = Field(None, min_length=1)
    voxel_groups: str | None = None
    device: str | None = None

    _model = field_validator("model")(_registered_encoder)

    @model_validator(mode="after")
    def _options(self) -> EncoderEntry:
        check_encoder_values(self.model, self.options)
        if self.voxel_groups is not None and not ENCODERS[self.model].accepts("voxel_groups"):
            raise ValueError(f"voxel_groups: encoder {self.model!r} does not group voxels")
        if self.device is not None:
            if not ENCODERS[self.model].accepts("device"):
                raise ValueError(f"device: encoder {self.model!r} runs on the CPU only")
            from scene2brain.utils.training import torch_device

            torch_device(self.device)  # "auto", "cpu" or an available "cuda[:i]"
        return self


class EvaluationSection(_Section):
    """``[evaluation]``: noise ceiling, confidence intervals, identification."""

    noise_ceiling: Literal["repeats", "ncsnr", "none"] = "repeats"
    n_bootstraps: int = Field(1000, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    identification: bool = False
    identification_voxels: int = Field(500, ge=2)


class DecodingSection(_Section):
    """``[decoding]``: which stimulus category is decoded, from which ROIs and feature spaces, how.

    ``labels`` is a column of the stimulus table (``face`` or ``coarse_class`` in the
    simulation, ``wordnet_general`` for Kay 2008, ``person`` for NSD with COCO labels);
    ``classes`` keeps only those classes (Kay's seed kept animal, artifact and geological
    formation), default every class. Each decoder is trained on the training stimuli
    (hyperparameters by grouped K-fold CV on them, ``cv`` folds) and scored on the test
    stimuli; ``n_permutations`` permutation tests of the whole pipeline, corrected across
    ROIs (and across feature spaces) by ``correction``. ``rois``: labels of
    ``dataset.roi_column`` plus ``"all"`` (default every ROI and "all"); ``spaces``: the
    feature spaces read out by linear probes (default all, ``[]`` none);
    ``from_predictions`` decodes each space's predicted test responses with decoders
    trained on measured ones; ``blur_spaces`` get the blur protocol (Gaussian
    ``blur_sigmas`` in pixels and ``blur_boxes`` box sizes).
    """

    labels: str
    classes: list[str] | None = Field(None, min_length=2)
    decoders: list[str] = Field(default_factory=lambda: ["logistic"], min_length=1)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    rois: list[str] | None = Field(None, min_length=1)
    spaces: list[str] | None = None
    screening: int | None = Field(None, ge=1)
    cv: int = Field(5, ge=2)
    n_permutations: int = Field(1000, ge=0)
    correction: Literal["maxstat", "fdr"] = "maxstat"
    metric: Literal["balanced_accuracy", "accuracy"] = "balanced_accuracy"
    from_predictions: bool = True
    blur_spaces: list[str] = Field(default_factory=list)
    blur_sigmas: list[float] = Field(default_factory=lambda: [0.0, 1.0, 2.0, 4.0, 8.0])
    blur_boxes: list[int] = Field(default_factory=lambda: [3, 7, 15])
    device: str = "cpu"

    @field_validator("decoders")
    @classmethod
    def _registered(cls, value: list[str]) -> list[str]:
        from scene2brain.decoding import DECODERS

        unknown = [d for d in value if d not in DECODERS]
        if unknown:
            raise ValueError(f"{unknown} are not decoders; expected {_one_of(list(DECODERS))}")
        if len(set(value)) != len(value):
            raise ValueError(f"each decoder once, got {value}")
        return value

    @field_validator("blur_sigmas")
    @classmethod
    def _sigmas(cls, value: list[float]) -> list[float]:
        if min(value, default=0) < 0:
            raise ValueError(f"Gaussian sigmas in pixels, >= 0 (0: no blur); got {value}")
        return value

    @field_validator("blur_boxes")
    @classmethod
    def _boxes(cls, value: list[int]) -> list[int]:
        if any(b < 3 or b % 2 == 0 for b in value):
            raise ValueError(f"box sizes are odd numbers of pixels >= 3 (no blur is blur_sigmas 0); got {value}")
        return value

    @field_validator("classes")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"each class once, got {value}")
        return value

    @model_validator(mode="after")
    def _options(self) -> DecodingSection:
        from scene2brain.decoding import make_decoder
        from scene2brain.decoding.decoders import resolve_options

        extra = sorted(set(self.options) - set(self.decoders))
        if extra:
            raise ValueError(f"options: {extra} are not among decoders {self.decoders}")
        for name, options in self.options.items():
            try:  # names, grids (a list searches those values) and, for scikit-learn's estimators, fixed values
                _, fixed, grid = resolve_options(name, options)
                classifier = make_decoder(name, **{k: v for k, v in fixed.items() if k not in grid})[-1]
                if hasattr(classifier, "_validate_params"):
                    classifier._validate_params()
            except (TypeError, ValueError) as err:
                raise ValueError(f"options.{name}: {err}") from None
        if self.blur_spaces and not self.blur_sigmas:
            raise ValueError("blur_sigmas: the blur protocol needs at least one Gaussian sigma (0 is no blur)")
        return self


class RSASection(_Section):
    """``[rsa]``: representational similarity of ROIs and feature spaces on the test stimuli.

    RDMs (``distance``; with ``crossvalidated`` the ROIs' RDMs are instead cross-validated
    Euclidean distances over the test trials' repeats, crossnobis with noise normalisation
    by the residual precision when ``noise_normalise``) of each ROI (labels of ``dataset.roi_column``, default all) and
    each feature space (default all) are compared with ``comparator``; intervals by
    ``n_bootstraps`` bootstraps over stimuli, p-values by ``n_permutations`` stimulus-label
    permutations, pairwise model comparisons FDR-corrected, and a noise ceiling from the
    repeats. ``labels`` (a stimulus-table column) orders the RDM images by category.
    """

    rois: list[str] | None = Field(None, min_length=1)
    spaces: list[str] | None = Field(None, min_length=1)
    distance: str = "correlation"
    comparator: str = "spearman"
    crossvalidated: bool = False
    noise_normalise: bool = False
    n_bootstraps: int = Field(1000, ge=0)
    n_permutations: int = Field(1000, ge=0)
    labels: str | None = None

    @field_validator("distance")
    @classmethod
    def _distance(cls, value: str) -> str:
        from scene2brain.representation import DISTANCES

        allowed = [d for d in DISTANCES if d != "crossnobis"]
        if value == "crossnobis":
            raise ValueError(f"crossnobis is set by crossvalidated = true (feature spaces use {_one_of(allowed)})")
        if value not in allowed:
            raise ValueError(f"expected {_one_of(allowed)}, got {value!r}")
        return value

    @field_validator("comparator")
    @classmethod
    def _comparator(cls, value: str) -> str:
        from scene2brain.representation import COMPARATORS

        if value not in COMPARATORS:
            raise ValueError(f"expected {_one_of(list(COMPARATORS))}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _noise(self) -> RSASection:
        if self.noise_normalise and not self.crossvalidated:
            raise ValueError("noise_normalise: needs crossvalidated = true (crossnobis distances over repeats)")
        return self


class SAEModelSection(_Section):
    """``[[sae.models]]``: one sparse-autoencoder configuration, a ``name`` and its ``options``.

    ``options`` are :class:`~scene2brain.representation.SparseAutoencoder` parameters
    (``n_latents``, ``architecture``, ``sparsity``, ``l1``, ``k``, ``tied``, ``hidden``,
    ``weight_sparsity``, ``lr``, ``weight_decay``, ``batch_size``, ``max_epochs``,
    ``patience``, ``validation_fraction``); the seed comes from ``[sae] seeds`` and the
    device from ``[sae] device``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        from scene2brain.representation import SparseAutoencoder

        allowed = sorted(set(SparseAutoencoder().get_params()) - {"random_state", "device"})
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(f"{unknown} are not sparse-autoencoder options; expected some of {allowed}")
        SparseAutoencoder(**value).check_params()
        return value


class SAESection(_Section):
    """``[sae]``: sparse autoencoders of ROI responses, what their latents encode, one embedding.

    Each ``[[sae.models]]`` entry is fitted once per seed of ``seeds`` on the repeat-averaged
    training responses of the voxels of ``rois`` (labels of ``dataset.roi_column``, pooled;
    default every voxel). On the test stimuli: reconstruction, sparsity, dead units; per
    column of ``labels`` (stimulus-table columns) each latent's selectivity for the
    ``positive`` class (default: the class named like the column, else the second of two;
    with more classes and none given, each class against the rest), and the separability of
    the classes from the codes against ``baselines`` (PCA, ICA, NMF of the same size) and
    the voxels (``decoder``, ``cv`` grouped folds, ``n_permutations``). ``embedding``: one
    t-SNE or UMAP map of the training stimuli's codes (first seed), test stimuli placed in.
    """

    rois: list[str] | None = Field(None, min_length=1)
    models: list[SAEModelSection] = Field(
        default_factory=lambda: [SAEModelSection(name="dictionary", options={"n_latents": 16})], min_length=1
    )
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    labels: list[str] = Field(default_factory=list)
    positive: dict[str, str] = Field(default_factory=dict)
    baselines: list[Literal["pca", "ica", "nmf"]] = Field(default_factory=lambda: ["pca", "ica", "nmf"])
    decoder: str = "logistic"
    cv: int = Field(5, ge=2)
    n_permutations: int = Field(1000, ge=0)
    embedding: Literal["tsne", "umap", "none"] = "tsne"
    device: str = "auto"

    @field_validator("decoder")
    @classmethod
    def _decoder(cls, value: str) -> str:
        from scene2brain.decoding import DECODERS

        if value not in DECODERS:
            raise ValueError(f"expected {_one_of(list(DECODERS))}, got {value!r}")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        from scene2brain.utils.training import torch_device

        torch_device(value)  # "auto", "cpu" or an available "cuda[:i]"
        return value

    @model_validator(mode="after")
    def _unique(self) -> SAESection:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models: each name once, got {names}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: each seed once, got {self.seeds}")
        unknown = sorted(set(self.positive) - set(self.labels))
        if unknown:
            raise ValueError(f"positive: {unknown} are not columns of sae.labels {self.labels}")
        if self.embedding == "umap":
            import importlib.util

            if importlib.util.find_spec("umap") is None:
                raise ValueError("embedding: 'umap' needs umap-learn: pip install 'scene2brain[umap]'")
        return self


class ReportSection(_Section):
    """``[report]``: whether ``scene2brain run`` writes the report, and what it draws."""

    enabled: bool = True
    compare: list[str] | None = Field(None, min_length=2, max_length=2)
    surface: Literal["auto", "fsaverage5", "fsaverage"] = "auto"
    views: list[Literal["lateral", "medial", "ventral", "posterior", "dorsal", "anterior"]] = Field(
        default_factory=lambda: ["lateral", "medial", "ventral"], min_length=1
    )


class RunConfig(_Section):
    """A whole run configuration."""

    run: RunSection = Field(default_factory=RunSection)
    dataset: DatasetSection
    splits: SplitsSection = Field(default_factory=SplitsSection)
    features: list[FeatureSection] = Field(min_length=1)
    encoder: EncoderSection = Field(default_factory=EncoderSection)
    encoders: list[EncoderEntry] = Field(default_factory=list)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    decoding: DecodingSection | None = None
    rsa: RSASection | None = None
    sae: SAESection | None = None
    report: ReportSection = Field(default_factory=ReportSection)

    @model_validator(mode="before")
    @classmethod
    def _reduction_seed(cls, data: Any) -> Any:
        """A reduction without its own seed uses ``run.seed``."""
        if not isinstance(data, dict) or not isinstance(data.get("features"), list):
            return data
        run = data.get("run") if isinstance(data.get("run"), dict) else {}
        seed = run.get("seed", 0)
        features = []
        for entry in data["features"]:
            if isinstance(entry, dict):
                reduction = entry.get("reduction", {"method": "pca", "n_components": 64})
                if isinstance(reduction, str):
                    reduction = {"method": reduction}
                if isinstance(reduction, dict) and "seed" not in reduction:
                    entry = {**entry, "reduction": {**reduction, "seed": seed}}
            features.append(entry)
        return {**data, "features": features}

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError(f"features: each name once, got {names}")
        problems = simulated_split_problems(self.dataset.name, self.splits.model_dump())
        if problems:
            raise ValueError(problems[0])
        if self.report.compare is not None:
            unknown = [s for s in self.report.compare if s not in self.spaces()]
            if unknown:
                raise ValueError(f"report.compare: {unknown} are not feature spaces; allowed: {self.spaces()}")
        lists = []
        if self.decoding is not None:
            lists += [("decoding.spaces", self.decoding.spaces), ("decoding.blur_spaces", self.decoding.blur_spaces)]
        if self.rsa is not None:
            lists.append(("rsa.spaces", self.rsa.spaces))
        lists += [(f"encoders[{i}].spaces", entry.spaces) for i, entry in enumerate(self.encoders)]
        names = [self.encoder.model, *(entry.name for entry in self.encoders)]
        if len(set(names)) != len(names):
            raise ValueError(f"encoders: each name once, and none named like [encoder]'s model; got {names}")
        for key, spaces in lists:
            unknown = [s for s in spaces or [] if s not in self.spaces()]
            if unknown:
                raise ValueError(f"{key}: {unknown} are not feature spaces; allowed: {self.spaces()}")
        return self

    def spaces(self) -> list[str]:
        """Every feature space, ``"<feature name>:<layer>"``, in configuration order."""
        return [f.space(layer) for f in self.features for layer in f.layer_names()]

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain TOML-writable values (no None)."""
        return _drop_none(self.model_dump(mode="json"))

    def result_settings(self) -> dict[str, Any]:
        """:meth:`to_dict` without what changes how, not what, a run computes (batch sizes, devices)."""
        data = self.to_dict()
        for entry in data["features"]:
            entry.pop("batch_size", None)
            entry.pop("device", None)
        data["encoder"].pop("device", None)
        for entry in data["encoders"]:
            entry.pop("device", None)
        if "decoding" in data:
            data["decoding"].pop("device", None)
        return data


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _section_for(loc: tuple) -> type | None:
    """The model class that owns the key at ``loc`` (for listing allowed keys)."""
    model: type[BaseModel] | None = RunConfig
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None and dataclasses.is_dataclass(annotation):
            return annotation
    return model


def _allowed_keys(owner: type) -> list[str]:
    if dataclasses.is_dataclass(owner):
        return [f.name for f in dataclasses.fields(owner)]
    return list(owner.model_fields)


def _key(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def layer_problem(model: str, layers: list[str] | None) -> str | None:
    """What is wrong with ``layers`` of ``model`` (its entry's layer list or the network's modules), or None."""
    if layers is None or model not in available_models():
        return None
    entry = model_entry(model)
    if entry.layers is not None and not set(layers) <= set(entry.layers):
        return f"layers: {model} has the layers {list(entry.layers)}; got {layers}"
    known = network_layers(model)
    unknown = [layer for layer in layers if known is not None and layer not in known]
    return f"layers: {unknown} are not layers of {model}; {_layers(known)}" if unknown else None


def simulated_split_problems(dataset: str, splits: dict[str, Any]) -> list[str]:
    """The simulation's splits are known before anything runs: names that are not among them."""
    if dataset != SIMULATED:
        return []
    return [
        f"splits.{key}: {splits[key]!r} is not a split of the simulated dataset; its splits: {list(SIMULATED_SPLITS)}"
        for key in ("train", "test")
        if key in splits and splits[key] not in SIMULATED_SPLITS
    ]


def _skipped_problems(data: dict[str, Any], reported: str) -> list[str]:
    """Cross-field problems pydantic did not reach because other keys failed first (one pass reports all).

    The layers of every ``[[features]]`` entry with a known model and a list of layers, and the
    simulated dataset's split names, checked on the raw values by the same functions the
    validators use; problems already in ``reported`` are not repeated.
    """
    problems = []
    for i, entry in enumerate(data.get("features") or []):
        if isinstance(entry, dict) and isinstance(entry.get("model"), str) and isinstance(entry.get("layers"), list):
            problem = layer_problem(entry["model"], [str(layer) for layer in entry["layers"]])
            if problem:
                problems.append(f"features.{i}.{problem}")
    dataset, splits = data.get("dataset"), data.get("splits", {})
    if isinstance(dataset, dict) and isinstance(splits, dict):
        problems += simulated_split_problems(dataset.get("name", ""), {"train": "train", "test": "test", **splits})
    return [p for p in problems if p.split(": ", 1)[1] not in reported]


def _describe_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in ("function-after", "function-before"))
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            owner = _section_for(loc)
            allowed = ", ".join(_allowed_keys(owner)) if owner else "?"
            lines.append(f"{_key(loc)}: unknown key; allowed keys: {allowed}")
        elif e["type"] == "missing":
            lines.append(f"{_key(loc)}: required key is missing")
        else:
            message = e["msg"].removeprefix("Value error, ")
            # a whole section's input (a cross-field rule's error) is not repeated: the message names the keys
            shown = "input" in e and not isinstance(e["input"], dict)
            lines.append(f"{_key(loc)}: {message} (got {e['input']!r})" if shown else f"{_key(loc)}: {message}")
    return f"{source}: invalid run configuration:\n  " + "\n  ".join(lines)


def parse_config(data: dict[str, Any], source: str = "configuration", base: Path | None = None) -> RunConfig:
    """Validate a configuration given as a dict (as read from TOML).

    Relative paths (``run.output``, ``run.cache``, ``dataset.path``, ``dataset.simulation.stimuli``
    and ``test_stimuli``) are resolved against ``base``, the folder of the configuration file.
    """
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as err:
        message = _describe_errors(err, source)
        raise ConfigError("\n  ".join([message, *_skipped_problems(data, message)])) from None
    if base is None:
        return config

    def resolve(path: Any) -> Any:
        """A relative folder against ``base``; None and URLs as they are."""
        return path if not isinstance(path, Path) or path.is_absolute() else (base / path).resolve()

    run = config.run.model_copy(update={"output": resolve(config.run.output), "cache": resolve(config.run.cache)})
    sim = config.dataset.simulation
    simulation = sim.model_copy(update={"stimuli": resolve(sim.stimuli), "test_stimuli": resolve(sim.test_stimuli)})
    dataset = config.dataset.model_copy(update={"path": resolve(config.dataset.path), "simulation": simulation})
    return config.model_copy(update={"run": run, "dataset": dataset})


def load_config(path: str | Path, overrides: dict[str, dict[str, Any]] | None = None) -> RunConfig:
    """Read and validate a TOML run configuration.

    Parameters
    ----------
    path : path
        The TOML file.
    overrides : dict, optional
        Values that replace the file's, nested like the file, e.g.
        ``{"run": {"output": "out"}, "dataset": {"simulation": {"n_voxels": 500}}}``.

    Raises
    ------
    ConfigError
        Unreadable TOML, unknown keys, values outside the allowed ones; the message
        names the file, the key and what is allowed.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    _merge(data, overrides or {})
    return parse_config(data, str(path), base=path.parent.resolve())


def _merge(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            _merge(data[key], value)
        else:
            data[key] = value


def packaged_configs() -> dict[str, Path]:
    """The configurations shipped with scene2brain, by name (``"demo"``, ``"encoders"``)."""
    folder = Path(str(resources.files("scene2brain.pipeline") / "configs"))
    return {path.stem: path for path in sorted(folder.glob("*.toml"))}


def packaged_config(name: str = "demo") -> Path:
    """Path of a configuration shipped with scene2brain (see :func:`packaged_configs`)."""
    configs = packaged_configs()
    if name not in configs:
        raise ConfigError(f"no packaged configuration named {name!r}; expected one of {sorted(configs)}")
    return configs[name]
