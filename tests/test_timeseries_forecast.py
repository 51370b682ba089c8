"""Forecasting: the naive forecasts by hand, the protocol on series whose answer is known, the
statistical baselines and the window adapter on short series."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression

from vanishing.apps.timeseries.forecast_protocol import evaluate
from vanishing.apps.timeseries.naive import Persistence, SeasonalNaive
from vanishing.apps.timeseries.series import Series
from vanishing.apps.timeseries.statistical import Statistical
from vanishing.apps.timeseries.windows import DirectWindows, RecursiveWindows


def series(values, split, horizon, season=None):
    values = np.asarray(values, dtype=np.float64)
    return Series("synthetic", values, np.arange(len(values)), season, split, "", horizon)


def test_persistence_by_hand():
    model = Persistence().fit(np.zeros(3))
    histories = [np.array([1.0, 2, 3]), np.array([5.0, 4])]
    assert model.predict_step(histories).tolist() == [3, 4]
    assert model.predict_horizon(histories, 2).tolist() == [[3, 3], [4, 4]]


def test_seasonal_naive_by_hand():
    model = SeasonalNaive(3).fit(np.zeros(3))
    history = [np.array([9.0, 1, 2, 3])]  # last season 1, 2, 3
    assert model.predict_step(history).tolist() == [1]
    assert model.predict_horizon(history, 7).tolist() == [[1, 2, 3, 1, 2, 3, 1]]
    with pytest.raises(ValueError, match=r"at least one season \(3 values\), got 2"):
        SeasonalNaive(3).fit(np.zeros(2))


class Oracle:
    """Knows the whole series: forecasts it perfectly, one step or a whole horizon."""

    def __init__(self, values):
        self.values = values

    def fit(self, y):
        assert len(y) == 30  # the protocol shows the training part only
        return self

    def predict_step(self, histories):
        return np.array([self.values[len(h)] for h in histories])

    def predict_horizon(self, histories, horizon):
        return np.array([self.values[len(h) : len(h) + horizon] for h in histories])


def test_a_perfect_model_scores_zero():
    data = series(np.sin(np.arange(40.0)), split=30, horizon=4)
    result = evaluate(Oracle(data.values), data)
    assert set(result.scores) == {"one-step", "recursive", "direct"}
    assert all(s.rmse == 0 and s.mae == 0 for s in result.scores.values())
    assert result.one_step.shape == (10,) and result.direct.shape == (7, 4)
    assert result.scores["direct"].n == 28


def test_persistence_on_a_linear_trend_scores_the_slope():
    slope, H = 0.5, 3
    result = evaluate(Persistence(), series(slope * np.arange(20.0), split=12, horizon=H))
    assert result.scores["one-step"].rmse == pytest.approx(slope)
    assert result.scores["one-step"].mae == pytest.approx(slope)
    # steps 1..H ahead miss by slope * h: MAE slope * mean(h), RMSE slope * sqrt(mean(h^2))
    for strategy in ("recursive", "direct"):
        assert result.scores[strategy].mae == pytest.approx(slope * 2)
        assert result.scores[strategy].rmse == pytest.approx(slope * np.sqrt(14 / 3))


def test_seasonal_naive_is_exact_on_a_pure_season():
    result = evaluate(SeasonalNaive(4), series(np.tile([1.0, 5, 2, 7], 6), 16, 6, season=4))
    assert all(s.rmse == 0 for s in result.scores.values())


def test_a_model_must_forecast_the_right_shape():
    class Broken(Persistence):
        def predict_step(self, histories):
            return np.zeros(len(histories) + 1)

    with pytest.raises(ValueError, match=r"Broken.predict_step returned shape \(9,\); expected"):
        evaluate(Broken(), series(np.arange(10.0), 2, 1))
    with pytest.raises(TypeError, match=r"expected fit\(y\) and predict_step"):
        evaluate(object(), series(np.arange(10.0), 2, 1))


@pytest.mark.parametrize(("kind", "season"), [("arima", None), ("arima", 4), ("ets", 4)])
def test_statistical_baselines_on_a_short_series(kind, season):
    rng = np.random.default_rng(0)
    t = np.arange(48.0)
    data = series(10 + 0.1 * t + np.sin(2 * np.pi * t / 4) + 0.1 * rng.normal(size=48), 40, 4, 4)
    model = Statistical(kind, season)
    result = evaluate(model, data)
    # the multi-step forecast is the recursion of the one-step forecast: the two coincide
    np.testing.assert_allclose(result.recursive, result.direct, rtol=1e-6, atol=1e-8)
    naive = evaluate(Persistence(), data)
    assert result.scores["one-step"].rmse < naive.scores["one-step"].rmse
    assert model.describe().startswith(kind.upper())


def test_windows_learn_a_linear_recursion_recursively_and_directly():
    y = np.empty(60)
    y[:2] = 1.0, 2.0
    for t in range(2, 60):  # y_t = 1.5 y_{t-1} - 0.9 y_{t-2} + 3: an AR(2) with a mean
        y[t] = 1.5 * y[t - 1] - 0.9 * y[t - 2] + 3
    data = series(y, split=40, horizon=5)
    recursive = RecursiveWindows(LinearRegression(), window=2, channels=False)
    direct = DirectWindows(LinearRegression(), window=2, horizon=5, channels=False)
    for model, strategy in ((recursive, "recursive"), (direct, "direct")):
        result = evaluate(model, data)
        assert result.scores["one-step"].rmse < 1e-8 and result.scores[strategy].rmse < 1e-8
    assert recursive.mean_ == pytest.approx(y[:40].mean())  # scaled with the training part


def test_windows_pass_aeon_layout_to_the_regressor():
    class Recorder:
        def fit(self, X, Y):
            self.shapes = X.shape, Y.shape

        def predict(self, X):
            return np.zeros((len(X), 3))

    model = DirectWindows(Recorder(), window=4, horizon=3).fit(np.arange(10.0))
    assert model.regressor.shapes == ((4, 1, 4), (4, 3))
    assert model.predict_horizon([np.arange(6.0)], 2).shape == (1, 2)
    with pytest.raises(ValueError, match=r"a history has 2 values; the window needs 4"):
        model.predict_horizon([np.arange(2.0)], 3)


def test_differenced_windows_extrapolate_a_trend_beyond_the_training_levels():
    from sklearn.neighbors import KNeighborsRegressor  # predicts only levels it has seen

    t = np.arange(80.0)
    y = 0.5 * t + np.sin(2 * np.pi * t / 6)  # a trend and a season of 6: differences repeat
    data = series(y, split=60, horizon=4)
    for difference, rmse in ((True, 1e-8), (False, 1.0)):
        nearest = KNeighborsRegressor(n_neighbors=1)
        recursive = RecursiveWindows(nearest, 6, channels=False, difference=difference)
        direct = DirectWindows(clone(nearest), 6, 4, channels=False, difference=difference)
        results = [evaluate(recursive, data), evaluate(direct, data)]
        errors = [results[0].scores["recursive"].rmse, results[1].scores["direct"].rmse]
        assert all(e < rmse for e in errors) if difference else all(e > rmse for e in errors)
