"""A fitted estimator on disk: a folder with `model.json` and `model.safetensors`.

`model.json` holds everything needed to predict, as plain JSON: the format marker and
version, the model's `kind` (what `vanishing predict` dispatches on, e.g.
"timeseries-classifier"), the estimator's class, its hyper-parameters, its fitted state
(classes, scaling statistics, the input conversion's state, the training history) and the
sha256 of the weights file. `model.safetensors` holds the network's weights. Both are written
atomically, the JSON last, so a folder holds a model only once both are whole. Reading runs
no code (JSON and safetensors, nothing unpickled); a missing, truncated, corrupt or foreign
file is one `ModelFileError` line naming the file, what was expected and what came.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor

from vanishing.train.checkpoint import write_atomic

FORMAT = "vanishing-estimator"
VERSION = 1
CONFIG = "model.json"
WEIGHTS = "model.safetensors"


class ModelFileError(ValueError):
    """A saved model that cannot be read, in one line: "<file>: expected <...>, got <...>"."""

    def __init__(self, where: str | Path, expected: str, got: str) -> None:
        self.where, self.expected, self.got = str(where), expected, got
        super().__init__(f"{where}: expected {expected}, got {got}")


def write_model(folder: str | Path, config: dict[str, Any], tensors: dict[str, Tensor]) -> Path:
    """Write tensors and config (with format, version and the weights' sha256) into folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    blob = save_tensors({name: t.detach().contiguous().cpu() for name, t in tensors.items()})
    write_atomic(folder / WEIGHTS, blob)
    meta = {"format": FORMAT, "version": VERSION, **config}
    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    write_atomic(folder / CONFIG, (json.dumps(meta, indent=1) + "\n").encode())
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    """The checked model.json of a saved model folder (format, version, kind present)."""
    folder = Path(folder)
    if not folder.is_dir():
        got = "a file" if folder.exists() else "nothing there"
        raise ModelFileError(folder, f"a saved model folder ({CONFIG} and {WEIGHTS})", got)
    path = folder / CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFileError(
            folder, f"a saved model folder with {CONFIG}", "no such file"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ModelFileError(path, "a readable UTF-8 JSON file", str(error)) from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        got = f"invalid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        raise ModelFileError(path, "a model config written by save()", got) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        marker = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ModelFileError(path, f'a model config with "format": "{FORMAT}"', repr(marker))
    if config.get("version") != VERSION:
        raise ModelFileError(path, f"format version {VERSION}", repr(config.get("version")))
    for key in ("kind", "weights_sha256"):
        if not isinstance(config.get(key), str):
            raise ModelFileError(path, f'a "{key}" string', repr(config.get(key)))
    return config


def read_weights(folder: str | Path, config: dict[str, Any]) -> dict[str, Tensor]:
    """The weights of a saved model, checked against the sha256 its config records."""
    path = Path(folder) / WEIGHTS
    try:
        blob = path.read_bytes()
    except OSError as error:
        raise ModelFileError(
            path, "the model's weights file", error.strerror or str(error)
        ) from None
    if hashlib.sha256(blob).hexdigest() != config["weights_sha256"]:
        got = f"{len(blob)} bytes whose sha256 differs (truncated or corrupt)"
        raise ModelFileError(path, f"the weights {CONFIG} records", got)
    try:
        return load_tensors(blob)
    except (SafetensorError, ValueError) as error:
        raise ModelFileError(path, "a safetensors file", str(error)) from None


def read_kind(folder: str | Path) -> str:
    """The saved model's kind (e.g. "timeseries-classifier"), what `vanishing predict` reads."""
    return read_config(folder)["kind"]
