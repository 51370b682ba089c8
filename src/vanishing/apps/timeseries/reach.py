"""How far back a trained network's gradient reaches on real data, beside the series length.

`reach(model, X, y)` runs `RecurrentEstimator.gradient_profile` (`vanishing.profile`: one
float64 forward and backward pass of the training loss over the cases X, each read at its own
last step) and keeps the first layer's forward direction, the one that reads the input:
its gradient horizon (the largest lag whose mean gradient norm is at least `fraction` of lag
0's) and the share of the gradient that reaches the first step of the shortest series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vanishing.gradflow import LagProfile

FRACTION = 1e-3
"""The horizon threshold: the gradient norm relative to lag 0."""


@dataclass(frozen=True)
class Reach:
    """horizon: gradient horizon in steps (at FRACTION); length: (shortest, longest) series;
    at_start: norm at lag shortest - 1 over norm at lag 0; lags: the full lag profile."""

    horizon: int
    length: tuple[int, int]
    at_start: float
    lags: LagProfile

    def as_dict(self) -> dict[str, Any]:
        norm = np.asarray(self.lags.norm, dtype=np.float64)
        relative = norm / norm[0] if norm[0] > 0 else np.zeros_like(norm)
        return {
            "horizon": self.horizon,
            "fraction": FRACTION,
            "length": list(self.length),
            "at_start": self.at_start,
            "relative_norm_by_lag": [None if np.isnan(v) else float(v) for v in relative],
        }


def reach(model: Any, X: Any, y: Any, fraction: float = FRACTION) -> Reach:
    """The Reach of the fitted recurrent estimator `model` on the cases X with targets y."""
    lags = model.gradient_profile(X, y, fraction)[0].lags
    lengths = [x.shape[-1] for x in X]
    shortest = min(lengths)
    norm = np.asarray(lags.norm, dtype=np.float64)
    at_start = float(norm[shortest - 1] / norm[0]) if norm[0] > 0 else 0.0
    return Reach(int(lags.horizon), (shortest, max(lengths)), at_start, lags)


def describe(reaches: list[Reach]) -> str:
    """One table cell: each seed's horizon, of the longest length, and the median over seeds of
    the gradient at the shortest series' first step relative to lag 0 (above 1: larger than
    at the last step), e.g. "21/21/21 of 22; 0.02"."""
    if not reaches:
        return "-"
    horizons = "/".join(str(r.horizon) for r in reaches)
    share = float(np.median([r.at_start for r in reaches]))
    return f"{horizons} of {reaches[0].length[1]}; {share:.2g}"
