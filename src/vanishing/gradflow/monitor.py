"""`monitor(model, every=N)`: the gradient horizon and lag profile while a model trains.

Every `every` steps the monitor measures the step the model runs anyway, at the "norms"
detail (`lags.lag_profile` without Jacobian products): vanishing layers record that step's
forward and its backward fills in dL/dh_t, dL/dc_t (no extra pass); for a torch.nn.RNN /
LSTM the monitor keeps the layer's input and the gradient that reaches its outputs, and
replays them through a vanishing twin (one recorded forward and backward of that layer;
dropout between its layers draws the step's masks again, from the generator's state kept
before the call).
The measurement goes to `history`, to a metrics.jsonl file (one JSON line per measured
step) and, optionally, to TensorBoard. Nothing in the model, its gradients or the random
number generator changes: training is bit-identical with and without the monitor.

Two ways to drive it (use one):
- callbacks, for a trainer: `on_step_start(step, model)` before the forward of each step,
  `on_step_end(step, model, loss)` after the backward and before the optimizer step; on a
  measured step on_step_end returns {"gradflow": ...} for the trainer's own metrics.
- a context manager, for a plain loop: inside `with monitor(model, ...)`, every forward
  of the model in train mode with gradients on is a step (0, 1, 2, ...); a step is measured
  at the next such forward, or when the block ends.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vanishing.gradflow.lags import check_fraction, lag_profile
from vanishing.gradflow.model import load_weights, vanishing_twin
from vanishing.gradflow.replay import Replay
from vanishing.nn import Recording, Trace, recordable_layers
from vanishing.nn.naming import is_lstm

DIGITS = 6  # significant digits of the norms written to metrics.jsonl


def rounded(values: np.ndarray, digits: int = DIGITS) -> list[float | None]:
    """values (1-d) with `digits` significant digits, for JSON; None where not finite."""
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in values.tolist()]


def _writable(path: object) -> Path:
    """path as a Path to a file that can be appended to (its folder made), checked before any
    training step; ValueError naming what is in the way."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path or None, got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"path must name a file to write metrics to, got the folder {str(p)!r}")
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"path {str(p)!r} lies below {str(parent)!r}, which is a file")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8"):
            pass
    except OSError as e:
        raise ValueError(f"cannot write the metrics file {str(p)!r}: {e.strerror or e}") from e
    return p


def _tensorboard(target: object) -> Any:
    """A SummaryWriter for a log folder (the optional `tensorboard` package), or target itself
    if it already writes scalars; None for None."""
    if target is None or hasattr(target, "add_scalar"):
        return target
    if not isinstance(target, (str, os.PathLike)):
        raise TypeError(
            "tensorboard must be a log folder, a SummaryWriter (anything with add_scalar) or "
            f"None, got {type(target).__name__}"
        )
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch's writer needs the tensorboard package
        raise ImportError(
            "tensorboard=... needs the tensorboard package: pip install 'vanishing[tensorboard]'"
        ) from e
    return SummaryWriter(log_dir=str(target))


class Monitor:
    """Measures the gradient flow of a training model every `every` steps (module docstring).

    model: a module with vanishing.RNN / LSTM or torch.nn.RNN / LSTM layers. path: a
    metrics.jsonl to append to (None: none; a trainer that writes on_step_end's dict itself
    needs none). fraction: the horizon's threshold. tensorboard: a log folder or a
    SummaryWriter (needs `pip install 'vanishing[tensorboard]'`). history: every
    measurement, as the dicts written to the file.

    One JSON line per measured step: {"step": s, "loss": l (when given), "gradflow": {key:
    {"kind", "horizon", "dh_norm", "dc_norm"[, "count" for packed input]}}}, key
    '<layer name>.<l0 | l1_reverse ..>';
    the norms are batch means of ||dE/dh_t||, ||dE/dc_t|| (LSTM) by lag k - t, index 0
    the last step, with DIGITS significant digits (docs/gradflow.md).
    """

    def __init__(
        self,
        model: nn.Module,
        every: int = 10,
        path: str | Path | None = None,
        *,
        fraction: float = 1e-3,
        tensorboard: object = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        check_fraction(fraction)
        self.model, self.every, self.fraction = model, every, fraction
        self.recorded = recordable_layers(model)  # vanishing layers: {name: layer}
        torch_layers = {
            name: m for name, m in model.named_modules() if isinstance(m, (nn.RNN, nn.LSTM))
        }
        for name, m in torch_layers.items():
            if type(m).forward not in (nn.RNN.forward, nn.LSTM.forward):
                base = "LSTM" if is_lstm(m) else "RNN"
                raise ValueError(
                    f"vanishing.monitor cannot watch layer {name!r} ({type(m).__name__}): it "
                    f"replays torch.nn.{base}.forward, and this subclass has its own forward "
                    f"(use vanishing.{base}, which records itself, or vanishing.profile)"
                )
        self.twins = {name: vanishing_twin(m) for name, m in torch_layers.items()}
        if not self.recorded and not self.twins:
            raise ValueError(
                f"{type(model).__name__} contains no torch.nn.RNN, torch.nn.LSTM, vanishing.RNN "
                "or vanishing.LSTM layer to monitor"
            )
        self.path = None if path is None else _writable(path)
        self.writer = _tensorboard(tensorboard)
        self.history: list[dict] = []
        self._armed: int | None = None  # the step being measured
        self._handles: list[Any] = []
        self._recording: Recording | None = None  # records the armed step's forward
        self._traces: dict[str, list[Trace]] = {}  # vanishing layers' traces of the step
        self._replays: dict[str, Replay] = {}  # torch.nn layers' calls of the step
        self._rngs: dict[str, Tensor] = {}  # generator states before those calls (dropout)
        self._step = -1  # the context manager's step counter
        self._counter: Any = None  # the context manager's forward pre-hook
        self._capture: Any = None  # the measured step's forward hook
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ trainer callbacks

    def on_step_start(self, step: int, model: nn.Module | None = None) -> None:
        """Before the forward of `step`: arm the recording if step % every == 0."""
        self._check(model, step)
        if self._armed is not None:  # the previous step never ended (e.g. an exception)
            self._disarm()
            self._armed = None
        if step % self.every == 0:
            self._arm(step)

    def on_step_end(
        self, step: int, model: nn.Module | None = None, loss: Tensor | float | None = None
    ) -> dict | None:
        """After the backward of `step`: measure it if armed; returns {"gradflow": ...} (what
        was written, without step and loss) or None."""
        self._check(model, step)
        if loss is not None and not (
            (isinstance(loss, Tensor) and loss.numel() == 1)
            or (isinstance(loss, numbers.Real) and not isinstance(loss, bool))
        ):
            raise TypeError(
                f"loss must be a number, a one-element tensor or None, got {loss!r:.60}"
            )
        if self._armed is None:
            return None
        armed, self._armed = self._armed, None
        try:
            layers = self._measured_traces() if armed == step else {}
        finally:
            self._disarm()
        if not layers:
            return None
        entry: dict[str, Any] = {"step": step}
        if loss is not None:
            entry["loss"] = loss.detach().item() if isinstance(loss, Tensor) else float(loss)
        entry["gradflow"] = self._measure(layers)
        self._write(entry)
        return {"gradflow": entry["gradflow"]}

    def close(self) -> None:
        """Flush and close the TensorBoard writer (the jsonl file is written line by line)."""
        if self.writer is not None and hasattr(self.writer, "close"):
            self.writer.close()

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> Monitor:
        self._counter = self.model.register_forward_pre_hook(self._own(self._count))
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._armed is not None and exc[0] is None:
                self.on_step_end(self._armed)
        finally:
            self._disarm()
            self._armed = None
            if self._counter is not None:
                self._counter.remove()
                self._counter = None
            self.close()

    def _count(self, module: nn.Module, args: tuple) -> None:
        """Forward pre-hook of the context manager: a training forward starts a new step."""
        if not (module.training and torch.is_grad_enabled()):
            return
        if self._armed is not None:
            self.on_step_end(self._armed)
        self._step += 1
        self.on_step_start(self._step)

    # ------------------------------------------------------------------ recording

    def _check(self, model: nn.Module | None, step: object) -> None:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"step must be an integer >= 0, got {step!r}")
        if model is not None and model is not self.model:
            raise ValueError("this monitor watches another model")

    def _own(self, hook: Any, module: nn.Module | None = None) -> Any:
        """hook, run only for `module` (the model) itself. A deep copy of the model (e.g.
        profile()'s) copies its hooks: as a plain function this one is shared, not copied
        with the monitor, and ignores the copy."""
        module = self.model if module is None else module

        def own(m: nn.Module, *args: Any) -> Any:
            return hook(m, *args) if m is module else None

        return own

    def _arm(self, step: int) -> None:
        self._armed = step
        self._recording = Recording(dict(self.recorded)).start()
        self._capture = self.model.register_forward_hook(self._own(self._after_forward))
        self._handles.append(self._capture)
        for name in self.twins:
            layer = self.model.get_submodule(name)
            hook = self._own(self._replay_hook(name), layer)
            # first, so that it keeps the layer's own outputs even if a user's hook changes them
            handle = layer.register_forward_hook(hook, with_kwargs=True, prepend=True)
            self._handles.append(handle)
            if layer.dropout > 0 and layer.num_layers > 1:  # last, right before the call
                keep = self._own(lambda m, args, name=name: self._keep_rng(name, m), layer)
                self._handles.append(layer.register_forward_pre_hook(keep))

    def _keep_rng(self, name: str, layer: nn.Module) -> None:
        """Forward pre-hook of a torch.nn layer with dropout between its layers: the CPU
        generator's state, from which the replay draws the same masks (on the CPU)."""
        if layer.training and layer.weight_ih_l0.device.type == "cpu":
            self._rngs[name] = torch.get_rng_state()

    def _replay_hook(self, name: str) -> Any:
        def hook(layer: nn.Module, args: tuple, kwargs: dict, outputs: tuple) -> None:
            twin, w = self.twins[name], layer.weight_ih_l0
            if (twin.weight_ih_l0.dtype, twin.weight_ih_l0.device) != (w.dtype, w.device):
                twin = self.twins[name] = vanishing_twin(layer)  # the model was moved or cast
            load_weights(twin, layer)  # as the layer computes them (parametrisations)
            twin.train(layer.training)
            rng = self._rngs.pop(name, None)
            self._replays[name] = Replay(twin, args, kwargs, outputs, rng)

        return hook

    def _after_forward(self, module: nn.Module, args: tuple, output: object) -> None:
        """The measured forward is done: keep its traces, stop recording (later forwards,
        e.g. an evaluation, must not replace them); runs once per measured step."""
        self._capture.remove()
        for name in self.recorded:
            self._traces[name] = list(self._recording[name])
        self._stop_recording()

    def _stop_recording(self) -> None:
        if self._recording is not None:
            self._recording.stop()
            self._recording = None

    def _disarm(self) -> None:
        self._stop_recording()
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._traces, self._replays, self._rngs = {}, {}, {}

    def _warn(self, name: str, message: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            warnings.warn(f"vanishing.monitor: layer {name!r}: {message}", stacklevel=3)

    # ------------------------------------------------------------------ measuring

    def _measured_traces(self) -> dict[str, tuple[nn.Module, list[Trace]]]:
        """{layer name: (layer, traces with gradients)} of the armed step."""
        layers: dict[str, tuple[nn.Module, list[Trace]]] = {}
        traces = self._traces  # kept by _after_forward; else the forward is still recorded
        if not traces and self._recording is not None:
            traces = {name: list(self._recording[name]) for name in self.recorded}
        for name, found in traces.items():
            layers[name] = (self.recorded[name], found)
        for name, replay in self._replays.items():
            layers[name] = (replay.twin, replay.traces())
        for name, (_, found) in list(layers.items()):
            if not found or any(t.dh is None for t in found):
                self._warn(name, "no gradient reached it in this step; not measured")
                del layers[name]
        return layers

    def _measure(self, layers: dict[str, tuple[nn.Module, list[Trace]]]) -> dict[str, dict]:
        """The 'norms' detail of every layer and direction, as JSON-ready dicts."""
        out: dict[str, dict] = {}
        for name, (layer, traces) in layers.items():
            for trace in traces:
                p = lag_profile(layer, trace, self.fraction, jacobian=False)
                key = f"{name}.{trace.name}" if name else trace.name
                out[key] = {
                    "kind": "LSTM" if is_lstm(layer) else "RNN",
                    "horizon": p.horizon,
                    "dh_norm": rounded(p.dh_norm),
                    "dc_norm": None if p.dc_norm is None else rounded(p.dc_norm),
                }
                if trace.lengths is not None:  # a PackedSequence: sequences with each lag
                    out[key]["count"] = p.count.tolist()
        return out

    def _write(self, entry: dict) -> None:
        self.history.append(entry)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry, allow_nan=False) + "\n")
        if self.writer is not None:
            step = entry["step"]
            for key, m in entry["gradflow"].items():
                self.writer.add_scalar(f"gradflow/{key}/horizon", m["horizon"], step)
                norm = m["dc_norm"] or m["dh_norm"]
                if norm[0] and norm[-1]:
                    ratio = math.log10(norm[-1] / norm[0])
                    self.writer.add_scalar(f"gradflow/{key}/log10_ratio_last_lag", ratio, step)


def monitor(
    model: nn.Module,
    every: int = 10,
    path: str | Path | None = None,
    *,
    fraction: float = 1e-3,
    tensorboard: object = None,
) -> Monitor:
    """A Monitor of model's gradient flow every `every` steps (see `Monitor`).

    >>> with vanishing.monitor(model, every=10, path="run/metrics.jsonl") as mon:
    ...     for x, y in batches:
    ...         opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    >>> mon.history[-1]["gradflow"]["lstm.l0"]["horizon"]
    """
    return Monitor(model, every, path, fraction=fraction, tensorboard=tensorboard)


def _read_jsonl(path: str | os.PathLike) -> list[tuple[str, object]]:
    """(where, record) of each non-empty line of a JSON Lines file; ValueError at a bad line."""
    records = []
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append((f"{path} line {n}", json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path} line {n}: expected a JSON object, {e.msg}") from e
    return records


def _measured(where: str, entry: object) -> tuple[int, dict] | None:
    """(step, {key: norms the horizon is read from}) of a monitor record, None for another
    kind of record; ValueError naming `where` if it is a gradflow record without its fields."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a dict (a monitor record), got {type(entry).__name__}")
    if not entry.get("gradflow"):
        return None
    step, layers = entry.get("step"), entry["gradflow"]
    if isinstance(step, bool) or not isinstance(step, int) or not isinstance(layers, dict):
        raise ValueError(f"{where}: a gradflow record needs an integer step and a dict of layers")
    norms = {}
    for key, m in layers.items():
        curve = (m.get("dc_norm") or m.get("dh_norm")) if isinstance(m, dict) else None
        if not isinstance(curve, list):
            raise ValueError(f"{where}: layer {key!r} has no dh_norm / dc_norm list")
        norms[key] = [math.nan if v is None else float(v) for v in curve]
    return step, norms


def lag_history(
    records: Sequence[dict] | str | os.PathLike,
) -> dict[str, tuple[list[int], np.ndarray]]:
    """{key: (steps, norms (steps, T))} of a monitor's records (its history, or a
    metrics.jsonl with other lines mixed in): per measured step the norms the horizon is read
    from (dc_norm for the LSTM, dh_norm for the RNN) by lag; rows of different length are
    padded with NaN. What the heatmap of `report.figures.plot_heatmaps` draws. A record
    that is not a dict, or a gradflow record without its fields, is a ValueError naming it."""
    if isinstance(records, (str, os.PathLike)):
        found = _read_jsonl(records)
    elif isinstance(records, Sequence):
        found = [(f"record {i}", entry) for i, entry in enumerate(records)]
    else:
        raise TypeError(
            f"records must be a monitor's history (a list) or a metrics.jsonl path, got "
            f"{type(records).__name__}"
        )
    rows: dict[str, tuple[list[int], list[list[float]]]] = {}
    for where, entry in found:
        measured = _measured(where, entry)
        if measured is None:
            continue
        for key, curve in measured[1].items():
            steps, norms = rows.setdefault(key, ([], []))
            steps.append(measured[0])
            norms.append(curve)
    out = {}
    for key, (steps, norms) in rows.items():
        table = np.full((len(norms), max(len(n) for n in norms)), np.nan)
        for i, n in enumerate(norms):
            table[i, : len(n)] = n
        out[key] = (steps, table)
    return out
