"""Time-series forecasting and classification on real data, against a practitioner's baselines.

Forecasting: `series.py` (statsmodels' sunspots and co2, fixed splits), `naive.py` and
`statistical.py` (the baselines), `windows.py` (a regressor on lag windows as a forecaster),
`forecast_protocol.py` (the one evaluation every forecaster goes through), `figures.py`
(forecast against actual). Classification: `collection.py` (aeon's shipped UCR/UEA sets),
`files.py` (the user's .ts and CSV files), `classifiers.py` (1-NN DTW, MiniRocket),
`classify_protocol.py` (accuracy over seeds), `published.py` (the published accuracies).
`recurrent.py` holds `LSTMClassifier` and `LSTMRegressor`, the layers as scikit-learn / aeon
estimators (on `apps.estimator`). `errors.py` is the one-line data error, `deps.py` the lazy
import of the optional dependencies (`pip install 'vanishing[timeseries]'`): importing this
package imports none of them (the two estimators, which need scikit-learn, load on first use).
"""

from vanishing.apps.timeseries.collection import SHIPPED, Collection, check_cases, load_collection
from vanishing.apps.timeseries.errors import DataError
from vanishing.apps.timeseries.files import load_files, read_file
from vanishing.apps.timeseries.forecast_protocol import ForecastResult, Scores, evaluate
from vanishing.apps.timeseries.naive import Persistence, SeasonalNaive
from vanishing.apps.timeseries.series import LOADERS, Series, load_series
from vanishing.apps.timeseries.statistical import Statistical
from vanishing.apps.timeseries.windows import DirectWindows, RecursiveWindows

ESTIMATORS = ("LSTMClassifier", "LSTMRegressor")


def __getattr__(name: str) -> object:
    """LSTMClassifier and LSTMRegressor, imported on first use (they import scikit-learn)."""
    if name in ESTIMATORS:
        from vanishing.apps.timeseries import recurrent

        return getattr(recurrent, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LOADERS",
    "SHIPPED",
    "Collection",
    "DataError",
    "DirectWindows",
    "ForecastResult",
    "LSTMClassifier",
    "LSTMRegressor",
    "Persistence",
    "RecursiveWindows",
    "Scores",
    "SeasonalNaive",
    "Series",
    "Statistical",
    "check_cases",
    "evaluate",
    "load_collection",
    "load_files",
    "load_series",
    "read_file",
]
