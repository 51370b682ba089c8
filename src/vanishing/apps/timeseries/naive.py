"""The naive forecasts every other forecast must beat: persistence and seasonal naive.

Both are their own recursion, so their recursive and direct multi-step forecasts coincide.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Persistence:
    """Forecast the last observed value for every future step: from y[:t], every step is y[t-1]."""

    def fit(self, y: np.ndarray) -> Persistence:
        return self

    def predict_step(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_horizon(histories, 1)[:, 0]

    def predict_horizon(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        last = np.array([h[-1] for h in histories], dtype=np.float64)  # (n,)
        return np.repeat(last[:, None], horizon, axis=1)  # (n, horizon)


class SeasonalNaive:
    """Forecast the same step of the last observed season (length m).

    From y[:t], step h = 1, 2, ... is y[t - m + (h - 1) mod m]; one step ahead, y[t - m].
    """

    def __init__(self, season: int):
        if season < 1:
            raise ValueError(f"season must be a positive number of steps, got {season}")
        self.season = season

    def fit(self, y: np.ndarray) -> SeasonalNaive:
        if len(y) < self.season:
            raise ValueError(
                f"seasonal naive needs at least one season ({self.season} values), got {len(y)}"
            )
        return self

    def predict_step(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_horizon(histories, 1)[:, 0]

    def predict_horizon(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        m = self.season
        last_season = np.array([h[-m:] for h in histories], dtype=np.float64)  # (n, m)
        return last_season[:, np.arange(horizon) % m]  # (n, horizon)
