"""`LSTMClassifier` and `LSTMRegressor`: the recurrent layers as scikit-learn / aeon estimators.

X as aeon takes it: a 3-D array (n_cases, n_channels, n_timepoints), a 2-D array
(n_cases, n_timepoints) (univariate), or a list of 2-D arrays (n_channels, n_timepoints_i) for
unequal lengths. Each channel is standardised with the mean and standard deviation of all its
training time points (channel_mean_, channel_scale_); series of different lengths are padded
and packed, so each one is read at its own last step (`apps.network`). `cell="rnn"` trains the
simple RNN instead of the LSTM. Network, training, random_state, save/load:
`apps.estimator`. Every bad input is one DataError line (a ValueError) naming what was
expected and what came.

scikit-learn's estimator checks (`sklearn.utils.estimator_checks`, run by the tests) pass
except these four, expected failures for the reasons given (`EXPECTED_FAILED_CHECKS`):

- check_n_features_in, check_n_features_in_after_fitting: a recurrent network reads series of
  any length, so a 2-D X's columns (time points) are not a fixed number of features and there
  is no `n_features_in_`; the fixed input width is `n_channels_`, checked in predict.
- check_classifiers_train (LSTMClassifier): it asserts that predict refuses X with another
  number of columns, i.e. series of another length, which are valid input here. (Its
  accuracy part is covered by the GunPoint test.)
- check_estimators_empty_data_messages: an empty series is refused with this module's
  DataError ("X, case 0: expected a series of at least 1 time point, got an empty series"),
  not with scikit-learn's tabular wording "0 feature(s) (shape=(n, 0))".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.sparse import issparse
from torch import nn

from vanishing.apps.estimator import RecurrentClassifier, RecurrentRegressor, Sequences
from vanishing.apps.timeseries.collection import LAYOUT, Cases, check_series
from vanishing.apps.timeseries.errors import DataError

ACCEPTED = f"{LAYOUT}, or a 2-D array (n_cases, n_timepoints)"

ANY_LENGTH = "series of any length are valid input: no fixed n_features_in_ (n_channels_ is)"
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_n_features_in": ANY_LENGTH,
    "check_n_features_in_after_fitting": ANY_LENGTH,
    "check_classifiers_train": "it expects predict to refuse series of another length",
    "check_estimators_empty_data_messages": "an empty series is one DataError in our wording",
}
"""{check name: why it is expected to fail} (the module docstring has the full reasons)."""


def as_cases(X: Any, where: str = "X") -> Cases:
    """X in aeon's layout, float64, checked (`collection.check_series`). Also taken: a 2-D
    array (n_cases, n_timepoints) and a list of 1-D arrays (unequal lengths), both univariate."""
    if issparse(X):
        raise DataError(where, ACCEPTED, "a sparse matrix (sparse input is not supported)")
    if isinstance(X, list | tuple):
        cases = [np.asarray(x) for x in X]
        if cases and all(x.ndim == 1 for x in cases):
            return check_series([x[None, :] for x in cases], where)  # (1, T_i) each
        if not cases or any(x.ndim != 0 for x in cases):
            return check_series(cases, where)
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise DataError(where, "real numbers", "complex numbers (Complex data not supported)")
    try:
        X = X.astype(np.float64)
    except TypeError as error:  # an object array holding something that is not a number
        raise TypeError(f"{where}: expected numeric values, got {error}") from None
    except ValueError as error:
        raise DataError(where, ACCEPTED, f"{error}") from None
    if X.ndim == 2:
        X = X[:, None, :]  # (n, 1, T)
    if X.ndim != 3:
        hint = " (Reshape your data: one univariate series x is x.reshape(1, -1))"
        raise DataError(where, ACCEPTED, f"a {X.ndim}-D array of shape {X.shape}" + hint)
    return check_series(X, where)


class SeriesInputs:
    """The input side of both estimators: aeon's layout in, standardised channels out."""

    def _fit_inputs(self, X: Any) -> Sequences:
        cases = as_cases(X)
        values = np.concatenate(list(cases), axis=1)  # (C, all time points)
        self.n_channels_ = int(values.shape[0])
        self.channel_mean_ = values.mean(axis=1)  # (C,)
        scale = values.std(axis=1)  # (C,)
        self.channel_scale_ = np.where(scale > 0, scale, 1.0)
        return self._convert(cases)

    def _inputs(self, X: Any) -> Sequences:
        cases = as_cases(X)
        channels = int(cases[0].shape[0])
        if channels != self.n_channels_:
            raise DataError("X", f"{self.n_channels_} channels (as in fit)", f"{channels}")
        return self._convert(cases)

    def _convert(self, cases: Cases) -> Sequences:
        """(T, N, C) float32 standardised, zero-padded after each case's length."""
        lengths = np.array([c.shape[1] for c in cases])  # (N,)
        x = np.zeros((int(lengths.max()), len(cases), self.n_channels_), dtype=np.float32)
        mean, scale = self.channel_mean_[:, None], self.channel_scale_[:, None]  # (C, 1)
        if isinstance(cases, np.ndarray):
            x[:] = ((cases - mean) / scale).transpose(2, 0, 1)  # (T, N, C)
        else:
            for i, case in enumerate(cases):
                x[: case.shape[1], i] = ((case - mean) / scale).T  # (T_i, C)
        return Sequences(torch.from_numpy(x), torch.from_numpy(lengths).long())

    def _encoder(self) -> tuple[nn.Module | None, int]:
        return None, self.n_channels_

    def _inputs_state(self) -> dict[str, Any]:
        return {
            "n_channels": self.n_channels_,
            "channel_mean": self.channel_mean_.tolist(),
            "channel_scale": self.channel_scale_.tolist(),
        }

    def _restore_inputs(self, state: dict[str, Any]) -> None:
        self.n_channels_ = int(state["n_channels"])
        self.channel_mean_ = np.asarray(state["channel_mean"], dtype=np.float64)
        self.channel_scale_ = np.asarray(state["channel_scale"], dtype=np.float64)
        if self.channel_mean_.shape != (self.n_channels_,) or self.channel_scale_.shape != (
            self.n_channels_,
        ):
            raise ValueError(f"channel statistics must have {self.n_channels_} values each")


class LSTMClassifier(SeriesInputs, RecurrentClassifier):
    """Time-series classification with vanishing.LSTM (or vanishing.RNN: cell="rnn").

    fit(X, y), predict(X) -> labels, predict_proba(X) -> (n_cases, n_classes), score(X, y) ->
    accuracy; save(path) / LSTMClassifier.load(path). Hyper-parameters and training:
    `apps.estimator.RecurrentEstimator`; inputs: this module's docstring.
    """

    kind = "timeseries-classifier"


class LSTMRegressor(SeriesInputs, RecurrentRegressor):
    """Time-series regression (and, on lag windows, forecasting) with vanishing.LSTM (or
    vanishing.RNN: cell="rnn").

    fit(X, y) with y (n_cases,) or (n_cases, n_outputs), predict(X), score(X, y) -> R^2;
    save(path) / LSTMRegressor.load(path). Hyper-parameters and training:
    `apps.estimator.RecurrentEstimator`; inputs: this module's docstring.
    """

    kind = "timeseries-regressor"
