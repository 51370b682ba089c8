"""Forecasting data: the series that ship inside statsmodels, with a fixed chronological split.

Every series is a `Series`: values, time index, season length, split point, horizon. The
split and the horizon are part of the data set's definition, written here once, so that every
model (baselines now, the recurrent networks later) is scored on the same test period:

- sunspots: yearly mean sunspot number, 1700 - 2008 (309 values). Train 1700 - 1948 (249),
  test 1949 - 2008 (60 years: five and a half solar cycles, 19 to 23, with the highest peak
  on record, 1957). Several cycles in the test period average the errors over rising and
  falling phases instead of one; 249 training years (about 22 cycles) leave a model with a
  lag window of one cycle over 200 training windows. No season: the solar cycle varies
  between about 9 and 14 years, so no fixed period exists (season None). Horizon 11 years,
  about one cycle.
- co2: atmospheric CO2 at Mauna Loa (ppm). statsmodels ships weekly values (1958-03-29 -
  2001-12-29, 59 weeks missing); we take monthly means of the weeks present (a month's mean
  is dated to its first day), 1958-03 - 2001-12 (526 months). Five months have no weekly value
  (1958-06, 1958-10, 1964-02 .. 1964-04); they are filled by linear interpolation in time
  between the neighbouring monthly means (at most three months in a row; all in training).
  Train 1958-03 - 1991-12 (406 months), test 1992-01 - 2001-12 (120 months: ten whole years, so
  each calendar month is equally represented). Season 12, horizon 12 months (one year ahead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vanishing.apps.timeseries.deps import require
from vanishing.apps.timeseries.errors import DataError


@dataclass(frozen=True)
class Series:
    """One univariate series and how it is evaluated.

    values: (n,) float64, finite; index: (n,) time stamps (years as int, or datetime64[M]);
    season: the season length in steps, or None; split: the first test position (train =
    values[:split], test = values[split:]); freq: "yearly", "monthly", ...; horizon: the
    multi-step forecast horizon in steps; unit: what the values measure (for axis labels).
    """

    name: str
    values: np.ndarray
    index: np.ndarray
    season: int | None
    split: int
    freq: str
    horizon: int
    unit: str = ""

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        n = values.shape[0] if values.ndim else 0
        if values.ndim != 1:
            raise DataError(self.name, "a 1-D series of values", f"shape {values.shape}")
        if not np.issubdtype(values.dtype, np.number):
            raise DataError(self.name, "numeric values", f"dtype {values.dtype}")
        if not np.isfinite(values).all():
            where = int(np.flatnonzero(~np.isfinite(values))[0])
            raise DataError(self.name, "finite values", f"{values[where]} at position {where}")
        if len(self.index) != n:
            raise DataError(self.name, f"a time index of length {n}", f"{len(self.index)}")
        if not 2 <= self.split <= n - 1:
            raise DataError(self.name, f"a split point in [2, {n - 1}]", f"{self.split}")
        if self.season is not None and not 2 <= self.season <= self.split:
            raise DataError(self.name, f"a season in [2, {self.split}] or None", f"{self.season}")
        if not 1 <= self.horizon <= n - self.split:
            raise DataError(
                self.name,
                f"a horizon in [1, {n - self.split}] (the test length)",
                f"{self.horizon}",
            )
        object.__setattr__(self, "values", values.astype(np.float64))

    @property
    def train(self) -> np.ndarray:
        """values[:split], (n_train,)."""
        return self.values[: self.split]

    @property
    def test(self) -> np.ndarray:
        """values[split:], (n_test,)."""
        return self.values[self.split :]


SUNSPOTS_TEST_START = 1949
CO2_TEST_START = np.datetime64("1992-01", "M")


def sunspots() -> Series:
    """Yearly sunspot numbers 1700 - 2008 from statsmodels; test 1949 - 2008, horizon 11."""
    data = require("statsmodels.api").datasets.sunspots.load_pandas().data
    years = data["YEAR"].to_numpy().astype(np.int64)  # (309,)
    values = data["SUNACTIVITY"].to_numpy(dtype=np.float64)  # (309,)
    split = int(np.searchsorted(years, SUNSPOTS_TEST_START))
    return Series("sunspots", values, years, None, split, "yearly", 11, "sunspot number")


def co2_monthly() -> Series:
    """Monthly means of statsmodels' weekly Mauna Loa CO2, gaps interpolated; test 1992 - 2001."""
    weekly = require("statsmodels.api").datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean()  # months without any weekly value are NaN
    monthly = monthly.interpolate(method="time")
    index = monthly.index.to_numpy().astype("datetime64[M]")  # (526,)
    split = int(np.searchsorted(index, CO2_TEST_START))
    return Series("co2", monthly.to_numpy(np.float64), index, 12, split, "monthly", 12, "CO2 (ppm)")


LOADERS = {"sunspots": sunspots, "co2": co2_monthly}
"""The forecasting data sets by name."""


def load_series(name: str) -> Series:
    """The forecasting data set `name` (one of LOADERS), read from statsmodels (no download)."""
    if name not in LOADERS:
        raise DataError("dataset", f"one of {', '.join(LOADERS)}", repr(name))
    return LOADERS[name]()
