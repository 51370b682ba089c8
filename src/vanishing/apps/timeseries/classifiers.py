"""The classification baselines a practitioner would run: 1-NN DTW and MiniRocket (aeon).

- 1-NN DTW: aeon's KNeighborsTimeSeriesClassifier, distance "dtw" with no warping window
  (full DTW, as the 1-NN DTW column of the published tables); deterministic (no seed).
  It takes unequal lengths as they come.
- MiniRocket: aeon's MiniRocketClassifier (10,000 random convolution kernels, then a ridge
  classifier with cross-validated regularisation); seeded. It needs equal lengths, so an
  unequal-length collection is zero-padded at the end to `pad_to` (aeon's Padder), the longest
  length of the train and test parts (a length, not a value, of the test part).
"""

from __future__ import annotations

from collections.abc import Callable

from vanishing.apps.timeseries.collection import Collection
from vanishing.apps.timeseries.deps import require

METHODS = ("dtw", "minirocket", "lstm", "rnn")
"""What a classification run compares: dtw (1-NN DTW), minirocket (MiniRocket), and our
LSTMClassifier with cell lstm and rnn (`classify_run.py`)."""


def dtw_1nn(seed: int | None = None) -> object:
    """1-NN with full-window DTW (deterministic: seed is ignored)."""
    distance_based = require("aeon.classification.distance_based")
    return distance_based.KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1)


def minirocket(seed: int | None = None, pad_to: int | None = None) -> object:
    """MiniRocket seeded with seed; series zero-padded at the end to pad_to when given."""
    convolution_based = require("aeon.classification.convolution_based")
    model = convolution_based.MiniRocketClassifier(random_state=seed)
    if pad_to is None:
        return model
    padder = require("aeon.transformations.collection.unequal_length").Padder
    return require("aeon.pipeline").make_pipeline(padder(padded_length=pad_to), model)


def baselines(data: Collection) -> dict[str, tuple[Callable[[int], object], bool]]:
    """{name: (make(seed), deterministic)}: 1-NN DTW and MiniRocket, ready for data."""
    pad_to = None if data.equal_length else data.lengths()[1]
    return {
        "1-NN DTW (aeon)": (dtw_1nn, True),
        "MiniRocket (aeon)": (lambda seed: minirocket(seed, pad_to), False),
    }
