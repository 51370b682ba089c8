"""A trained window forecaster on disk: the regressor's model folder plus forecaster.json.

`save_forecaster` writes the `LSTMRegressor` of a `RecursiveWindows` or `DirectWindows`
(model.json, model.safetensors: `apps.model_file`) and forecaster.json: the strategy, the
window, whether it models differences, the horizon and the series it was trained on. The
regressor standardises its own inputs (the windows are unscaled: scale=False), so this is all
`load_forecaster` needs to forecast from any history again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vanishing.apps.model_file import ModelFileError
from vanishing.apps.timeseries.recurrent import LSTMRegressor
from vanishing.apps.timeseries.windows import DirectWindows, RecursiveWindows, Windows
from vanishing.train.checkpoint import write_atomic

FILE = "forecaster.json"


def save_forecaster(model: Windows, folder: str | Path, series: str) -> Path:
    """Write the fitted window forecaster model (unscaled windows) into folder."""
    if model.scaled:
        raise ValueError("save_forecaster expects a forecaster on unscaled windows (scale=False)")
    folder = Path(folder)
    model.regressor.save(folder)
    direct = isinstance(model, DirectWindows)
    spec = {
        "strategy": "direct" if direct else "recursive",
        "window": model.window,
        "difference": model.difference,
        "horizon": model.horizon if direct else 1,
        "series": series,
    }
    write_atomic(folder / FILE, (json.dumps(spec, indent=1) + "\n").encode())
    return folder


def forecaster_spec(folder: str | Path) -> dict[str, Any] | None:
    """forecaster.json of a saved model folder, or None if it has none (a plain regressor)."""
    path = Path(folder) / FILE
    if not path.exists():
        return None
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        ok = (
            spec["strategy"] in ("recursive", "direct")
            and isinstance(spec["window"], int)
            and spec["window"] >= 1
            and isinstance(spec["difference"], bool)
            and isinstance(spec["horizon"], int)
            and spec["horizon"] >= 1
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ModelFileError(
            path, "a forecaster spec written by save_forecaster", str(error)
        ) from None
    if not ok:
        raise ModelFileError(path, "strategy, window, difference and horizon", repr(spec))
    return spec


def load_forecaster(folder: str | Path) -> tuple[Windows, dict[str, Any]]:
    """The saved window forecaster and its spec; ModelFileError if folder holds none."""
    spec = forecaster_spec(folder)
    if spec is None:
        raise ModelFileError(Path(folder), f"a saved forecaster with {FILE}", "no such file")
    regressor = LSTMRegressor.load(folder)
    w, d = spec["window"], spec["difference"]
    if spec["strategy"] == "direct":
        model: Windows = DirectWindows(regressor, w, spec["horizon"], scale=False, difference=d)
    else:
        model = RecursiveWindows(regressor, w, scale=False, difference=d)
    model.mean_, model.std_ = 0.0, 1.0  # unscaled windows: the regressor scales itself
    return model, spec
