"""Shared helpers: layer construction, an autograd reference, and one forward+backward run.

`reference_forward` re-implements a vanishing layer's forward with plain torch ops, step by
step, so autograd differentiates it; it is the oracle where torch.nn has no counterpart
(the sigmoid RNN) or hides the per-step states (traces).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import vanishing
from vanishing.nn.naming import is_lstm, suffix

# (kind, nonlinearity): the three RNN activations and the LSTM.
RNN_KINDS = [("rnn", "tanh"), ("rnn", "relu"), ("rnn", "sigmoid")]
TORCH_KINDS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", None)]
ALL_KINDS = RNN_KINDS + [("lstm", None)]


def kind_id(kind: tuple[str, str | None]) -> str:
    return kind[0] if kind[1] is None else f"{kind[0]}-{kind[1]}"


def make_layer(kind: str, nonlinearity: str | None, input_size: int, hidden_size: int, **kw):
    """A vanishing.RNN or vanishing.LSTM (float64 unless dtype is given)."""
    kw.setdefault("dtype", torch.float64)
    if kind == "lstm":
        return vanishing.LSTM(input_size, hidden_size, **kw)
    return vanishing.RNN(input_size, hidden_size, nonlinearity=nonlinearity or "tanh", **kw)


def make_torch_twin(layer) -> nn.Module:
    """torch.nn.RNN / torch.nn.LSTM with the same configuration and weights as `layer`."""
    kw = dict(
        device=layer.weight_ih_l0.device,
        num_layers=layer.num_layers,
        bias=layer.bias,
        batch_first=layer.batch_first,
        dropout=layer.dropout,
        bidirectional=layer.bidirectional,
        dtype=layer.weight_ih_l0.dtype,
    )
    if isinstance(layer, vanishing.LSTM):
        twin = nn.LSTM(layer.input_size, layer.hidden_size, proj_size=layer.proj_size, **kw)
    else:
        twin = nn.RNN(layer.input_size, layer.hidden_size, nonlinearity=layer.nonlinearity, **kw)
    twin.load_state_dict(layer.state_dict())
    twin.train(layer.training)
    return twin


def make_inputs(layer, T: int, B: int | None, with_states: bool = True, scale: float = 1.0):
    """Random (x, hx) for layer; B=None gives unbatched (2-D) input; hx None if not with_states."""
    dtype = layer.weight_ih_l0.dtype
    LD = layer.num_layers * (2 if layer.bidirectional else 1)
    if B is None:
        x = torch.randn(T, layer.input_size, dtype=dtype)
        state_shape = (LD, layer.hidden_size)
    else:
        x = torch.randn(*((B, T) if layer.batch_first else (T, B)), layer.input_size, dtype=dtype)
        state_shape = (LD, B, layer.hidden_size)
    x = x * scale
    if not with_states:
        return x, None
    h_shape = state_shape[:-1] + (getattr(layer, "proj_size", 0) or layer.hidden_size,)
    h0 = 0.5 * torch.randn(h_shape, dtype=dtype)
    if isinstance(layer, vanishing.LSTM):
        return x, (h0, 0.5 * torch.randn(state_shape, dtype=dtype))
    return x, h0


def split_states(states) -> tuple[Tensor, ...]:
    """(h,) for an RNN's state, (h, c) for an LSTM's."""
    return tuple(states) if isinstance(states, (tuple, list)) else (states,)


def join_states(kind_is_lstm: bool, states: tuple[Tensor, ...]):
    return tuple(states) if kind_is_lstm else states[0]


def projection_loss(out: Tensor, *finals: Tensor, seed: int = 1234) -> Tensor:
    """sum(out * R0) + sum(h_n * R1) (+ sum(c_n * R2)) with fixed random R's."""
    g = torch.Generator().manual_seed(seed)
    loss = out.new_zeros(())
    for t in (out, *finals):
        loss = loss + (t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum()
    return loss


TRACE_FIELDS = ("h", "h0", "c", "c0", "i", "f", "g", "o", "dh", "dc", "m")


def forward_backward(
    module,
    x: Tensor,
    hx=None,
    call=None,
    loss_fn=None,
    seed: int = 1234,
    with_traces: bool | None = None,
) -> dict:
    """Run module (or call(x, hx)) forward and backward; return outputs and all gradients.

    The one forward/backward harness of the suite. x and hx are copied to fresh leaves, so
    the same tensors can be fed to two modules. The loss is projection_loss(out, *finals,
    seed=seed) unless loss_fn is given. Keys: out, h_n[, c_n], grad_x[, grad_h0, grad_c0],
    grad_<parameter name>, and trace<k>.<field> for every trace a recording layer kept
    (with_traces: by default only without `call`, which may run another module).
    """
    x = x.detach().clone().requires_grad_()
    states = None
    if hx is not None:
        states = tuple(s.detach().clone().requires_grad_() for s in split_states(hx))
        hx = join_states(isinstance(hx, tuple), states)
    module.zero_grad(set_to_none=True)
    out, finals = (call or module)(x, hx)
    finals = split_states(finals)
    if loss_fn is None:
        projection_loss(out, *finals, seed=seed).backward()
    else:
        loss_fn(out, *finals).backward()
    result = {"out": out.detach(), "h_n": finals[0].detach(), "grad_x": x.grad}
    if len(finals) == 2:
        result["c_n"] = finals[1].detach()
    if states is not None:
        for name, s in zip(("grad_h0", "grad_c0"), states, strict=False):
            result[name] = s.grad
    for name, p in module.named_parameters():
        result["grad_" + name] = p.grad
    if (call is None if with_traces is None else with_traces) and getattr(module, "record", False):
        for k, trace in enumerate(module.traces):
            for field in TRACE_FIELDS:
                if getattr(trace, field) is not None or field != "m":
                    result[f"trace{k}.{field}"] = getattr(trace, field)
    return result


def packed_call(module, T: int, lengths, enforce_sorted: bool = False):
    """call(x, hx) for forward_backward: pack the padded x with lengths, run module on the
    PackedSequence, and return its output padded again to T steps, with the final states."""

    def call(x, hx):
        packed = pack_padded_sequence(
            x, lengths, batch_first=module.batch_first, enforce_sorted=enforce_sorted
        )
        out, finals = module(packed, hx)
        assert isinstance(out, PackedSequence)
        padded, _ = pad_packed_sequence(out, batch_first=module.batch_first, total_length=T)
        return padded, finals

    return call


def assert_results_close(ours: dict, theirs: dict, atol: float, rtol: float) -> None:
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] is not None, key
        assert theirs[key] is not None, key
        torch.testing.assert_close(ours[key], theirs[key], atol=atol, rtol=rtol, msg=key)


def tol(dtype: torch.dtype) -> dict:
    return {"atol": 1e-10, "rtol": 1e-9} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-4}


# The oracle's own activations (torch's functions); test_gradflow holds the names equal to
# vanishing.nn.activations.NAMES.
ORACLE_ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


def reference_step(x_t, h, c, W_ih, W_hh, b, nonlinearity: str | None, W_hr=None):
    """One step of an RNN (nonlinearity given) or LSTM (None) in plain torch ops; W_hr (P, H)
    projects the LSTM's h_t (proj_size).

    Returns (h_t, c_t or None, z_t (B, G) pre-activations, gates [i, f, g, o] or None).
    """
    z = x_t @ W_ih.t() + h @ W_hh.t()
    if b is not None:
        z = z + b
    if nonlinearity is not None:
        return ORACLE_ACT[nonlinearity](z), None, z, None
    zi, zf, zg, zo = z.chunk(4, -1)
    i, f, g, o = zi.sigmoid(), zf.sigmoid(), zg.tanh(), zo.sigmoid()
    c = f * c + i * g
    h = o * c.tanh()
    return (h if W_hr is None else h @ W_hr.t()), c, z, (i, f, g, o)


def reference_weights(layer, li: int, d: int):
    """(W_ih, W_hh, b) of layer li, direction d of a vanishing or torch.nn layer; b None
    without bias."""
    W_ih, W_hh = (getattr(layer, name + suffix(li, d)) for name in ("weight_ih", "weight_hh"))
    b = None
    if layer.bias:
        b = getattr(layer, "bias_ih" + suffix(li, d)) + getattr(layer, "bias_hh" + suffix(li, d))
    return W_ih, W_hh, b


def reference_forward(layer, x: Tensor, hx=None, steps: dict | None = None, lengths=None):
    """The layer's forward with plain torch ops, one `reference_step` at a time (no dropout).

    The one autograd reference of the suite: layer is a vanishing or torch.nn RNN / LSTM.
    Returns what the layer returns. With `steps` a dict, fills steps[(layer, direction)] with
    lists in time order: "h", "c" (retain_grad'ed when they require grad), "z" (the
    pre-activations, (B, G*H)), and for the LSTM "i", "f", "g", "o".
    With lengths (B,) (x batched, padded), sequence b runs steps 0 .. lengths[b]-1 only: at
    the other steps its state is carried unchanged (so h_n is its state at its own last step,
    and the reverse direction starts it there from h0) and its output is zero; the recorded
    "h", "c" there are the carried state.
    """
    lstm = is_lstm(layer)
    batched = x.dim() == 3
    if not batched:
        x = x.unsqueeze(1)
    elif layer.batch_first:
        x = x.transpose(0, 1)
    T, B, _ = x.shape
    D = 2 if layer.bidirectional else 1
    shape = (layer.num_layers * D, B, layer.hidden_size)
    if hx is None:
        h0 = x.new_zeros(shape[:-1] + (getattr(layer, "proj_size", 0) or shape[-1],))
        c0 = x.new_zeros(shape)
    else:
        h0, c0 = hx if lstm else (hx, None)
        if not batched:
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if lstm else None
    act = None if lstm else layer.nonlinearity
    live = [None] * T  # (B, 1) bool per step: the sequence is still running
    if lengths is not None:
        lengths = torch.as_tensor(lengths)
        live = [(t < lengths).unsqueeze(1) for t in range(T)]
    h_n, c_n = [], []
    inp = x
    for li in range(layer.num_layers):
        outs = []
        for d in range(D):
            weights = reference_weights(layer, li, d)
            W_hr = getattr(layer, "weight_hr" + suffix(li, d), None)
            h, c = h0[li * D + d], (c0[li * D + d] if lstm else None)
            rec: dict[str, list] = {k: [None] * T for k in ("h", "c", "z", "i", "f", "g", "o")}
            for t in reversed(range(T)) if d else range(T):
                h_t, c_t, rec["z"][t], gates = reference_step(inp[t], h, c, *weights, act, W_hr)
                if live[t] is None:
                    h, c = h_t, c_t
                else:  # a sequence that has ended (or, reversed, not begun) keeps its state
                    h = torch.where(live[t], h_t, h)
                    c = torch.where(live[t], c_t, c) if lstm else None
                if lstm:
                    rec["i"][t], rec["f"][t], rec["g"][t], rec["o"][t] = gates
                    rec["c"][t] = c
                rec["h"][t] = h
                if steps is not None and h.requires_grad:
                    h.retain_grad()
                    if lstm:
                        c.retain_grad()
            if steps is not None:
                steps[(li, d)] = rec
            outs.append(
                torch.stack(
                    [h if m is None else h * m for h, m in zip(rec["h"], live, strict=True)]
                )
            )
            h_n.append(h)
            c_n.append(c)
        inp = outs[0] if D == 1 else torch.cat(outs, 2)
    out, finals = inp, [torch.stack(h_n)] + ([torch.stack(c_n)] if lstm else [])
    if not batched:
        out, finals = out.squeeze(1), [f.squeeze(1) for f in finals]
    elif layer.batch_first:
        out = out.transpose(0, 1)
    return out, (tuple(finals) if lstm else finals[0])


def reference_state_grads(layer, x: Tensor, loss_fn, hx=None) -> dict:
    """Autograd's dL/dh_t and dL/dc_t of the reference loop, for L = loss_fn(output).

    Returns {(layer, direction): {"dh": (T, B, H), "dc": (T, B, H) or None}}, time order,
    batched (B = 1 for unbatched input). Gradients reach the layer's parameters too: pass a
    copy where that matters.
    """
    steps: dict = {}
    out, _ = reference_forward(layer, x, hx, steps)
    loss_fn(out).backward()

    def stacked(states: list) -> Tensor | None:
        if states[0] is None:
            return None
        return torch.stack([torch.zeros_like(s) if s.grad is None else s.grad for s in states])

    grads = {}
    for key, rec in steps.items():
        dh, dc = stacked(rec["h"]), stacked(rec["c"])
        if x.dim() == 2:  # unbatched: (T, H) -> (T, 1, H)
            dh = dh.unsqueeze(1)
            dc = None if dc is None else dc.unsqueeze(1)
        grads[key] = {"dh": dh, "dc": dc}
    return grads


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """`vanishing demo --quick`, run once per session: (terminal output, run folder)."""
    from typer.testing import CliRunner

    from vanishing.cli import app

    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (run_dir,) = out.glob("demo-*")
    return result.output, run_dir


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same global RNG state."""
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _fast_cpu_settings():
    """Tiny tensors: one intra-op thread avoids the threading overhead; and torch.nn.LSTM's
    float32 oneDNN path takes ~0.5 s a call on CPU, 100x its native kernel (the same
    reference for these tests), so use the native one."""
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    yield
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = onednn


@pytest.fixture(scope="module")
def built() -> None:
    """The compiled kernel, built once (skipped only when VANISHING_KERNEL=0 asks for the
    reference)."""
    from vanishing.nn import kernel

    if not kernel.enabled():
        pytest.skip("VANISHING_KERNEL=0: the kernel is disabled")
    assert kernel.available(), "the compiled kernel failed to build or load"


@pytest.fixture(params=["kernel", "reference"])
def path(request):
    """Run the test on the compiled kernel and on the reference BPTT (vanishing.kernel)."""
    from vanishing.nn import kernel

    if request.param == "kernel" and not kernel.available():
        pytest.skip(
            "the compiled kernel is disabled or unavailable (tests/test_kernel.py says why)"
        )
    kernel.set_enabled(request.param == "kernel")
    yield request.param
    kernel.set_enabled(None)
