"""The time-series baselines alone on every shipped data set (docs/applications.md shows
them beside our networks, from `vanishing forecast` and `vanishing classify`).

    .venv/bin/python benchmarks/timeseries_baselines.py              # forecasting + classification
    .venv/bin/python benchmarks/timeseries_baselines.py --compare    # + statsmodels SARIMAX / ETS
    .venv/bin/python benchmarks/timeseries_baselines.py --only forecast

Forecasting: every model through `apps.timeseries.forecast_protocol.evaluate` (one-step and
multi-step, recursive and direct, RMSE and MAE) on the fixed splits of `series.py`. Fit time is
the median of --repeats fits in this process, after one warm-up fit (numba compiles
statsforecast's code on first use). `--compare` adds statsmodels' SARIMAX and ETSModel, each
selected by AICc over a grid (statsmodels selects no order itself): the measurement behind the
choice of statsforecast in `statistical.py`. "linear AR(w)" is scikit-learn's least squares on
the last w = 2 h values (`windows.py`, the path a learned model takes), recursive and direct.

Classification: 1-NN DTW and MiniRocket through `classify_protocol.evaluate_classifier` on the
published splits of the shipped sets, seeds 0, 1, 2 (1-NN DTW is deterministic: one run),
after one warm-up fit and prediction (numba compiles aeon's code on first use); beside them the
published accuracies of `published.py`.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import subprocess
import time
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LinearRegression

from vanishing.apps.timeseries.classifiers import baselines
from vanishing.apps.timeseries.classify_protocol import evaluate_classifier
from vanishing.apps.timeseries.collection import SHIPPED, load_collection
from vanishing.apps.timeseries.forecast_protocol import evaluate
from vanishing.apps.timeseries.naive import Persistence, SeasonalNaive
from vanishing.apps.timeseries.published import PUBLISHED, SOURCE
from vanishing.apps.timeseries.series import LOADERS, Series, load_series
from vanishing.apps.timeseries.statistical import Statistical
from vanishing.apps.timeseries.windows import DirectWindows, RecursiveWindows


class SMSarimax:
    """statsmodels SARIMAX, orders by AICc over a grid; fixed parameters over the test period."""

    def __init__(self, season: int | None):
        self.season = season

    def grid(self) -> list[dict]:
        if self.season is None:  # stationary cycles: ARMA(p, q) with a constant
            return [
                {"order": (p, 0, q), "trend": "c"} for p, q in itertools.product(range(4), range(4))
            ]
        return [
            {"order": (p, 1, q), "seasonal_order": (P, 1, Q, self.season)}
            for p, q, P, Q in itertools.product(range(3), range(3), range(2), range(2))
        ]

    def fit(self, y: np.ndarray) -> SMSarimax:
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        fits = [SARIMAX(y, **spec).fit(disp=False) for spec in self.grid()]
        self.result_ = min(fits, key=lambda r: r.aicc)
        return self

    def predict_step(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_horizon(histories, 1)[:, 0]

    def predict_horizon(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        return np.stack([self.result_.apply(h).forecast(horizon) for h in histories])

    def describe(self) -> str:
        spec = self.result_.model
        return f"SARIMAX{spec.order}{spec.seasonal_order if self.season else ''}"


class SMETS:
    """statsmodels ETSModel, form by AICc over error/trend/damping/season; fixed parameters."""

    def __init__(self, season: int | None):
        self.season = season

    def grid(self, positive: bool) -> list[dict]:
        errors = ("add", "mul") if positive else ("add",)
        trends = ((None, False), ("add", False), ("add", True))
        seasons = (None,) if self.season is None else ("add", "mul") if positive else ("add",)
        return [
            {
                "error": e,
                "trend": t,
                "damped_trend": d,
                "seasonal": s,
                "seasonal_periods": self.season if s else None,
            }
            for e, (t, d), s in itertools.product(errors, trends, seasons)
        ]

    def fit(self, y: np.ndarray) -> SMETS:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        best = None
        for spec in self.grid(positive=bool((y > 0).all())):
            result = ETSModel(y, **spec).fit(disp=False)
            if best is None or result.aicc < best[1].aicc:
                best = (spec, result)
        self.spec_, self.result_ = best
        return self

    def predict_step(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_horizon(histories, 1)[:, 0]

    def predict_horizon(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        params = self.result_.params
        return np.stack(
            [ETSModel(h, **self.spec_).smooth(params).forecast(horizon) for h in histories]
        )

    def describe(self) -> str:
        s = self.spec_
        return f"ETS({s['error']},{s['trend']}{'d' if s['damped_trend'] else ''},{s['seasonal']})"


def forecast_models(series: Series, compare: bool) -> dict[str, object]:
    """The baselines of one series by display name (statsmodels too when compare)."""
    models: dict[str, object] = {"persistence": Persistence()}
    if series.season:
        models[f"seasonal naive (m={series.season})"] = SeasonalNaive(series.season)
    models["AutoARIMA (statsforecast)"] = Statistical("arima", series.season)
    models["AutoETS (statsforecast)"] = Statistical("ets", series.season)
    w = 2 * series.horizon
    models[f"linear AR({w}), recursive"] = RecursiveWindows(LinearRegression(), w, channels=False)
    models[f"linear AR({w}), direct"] = DirectWindows(
        LinearRegression(), w, series.horizon, channels=False
    )
    if compare:
        models["SARIMAX by AICc (statsmodels)"] = SMSarimax(series.season)
        models["ETS by AICc (statsmodels)"] = SMETS(series.season)
    return models


def median_fit_seconds(model: object, y: np.ndarray, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forecast_table(compare: bool, repeats: int) -> list[str]:
    rows = [
        "| series | model | selected | one-step RMSE / MAE | recursive RMSE / MAE "
        "| direct RMSE / MAE | fit s | forecasts s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    warm = Series("warm-up", np.sin(np.arange(60.0)), np.arange(60), 12, 48, "", 12)
    for kind in ("arima", "ets"):  # numba compiles statsforecast on first use: not fit time
        evaluate(Statistical(kind, 12), warm)
    for name in LOADERS:
        series = load_series(name)
        for label, model in forecast_models(series, compare).items():
            result = evaluate(model, series, label)
            fit = median_fit_seconds(model, series.train, repeats) if repeats > 1 else None
            cells = [
                f"{result.scores[k].rmse:.3f} / {result.scores[k].mae:.3f}"
                if k in result.scores
                else "-"
                for k in ("one-step", "recursive", "direct")
            ]
            selected = model.describe() if hasattr(model, "describe") else ""
            fit_s = fit if fit is not None else result.fit_seconds
            rows.append(
                f"| {name} (h={series.horizon}) | {label} | {selected} | {' | '.join(cells)} "
                f"| {fit_s:.2f} | {result.predict_seconds:.2f} |"
            )
            print(rows[-1], flush=True)
    return rows


def classify_table() -> list[str]:
    rows = [
        "| data set | train / test, channels, length | model | test accuracy (seeds 0, 1, 2) "
        "| fit s | predict s | published LSTM-FCN | published 1-NN DTW |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in SHIPPED:
        data = load_collection(name)
        low, high = data.lengths()
        shape = (
            f"{len(data.y_train)} / {len(data.y_test)}, {data.n_channels}, "
            f"{low if low == high else f'{low}-{high}'}"
        )
        published = PUBLISHED.get(name, {})
        for label, (make, deterministic) in baselines(data).items():
            make(0).fit(data.X_train, data.y_train).predict(data.X_test[:5])  # numba warm-up
            result = evaluate_classifier(make, data, label, deterministic=deterministic)
            accuracy = (
                f"{result.mean:.3f} (deterministic)"
                if deterministic
                else f"{result.mean:.3f} ± {result.std:.3f} ("
                + ", ".join(f"{a:.3f}" for a in result.accuracies)
                + ")"
            )
            rows.append(
                f"| {name} | {shape} | {label} | {accuracy} "
                f"| {statistics.median(result.fit_seconds):.2f} "
                f"| {statistics.median(result.predict_seconds):.2f} "
                + "".join(
                    f"| {published[m]:.3f} " if m in published else "| - "
                    for m in ("LSTM-FCN", "1-NN DTW")
                )
                + "|"
            )
            print(rows[-1], flush=True)
    return rows + ["", f"Published: {SOURCE}."]


def machine() -> str:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpu.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    return f"CPU: {model}; torch ISA: {torch.backends.cpu.get_cpu_capability()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="add statsmodels SARIMAX / ETS")
    parser.add_argument("--only", choices=("forecast", "classify"), help="one half only")
    parser.add_argument("--repeats", type=int, default=3, help="fits timed per model (median)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(machine())
    if args.only != "classify":
        print("\n".join(forecast_table(args.compare, args.repeats)))
    if args.only != "forecast":
        print("\n".join(classify_table()))


if __name__ == "__main__":
    main()
