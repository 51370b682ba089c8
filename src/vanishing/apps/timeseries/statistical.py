"""The statistical baselines a forecaster would use: AutoARIMA and AutoETS (statsforecast).

Why statsforecast and not statsmodels' SARIMAX and ETSModel: measured on both series, same
split and protocol (`benchmarks/timeseries_baselines.py --compare`; statsmodels selects no
order itself, so its orders and ETS form were picked by AICc over a grid: ARMA(p<=3, q<=3) for
sunspots, (p<=2,1,q<=2)(P<=1,1,Q<=1)[12] for co2; ETS over error, trend, damping, season), the
quality is the same within 3 % RMSE (co2 one-step: AutoARIMA 0.289, AutoETS 0.305 against
SARIMAX 0.287, ETS 0.296 ppm; 12-step: 0.604, 0.602 against 0.609, 0.618; sunspots 11-step:
AutoARIMA 32.2 against SARIMAX 32.7, both ETS forms the same ETS(A,N,N)), while on co2
statsforecast fits about 10 times faster (AutoARIMA 3.2 s, AutoETS 0.21 s against 33 s and
1.9 s, the grid searches included) and forecasts the test period 14 and 240 times faster
(4.3 s and 0.10 s against 62 s and 24 s). It is also the automatic selection a forecaster
reaches for (Hyndman and Khandakar's algorithm, as R's forecast package).

On sunspots AutoARIMA's default stepwise search stops at AR(2) (11-step RMSE 50.9), where the
exhaustive search over p + q <= 10 finds ARIMA(5,0,4) (32.2, the statsmodels grid's ARMA(3,3)
gives 32.7) in 1.6 s; on co2 the exhaustive seasonal search (`exhaustive=True`) took 46 s and
gained nothing (0.600 against 0.604). So the search is exhaustive for series without a season
and stepwise for seasonal ones (`exhaustive`, overridable).

Each model is selected and fitted once on the training part (AutoARIMA by AICc as above;
AutoETS over error, trend, damping and season forms by AICc); over the test period
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
