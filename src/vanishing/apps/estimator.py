"""scikit-learn estimators around `RecurrentNet`, trained by `train.fit`: what every app shares.

Conventions, scikit-learn's: every hyper-parameter is an `__init__` argument stored unchanged
and checked in `fit`; fitted attributes end in `_`; `fit` returns self; `get_params`,
`set_params` and `sklearn.clone` come from `BaseEstimator`; `random_state` (None, an int or a
`numpy.random.RandomState`) seeds the weights, the validation split, the shuffling and dropout,
and `fit` leaves torch's global random state as it found it.

Training (what a Keras user gets from `fit(..., validation_split=v)` with
`EarlyStopping(patience=p, restore_best_weights=True)`): Adam with learning rate `lr`,
mini-batches of `batch_size` cases reshuffled every epoch, the gradient norm clipped at `clip`
(None: no clipping), cross-entropy (classifier) or mean squared error on standardised targets
(regressor).

- `validation_fraction` > 0 (default 0.1): that fraction of the training cases (rounded, at
  least one) is held out: for a classifier drawn at random, stratified by class, every class
  keeping a training case; for a regressor the last cases in the order given, as Keras'
  `validation_split` takes them (for windows cut from one series, the latest windows: a
  random pick would hold out windows that overlap training windows, and the validation loss
  would not see a network that memorises the series). The validation loss is measured after
  every epoch; training ends after `patience` epochs without a lower validation loss, or
  after `max_epochs`, and the weights of the epoch with the lowest validation loss are
  restored.
- `validation_fraction` = 0: every case trains, for exactly `max_epochs` epochs, and the
  final weights are kept (a fixed budget).

The input side is the subclass's (time series: numeric channels, standardised; text: token
ids and an embedding). A subclass sets the class attribute `kind` (what `save` records and
`vanishing predict` dispatches on, e.g. "timeseries-classifier") and implements:

    _fit_inputs(X) -> Sequences   learn the conversion from the training X (scaling
                                  statistics, a vocabulary), set its fitted attributes,
                                  return the converted training cases
    _inputs(X) -> Sequences       convert X with the fitted conversion (predict)
    _encoder() -> (module, size)  the input encoder (None: x is fed as it is, (T, N, I)
                                  float features) and the recurrent layer's input size; called
                                  after _fit_inputs or _restore_inputs, under the seeded RNG
    _inputs_state() -> dict       the conversion's fitted state as plain JSON (for save)
    _restore_inputs(state)        set the fitted attributes back from it (for load)

The encoder's weights are part of the network's state dict, so save/load carry them.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from rich.console import Console
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from torch import Tensor, nn

from vanishing.apps.model_file import ModelFileError, read_config, read_weights, write_model
from vanishing.apps.network import CELLS, RecurrentNet
from vanishing.gradflow import DETAILS, LayerProfile, profile
from vanishing.nn.activations import NAMES
from vanishing.tasks import Batch, Objective
from vanishing.train import EarlyStopping, TensorData, TrainConfig, fit, torch_threads

PREDICT_BATCH = 256
"""Cases per forward pass in predict."""


@dataclass(frozen=True)
class Sequences:
    """Converted cases: x (T, N, I) float features or (T, N) int64 ids, padded with zeros after
    each case's length; lengths (N,) int64, each in 1..T."""

    x: Tensor
    lengths: Tensor

    @property
    def size(self) -> int:
        return int(self.lengths.shape[0])


class RecurrentEstimator(BaseEstimator):
    """The base of the recurrent estimators (see the module docstring).

    cell: "lstm" (vanishing.LSTM) or "rnn" (vanishing.RNN, the simple RNN); hidden_size:
    units per layer and direction; num_layers: stacked layers; bidirectional: a reverse
    direction too; dropout: between stacked layers and before the head; nonlinearity: the
    RNN's activation ("tanh", "relu" or the article's "sigmoid"; cell="rnn" only);
    forget_bias: added to the LSTM's forget-gate bias at initialisation (1.0, Jozefowicz et
    al. 2015, as Keras' unit_forget_bias; cell="lstm" only); max_epochs, batch_size, lr,
    clip, validation_fraction, patience: training, as the module docstring says;
    random_state: the seed; n_jobs: torch threads in fit and predict (None: 1, -1: every
    core); verbose: > 0 shows a progress bar.
    """

    kind: ClassVar[str] = ""

    def __init__(
        self,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        nonlinearity: str = "tanh",
        forget_bias: float = 1.0,
        max_epochs: int = 500,
        batch_size: int = 16,
        lr: float = 3e-3,
        clip: float | None = 1.0,
        validation_fraction: float = 0.1,
        patience: int = 50,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.nonlinearity = nonlinearity
        self.forget_bias = forget_bias
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.clip = clip
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ---- the input side: implemented by a subclass (module docstring) ----

    def _fit_inputs(self, X: Any) -> Sequences:
        raise NotImplementedError

    def _inputs(self, X: Any) -> Sequences:
        raise NotImplementedError

    def _encoder(self) -> tuple[nn.Module | None, int]:
        raise NotImplementedError

    def _inputs_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore_inputs(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    # ---- the target side: RecurrentClassifier, RecurrentRegressor ----

    def _fit_targets(self, y: Any, n: int) -> tuple[Tensor, int]:
        raise NotImplementedError

    def _targets(self, y: Any, n: int) -> Tensor:
        raise NotImplementedError

    def _targets_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore_targets(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _objective(self, outputs: int) -> Objective:
        raise NotImplementedError

    def _split(self, targets: Tensor, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return random_split(len(targets), self.validation_fraction, seed)

    # ---- what every estimator shares ----

    def _check_params(self) -> None:
        """One ValueError / TypeError naming the hyper-parameter, what was expected and got."""
        name = type(self).__name__
        if self.cell not in CELLS:
            raise ValueError(f"{name}: cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.nonlinearity not in NAMES:
            raise ValueError(
                f"{name}: nonlinearity must be one of {', '.join(NAMES)}, got {self.nonlinearity!r}"
            )
        for param, low in (
            ("hidden_size", 1),
            ("num_layers", 1),
            ("max_epochs", 1),
            ("batch_size", 1),
            ("patience", 1),
        ):
            value = getattr(self, param)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name}: {param} must be an int >= {low}, got {value!r}")
        checks = (
            ("dropout", self.dropout, 0.0 <= _number(self.dropout) < 1.0, "in [0, 1)"),
            ("lr", self.lr, 0.0 < _number(self.lr) < math.inf, "a finite number > 0"),
            ("forget_bias", self.forget_bias, math.isfinite(_number(self.forget_bias)), "finite"),
            (
                "validation_fraction",
                self.validation_fraction,
                0.0 <= _number(self.validation_fraction) < 1.0,
                "in [0, 1)",
            ),
        )
        for param, value, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name}: {param} must be {expected}, got {value!r}")
        if self.clip is not None and not 0.0 < _number(self.clip) < math.inf:
            raise ValueError(f"{name}: clip must be a finite number > 0 or None, got {self.clip!r}")
        if not isinstance(self.bidirectional, (bool, np.bool_)):
            raise ValueError(f"{name}: bidirectional must be a bool, got {self.bidirectional!r}")
        self._threads()

    def _threads(self) -> int:
        n = self.n_jobs
        if n is None:
            return 1
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n == 0 or n < -1:
            raise ValueError(
                f"{type(self).__name__}: n_jobs must be None, -1 or an int >= 1, got {n!r}"
            )
        return (os.cpu_count() or 1) if n == -1 else int(n)

    def _network(self, outputs: int) -> RecurrentNet:
        encoder, input_size = self._encoder()
        return RecurrentNet(
            encoder,
            input_size,
            outputs,
            cell=self.cell,
            hidden_size=int(self.hidden_size),
            num_layers=int(self.num_layers),
            bidirectional=bool(self.bidirectional),
            dropout=float(self.dropout),
            nonlinearity=self.nonlinearity,
            forget_bias=float(self.forget_bias),
        )

    def fit(self, X: Any, y: Any) -> RecurrentEstimator:
        """Train on the cases X with targets y (see the module docstring); return self."""
        self._check_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        seeds = np.random.SeedSequence(
            int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        ).generate_state(3)
        data = self._fit_inputs(X)
        targets, outputs = self._fit_targets(y, data.size)
        train, held = self._split(targets, int(seeds[1]))
        steps_per_epoch = math.ceil(len(train) / self.batch_size)
        config = TrainConfig(
            optimizer="adam",
            lr=float(self.lr),
            batch=int(self.batch_size),
            budget=int(self.max_epochs) * len(train),
            clip=None if self.clip is None else float(self.clip),
            eval_every=steps_per_epoch,
            eval_batch=PREDICT_BATCH,
            eval_probe=0,
            stop_at_success=False,
            threads=self._threads(),
        )
        index = torch.as_tensor(train)
        stream = TensorData(
            data.x[:, index], targets[index], data.lengths[index], config.batch, int(seeds[2])
        )
        validation = None
        stopper = None
        if len(held):
            whole = Batch(data.x, targets, data.lengths)
            validation = whole.take(torch.as_tensor(held))
            stopper = EarlyStopping(int(self.patience))
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seeds[0]))
            network = self._network(outputs)
            result = fit(
                network,
                self._objective(outputs),
                stream,
                config,
                validation,
                [stopper] if stopper else [],
                progress=self.verbose > 0,
                console=Console(stderr=True),
                description=type(self).__name__,
            )
        if result.status == "diverged":
            raise FloatingPointError(
                f"{type(self).__name__}: training diverged ({result.message}); "
                "try a smaller lr or a clip"
            )
        losses = np.asarray(result.train_loss, dtype=np.float64)
        epochs = math.ceil(len(losses) / steps_per_epoch)
        self.n_iter_ = epochs
        self.loss_curve_ = [
            float(losses[e * steps_per_epoch : (e + 1) * steps_per_epoch].mean())
            for e in range(epochs)
        ]
        self.validation_loss_curve_ = None
        self.best_epoch_ = epochs
        if stopper is not None:
            self.validation_loss_curve_ = [float(e.loss) for e in result.evaluations[1:]]
            if stopper.restore(network):
                self.best_epoch_ = int(stopper.best_step) // steps_per_epoch
        self.stopped_early_ = result.status == "stopped"
        self.fit_seconds_ = time.perf_counter() - start
        self.network_ = network.double().eval()
        return self

    def _outputs(self, X: Any) -> np.ndarray:
        """(n, outputs) float64: the network's outputs for the cases X."""
        check_is_fitted(self, "network_")
        data = self._inputs(X)
        whole = Batch(data.x, torch.zeros(data.size), data.lengths)
        parts = []
        self.network_.eval()
        with torch_threads(self._threads()), torch.inference_mode():
            for start in range(0, data.size, PREDICT_BATCH):
                part = whole.take(torch.arange(start, min(start + PREDICT_BATCH, data.size)))
                x = part.x.double() if part.x.is_floating_point() else part.x
                parts.append(self.network_(x, part.lengths))
        return torch.cat(parts).numpy()

    def gradient_profile(
        self, X: Any, y: Any, fraction: float = 1e-3, detail: str = "norms"
    ) -> list[LayerProfile]:
        """Gradient flow of the fitted network on the cases X with targets y (`vanishing.profile`).

        One forward and backward pass of a float64 copy over all of X, with the training loss
        (cross-entropy or MSE on the standardised targets), read at each case's own last
        step; returns one LayerProfile per layer and direction (`.lags.horizon`: the gradient
        horizon at `fraction`; `.lags.norm`: the norm by lag). Cases of unequal lengths are
        packed: lag l of each case counts back from its own last step, and the mean at lag l
        is over the cases longer than l (`.lags.count`).
        """
        check_is_fitted(self, "network_")
        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {', '.join(DETAILS)}, got {detail!r}")
        data = self._inputs(X)
        batch = Batch(data.x, self._targets(y, data.size), data.lengths)
        objective = self._objective(int(self.network_.head.out_features))
        x = data.x.double() if data.x.is_floating_point() else data.x
        with torch_threads(self._threads()):
            measured = profile(
                self.network_,
                (x, data.lengths),
                lambda out: objective.loss(out, batch),
                fraction,
                detail=detail,
            )
        return measured["recurrent"]

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    # ---- save / load: apps.model_file ----

    def save(self, path: str | Path) -> Path:
        """Write the fitted model into the folder path (model.json, model.safetensors)."""
        check_is_fitted(self, "network_")
        config = {
            "kind": self.kind,
            "estimator": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": {k: _plain(v) for k, v in self.get_params().items()},
            "outputs": int(self.network_.head.out_features),
            "targets": self._targets_state(),
            "inputs": self._inputs_state(),
            "training": {
                "n_iter": self.n_iter_,
                "best_epoch": self.best_epoch_,
                "loss_curve": self.loss_curve_,
                "validation_loss_curve": self.validation_loss_curve_,
                "stopped_early": self.stopped_early_,
                "fit_seconds": self.fit_seconds_,
            },
            "versions": {"vanishing": _version("vanishing"), "torch": torch.__version__},
        }
        return write_model(path, config, self.network_.state_dict())

    @classmethod
    def load(cls, path: str | Path) -> RecurrentEstimator:
        """A model saved by `save`; any problem with the files is one ModelFileError."""
        config = read_config(path)
        where = Path(path) / "model.json"
        if config["kind"] != cls.kind:
            raise ModelFileError(where, f"a saved {cls.kind} model", repr(config["kind"]))
        try:
            model = cls(**config["params"])
            model._check_params()
            model._restore_targets(config["targets"])
            model._restore_inputs(config["inputs"])
            training = config["training"]
            model.n_iter_ = int(training["n_iter"])
            model.best_epoch_ = int(training["best_epoch"])
            model.loss_curve_ = list(training["loss_curve"])
            model.validation_loss_curve_ = training["validation_loss_curve"]
            model.stopped_early_ = bool(training["stopped_early"])
            model.fit_seconds_ = float(training["fit_seconds"])
            with torch.random.fork_rng(devices=[]):
                network = model._network(int(config["outputs"])).double()
        except (KeyError, TypeError, ValueError) as error:
            got = f"{type(error).__name__}: {error}"
            raise ModelFileError(where, f"the config of a {cls.__name__}", got) from None
        tensors = read_weights(path, config)
        try:
            network.load_state_dict(tensors, strict=True)
        except RuntimeError as error:
            got = " ".join(str(error).split())
            raise ModelFileError(
                Path(path) / "model.safetensors", "the network's weights", got
            ) from None
        model.network_ = network.eval()
        return model


class RecurrentClassifier(ClassifierMixin, RecurrentEstimator):
    """A recurrent sequence classifier: classes_, predict, predict_proba, score (accuracy)."""

    def _fit_targets(self, y: Any, n: int) -> tuple[Tensor, int]:
        y = column_or_1d(y, warn=True)
        if len(y) != n:
            raise ValueError(f"y: expected {n} labels, one per case, got {len(y)}")
        check_classification_targets(y)
        self.classes_, index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y: expected at least 2 classes, got one class only ({self.classes_[0]!r})"
            )
        return torch.as_tensor(index, dtype=torch.int64), len(self.classes_)

    def _targets(self, y: Any, n: int) -> Tensor:
        y = column_or_1d(y)
        if len(y) != n:
            raise ValueError(f"y: expected {n} labels, one per case, got {len(y)}")
        index = np.searchsorted(self.classes_, y).clip(0, len(self.classes_) - 1)
        unknown = y[self.classes_[index] != y]
        if len(unknown):
            raise ValueError(
                f"y: expected labels among {self.classes_.tolist()}, got {unknown.tolist()[0]!r}"
            )
        return torch.as_tensor(index, dtype=torch.int64)

    def _objective(self, outputs: int) -> Objective:
        return Objective("classification", outputs)

    def _split(self, targets: Tensor, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return stratified_split(targets.numpy(), self.validation_fraction, seed)

    def _targets_state(self) -> dict[str, Any]:
        return {"classes": self.classes_.tolist(), "dtype": self.classes_.dtype.str}

    def _restore_targets(self, state: dict[str, Any]) -> None:
        dtype = np.dtype(state["dtype"])
        self.classes_ = np.asarray(state["classes"], dtype=dtype if dtype.kind != "O" else object)

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n_cases, n_classes): the softmax of the network's outputs, columns as classes_."""
        logits = torch.from_numpy(self._outputs(X))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """(n_cases,): the most probable class of each case."""
        index = self._outputs(X).argmax(axis=1)  # (n,)
        return self.classes_[index]


class RecurrentRegressor(RegressorMixin, RecurrentEstimator):
    """A recurrent sequence regressor: predict (one value or a vector per case), score (R^2).

    Targets are standardised with their training mean and standard deviation (y_mean_,
    y_scale_) for training; predict returns them unscaled, shaped as y was ((n,) or (n, k)).
    """

    def _fit_targets(self, y: Any, n: int) -> tuple[Tensor, int]:
        y = real_targets(y, n)
        self.y_ndim_ = y.ndim
        y2 = y.reshape(n, -1)  # (n, k)
        self.y_mean_ = y2.mean(axis=0)
        scale = y2.std(axis=0)
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        z = (y2 - self.y_mean_) / self.y_scale_
        return torch.as_tensor(z, dtype=torch.float32), y2.shape[1]

    def _targets(self, y: Any, n: int) -> Tensor:
        y2 = real_targets(y, n).reshape(n, -1)  # (n, k)
        if y2.shape[1] != len(self.y_mean_):
            raise ValueError(f"y: expected {len(self.y_mean_)} outputs per case, got {y2.shape[1]}")
        return torch.as_tensor((y2 - self.y_mean_) / self.y_scale_, dtype=torch.float32)

    def _objective(self, outputs: int) -> Objective:
        return Objective("regression", outputs)

    def _split(self, targets: Tensor, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return last_split(len(targets), self.validation_fraction)

    def _targets_state(self) -> dict[str, Any]:
        return {
            "mean": self.y_mean_.tolist(),
            "scale": self.y_scale_.tolist(),
            "ndim": self.y_ndim_,
        }

    def _restore_targets(self, state: dict[str, Any]) -> None:
        self.y_mean_ = np.asarray(state["mean"], dtype=np.float64)
        self.y_scale_ = np.asarray(state["scale"], dtype=np.float64)
        self.y_ndim_ = int(state["ndim"])

    def predict(self, X: Any) -> np.ndarray:
        """(n_cases,) or (n_cases, n_outputs), as y was in fit."""
        out = self._outputs(X) * self.y_scale_ + self.y_mean_  # (n, k)
        return out[:, 0] if self.y_ndim_ == 1 else out


def real_targets(y: Any, n: int) -> np.ndarray:
    """y as float64 (n,) or (n, k), finite; (n, 1) becomes (n,) with scikit-learn's warning."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.dtype.kind == "c":
        raise ValueError("y: expected real numbers, got complex values")
    try:
        y = y.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"y: expected numbers, got {error}") from None
    if y.ndim not in (1, 2) or len(y) != n:
        raise ValueError(f"y: expected ({n},) or ({n}, n_outputs) targets, got {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("y: expected finite targets, got NaN or Inf")
    return y


def last_split(n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: the last round(fraction * n) cases, at least one."""
    train, held = random_split(n, fraction, 0)
    return np.arange(len(train)), np.arange(len(train), n)


def random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: round(fraction * n) cases, at least one, held out."""
    if fraction == 0:
        return np.arange(n), np.arange(0)
    held = max(1, round(fraction * n))
    if n - held < 1:
        raise ValueError(
            f"validation_fraction={fraction} holds out a validation case: expected at least 2 "
            f"cases, got {n} (n_samples={n}); give more cases or validation_fraction=0"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[held:]), np.sort(order[:held])


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: about fraction of each class held out, every class keeping
    a training case; at least one case held out."""
    if fraction == 0:
        return np.arange(len(labels)), np.arange(0)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    take = np.minimum(np.round(fraction * counts).astype(int), counts - 1)  # (C,)
    if take.sum() == 0 and counts.max() > 1:
        take[int(np.argmax(counts))] = 1
    if take.sum() == 0:
        raise ValueError(
            f"validation_fraction={fraction} holds out a validation case, but every class has "
            "one case only (it must stay in training); give more cases or validation_fraction=0"
        )
    held = [
        rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)
    ]
    held_out = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


def _number(value: object) -> float:
    """value as a float, or NaN when it is not a real number (so range checks fail)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return math.nan
    return float(value)


def _plain(value: object) -> object:
    """A hyper-parameter as JSON: numpy scalars as Python ones; a RandomState as None."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.random.RandomState):
        return None
    return value


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
