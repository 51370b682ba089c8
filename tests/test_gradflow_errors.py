"""Bad input to every public gradflow function: one clear ValueError / TypeError naming what
was expected and what came (issue 13, item 7), never a raw error from numpy or torch."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import vanishing
from vanishing import gradflow as gf

F64 = torch.float64


def recorded(layer: nn.Module, T: int = 5, B: int = 3) -> list:
    with vanishing.record(layer) as rec:
        out, _ = layer(torch.randn(T, B, 2, dtype=F64))
        out[-1].sum().backward()
    return rec[""]


LSTM8 = vanishing.LSTM(2, 8, dtype=F64)
(TRACE8,) = recorded(LSTM8)
RNN8 = vanishing.RNN(2, 8, dtype=F64)  # tanh
(RNN_TRACE,) = recorded(RNN8)
STACKED = vanishing.LSTM(2, 8, num_layers=2, bidirectional=True, dtype=F64)
STACKED_TRACES = recorded(STACKED)
(TRACE8_B2,) = recorded(LSTM8, B=2)  # same weights, another batch
X = torch.randn(4, 1, 2)


def last_output(out: tuple) -> torch.Tensor:
    return out[0][-1].sum()


def bad_json(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0, "gradflow": {}}\n{bad\n')
    return path


def started(mon: gf.Monitor) -> gf.Monitor:
    mon.on_step_start(0)
    mon.model(torch.randn(4, 1, 2)).__getitem__(0).sum().backward()
    return mon


CASES: dict[str, tuple[Callable, type, str]] = {
    # gradient_horizon and the fraction everywhere it is taken
    "horizon-fraction-2": (
        lambda p: gf.gradient_horizon(np.ones(3), 2),
        ValueError,
        r"fraction must be a number in \(0, 1\], got 2",
    ),
    "horizon-fraction-str": (
        lambda p: gf.gradient_horizon(np.ones(3), "a"),
        ValueError,
        "fraction must be a number",
    ),
    "horizon-norms-ragged": (
        lambda p: gf.gradient_horizon([[1.0], [1.0, 2.0]]),
        ValueError,
        "norms must be a 1-d array of numbers",
    ),
    "profile-fraction-2": (
        lambda p: gf.profile(nn.LSTM(2, 3), X, last_output, fraction=2),
        ValueError,
        r"fraction must be a number in \(0, 1\], got 2",
    ),
    "lag_profile-fraction-0": (
        lambda p: gf.lag_profile(LSTM8, TRACE8, 0),
        ValueError,
        "fraction must be a number",
    ),
    "monitor-fraction-str": (
        lambda p: gf.monitor(nn.LSTM(2, 3), fraction="x"),
        ValueError,
        "fraction must be a number",
    ),
    # a trace that does not fit the layer
    "trace-H8-layer-H5": (
        lambda p: gf.lag_profile(vanishing.LSTM(2, 5, dtype=F64), TRACE8),
        ValueError,
        r"H = 8 units \(h \(5, 3, 8\)\).*weight_hh_l0 \(20, 5\) has 5",
    ),
    "terms-trace-H8-layer-H5": (
        lambda p: gf.lstm_terms(vanishing.LSTM(2, 5, dtype=F64), TRACE8),
        ValueError,
        "H = 8 units",
    ),
    "jacobians-trace-H8-layer-H5": (
        lambda p: gf.lstm_jacobians(vanishing.LSTM(2, 5, dtype=F64), TRACE8),
        ValueError,
        "H = 8 units",
    ),
    "trace-of-another-nonlinearity": (
        lambda p: gf.lag_profile(vanishing.RNN(2, 8, nonlinearity="sigmoid", dtype=F64), RNN_TRACE),
        ValueError,
        "mode 'RNN_TANH', this RNN has mode 'RNN_SIGMOID'",
    ),
    "trace-of-a-deeper-layer": (
        lambda p: gf.lag_profile(LSTM8, STACKED_TRACES[3]),
        ValueError,
        "no weight_hh_l1_reverse",
    ),
    "trace-of-another-kind": (
        lambda p: gf.lstm_jacobians(LSTM8, RNN_TRACE),
        ValueError,
        r"the trace \(RNN\) does not belong",
    ),
    "trace-tensor-shapes": (
        lambda p: gf.lag_profile(LSTM8, dataclasses.replace(TRACE8, dh=TRACE8.dh[:, :2])),
        ValueError,
        r"trace.dh must have shape \(5, 3, 8\).*got \(5, 2, 8\)",
    ),
    "trace-lengths-beyond-T": (
        lambda p: gf.lag_profile(
            LSTM8, dataclasses.replace(TRACE8, lengths=torch.tensor([9, 1, 1]))
        ),
        ValueError,
        r"lengths must lie in 1 .. 5.*\[9, 1, 1\]",
    ),
    "layer-not-a-module": (
        lambda p: gf.lag_profile(None, TRACE8),
        TypeError,
        "layer must be a torch.nn.Module, got NoneType",
    ),
    "trace-not-a-trace": (
        lambda p: gf.lstm_terms(LSTM8, "trace"),
        TypeError,
        "trace must be a vanishing.Trace, got str",
    ),
    "terms-of-an-rnn": (
        lambda p: gf.lstm_terms(RNN8, RNN_TRACE),
        ValueError,
        "lstm_terms needs an LSTM layer, got RNN",
    ),
    # the estimates' settings and prebuilt steps
    "columns-0": (
        lambda p: gf.lag_profile(LSTM8, TRACE8, columns=0),
        ValueError,
        "columns must be an integer >= 1, got 0",
    ),
    "iterations-1.5": (
        lambda p: gf.lag_profile(LSTM8, TRACE8, iterations=1.5),
        ValueError,
        "iterations must be an integer >= 1, got 1.5",
    ),
    "terms-iterations-0": (
        lambda p: gf.lstm_terms(LSTM8, TRACE8, iterations=0),
        ValueError,
        "iterations must be an integer >= 1",
    ),
    "steps-not-steps": (
        lambda p: gf.lag_profile(LSTM8, TRACE8, steps="x"),
        TypeError,
        "steps must be the trace's LSTMSteps, got str",
    ),
    "steps-of-another-trace": (
        lambda p: gf.lag_profile(LSTM8, TRACE8_B2, steps=gf.steps.trace_steps(LSTM8, TRACE8)),
        ValueError,
        "steps were built from another trace",
    ),
    "ratio_at-float": (
        lambda p: gf.lag_profile(LSTM8, TRACE8).ratio_at(1.5),
        ValueError,
        r"lag must be an integer in \[0, 4\], got 1.5",
    ),
    # rnn_bound
    "bound-W-1d": (
        lambda p: gf.rnn_bound(torch.ones(3), "tanh", 3),
        ValueError,
        r"W_hh must be a square \(H, H\) tensor, got \(3,\)",
    ),
    "bound-W-numpy": (
        lambda p: gf.rnn_bound(np.eye(3), "tanh", 3),
        ValueError,
        "W_hh must be a square .* got ndarray",
    ),
    "bound-max_lag-float": (
        lambda p: gf.rnn_bound(torch.eye(3), "tanh", 2.5),
        ValueError,
        "max_lag must be an integer >= 0, got 2.5",
    ),
    "bound-nonlinearity": (
        lambda p: gf.rnn_bound(torch.eye(3), "gelu", 2),
        ValueError,
        "Unknown nonlinearity 'gelu'; expected one of",
    ),
    # clipping
    "clip-a-module": (
        lambda p: gf.clip_grad_norm_(nn.Linear(2, 2), 1.0),
        TypeError,
        r"iterable of tensors \(e.g. model.parameters\(\)\), got Linear",
    ),
    "clip-None": (lambda p: gf.clip_grad_norm_(None, 1.0), TypeError, "got NoneType"),
    "clip-strings": (lambda p: gf.clip_grad_norm_(["a"], 1.0), TypeError, "got list holding a str"),
    "scale-not-a-module": (
        lambda p: gf.scale_recurrent_(None, 2.0),
        TypeError,
        "layer must be a torch.nn.Module, got NoneType",
    ),
    # profile and swap_layers
    "profile-loss-not-callable": (
        lambda p: gf.profile(nn.LSTM(2, 3), X, 3),
        TypeError,
        "loss_fn must be callable, got int",
    ),
    "profile-detached-loss": (
        lambda p: gf.profile(nn.LSTM(2, 3), X, lambda o: last_output(o).detach()),
        ValueError,
        r"does not depend on the model's output .*requires_grad is False",
    ),
    "profile-dtype-int": (
        lambda p: gf.profile(nn.LSTM(2, 3), X, last_output, dtype=torch.int32),
        ValueError,
        "dtype must be a floating-point torch.dtype or None, got torch.int32",
    ),
    "profile-proj_size": (
        lambda p: gf.profile(nn.LSTM(2, 4, proj_size=2), X, last_output),
        ValueError,
        "proj_size=2 is not supported",
    ),
    "swap-not-a-module": (
        lambda p: gf.swap_layers("model"),
        TypeError,
        "model must be a torch.nn.Module, got str",
    ),
    # monitor
    "monitor-path-is-a-folder": (
        lambda p: gf.monitor(nn.LSTM(2, 3), path=p),
        ValueError,
        "path must name a file .* got the folder",
    ),
    "monitor-path-below-a-file": (
        lambda p: gf.monitor(nn.LSTM(2, 3), path=bad_json(p) / "m.jsonl"),
        ValueError,
        "lies below .*metrics.jsonl', which is a file",
    ),
    "monitor-tensorboard-int": (
        lambda p: gf.monitor(nn.LSTM(2, 3), tensorboard=5),
        TypeError,
        "tensorboard must be a log folder, a SummaryWriter .* got int",
    ),
    "monitor-step-str": (
        lambda p: gf.monitor(nn.LSTM(2, 3)).on_step_start("a"),
        ValueError,
        "step must be an integer >= 0, got 'a'",
    ),
    "monitor-loss-str": (
        lambda p: started(gf.monitor(nn.LSTM(2, 3), every=1)).on_step_end(0, loss="x"),
        TypeError,
        "loss must be a number, a one-element tensor or None, got 'x'",
    ),
    "lag_history-int": (
        lambda p: gf.lag_history(5),
        TypeError,
        "records must be a monitor's history .* got int",
    ),
    "lag_history-bad-line": (
        lambda p: gf.lag_history(bad_json(p)),
        ValueError,
        "metrics.jsonl line 2: expected a JSON object",
    ),
    "lag_history-no-step": (
        lambda p: gf.lag_history([{"gradflow": {"a": {"dh_norm": [1.0]}}}]),
        ValueError,
        "record 0: a gradflow record needs an integer step",
    ),
    "lag_history-no-norms": (
        lambda p: gf.lag_history([{"step": 0, "gradflow": {"a": {}}}]),
        ValueError,
        "layer 'a' has no dh_norm / dc_norm list",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_error(case: str, tmp_path: Path) -> None:
    call, error, match = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a monitor step that measured nothing
        with pytest.raises(error, match=match):
            call(tmp_path)


@pytest.mark.parametrize("change", ["optimizer step", "load_state_dict", "in place"])
def test_a_trace_from_before_a_weight_change_is_refused(change: str) -> None:
    """Issue 13 item 6's repro: lag_profile after optimizer.step() must not combine the old
    trace with the new weights."""
    from vanishing.nn import StaleTraceError

    torch.manual_seed(0)
    layer = vanishing.LSTM(2, 4, dtype=torch.float64)
    with vanishing.record(layer) as rec:
        out, _ = layer(torch.randn(6, 3, 2, dtype=torch.float64))
        out[-1].sum().backward()
    trace = rec[""][0]
    gf.lag_profile(layer, trace)  # fresh: fine
    if change == "optimizer step":
        torch.optim.SGD(layer.parameters(), lr=0.1).step()
    elif change == "load_state_dict":
        layer.load_state_dict(vanishing.LSTM(2, 4, dtype=torch.float64).state_dict())
    else:
        with torch.no_grad():
            layer.weight_hh_l0.mul_(2.0)
    for measure in (gf.lag_profile, gf.lstm_terms, gf.lstm_jacobians):
        with pytest.raises(StaleTraceError, match="record again"):
            measure(layer, trace)
