"""The statistical baselines a forecaster would use: AutoARIMA and AutoETS (statsforecast).

Why statsforecast and not statsmodels' SARIMAX and ETSModel: measured on both series, same
split and protocol (`benchmarks/timeseries_baselines.py --compare`; statsmodels selects no
order itself, so its orders and ETS form were picked by AICc over a grid: ARMA(p<=3, q<=3) for
sunspots, (p<=2,1,q<=2)(P<=1,1,Q<=1)[12] for co2; ETS over error, trend, damping, season), the
quality is the same within 3 % RMSE on co2 (one-step 0.289 / 0.305 against 0.287 / 0.296
ppm; 12-step 0.604 / 0.602 against 0.609 / 0.618) while statsforecast fits 10 to 35 times
faster (co2: AutoARIMA 2.8 s, AutoETS 0.2 s against 29 s and 7.4 s) and forecasts the test
period 10 to 350 times faster (4.3 s, 0.07 s against 50 s, 25 s). It is also the auto-selection
a forecaster reaches for (Hyndman and Khandakar's algorithm, as R's forecast package).

On sunspots AutoARIMA's default stepwise search stops at AR(2) (11-step RMSE 50.9), where the
exhaustive search over p + q <= 10 finds ARIMA(5,0,4) (32.2, the statsmodels grid's ARMA(3,3)
gives 32.7) in 1.6 s; on co2 the exhaustive seasonal search takes 46 s and gains nothing (0.600
against 0.604). So the search is exhaustive for series without a season and stepwise for
seasonal ones (`exhaustive`, overridable).

Each model is selected and fitted once on the training part (Hyndman and Khandakar's stepwise
AutoARIMA; AutoETS over error, trend, damping and season forms by AICc); over the test period
its parameters stay fixed and `forward` filters each true history to forecast from it. Their
point forecasts are the recursion of their one-step forecasts (future errors set to zero), so
recursive and direct multi-step forecasts coincide.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vanishing.apps.timeseries.deps import require

KINDS = ("arima", "ets")


class Statistical:
    """AutoARIMA (kind="arima") or AutoETS (kind="ets") from statsforecast, season m or None.

    exhaustive: AutoARIMA searches every order with p + q <= 10 instead of stepwise (default:
    only without a season, see the module docstring).
    """

    def __init__(
        self, kind: str = "arima", season: int | None = None, exhaustive: bool | None = None
    ):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if season is not None and season < 2:
            raise ValueError(f"season must be None or at least 2 steps, got {season}")
        self.kind, self.season = kind, season
        self.exhaustive = season is None if exhaustive is None else exhaustive

    def fit(self, y: np.ndarray) -> Statistical:
        models = require("statsforecast.models")
        if self.kind == "arima" and self.exhaustive:
            self.model_ = models.AutoARIMA(
                season_length=self.season or 1, stepwise=False, max_order=10
            )
        elif self.kind == "arima":
            self.model_ = models.AutoARIMA(season_length=self.season or 1)
        else:
            self.model_ = models.AutoETS(season_length=self.season or 1)
        self.model_.fit(np.asarray(y, dtype=np.float64))
        return self

    def predict_step(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_horizon(histories, 1)[:, 0]

    def predict_horizon(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        return np.stack(
            [
                self.model_.forward(y=np.asarray(h, dtype=np.float64), h=horizon)["mean"]
                for h in histories
            ]
        )  # (n, horizon)

    def describe(self) -> str:
        """The selected model, e.g. "ARIMA(2,0,1) with non-zero mean" or "ETS(A,Ad,N)"."""
        fitted = self.model_.model_
        if self.kind == "arima":
            return require("statsforecast.arima").arima_string(fitted).strip()
        return str(fitted["method"])
