"""Checkpoints that never lose a run: safetensors tensors + a JSON state, written atomically.

A checkpoint at step s is two files in the run's `checkpoints/` folder: `step-<s>.safetensors`
(weights, optimizer tensors, data-stream and RNG states) and `step-<s>.json` (step, counters,
the optimizer's other settings, the sha256 of the tensor file). Each is written to a temporary
file, fsync'ed and renamed, the JSON last, so a checkpoint exists only once both are whole.
Loading executes no code (safetensors, JSON). A truncated, corrupt or half-written checkpoint
is reported and the previous one is used; the newest `keep` checkpoints are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor

FORMAT = 1
NAME = re.compile(r"^step-(\d+)\.(safetensors|json)$")


class CheckpointError(Exception):
    """No usable checkpoint: every candidate was missing a file, truncated or corrupt."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: its step, tensors and JSON state."""

    step: int
    tensors: dict[str, Tensor]
    state: dict[str, Any]


def write_atomic(path: Path, data: bytes) -> None:
    """Write data to path via a temporary file, fsync and rename (never a partial file)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stem(step: int) -> str:
    return f"step-{step:09d}"


def steps_on_disk(folder: Path) -> list[int]:
    """Steps with any checkpoint file in folder, newest first."""
    if not folder.is_dir():
        return []
    found = {int(m.group(1)) for p in folder.iterdir() if (m := NAME.match(p.name))}
    return sorted(found, reverse=True)


def save_checkpoint(
    folder: Path, step: int, tensors: dict[str, Tensor], state: dict[str, Any], keep: int = 2
) -> Path:
    """Write checkpoint `step` atomically, then delete all but the newest `keep`."""
    folder.mkdir(parents=True, exist_ok=True)
    blob = save_tensors({name: t.detach().contiguous() for name, t in tensors.items()})
    write_atomic(folder / f"{stem(step)}.safetensors", blob)
    meta = {"format": FORMAT, "step": step, "sha256": hashlib.sha256(blob).hexdigest(), **state}
    path = folder / f"{stem(step)}.json"
    write_atomic(path, json.dumps(meta, indent=1).encode())
    for old in steps_on_disk(folder)[keep:]:
        for suffix in (".json", ".safetensors"):  # the state file first: never a false pair
            (folder / f"{stem(old)}{suffix}").unlink(missing_ok=True)
    return path


def read_checkpoint(folder: Path, step: int) -> Checkpoint:
    """Checkpoint `step`, or a CheckpointError saying what is wrong with it."""
    meta_path = folder / f"{stem(step)}.json"
    blob_path = folder / f"{stem(step)}.safetensors"
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path.name} is missing (stopped while writing?)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{meta_path.name} is not valid JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("step") != step:
        raise CheckpointError(f"{meta_path.name} is not a format-{FORMAT} state for step {step}")
    if not blob_path.is_file():
        raise CheckpointError(f"{blob_path.name} is missing")
    blob = blob_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise CheckpointError(
            f"{blob_path.name} is truncated or corrupt ({len(blob)} bytes; sha256 differs "
            "from the one recorded when it was written)"
        )
    try:
        tensors = load_tensors(blob)
    except Exception as error:  # safetensors raises its own error types
        raise CheckpointError(f"{blob_path.name} cannot be read ({error})") from None
    return Checkpoint(step, tensors, meta)


def load_latest(folder: Path, warn: Callable[[str], None]) -> Checkpoint | None:
    """The newest usable checkpoint in folder (None if there is none at all).

    Each unusable one is reported through warn() before falling back to the previous; if
    checkpoints exist but none is usable, a CheckpointError lists why.
    """
    problems = []
    for step in steps_on_disk(folder):
        try:
            return read_checkpoint(folder, step)
        except CheckpointError as error:
            problems.append(str(error))
            warn(f"checkpoint at step {step} is unusable: {error}; trying the previous one")
    if problems:
        raise CheckpointError(f"no usable checkpoint in {folder}: " + "; ".join(problems))
    return None


def discard_newer(folder: Path, step: int) -> None:
    """Delete checkpoint files newer than `step` (unusable ones a resume fell back from)."""
    for newer in (s for s in steps_on_disk(folder) if s > step):
        for suffix in (".json", ".safetensors"):
            (folder / f"{stem(newer)}{suffix}").unlink(missing_ok=True)
    for tmp in folder.glob("*.tmp") if folder.is_dir() else ():
        tmp.unlink(missing_ok=True)
