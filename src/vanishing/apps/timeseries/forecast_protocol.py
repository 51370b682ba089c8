"""The forecasting evaluation protocol, written once and used for every model.

On a `Series` with split s, horizon H and n values:

- fit: the model sees the training part y[:s] only, once (any scaling it does is therefore
  fitted on the training part only); its parameters stay fixed over the test period.
- one-step: for every test position t in [s, n), forecast y[t] from the true history y[:t].
- multi-step: from every rolling origin t in [s, n - H] (each forecast's whole horizon lies in
  the test period), forecast y[t : t + H] from the true history y[:t], two ways:
  recursive: a one-step model applied H times, each forecast appended to the history;
  direct: a model that outputs the whole horizon at once.
- scores: RMSE and MAE over every forecast value (all positions, all origins and steps),
  under the keys "one-step", "recursive", "direct".

A model takes part through two methods, each taking histories (a list of 1-D float64 arrays,
the series up to each origin), batched over origins:

- `predict_step(histories) -> (n_origins,)`: the next value after each history (a
  `StepForecaster`); it is scored one-step and recursive.
- `predict_horizon(histories, horizon) -> (n_origins, horizon)`: the next `horizon` values (a
  `HorizonForecaster`); it is scored direct, and one-step by its first column unless it also
  has `predict_step`.

For a model whose multi-step forecast is the recursion of its own one-step forecast (the
persistence and seasonal naive forecasts, ARIMA and ETS point forecasts) recursive and
direct coincide: the protocol still computes both, and they agree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from vanishing.apps.timeseries.series import Series


@runtime_checkable
class StepForecaster(Protocol):
    """A model that forecasts one step ahead; the protocol applies it recursively."""

    def fit(self, y: np.ndarray) -> object: ...

    def predict_step(self, histories: Sequence[np.ndarray]) -> np.ndarray: ...


@runtime_checkable
class HorizonForecaster(Protocol):
    """A model that outputs a whole horizon at once (direct multi-step forecasts)."""

    def fit(self, y: np.ndarray) -> object: ...

    def predict_horizon(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Scores:
    """RMSE and MAE over n forecast values."""

    rmse: float
    mae: float
    n: int


@dataclass(frozen=True)
class ForecastResult:
    """One model's forecasts and scores on one series.

    one_step: (n_test,) forecasts of y[s:]; recursive, direct: (n_origins, H) forecasts of
    y[t : t + H] for the origins t = s .. n - H (None when the model cannot do that strategy);
    fit_seconds, predict_seconds: wall time of fit and of all forecasts.
    """

    model: str
    series: str
    horizon: int
    one_step: np.ndarray
    recursive: np.ndarray | None
    direct: np.ndarray | None
    scores: dict[str, Scores]
    fit_seconds: float
    predict_seconds: float


def score(forecast: np.ndarray, actual: np.ndarray) -> Scores:
    """RMSE and MAE of forecast against actual (same shape, any)."""
    error = np.asarray(forecast, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return Scores(
        rmse=math.sqrt(float(np.mean(error**2))), mae=float(np.mean(np.abs(error))), n=error.size
    )


def histories(series: Series, origins: np.ndarray) -> list[np.ndarray]:
    """The true series up to each origin: [y[:t] for t in origins]."""
    return [series.values[:t] for t in origins]


def targets(series: Series) -> np.ndarray:
    """(n_origins, H): y[t : t + H] for each rolling origin t = s .. n - H."""
    windows = np.lib.stride_tricks.sliding_window_view(series.test, series.horizon)
    return np.array(windows)


def checked(out: object, shape: tuple[int, ...], model: str, method: str) -> np.ndarray:
    """out as float64 of the expected shape and finite, or a ValueError naming the model."""
    array = np.asarray(out, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{model}.{method} returned shape {array.shape}; expected {shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{model}.{method} returned NaN or Inf; expected finite forecasts")
    return array


def recursive_forecast(
    model: StepForecaster, starts: list[np.ndarray], horizon: int, name: str
) -> np.ndarray:
    """(n, horizon): predict_step applied `horizon` times, each forecast appended to its history."""
    paths = [np.asarray(h, dtype=np.float64) for h in starts]
    steps = np.empty((len(paths), horizon))  # (n, H)
    for k in range(horizon):
        steps[:, k] = checked(model.predict_step(paths), (len(paths),), name, "predict_step")
        paths = [np.append(h, step) for h, step in zip(paths, steps[:, k], strict=True)]
    return steps


def evaluate(model: object, series: Series, name: str | None = None) -> ForecastResult:
    """Fit model on series.train, then score it one-step and multi-step as the module says."""
    name = name or type(model).__name__
    can_step = isinstance(model, StepForecaster)
    can_direct = isinstance(model, HorizonForecaster)
    if not (can_step or can_direct):
        raise TypeError(
            f"{name} cannot be evaluated: expected fit(y) and predict_step(histories) and/or "
            f"predict_horizon(histories, horizon)"
        )
    H, n = series.horizon, len(series.values)
    start = time.perf_counter()
    model.fit(series.train.copy())
    fit_seconds = time.perf_counter() - start

    start = time.perf_counter()
    test_origins = histories(series, np.arange(series.split, n))
    if can_step:
        one_step = checked(
            model.predict_step(test_origins), (len(test_origins),), name, "predict_step"
        )
    else:
        out = model.predict_horizon(test_origins, 1)
        one_step = checked(out, (len(test_origins), 1), name, "predict_horizon")[:, 0]
    actual = targets(series)  # (n_origins, H)
    rolling = histories(series, np.arange(series.split, n - H + 1))
    recursive = recursive_forecast(model, rolling, H, name) if can_step else None
    direct = None
    if can_direct:
        direct = checked(model.predict_horizon(rolling, H), actual.shape, name, "predict_horizon")
    predict_seconds = time.perf_counter() - start

    scores = {"one-step": score(one_step, series.test)}
    for strategy, forecast in (("recursive", recursive), ("direct", direct)):
        if forecast is not None:
            scores[strategy] = score(forecast, actual)
    return ForecastResult(
        name, series.name, H, one_step, recursive, direct, scores, fit_seconds, predict_seconds
    )
