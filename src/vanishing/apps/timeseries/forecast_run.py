"""`vanishing forecast`'s work: our recurrent regressor beside the baselines on one series.

On a `Series` (fixed split, horizon H), every model goes through `forecast_protocol.evaluate`:

- the baselines, once each (deterministic): persistence, seasonal naive (when the series has
  a season), AutoARIMA and AutoETS (`statistical.py`);
- our network (`LSTMRegressor`, cell "lstm" or "rnn") once per seed, two ways: on windows of
  the last `window` values predicting the next one, applied recursively
  (`RecursiveWindows`), and predicting the next H values at once (`DirectWindows`). The
  regressor standardises its own inputs and targets with the training part's statistics.
  On a series with a trend it models first differences (`difference`; by default when the
  KPSS test that AutoARIMA uses to choose d, statsforecast's `ndiffs`, finds d >= 1 on the
  training part): a network on levels cannot forecast levels above those it was trained on.

Each trained network's gradient reach (`reach.py`) is measured on the test period's windows
(the regressor's inputs before each test position, its targets from there), beside the
window length. `write_forecast_run` writes the run folder: metrics.json, the figures, the
first seed's networks (`forecaster.py`, for `vanishing predict`) and report.html.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vanishing.apps.timeseries.deps import require
from vanishing.apps.timeseries.figures import plot_forecasts
from vanishing.apps.timeseries.forecast_protocol import ForecastResult, evaluate
from vanishing.apps.timeseries.forecaster import save_forecaster
from vanishing.apps.timeseries.naive import Persistence, SeasonalNaive
from vanishing.apps.timeseries.reach import Reach, describe, reach
from vanishing.apps.timeseries.recurrent import LSTMRegressor
from vanishing.apps.timeseries.series import Series
from vanishing.apps.timeseries.statistical import Statistical
from vanishing.apps.timeseries.windows import DirectWindows, RecursiveWindows, Windows
from vanishing.report import Section, plot_lag_profiles, save_figure, write_report
from vanishing.report.machine import describe as describe_machine

STRATEGIES = ("one-step", "recursive", "direct")


@dataclass(frozen=True)
class NetworkSettings:
    """The recurrent regressor of a forecasting run (`LSTMRegressor`'s parameters); window:
    values per input window (None: two horizons)."""

    cell: str = "lstm"
    window: int | None = None
    hidden_size: int = 32
    max_epochs: int = 300
    patience: int = 30
    validation_fraction: float = 0.1
    lr: float = 3e-3
    batch_size: int = 32
    difference: bool | None = None

    def differenced(self, series: Series) -> bool:
        """difference, or (None) whether the KPSS test finds d >= 1 on the training part."""
        if self.difference is not None:
            return self.difference
        return int(require("statsforecast.arima").ndiffs(series.train)) >= 1

    def window_for(self, series: Series) -> int:
        return self.window if self.window is not None else 2 * series.horizon

    def check(self, series: Series) -> None:
        """A ValueError naming the setting if these settings cannot run on series."""
        self.regressor(0)
        w, most = self.window_for(series), series.split - series.horizon - 1
        if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= most:
            raise ValueError(
                f"window must be an int in [1, {most}] for {series.name} (its training part "
                f"has {series.split} values), got {w!r}"
            )

    def regressor(self, seed: int) -> LSTMRegressor:
        """A new, checked LSTMRegressor seeded with seed (ValueError on a bad setting)."""
        model = LSTMRegressor(
            cell=self.cell,
            hidden_size=self.hidden_size,
            max_epochs=self.max_epochs,
            patience=self.patience,
            validation_fraction=self.validation_fraction,
            lr=self.lr,
            batch_size=self.batch_size,
            random_state=seed,
        )
        model._check_params()
        return model


@dataclass
class Entry:
    """One model's results on the series: one ForecastResult per seed (one for a baseline),
    each trained network's Reach, and the first seed's trained forecaster."""

    name: str
    results: list[ForecastResult]
    seeds: tuple[int, ...]
    reaches: list[Reach] = field(default_factory=list)
    model: Any = None

    def scores(self, strategy: str, metric: str) -> list[float]:
        return [getattr(r.scores[strategy], metric) for r in self.results if strategy in r.scores]

    def summary(self) -> dict[str, Any]:
        """Per strategy and metric: the values per seed, their mean and sample std."""
        out: dict[str, Any] = {}
        for strategy in STRATEGIES:
            for metric in ("rmse", "mae"):
                values = self.scores(strategy, metric)
                if values:
                    out.setdefault(strategy, {})[metric] = {
                        "values": values,
                        "mean": statistics.fmean(values),
                        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    }
        return out


def baselines(series: Series) -> dict[str, object]:
    """The baseline forecasters of series by display name."""
    models: dict[str, object] = {"persistence": Persistence()}
    if series.season:
        models[f"seasonal naive (m={series.season})"] = SeasonalNaive(series.season)
    models["AutoARIMA (statsforecast)"] = Statistical("arima", series.season)
    models["AutoETS (statsforecast)"] = Statistical("ets", series.season)
    return models


def networks(series: Series, settings: NetworkSettings, seed: int) -> dict[str, Windows]:
    """Our two window forecasters (recursive, direct) for one seed, by display name."""
    w, d = settings.window_for(series), settings.differenced(series)
    name = settings.cell.upper() + (" on differences" if d else "")
    return {
        f"{name}, recursive (w={w})": RecursiveWindows(
            settings.regressor(seed), w, scale=False, difference=d
        ),
        f"{name}, direct (w={w})": DirectWindows(
            settings.regressor(seed), w, series.horizon, scale=False, difference=d
        ),
    }


def test_windows(model: Windows, series: Series, ahead: int) -> tuple[np.ndarray, np.ndarray]:
    """The fitted model's regressor inputs and targets on the test period: every window
    before a test position t with the ahead values (or differences) from t on."""
    return model.cut(series.values[series.split - model.window - model.difference :], ahead)


def run_forecast(
    series: Series,
    settings: NetworkSettings,
    seeds: Sequence[int] = (0, 1, 2),
    on_model: Callable[[str], None] | None = None,
) -> list[Entry]:
    """Every baseline once and our networks for each seed, as the module docstring says.

    on_model(name) is called before each fit (for a progress bar).
    """
    settings.check(series)
    done = on_model or (lambda name: None)
    entries = []
    for name, model in baselines(series).items():
        done(name)
        entries.append(Entry(name, [evaluate(model, series, name)], (0,)))
    ours: dict[str, Entry] = {}
    for seed in seeds:
        for name, model in networks(series, settings, seed).items():
            done(f"{name}, seed {seed}")
            entry = ours.setdefault(name, Entry(name, [], tuple(seeds), model=model))
            entry.results.append(evaluate(model, series, name))
            ahead = model.horizon if isinstance(model, DirectWindows) else 1
            entry.reaches.append(reach(model.regressor, *test_windows(model, series, ahead)))
    return entries + list(ours.values())


def total_fits(series: Series, seeds: Sequence[int]) -> int:
    """How many times run_forecast calls on_model."""
    return len(baselines(series)) + 2 * len(seeds)


def cell(summary: dict[str, Any], strategy: str, metric: str) -> str:
    if strategy not in summary:
        return "-"
    s = summary[strategy][metric]
    return f"{s['mean']:.3f}" + (f" ± {s['std']:.3f}" if len(s["values"]) > 1 else "")


COLUMNS = (
    "model",
    "one-step RMSE / MAE",
    "recursive RMSE / MAE",
    "direct RMSE / MAE",
    "fit s",
    "gradient horizon of window; at its first value",
)


def rows(entries: Sequence[Entry]) -> list[list[str]]:
    """The comparison table (COLUMNS): mean ± sample std over seeds for our networks."""
    out = []
    for entry in entries:
        summary = entry.summary()
        scores = [
            f"{cell(summary, s, 'rmse')} / {cell(summary, s, 'mae')}" if s in summary else "-"
            for s in STRATEGIES
        ]
        fit = statistics.fmean(r.fit_seconds for r in entry.results)
        out.append([entry.name, *scores, f"{fit:.2f}", describe(entry.reaches)])
    return out


def best(entries: Sequence[Entry], *strategies: str) -> str:
    """The model with the lowest mean RMSE over those strategies (our networks' names say
    their strategy; a baseline's recursive and direct forecasts coincide)."""
    return min(
        (e.summary()[k]["rmse"]["mean"], e.name)
        for e in entries
        for k in strategies
        if e.scores(k, "rmse")
    )[1]


def write_forecast_run(
    folder: Path,
    series: Series,
    settings: NetworkSettings,
    entries: Sequence[Entry],
    meta: dict[str, Any],
) -> dict[str, Path]:
    """metrics.json, forecast.png, gradient.png, models/<network>/ and report.html in folder."""
    folder = Path(folder)
    paths: dict[str, Path] = {}
    first = [e.results[0] for e in entries]
    paths["forecast"] = save_figure(plot_forecasts(series, first), folder / "forecast.png")
    nets = [e for e in entries if e.reaches]
    profiles = {e.name: e.reaches[0].lags for e in nets}
    paths["gradient"] = save_figure(
        plot_lag_profiles({f"{series.name}: trained networks on the test windows": profiles}),
        folder / "gradient.png",
    )
    for entry in nets:
        kind = "recursive" if isinstance(entry.model, RecursiveWindows) else "direct"
        paths[f"model {kind}"] = save_forecaster(entry.model, folder / "models" / kind, series.name)
    metrics = {
        "command": "forecast",
        "series": {
            "name": series.name,
            "n": len(series.values),
            "split": series.split,
            "test": len(series.test),
            "horizon": series.horizon,
            "season": series.season,
        },
        "settings": asdict(settings)
        | {"window": settings.window_for(series), "difference": settings.differenced(series)},
        "models": [
            {
                "name": e.name,
                "seeds": list(e.seeds),
                "scores": e.summary(),
                "fit_seconds": [r.fit_seconds for r in e.results],
                "predict_seconds": [r.predict_seconds for r in e.results],
                "reach": [r.as_dict() for r in e.reaches],
            }
            for e in entries
        ],
        "machine": meta,
    }
    paths["metrics"] = folder / "metrics.json"
    paths["metrics"].write_text(json.dumps(metrics, indent=2))
    w = settings.window_for(series)
    intro = (
        f"<b>{series.name}</b>: {len(series.train)} training and {len(series.test)} test values "
        f"({series.freq}); one-step forecasts of every test value and {series.horizon}-step "
        f"forecasts from every rolling origin, RMSE and MAE in {series.unit or 'its units'}. "
        f"Our networks: mean ± sample std over seeds {', '.join(map(str, entries[-1].seeds))}. "
        f"Lowest one-step RMSE: {best(entries, 'one-step')}; lowest {series.horizon}-step "
        f"RMSE: {best(entries, 'recursive', 'direct')}."
    )
    sections = [
        Section(
            "Forecast against actual",
            paths["forecast"],
            "Top: one-step forecasts over the test period. Bottom: multi-step forecasts from "
            "a few rolling origins (direct where the model has it, else recursive). Our "
            "networks: the first seed.",
        ),
        Section(
            "How far back the trained networks' gradient reaches",
            paths["gradient"],
            f"Mean gradient norm of the training loss by lag, on the test windows of {w} "
            "values, relative to lag 0 (first seed). The dotted line is the gradient horizon; "
            "a horizon at the window's end means the whole window is in reach.",
        ),
    ]
    paths["report"] = write_report(
        folder / "report.html",
        f"vanishing forecast: {series.name}",
        intro,
        COLUMNS,
        rows(entries),
        sections,
        describe_machine(meta),
    )
    return paths
