"""The forecast-against-actual figure (matplotlib, Agg), for any models scored by the protocol.

Top panel: the one-step forecasts of each model over the test period, against the actual
series (with some training context before the split). Bottom panel: the multi-step forecasts
of each model from a few rolling origins spread over the test period, against the actual.
`vanishing.report.save_figure` writes it as PNG.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vanishing.apps.timeseries.forecast_protocol import ForecastResult  # noqa: E402
from vanishing.apps.timeseries.series import Series  # noqa: E402

STRATEGIES = ("direct", "recursive")


def shown_origins(n_origins: int, count: int, horizon: int) -> np.ndarray:
    """Up to `count` origins in [0, n_origins), spread so that their horizons rarely overlap."""
    step = max(horizon, n_origins // max(count, 1))
    return np.arange(0, n_origins, step)[:count]


def plot_forecasts(
    series: Series,
    results: Sequence[ForecastResult],
    strategy: str = "direct",
    origins: int = 4,
    context: int | None = None,
) -> Figure:
    """Each result's one-step and multi-step (`strategy`, else the other one) forecasts.

    origins: how many rolling origins the bottom panel shows; context: training steps shown
    before the split (default: as many as the test period has, at most the training part).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    for result in results:
        if result.series != series.name or result.one_step.shape != series.test.shape:
            raise ValueError(f"{result.model} was scored on {result.series!r}, not {series.name!r}")
    s, H = series.split, series.horizon
    first = s - min(context if context is not None else len(series.test), s)
    time, actual = series.index, series.values
    fig, axes = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax in axes:
        ax.plot(time[first:], actual[first:], color="black", lw=1.6, label="actual")
        ax.axvline(time[s], color="grey", ls=":", lw=1)
        ax.set_ylabel(series.unit or series.name)
    for k, result in enumerate(results):
        color = colors[k % len(colors)]
        axes[0].plot(time[s:], result.one_step, color=color, lw=1.2, label=result.model)
        paths = result.direct if strategy == "direct" else result.recursive
        used = strategy
        if paths is None:  # a model that only does the other strategy
            paths = result.recursive if strategy == "direct" else result.direct
            used = STRATEGIES[1 - STRATEGIES.index(strategy)]
        for j, origin in enumerate(shown_origins(len(paths), origins, H)):
            steps = time[s + origin : s + origin + H]
            label = f"{result.model} ({used})" if j == 0 else None
            axes[1].plot(steps, paths[origin], color=color, lw=1.4, marker=".", label=label)
    axes[0].set_title(f"{series.name}: one-step-ahead forecasts over the test period")
    axes[1].set_title(f"{series.name}: {H}-step forecasts from rolling origins")
    for ax in axes:
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
    return fig
