"""A regressor on lag windows as a forecaster: how a learned model joins the protocol.

Any regressor with `fit(X, Y)` and `predict(X)` (scikit-learn, aeon, and the recurrent
`LSTMRegressor`) becomes a forecaster: the series is standardised with the mean and standard
deviation of the training part (fitted in `fit`, which only ever sees the training part), cut
into windows of `window` values, and the regressor learns the value(s) after each window.
With scale=False the regressor sees the values as they are (for one that standardises its
own inputs and targets, as `LSTMRegressor` does: then it predicts from raw windows on its own).
With difference=True the regressor sees first differences (z_t - z_{t-1}) and learns the next
difference(s); the forecast adds them back to the last value, cumulatively over a horizon (the
d = 1 of ARIMA, for a series with a trend: a model fitted on levels cannot extrapolate
beyond the levels it was trained on).

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

    def __init__(
        self,
        regressor: object,
        window: int,
        channels: bool = True,
        scale: bool = True,
        difference: bool = False,
    ):
        if window < 1:
            raise ValueError(f"window must be at least 1 value, got {window}")
        self.regressor, self.window, self.channels = regressor, window, channels
        self.scaled, self.difference = scale, bool(difference)

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
        need = self.window + ahead + self.difference
        if len(y) < need:
            raise ValueError(
                f"the training part has {len(y)} values; windows of {self.window} and "
                f"{ahead} value(s) ahead need at least {need}"
            )
        self.mean_, self.std_ = (
            (float(y.mean()), float(y.std()) or 1.0) if self.scaled else (0.0, 1.0)
        )
        self.regressor.fit(*self.cut(y, ahead))

    def cut(self, y: np.ndarray, ahead: int) -> tuple[np.ndarray, np.ndarray]:
        """The regressor's X and Y on the series y with the fitted scaler: every window and the
        `ahead` values (or differences) after it; Y (n,) when ahead is 1, else (n, ahead). The
        first target is y[window + difference]."""
        z = self.scale(y)  # (len(y),)
        if self.difference:
            z = np.diff(z)  # (len(y) - 1,)
        cut = np.lib.stride_tricks.sliding_window_view(z, self.window + ahead)  # (n, w + ahead)
        X, Y = cut[:, : self.window], cut[:, self.window :]  # (n, w), (n, ahead)
        return self.inputs(np.array(X)), Y[:, 0] if ahead == 1 else np.array(Y)

    def last_windows(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """(n, window): the scaled last `window` values (or differences) of each history."""
        need = self.window + self.difference
        short = [len(h) for h in histories if len(h) < need]
        if short:
            raise ValueError(f"a history has {short[0]} values; the window needs {need}")
        z = np.stack([self.scale(h[-need:]) for h in histories])  # (n, need)
        return np.diff(z, axis=1) if self.difference else z

    def levels(self, histories: Sequence[np.ndarray], out: np.ndarray) -> np.ndarray:
        """(n, k): the regressor's outputs (n, k) as values: unscaled, and with difference
        added cumulatively to each history's last value."""
        if self.difference:
            last = np.array([self.scale(h[-1:])[0] for h in histories])  # (n,)
            out = last[:, None] + np.cumsum(out, axis=1)  # (n, k)
        return self.unscale(out)


class RecursiveWindows(Windows):
    """The regressor predicts the next value from the last `window` values."""

    def fit(self, y: np.ndarray) -> RecursiveWindows:
        self.fit_windows(y, 1)
        return self

    def predict_step(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        out = self.regressor.predict(self.inputs(self.last_windows(histories)))
        return self.levels(histories, np.reshape(out, (len(histories), 1)))[:, 0]  # (n,)


class DirectWindows(Windows):
    """The regressor predicts the next `horizon` values at once from the last `window` values."""

    def __init__(
        self,
        regressor: object,
        window: int,
        horizon: int,
        channels: bool = True,
        scale: bool = True,
        difference: bool = False,
    ):
        super().__init__(regressor, window, channels, scale, difference)
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
        return self.levels(histories, out[:, :horizon])  # (n, horizon)
