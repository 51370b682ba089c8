"""The optional dependencies of `vanishing.apps.timeseries`, imported only when used."""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRA = "pip install 'vanishing[timeseries]'"
"""The install line that brings every optional dependency of this sub-package."""


def require(module: str) -> ModuleType:
    """Import module (e.g. "aeon.datasets"), or raise ImportError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise ImportError(
            f"{module} is needed for time-series forecasting and classification but "
            f"{error.name!r} is not installed; install it with: {EXTRA}"
        ) from error
