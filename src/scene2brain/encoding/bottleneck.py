"""The bottleneck network (after F-BNet, Ndubuaku 2023), done right: a residual MLP between two PCA bottlenecks.

Image features are standardised and reduced by PCA (``n_input_components``, F-BNet: 300);
responses are standardised per voxel and reduced by PCA per group of voxels
(``n_output_components`` per group, e.g. per hemisphere; F-BNet: 75 per hemisphere); a
residual MLP (:mod:`scene2brain.encoding._bottleneck_net`) maps the first to the second,
and predictions are mapped back to voxels. What differs from the seed project:

- both PCAs and both standardisations are fitted on the rows that train the weights only:
  never on the validation part that early stopping watches, never on test rows;
- the validation part is a seeded random draw of the training stimuli (whole groups of rows
  with ``groups_of_rows``), not the first rows;
- dropout draws a fresh mask for every batch and is off at evaluation, and the optional
  leak of the target latents is fed zeros at evaluation, so ``predict`` is deterministic;
- cross-subject pretraining (:func:`pretrain_trunk`) shares the trunk only: every subject
  keeps its own response PCA and its own readout head (the seed shared one head across
  subjects whose PCA bases differ in sign and order), and fine-tuning gives the new subject
  a head of its own (``BottleneckNetwork(pretrained=trunk)``).

:func:`fit_bottleneck` is the encoder registry's entry ("bottleneck").
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from scene2brain.encoding import _bottleneck_net as nets
from scene2brain.encoding.selection import fold_scores
from scene2brain.evaluation.metrics import r2_score
from scene2brain.utils.arrays import check_matrix
from scene2brain.utils.training import torch_device

if TYPE_CHECKING:
    from scene2brain.encoding.registry import FittedEncoder

Folds = Sequence[tuple[np.ndarray, np.ndarray]]

#: The architecture parameters a pretrained trunk fixes for fine-tuning.
TRUNK_PARAMS = ("n_input_components", "width", "depth", "activation")


# ----------------------------------------------------------------------------- input checks


def _check_matrix(X: Any, name: str, n_columns: int | None = None) -> np.ndarray:
    return check_matrix(X, name, n_columns).astype(np.float64, copy=False)


def _check_labels(labels: Any, n: int, name: str, what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"{name}: expected one label per {what} ({n}), got shape {labels.shape}")
    return labels


def _split(n: int, fraction: float, row_groups: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows that train the weights and the (seeded, shuffled) validation rows; whole row groups on one side."""
    if fraction == 0:
        return np.arange(n), np.array([], dtype=np.int64)
    units = n if row_groups is None else len(np.unique(row_groups))
    n_val = int(np.ceil(fraction * units))
    if units - n_val < 2 or (row_groups is None and n_val < 2):
        what = "rows" if row_groups is None else "groups of rows"
        raise ValueError(
            f"X: {units} training {what} are too few for a validation part of validation_fraction={fraction} "
            f"(expected at least 2 validation rows and 2 {what} left for training); give more rows or set "
            "validation_fraction=0"
        )
    if row_groups is None:
        train, val = next(ShuffleSplit(1, test_size=n_val, random_state=seed).split(np.zeros(n)))
    else:
        splitter = GroupShuffleSplit(1, test_size=n_val, random_state=seed)
        train, val = next(splitter.split(np.zeros(n), groups=row_groups))
    return np.sort(train), np.sort(val)


# ----------------------------------------------------------------------------- reductions

#: Up to this many columns PCA eigen-decomposes the covariance matrix (exact, fast for n >> p); above, scikit-learn
#: chooses (randomised SVD for few components of wide data).
_COVARIANCE_COLUMNS = 2000


def _pca(n_components: int, n_columns: int, seed: int) -> PCA:
    solver = "covariance_eigh" if n_columns <= _COVARIANCE_COLUMNS else "auto"
    return PCA(n_components, svd_solver=solver, random_state=seed)


def _input_pipeline(X: np.ndarray, n_components: int | None, seed: int) -> tuple[Pipeline, float]:
    """Standardisation and PCA fitted on ``X``, and the scalar that gives the reduced inputs unit mean variance."""
    steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
    if n_components is not None:
        k = min(int(n_components), X.shape[0], X.shape[1])
        steps.append(("pca", _pca(k, X.shape[1], seed)))
    pipeline = Pipeline(steps).fit(X)
    variance = pipeline.transform(X).var(axis=0).mean()
    return pipeline, float(np.sqrt(variance)) if variance > 0 else 1.0


class ResponseCoder:
    """Per-voxel standardisation and PCA of each voxel group, fitted on training responses.

    Latents of all groups are concatenated (groups in sorted label order) and divided by one
    scalar, their root mean variance on the fitting rows, so that the loss is of order 1
    (one scalar for all latents keeps the latents' MSE proportional to the standardised
    voxels' reconstruction MSE).

    Parameters
    ----------
    n_components : int or None
        PCs per group, clipped to the group's voxels and the fitting rows; None: no PCA
        (the latents are the standardised voxels).
    random_state : int
        Seeds PCA's randomised solver (used for large inputs).
    """

    def __init__(self, n_components: int | None, random_state: int = 0) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, Y: np.ndarray, groups: np.ndarray) -> ResponseCoder:
        self.labels_, inverse = np.unique(groups, return_inverse=True)
        self.columns_ = [np.flatnonzero(inverse == g) for g in range(len(self.labels_))]
        self.n_voxels_ = Y.shape[1]
        self.pipelines_ = []
        for cols in self.columns_:
            steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
            if self.n_components is not None:
                k = min(int(self.n_components), Y.shape[0], len(cols))
                steps.append(("pca", _pca(k, len(cols), self.random_state)))
            self.pipelines_.append(Pipeline(steps).fit(Y[:, cols]))
        sizes = [p.transform(Y[:1, c]).shape[1] for p, c in zip(self.pipelines_, self.columns_, strict=True)]
        bounds = np.cumsum([0, *sizes])
        self.slices_ = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        self.n_latents_ = int(bounds[-1])
        self.scale_ = 1.0
        variance = self.encode(Y).var(axis=0).mean()
        self.scale_ = float(np.sqrt(variance)) if variance > 0 else 1.0
        return self

    def encode(self, Y: np.ndarray) -> np.ndarray:
        """Latents (n, n_latents) of responses (n, n_voxels)."""
        parts = [p.transform(Y[:, c]) for p, c in zip(self.pipelines_, self.columns_, strict=True)]
        return np.concatenate(parts, axis=1) / self.scale_

    def decode(self, Z: np.ndarray) -> np.ndarray:
        """Responses (n, n_voxels) of latents (n, n_latents)."""
        out = np.empty((len(Z), self.n_voxels_))
        for p, c, s in zip(self.pipelines_, self.columns_, self.slices_, strict=True):
            out[:, c] = p.inverse_transform(Z[:, s] * self.scale_)
        return out

    def ceiling(self, Y: np.ndarray) -> np.ndarray:
        """R^2 per voxel of reconstructing ``Y`` from its own latents (1 without PCA)."""
        return r2_score(Y, self.decode(self.encode(Y)))


def _tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)


def _subject_tensors(
    name: str, x: np.ndarray, z: np.ndarray, train: np.ndarray, val: np.ndarray, coder: ResponseCoder, device: Any
) -> nets.SubjectTensors:
    return nets.SubjectTensors(
        name=name,
        x_train=_tensor(x[train], device),
        z_train=_tensor(z[train], device),
        x_val=_tensor(x[val], device),
        z_val=_tensor(z[val], device),
        slices=coder.slices_,
        latent_sd=_tensor(z[train].std(axis=0), device),
    )


# ----------------------------------------------------------------------------- pretrained trunk


@dataclass
class PretrainedTrunk:
    """A trunk trained on several subjects, each with its own response PCA and readout head.

    Made by :func:`pretrain_trunk`; give it to ``BottleneckNetwork(pretrained=...)`` to
    fine-tune on one subject (the trunk's input reduction and weights are the starting
    point; the subject gets a head of its own).

    Attributes
    ----------
    params : dict
        The network parameters it was trained with.
    input_pipeline : sklearn Pipeline
        Feature standardisation and PCA fitted on the pooled weight-training rows of all subjects.
    input_scale : float
        Divides the reduced features (their root mean variance on those rows).
    module : torch.nn.Module
        The trunk and the subjects' heads, eval mode, on the device it was trained on.
    coders : dict of str to ResponseCoder
        Each subject's response standardisation and PCA (fitted on its weight-training rows).
    heads : dict of str to str
        Each subject's key in ``module.heads``.
    validation_indices : dict of str to ndarray
        Each subject's validation rows (as given).
    history : dict of ndarray
        ``train_loss``, ``validation_loss``, ``elapsed`` per epoch.
    best_epoch : int
    """

    params: dict[str, Any]
    input_pipeline: Pipeline
    input_scale: float
    module: nets.Network
    coders: dict[str, ResponseCoder]
    heads: dict[str, str]
    validation_indices: dict[str, np.ndarray]
    history: dict[str, np.ndarray] = field(default_factory=dict)
    best_epoch: int = 0

    @property
    def n_features_in(self) -> int:
        return int(self.input_pipeline.n_features_in_)

    def predict(self, subject: str, X: np.ndarray) -> np.ndarray:
        """Predicted responses of ``subject`` (one of the pretraining subjects) to features ``X``."""
        if subject not in self.heads:
            raise ValueError(f"subject: expected one of {sorted(self.heads)}, got {subject!r}")
        X = _check_matrix(X, "X", self.n_features_in)
        device = next(self.module.parameters()).device
        x = _tensor(self.input_pipeline.transform(X) / self.input_scale, device)
        z = nets.predict_latents(self.module, self.heads[subject], x).cpu().numpy().astype(np.float64)
        return self.coders[subject].decode(z)


# ----------------------------------------------------------------------------- estimator


class BottleneckNetwork(RegressorMixin, BaseEstimator):
    """Residual MLP from PCA-reduced features to PCA-reduced responses (torch; seeded, deterministic on CPU).

    Parameters
    ----------
    n_input_components : int or None
        PCs of the standardised features (F-BNet: 300), clipped to the weight-training rows
        and the features; None keeps all standardised features.
    n_output_components : int or None
        PCs of the standardised responses per voxel group (F-BNet: 75 per hemisphere), clipped
        to each group's voxels and the weight-training rows; None predicts every
        standardised voxel (no response bottleneck).
    width : int
        Units of the trunk (F-BNet: 6000).
    depth : int
        Residual blocks ``h + act(W h)`` after the input projection (F-BNet: 1); 0 is a linear
        bottleneck (reduced-rank regression trained by gradient descent).
    dropout : float
        Dropout probability on the trunk's output, in ``[0, 1)``: a fresh mask per batch in
        training, none at evaluation (F-BNet: 0.2, as a constant mask).
    activation : {"gelu", "relu", "prelu"}
        Of the residual blocks (F-BNet: PReLU).
    leak : float
        In ``[0, 1)``. During training the bottleneck becomes ``(h + leak * P(l)) / (1 + leak)``,
        ``l`` the true latents plus Gaussian noise (``leak_noise`` times each latent's SD) and
        ``P`` a learnt projection; at evaluation ``l = 0`` (deterministic). F-BNet: 0.02 for the
        latents plus 0.002 for the noise. 0 (the default) has no leak path.
    leak_noise : float
        SD of the leaked latents' noise, in units of each latent's SD.
    loss : {"mse", "correlation", "racing"}
        On the latents (see :func:`scene2brain.encoding._bottleneck_net.loss_value`);
        "correlation" leaves the predictions' scale free (score it with Pearson r).
    optimizer : {"adamw", "lion"}
        ``torch.optim.AdamW`` or ``lion_pytorch.Lion`` (F-BNet: Lion, lr 1e-4).
    lr, weight_decay : float
    batch_size : int
        At least 2 (F-BNet: 128).
    max_epochs : int
    patience : int
        Stop after this many epochs without a lower validation loss; the best epoch is kept.
    validation_fraction : float
        Share of the training rows (of their groups with ``groups_of_rows``), drawn at random
        with ``random_state``, held out for early stopping, in ``[0, 1)``; 0 trains
        ``max_epochs`` and keeps the last epoch.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda[:i]"``.
    random_state : int
        Seeds the validation split, the PCAs, the initial weights, the row order, dropout and
        the leak noise.
    pretrained : PretrainedTrunk, optional
        Fine-tune from this trunk (:func:`pretrain_trunk`): its input reduction and trunk
        weights are used (``n_input_components``, ``width``, ``depth``, ``activation`` must
        equal the trunk's), the response PCA and the head are this subject's own, and every
        weight is trained.

    Attributes
    ----------
    input_pipeline_ : sklearn Pipeline
        Feature standardisation and PCA (fitted on ``training_indices_``, or the trunk's).
    input_scale_ : float
    response_coder_ : ResponseCoder
        Response standardisation and PCA per voxel group, fitted on ``training_indices_``.
    reconstruction_ceiling_ : ndarray of shape (n_voxels,)
        R^2 per voxel of reconstructing the weight-training responses from their PCs: the best
        R^2 the network could reach on them (see :meth:`reconstruction_ceiling` for other rows).
    n_input_components_, n_output_components_ : int
        Sizes of the two bottlenecks (the latter summed over voxel groups).
    module_ : torch.nn.Module
        The network in eval mode, holding the best epoch's weights.
    history_ : dict of ndarray
        ``train_loss`` (training mode, mean over batches), ``validation_loss`` (eval mode) and
        ``elapsed`` (seconds since training started) per epoch.
    n_epochs_, best_epoch_ : int
        Epochs run; 0-based epoch kept.
    training_indices_, validation_indices_ : ndarray
        Rows of ``X`` that trained the weights (and fitted the reductions) and that early
        stopping watched.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((200, 5)), rng.standard_normal((200, 30))
    >>> net = BottleneckNetwork(n_output_components=4, width=32, max_epochs=2).fit(X, Y)
    >>> net.predict(X[:3]).shape, net.n_input_components_, net.n_output_components_
    ((3, 30), 5, 4)
    """

    def __init__(
        self,
        n_input_components: int | None = 300,
        n_output_components: int | None = 75,
        width: int = 1024,
        depth: int = 1,
        dropout: float = 0.2,
        activation: str = "gelu",
        leak: float = 0.0,
        leak_noise: float = 0.1,
        loss: str = "mse",
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        batch_size: int = 128,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float = 0.1,
        device: str = "cpu",
        random_state: int = 0,
        pretrained: PretrainedTrunk | None = None,
    ) -> None:
        self.n_input_components = n_input_components
        self.n_output_components = n_output_components
        self.width = width
        self.depth = depth
        self.dropout = dropout
        self.activation = activation
        self.leak = leak
        self.leak_noise = leak_noise
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.pretrained = pretrained

    # ---------------------------------------------------------------- checks

    def check_params(self) -> None:
        """Refuse bad parameters before any data is seen: ValueError naming the parameter."""

        def integer(name: str, minimum: int, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
                extra = " or None" if optional else ""
                raise ValueError(f"{name}: expected an integer >= {minimum}{extra}, got {value!r}")

        def real(name: str, low: float, high: float | None = None, low_open: bool = False) -> None:
            value = getattr(self, name)
            ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
            ok = ok and np.isfinite(value) and (value > low if low_open else value >= low)
            ok = ok and (high is None or value < high)
            if not ok:
                bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'})"
                raise ValueError(f"{name}: expected a number in {bounds}, got {value!r}")

        integer("n_input_components", 1, optional=True)
        integer("n_output_components", 1, optional=True)
        integer("width", 1)
        integer("depth", 0)
        integer("batch_size", 2)
        integer("max_epochs", 1)
        integer("patience", 1)
        integer("random_state", 0)
        real("dropout", 0.0, 1.0)
        real("leak", 0.0, 1.0)
        real("leak_noise", 0.0)
        real("lr", 0.0, low_open=True)
        real("weight_decay", 0.0)
        real("validation_fraction", 0.0, 1.0)
        for name, valid in (
            ("activation", list(nets.ACTIVATIONS)),
            ("loss", list(nets.LOSSES)),
            ("optimizer", list(nets.OPTIMIZERS)),
        ):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name}: expected one of {valid}, got {getattr(self, name)!r}")
        torch_device(self.device)
        if self.pretrained is not None:
            if not isinstance(self.pretrained, PretrainedTrunk):
                raise ValueError(
                    f"pretrained: expected a PretrainedTrunk (from pretrain_trunk) or None, got {type(self.pretrained)}"
                )
            for name in TRUNK_PARAMS:
                if getattr(self, name) != self.pretrained.params[name]:
                    raise ValueError(
                        f"{name}: the pretrained trunk has {name}={self.pretrained.params[name]!r}, got "
                        f"{getattr(self, name)!r}; set it to the trunk's value"
                    )

    def _network_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._get_param_names() if name != "pretrained"}

    # ---------------------------------------------------------------- fit

    def fit(self, X: np.ndarray, Y: np.ndarray, *, groups: Any = None, groups_of_rows: Any = None) -> BottleneckNetwork:
        """Reduce features and responses on the weight-training rows, then train with early stopping.

        Parameters
        ----------
        X : ndarray of shape (n_stimuli, n_features)
        Y : ndarray of shape (n_stimuli, n_voxels)
        groups : array-like of shape (n_voxels,), optional
            Voxel group labels (hemisphere, ROI set): one response PCA per group. Default: one group.
        groups_of_rows : array-like of shape (n_stimuli,), optional
            Rows that must fall on one side of the validation split (e.g. crops of one photograph).

        Returns
        -------
        BottleneckNetwork
        """
        self.check_params()
        X, Y, groups, groups_of_rows = _check_subject(X, Y, groups, groups_of_rows)
        if self.pretrained is not None and X.shape[1] != self.pretrained.n_features_in:
            raise ValueError(
                f"X: expected {self.pretrained.n_features_in} features (as the pretrained trunk), got {X.shape[1]}"
            )
        device = torch_device(self.device)
        seed = int(self.random_state)
        train, val = _split(len(X), float(self.validation_fraction), groups_of_rows, seed)
        if self.pretrained is None:
            self.input_pipeline_, self.input_scale_ = _input_pipeline(X[train], self.n_input_components, seed)
        else:
            self.input_pipeline_ = self.pretrained.input_pipeline
            self.input_scale_ = self.pretrained.input_scale
        x = self.input_pipeline_.transform(X) / self.input_scale_
        self.response_coder_ = ResponseCoder(self.n_output_components, seed).fit(Y[train], groups)
        z = self.response_coder_.encode(Y)
        self.reconstruction_ceiling_ = self.response_coder_.ceiling(Y[train])
        self.n_features_in_, self.n_targets_ = X.shape[1], Y.shape[1]
        self.n_input_components_, self.n_output_components_ = x.shape[1], self.response_coder_.n_latents_
        self.training_indices_, self.validation_indices_ = train, val

        fork = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            if self.pretrained is None:
                trunk = nets.Trunk(x.shape[1], int(self.width), int(self.depth), float(self.dropout), self.activation)
            else:
                trunk = copy.deepcopy(self.pretrained.module.trunk).cpu()
                trunk.dropout.p = float(self.dropout)
            net = nets.Network(trunk, {"subject": nets.Head(int(self.width), z.shape[1], float(self.leak))})
            net = net.to(device)
            tensors = _subject_tensors("subject", x, z, train, val, self.response_coder_, device)
            if self.pretrained is not None:
                _probe(net, tensors)
            self.history_ = nets.train(net, [tensors], generator=generator, **self._train_options())
        self.module_ = net
        self.n_epochs_ = len(self.history_["train_loss"])
        losses = self.history_["validation_loss"]
        self.best_epoch_ = int(np.argmin(losses)) if len(losses) else self.n_epochs_ - 1
        return self

    def _train_options(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "optimizer": self.optimizer,
            "lr": float(self.lr),
            "weight_decay": float(self.weight_decay),
            "batch_size": int(self.batch_size),
            "max_epochs": int(self.max_epochs),
            "patience": int(self.patience),
            "leak_noise": float(self.leak_noise),
        }

    # ---------------------------------------------------------------- use

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted responses (n, n_voxels) in response units; eval mode (no dropout, leak input zeros)."""
        check_is_fitted(self, "module_")
        X = _check_matrix(X, "X", self.n_features_in_)
        device = next(self.module_.parameters()).device
        x = _tensor(self.input_pipeline_.transform(X) / self.input_scale_, device)
        z = nets.predict_latents(self.module_, "subject", x).cpu().numpy().astype(np.float64)
        return self.response_coder_.decode(z)

    def reconstruction_ceiling(self, Y: np.ndarray) -> np.ndarray:
        """R^2 per voxel of reconstructing responses ``Y`` (e.g. held-out rows) through the fitted response PCA."""
        check_is_fitted(self, "response_coder_")
        return self.response_coder_.ceiling(_check_matrix(Y, "Y", self.n_targets_))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


#: Ridge penalties of the linear probe that initialises a fine-tuned head (chosen by scikit-learn's efficient LOO).
_PROBE_ALPHAS = np.logspace(-3, 6, 19)


def _probe(net: nets.Network, subject: nets.SubjectTensors) -> None:
    """Initialise the head's readout by ridge regression of the training latents on the trunk's eval-mode features.

    A new subject's head starts as the best linear readout of the pretrained trunk (a linear
    probe, then fine-tuning: the trunk's features are not disturbed by the gradients of a
    random head in the first steps).
    """
    with torch.no_grad():
        net.eval()
        features = torch.cat(
            [net.trunk(subject.x_train[s : s + nets.CHUNK]) for s in range(0, len(subject.x_train), nets.CHUNK)]
        )
    probe = RidgeCV(alphas=_PROBE_ALPHAS).fit(
        features.cpu().numpy().astype(np.float64), subject.z_train.cpu().numpy().astype(np.float64)
    )
    readout = net.heads[subject.name].readout
    with torch.no_grad():
        readout.weight.copy_(torch.as_tensor(probe.coef_, dtype=readout.weight.dtype))
        readout.bias.copy_(torch.as_tensor(probe.intercept_, dtype=readout.bias.dtype))


def _check_subject(X: Any, Y: Any, groups: Any, groups_of_rows: Any, name: str = "") -> tuple[np.ndarray, ...]:
    prefix = f"{name}: " if name else ""
    try:
        X = _check_matrix(X, "X")
        Y = _check_matrix(Y, "Y")
        if len(X) != len(Y):
            raise ValueError(f"X and Y: expected the same number of rows, got {len(X)} and {len(Y)}")
        if len(X) < 3:
            raise ValueError(f"X: expected at least 3 training rows, got {len(X)}")
        groups = np.zeros(Y.shape[1], dtype=np.int64) if groups is None else groups
        groups = _check_labels(groups, Y.shape[1], "groups", "voxel (column of Y)")
        if groups_of_rows is not None:
            groups_of_rows = _check_labels(groups_of_rows, len(X), "groups_of_rows", "row of X")
    except ValueError as err:
        raise ValueError(prefix + str(err)) from None
    return X, Y, groups, groups_of_rows


# ----------------------------------------------------------------------------- pretraining


def pretrain_trunk(
    subjects: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    groups: Mapping[str, Any] | None = None,
    groups_of_rows: Mapping[str, Any] | None = None,
    **params: Any,
) -> PretrainedTrunk:
    """Train one trunk on several subjects' training rows, each subject with its own response PCA and head.

    The subjects share a feature space (the same image features; their images and numbers
    of voxels may differ). The features' standardisation and PCA are fitted on the pooled
    weight-training rows of all subjects; each subject's responses are standardised and
    reduced on its own weight-training rows, and read out by its own head. Each epoch
    visits every subject's batches in a shuffled order; early stopping watches the
    validation loss averaged over the subjects' validation parts (each a seeded random
    draw of that subject's rows, as in :class:`BottleneckNetwork`, so a subject passed
    with the same rows and ``random_state`` here and to the fine-tuning fit has the same
    validation rows in both).

    Give only training rows: the trunk is fine-tuned on one subject afterwards and must
    never have seen that subject's (nor any subject's) test stimuli.

    Parameters
    ----------
    subjects : mapping of str to (X, Y)
        Features (n_s, p) and responses (n_s, v_s) per subject.
    groups, groups_of_rows : mapping of str to array-like, optional
        Per subject, as in :meth:`BottleneckNetwork.fit`.
    **params
        :class:`BottleneckNetwork` parameters (not ``pretrained``).

    Returns
    -------
    PretrainedTrunk
    """
    if "pretrained" in params:
        raise ValueError("pretrained: a trunk is pretrained from scratch; got a pretrained= parameter")
    template = BottleneckNetwork(**params)
    template.check_params()
    if not isinstance(subjects, Mapping) or not subjects:
        raise ValueError(f"subjects: expected a non-empty mapping of name to (X, Y), got {type(subjects)}")
    groups = dict(groups or {})
    groups_of_rows = dict(groups_of_rows or {})
    for mapping, label in ((groups, "groups"), (groups_of_rows, "groups_of_rows")):
        unknown = sorted(set(mapping) - set(subjects))
        if unknown:
            raise ValueError(f"{label}: {unknown} are not subjects; expected some of {sorted(subjects)}")
    seed = int(template.random_state)
    device = torch_device(template.device)
    prepared = {}
    for name, pair in subjects.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"subjects: expected (X, Y) for subject {name!r}, got {type(pair)}")
        X, Y, g, rg = _check_subject(pair[0], pair[1], groups.get(name), groups_of_rows.get(name), f"subject {name!r}")
        prepared[name] = (X, Y, g, *_split(len(X), float(template.validation_fraction), rg, seed))
    widths = {name: p[0].shape[1] for name, p in prepared.items()}
    if len(set(widths.values())) != 1:
        raise ValueError(f"subjects: expected one feature space (the same number of features), got {widths}")
    pooled = np.concatenate([X[train] for X, _, _, train, _ in prepared.values()])
    input_pipeline, input_scale = _input_pipeline(pooled, template.n_input_components, seed)
    keys = {name: f"subject{i}" for i, name in enumerate(prepared)}
    coders, tensors = {}, []
    for name, (X, Y, g, train, val) in prepared.items():
        coders[name] = ResponseCoder(template.n_output_components, seed).fit(Y[train], g)
        x = input_pipeline.transform(X) / input_scale
        tensors.append(_subject_tensors(keys[name], x, coders[name].encode(Y), train, val, coders[name], device))
    width = int(template.width)
    fork = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        n_in = tensors[0].x_train.shape[1]
        trunk = nets.Trunk(n_in, width, int(template.depth), float(template.dropout), template.activation)
        heads = {keys[n]: nets.Head(width, coders[n].n_latents_, float(template.leak)) for n in prepared}
        net = nets.Network(trunk, heads).to(device)
        history = nets.train(net, tensors, generator=generator, **template._train_options())
    losses = history["validation_loss"]
    return PretrainedTrunk(
        params=template._network_params(),
        input_pipeline=input_pipeline,
        input_scale=input_scale,
        module=net,
        coders=coders,
        heads=keys,
        validation_indices={name: p[4] for name, p in prepared.items()},
        history=history,
        best_epoch=int(np.argmin(losses)) if len(losses) else len(history["train_loss"]) - 1,
    )


# ----------------------------------------------------------------------------- registry entry


def check_bottleneck_options(options: Mapping[str, Any]) -> None:
    """ValueError for bad :func:`fit_bottleneck` option values (the network's parameters and ``cv``), without data."""
    params = dict(options)
    cv = params.pop("cv", True)
    if not isinstance(cv, bool):
        raise ValueError(f"cv: expected True or False, got {cv!r}")
    BottleneckNetwork(**params).check_params()


def fit_bottleneck(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    random_state: int = 0,
    device: str | None = None,
    row_groups: np.ndarray | None = None,
    voxel_groups: np.ndarray | None = None,
    cv: bool = True,
    n_input_components: int | None = 300,
    n_output_components: int | None = 75,
    width: int = 1024,
    depth: int = 1,
    dropout: float = 0.2,
    activation: str = "gelu",
    leak: float = 0.0,
    leak_noise: float = 0.1,
    loss: str = "mse",
    optimizer: str = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    batch_size: int = 128,
    max_epochs: int = 100,
    patience: int = 10,
    validation_fraction: float = 0.1,
) -> FittedEncoder:
    """The encoder registry's "bottleneck": a :class:`BottleneckNetwork` on all training rows, scored on ``folds``.

    The network has no hyperparameter search (its options are fixed by the configuration);
    early stopping uses a validation part of whichever rows it is fitted on.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    Y : ndarray of shape (n, v)
    folds : sequence of (train_index, test_index)
    random_state : int
    device : str or None
        None: ``"auto"`` (CUDA when available).
    row_groups : ndarray of shape (n,), optional
        Content group of each row: the validation part for early stopping takes whole groups.
    voxel_groups : ndarray of shape (v,), optional
        Voxel labels (hemisphere, ROI): one response PCA per group.
    cv : bool
        True: ``cv_score`` is the mean over ``folds`` of the held-out R^2 per voxel of a network
        fitted (with the same options and seed) on each fold's training part: the registry's
        meaning, at the cost of one more fit per fold. False: no fold fits, ``cv_score`` is NaN
        and the summary says ``"cv": False``.
    n_input_components, n_output_components, width, depth, dropout, activation, leak, leak_noise
        As in :class:`BottleneckNetwork`.
    loss, optimizer, lr, weight_decay, batch_size, max_epochs, patience, validation_fraction
        As in :class:`BottleneckNetwork`.

    Returns
    -------
    FittedEncoder
        ``alphas`` NaN; ``summary``: ``epochs``, ``best_epoch``, ``n_input_components``,
        ``n_output_components``, ``reconstruction_ceiling_median`` (median over voxels of the
        response PCA's training reconstruction R^2) and ``cv``.
    """
    from scene2brain.encoding.registry import FittedEncoder  # the registry imports this module

    params = dict(
        n_input_components=n_input_components,
        n_output_components=n_output_components,
        width=width,
        depth=depth,
        dropout=dropout,
        activation=activation,
        leak=leak,
        leak_noise=leak_noise,
        loss=loss,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=patience,
        validation_fraction=validation_fraction,
        device="auto" if device is None else device,
        random_state=random_state,
    )
    check_bottleneck_options({**params, "cv": cv})
    row_groups = None if row_groups is None else np.asarray(row_groups)
    model = BottleneckNetwork(**params).fit(X, Y, groups=voxel_groups, groups_of_rows=row_groups)
    n_targets = model.n_targets_
    if cv:

        def fit_params(train: np.ndarray) -> dict[str, Any]:
            return {"groups": voxel_groups, "groups_of_rows": None if row_groups is None else row_groups[train]}

        cv_score = fold_scores(lambda: BottleneckNetwork(**params), X, Y, folds, fit_params)
    else:
        cv_score = np.full(n_targets, np.nan)
    summary = {
        "epochs": model.n_epochs_,
        "best_epoch": model.best_epoch_,
        "n_input_components": model.n_input_components_,
        "n_output_components": model.n_output_components_,
        "reconstruction_ceiling_median": float(np.nanmedian(model.reconstruction_ceiling_)),
        "cv": cv,
    }
    return FittedEncoder(model, np.full(n_targets, np.nan), cv_score, summary)
