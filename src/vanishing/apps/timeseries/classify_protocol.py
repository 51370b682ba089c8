"""The classification evaluation protocol, one for every classifier.

On a `Collection`: for each seed, build the classifier with that seed, fit it on the training
part, predict the test part, and record the test accuracy and the wall time of fit and predict.
A deterministic classifier (the same result for every seed, e.g. 1-NN DTW) runs once, and its
spread is 0 by construction, which the result says (`deterministic`).

A classifier takes part through `make(seed) -> model` with scikit-learn's `fit(X, y)` and
`predict(X)` on aeon's layout (X: (n_cases, n_channels, n_timepoints) or a list of 2-D arrays;
y: (n_cases,) labels).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vanishing.apps.timeseries.collection import Collection

SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class ClassifierResult:
    """One classifier's test accuracies (one per seed) and times on one collection."""

    model: str
    dataset: str
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    fit_seconds: tuple[float, ...]
    predict_seconds: tuple[float, ...]
    deterministic: bool

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        """The sample standard deviation over seeds (0 for one run)."""
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0


def evaluate_classifier(
    make: Callable[[int], object],
    data: Collection,
    name: str,
    seeds: Sequence[int] = SEEDS,
    deterministic: bool = False,
) -> ClassifierResult:
    """Fit make(seed) on data's training part and score it on the test part, for each seed."""
    seeds = tuple(seeds[:1]) if deterministic else tuple(seeds)
    accuracies, fits, predicts = [], [], []
    for seed in seeds:
        model = make(seed)
        start = time.perf_counter()
        model.fit(data.X_train, data.y_train)
        fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        predicted = np.asarray(model.predict(data.X_test))
        predicts.append(time.perf_counter() - start)
        if predicted.shape != data.y_test.shape:
            raise ValueError(
                f"{name}.predict returned shape {predicted.shape}; expected {data.y_test.shape}"
            )
        accuracies.append(float(np.mean(predicted == data.y_test)))
    return ClassifierResult(
        name, data.name, seeds, tuple(accuracies), tuple(fits), tuple(predicts), deterministic
    )
