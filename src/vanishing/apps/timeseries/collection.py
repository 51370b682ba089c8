"""Classification data: labelled collections of series, the sets that ship inside aeon.

A `Collection` holds a train and a test part in aeon's layout: X is (n_cases, n_channels,
n_timepoints) float64, or a list of (n_channels, n_timepoints_i) arrays when lengths differ;
y is (n_cases,) labels. `check_series` (X) and `check_cases` (X and y) are the one validation
every source goes through.

The shipped sets (`SHIPPED`) load offline from aeon's own copy with their published train /
test splits: GunPoint (50 / 150, length 150), ItalyPowerDemand (67 / 1029, length 24),
ArrowHead (36 / 175, length 251), BasicMotions (40 / 40, 6 channels, length 100) and
JapaneseVowels (270 / 370, 12 channels, lengths 7 - 29).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vanishing.apps.timeseries.deps import require
from vanishing.apps.timeseries.errors import DataError

Cases = np.ndarray | list[np.ndarray]
"""X in aeon's layout: (n_cases, n_channels, n_timepoints), or a list of 2-D arrays."""

SHIPPED = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "JapaneseVowels")
"""The UCR/UEA sets aeon ships inside its wheel (no download)."""

LAYOUT = (
    "a 3-D array (n_cases, n_channels, n_timepoints) or a list of 2-D arrays "
    "(n_channels, n_timepoints)"
)


@dataclass(frozen=True)
class Collection:
    """A labelled train / test pair of series collections, checked by `check_cases`."""

    name: str
    X_train: Cases
    y_train: np.ndarray
    X_test: Cases
    y_test: np.ndarray

    @property
    def n_channels(self) -> int:
        return int(self.X_train[0].shape[0])

    @property
    def classes(self) -> np.ndarray:
        """The sorted class labels of the training part."""
        return np.unique(self.y_train)

    @property
    def equal_length(self) -> bool:
        return isinstance(self.X_train, np.ndarray) and isinstance(self.X_test, np.ndarray)

    def lengths(self) -> tuple[int, int]:
        """The shortest and the longest series over both parts."""
        lengths = [x.shape[-1] for part in (self.X_train, self.X_test) for x in part]
        return min(lengths), max(lengths)


def case_where(where: str, case: int, lines: Sequence[int] | None) -> tuple[str, int | None]:
    """(where, line) of case i: its line in a file when lines are known, else "case i"."""
    if lines is not None and case < len(lines):
        return where, lines[case]
    return f"{where}, case {case}", None


def check_series(X: object, where: str, lines: Sequence[int] | None = None) -> Cases:
    """X as float64 in aeon's layout, or one DataError saying what is wrong.

    where names the source (a file, a data set, an argument); lines[i], if given, is the
    file line of case i, so errors point at it.
    """
    if isinstance(X, np.ndarray):
        if X.ndim != 3:
            raise DataError(where, LAYOUT, f"a {X.ndim}-D array of shape {X.shape}")
        cases = list(X)
    elif isinstance(X, list | tuple):
        cases = [np.asarray(x) for x in X]
        for i, x in enumerate(cases):
            if x.ndim != 2:
                place, line = case_where(where, i, lines)
                raise DataError(place, LAYOUT, f"case {i} of shape {x.shape}", line)
    else:
        raise DataError(where, LAYOUT, type(X).__name__)
    if not cases:
        raise DataError(where, "at least one case", "none")
    for i, x in enumerate(cases):
        place, line = case_where(where, i, lines)
        if np.iscomplexobj(x):
            raise DataError(place, "real numbers", "complex numbers (Complex data not supported)")
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(place, "numeric values", f"dtype {x.dtype}", line)
        if x.shape[0] != cases[0].shape[0]:
            raise DataError(
                place, f"{cases[0].shape[0]} channels (as case 0)", f"{x.shape[0]}", line
            )
        if x.shape[1] == 0:
            raise DataError(place, "a series of at least 1 time point", "an empty series", line)
        if not np.isfinite(x).all():
            channel, t = np.argwhere(~np.isfinite(x))[0]
            got = f"{x[channel, t]} at channel {channel}, time point {t}"
            raise DataError(place, "finite values (no NaN or Inf)", got, line)
    if isinstance(X, np.ndarray):
        return np.asarray(X, dtype=np.float64)
    if len({x.shape[1] for x in cases}) == 1:
        return np.stack(cases).astype(np.float64)
    return [x.astype(np.float64) for x in cases]


def check_cases(
    X: object, y: object, where: str, lines: Sequence[int] | None = None
) -> tuple[Cases, np.ndarray]:
    """X as float64 in aeon's layout (`check_series`) and y as a 1-D array of one label per
    case, or one DataError saying what is wrong."""
    cases = check_series(X, where, lines)
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(cases):
        raise DataError(where, f"{len(cases)} labels, one per case", f"shape {labels.shape}")
    return cases, labels


def make_collection(
    name: str, train: tuple[object, object], test: tuple[object, object], where: tuple[str, str]
) -> Collection:
    """A checked Collection: both parts valid, two classes or more, the test classes known."""
    X_train, y_train = check_cases(*train, where[0])
    X_test, y_test = check_cases(*test, where[1])
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise DataError(where[0], "at least 2 classes", f"one class only ({classes[0]!r})")
    if X_test[0].shape[0] != X_train[0].shape[0]:
        raise DataError(
            where[1],
            f"{X_train[0].shape[0]} channels (as the training part)",
            f"{X_test[0].shape[0]}",
        )
    unknown = sorted(set(np.unique(y_test).tolist()) - set(classes.tolist()))
    if unknown:
        raise DataError(
            where[1], f"labels among the training classes {classes.tolist()}", f"{unknown}"
        )
    return Collection(name, X_train, y_train, X_test, y_test)


def load_collection(name: str) -> Collection:
    """The shipped data set `name` (one of SHIPPED) with its published train / test split."""
    if name not in SHIPPED:
        raise DataError("dataset", f"one of {', '.join(SHIPPED)}", repr(name))
    datasets = require("aeon.datasets")
    parts = [datasets.load_classification(name, split=split) for split in ("train", "test")]
    return make_collection(name, parts[0], parts[1], (f"{name} train", f"{name} test"))
