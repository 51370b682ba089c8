"""A regressor on lag windows as a forecaster: how a learned model joins the protocol.

Any regressor with `fit(X, Y)` and `predict(X)` (scikit-learn, aeon, and the recurrent
`LSTMRegressor`) becomes a forecaster: the series is standardised with the mean and standard
deviation of the training part (fitted in `fit`, which only ever sees the training part), cut
into windows of `window` values, and the regressor learns the value(s) after each window.
With scale=False the regressor sees the values as they are (for one that standardises its
own inputs and targets, as `LSTMRegressor` does: then it predicts from raw windows on its own).

- `RecursiveWindows`: targets the next value, Y (n,); a `StepForecaster`.
- `DirectWindows`: targets the next `horizon` values, Y (n, horizon); a `HorizonForecaster`.

X is (n, 1, window) (aeon's (n_cases, n_channels, n_timepoints)) or, with channels=False,
(n, window) for scikit-learn's tabular regressors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Windows:
    """What both strategies share: the scaler fitted on the training part, and the windows."""

    def __init__(self, regressor: object, window: int, channels: bool = True, scale: bool = True):
        if window < 1:
            raise ValueError(f"window must be at least 1 value, got {window}")
        self.regressor, self.window, self.channels = regressor, window, channels
        self.scaled = scale

    def scale(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.mean_) / self.std_

    def unscale(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.std_ + self.mean_

    def inputs(self, windows: np.ndarray) -> np.ndarray:
        """(n, window) scaled windows as the regressor's X."""
        return windows[:, None, :] if self.channels else windows

    def fit_windows(self, y: np.ndarray, ahead: int) -> None:
        """Fit the scaler on y, the regressor on its windows and the `ahead` values after each."""
        y = np.asarray(y, dtype=np.float64)
        if len(y) < self.window + ahead:
            raise ValueError(
                f"the training part has {len(y)} values; windows of {self.window} and "
                f"{ahead} value(s) ahead need at least {self.window + ahead}"
            )
        self.mean_, self.std_ = (
            (float(y.mean()), float(y.std()) or 1.0) if self.scaled else (0.0, 1.0)
        )
        z = self.scale(y)  # (n_train,)
        cut = np.lib.stride_tricks.sliding_window_view(z, self.window + ahead)  # (n, w + ahead)
        X, Y = cut[:, : self.window], cut[:, self.window :]  # (n, w), (n, ahead)
        self.regressor.fit(self.inputs(np.array(X)), Y[:, 0] if ahead == 1 else np.array(Y))

    def last_windows(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """(n, window): the scaled last `window` values of each history."""
        short = [len(h) for h in histories if len(h) < self.window]
        if short:
            raise ValueError(f"a history has {short[0]} values; the window needs {self.window}")
        return np.stack([self.scale(h[-self.window :]) for h in histories])


class RecursiveWindows(Windows):
    """The regressor predicts the next value from the last `window` values."""

    def fit(self, y: np.ndarray) -> RecursiveWindows:
        self.fit_windows(y, 1)
        return self

    def predict_step(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        out = self.regressor.predict(self.inputs(self.last_windows(histories)))
        return self.unscale(np.reshape(out, (len(histories),)))  # (n,)


class DirectWindows(Windows):
    """The regressor predicts the next `horizon` values at once from the last `window` values."""

    def __init__(
        self,
        regressor: object,
        window: int,
        horizon: int,
        channels: bool = True,
        scale: bool = True,
    ):
        super().__init__(regressor, window, channels, scale)
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1 step, got {horizon}")
        self.horizon = horizon

    def fit(self, y: np.ndarray) -> DirectWindows:
        self.fit_windows(y, self.horizon)
        return self

    def predict_horizon(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        if horizon > self.horizon:
            raise ValueError(f"this model forecasts {self.horizon} steps; {horizon} were asked")
        out = self.regressor.predict(self.inputs(self.last_windows(histories)))
        out = np.reshape(out, (len(histories), self.horizon))  # (n, self.horizon)
        return self.unscale(out[:, :horizon])  # (n, horizon)
