"""The step Jacobians of a recorded layer, as factors: what every gradflow measurement reads.

Steps are numbered in the order the layer processes them, s = 1 .. T (time order for the
forward direction, reversed time for the reverse one); index s - 1 of a (T, ...) tensor here is
step s. Everything is detached, built from one `Trace` and the layer's weight_hh, in float64
unless a dtype is asked for (the estimates of `spectral.py` run in the trace's own dtype).

- RNN, article eq. (2):  J_s = dh_s/dh_{s-1} = diag(act'(z_s)) W_rec.
- LSTM, article eq. (6): J_s = dc_s/dc_{s-1} = A_s + B_s + C_s + D_s with
  h_{s-1} = o_{s-1} tanh(c_{s-1}) and o_{s-1} held fixed:

      A_s = diag(c_{s-1} sigma'(z_f,s)) U_f diag(o_{s-1} tanh'(c_{s-1}))
      B_s = diag(f_s)
      C_s = diag(g_s sigma'(z_i,s))     U_i diag(o_{s-1} tanh'(c_{s-1}))
      D_s = diag(i_s tanh'(z_g,s))      U_g diag(o_{s-1} tanh'(c_{s-1}))   [the article: sigma']

  The diagonal factors are `nn.lstm.lstm_local_factors`' (left: its dz blocks i, f, g at
  step s; right: its dc_dh at step s - 1), computed by the kernel's copy of it (one pass
  over all steps) where the kernel runs. U_i, U_f, U_g are the blocks of weight_hh (gate
  order i, f, g, o). At step 1 the initial state h_0 does not depend on c_0, so
  A_1 = C_1 = D_1 = 0 and J_1 = B_1.

Variable lengths (a trace from a PackedSequence, `trace.lengths` (B,)): sequence b runs its
own steps s = 1 .. n_b. The factors are laid out *end-aligned*: index T - n_b + s - 1 is
sequence b's step s, so every sequence's last step is index T - 1 and lag l is index
T - 1 - l for all of them, as with equal lengths; the T - n_b indices before hold zero
factors (J = 0: a padding step adds no Jacobian). `real_steps` says which (index, sequence)
pairs are real, `batch_mean` averages over those, `start_aligned` puts step s of every
sequence at index s - 1 (what `terms.py` reports by step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vanishing.nn import Trace, kernel
from vanishing.nn.activations import activation_grad, sigmoid_grad_from_tanh
from vanishing.nn.lstm import lstm_local_factors
from vanishing.nn.naming import flip_time, is_lstm

F64 = torch.float64


def processing(
    x: Tensor, direction: int, dtype: torch.dtype = F64, lengths: Tensor | None = None
) -> Tensor:
    """A trace tensor (T, B, ...) in time order as dtype (float64) in processing order; with
    lengths (B,) each sequence is flipped within its own steps (step s at index s - 1)."""
    return flip_time(x.detach().to(dtype), direction, lengths)


def real_steps(lengths: Tensor | None, T: int, device: torch.device | None = None) -> Tensor | None:
    """(T, B) bool: index s < lengths[b], i.e. sequence b has step s + 1 (counted from its
    start) and lag s (counted from its end); None without lengths (every step is real)."""
    if lengths is None:
        return None
    return torch.arange(T, device=device).unsqueeze(1) < lengths.to(device)  # (T, B)


def _roll(x: Tensor, shift: Tensor) -> Tensor:
    """x (T, B, ...) with sequence b rolled by shift[b] steps along the time axis."""
    T, B = x.shape[0], x.shape[1]
    t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    index = (t - shift.to(x.device)) % T  # (T, B) source index of each index
    return x.gather(0, index.view(T, B, *[1] * (x.dim() - 2)).expand_as(x))


def end_aligned(x: Tensor, lengths: Tensor | None) -> Tensor:
    """x (T, B, ...) with each sequence's steps from index 0 -> ending at index T - 1, its
    padding first; x itself without lengths."""
    return x if lengths is None else _roll(x, x.shape[0] - lengths)


def start_aligned(x: Tensor, lengths: Tensor | None) -> Tensor:
    """The inverse of end_aligned: step s of every sequence at index s - 1, padding last."""
    return x if lengths is None else _roll(x, lengths - x.shape[0])


def batch_mean(values: Tensor, real: Tensor | None) -> Tensor:
    """Mean over the last axis (the batch) of values (..., B): of the entries where real
    (..., B) is True if given (NaN where none is), of all of them otherwise."""
    if real is None:
        return values.mean(dim=-1)
    return torch.where(real, values, 0.0).sum(dim=-1) / real.sum(dim=-1)


def _zero_padding(x: Tensor, real: Tensor | None, lengths: Tensor | None) -> Tensor:
    """x (T, B, ...) from each sequence's start -> zero beyond its length, end-aligned."""
    if real is None:
        return x
    return end_aligned(torch.where(real.view(*real.shape, *[1] * (x.dim() - 2)), x, 0.0), lengths)


def weight_hh(layer: nn.Module, trace: Trace, dtype: torch.dtype = F64) -> Tensor:
    """weight_hh of the trace's layer and direction, detached, as dtype: (G*H, H)."""
    name = "weight_hh_" + trace.name
    W = getattr(layer, name, None)
    if W is None:
        raise ValueError(f"{type(layer).__name__} has no parameter {name} for this trace")
    return W.detach().to(dtype)


def _shape(x: Tensor) -> str:
    return "(" + ", ".join(str(n) for n in x.shape) + ")"


def check_trace(layer: nn.Module, trace: Trace, weights: bool = True) -> None:
    """TypeError unless layer is a module and trace a Trace; ValueError, naming what was
    expected and what came, if the trace does not fit the layer: another kind or mode of
    layer, no such layer and direction, another hidden size, tensors of inconsistent shapes,
    or lengths (B,) outside 1 .. T. weights: the measurement combines the trace with the
    layer's weights (step Jacobians): then nn.StaleTraceError if they changed since the trace
    was recorded (an optimizer step, load_state_dict, an in-place edit)."""
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module, got {type(layer).__name__}")
    if not isinstance(trace, Trace):
        raise TypeError(f"trace must be a vanishing.Trace, got {type(trace).__name__}")
    kind = "LSTM" if is_lstm(trace) else "RNN"
    if is_lstm(layer) != is_lstm(trace):
        raise ValueError(f"the trace ({kind}) does not belong to this {type(layer).__name__} layer")
    mode = getattr(layer, "mode", None)
    if mode != trace.mode:
        raise ValueError(
            f"the trace was recorded by a layer of mode {trace.mode!r}, this "
            f"{type(layer).__name__} has mode {mode!r} (another nonlinearity)"
        )
    W = getattr(layer, "weight_hh_" + trace.name, None)
    if not isinstance(W, Tensor):
        raise ValueError(
            f"{type(layer).__name__} has no weight_hh_{trace.name}: the trace (layer "
            f"{trace.layer}, direction {trace.direction}) comes from a layer with more layers "
            "or directions"
        )
    if not isinstance(trace.h, Tensor) or trace.h.dim() != 3:
        got = _shape(trace.h) if isinstance(trace.h, Tensor) else type(trace.h).__name__
        raise ValueError(f"trace.h must be a (T, B, H) tensor, got {got}")
    T, B, H = trace.h.shape
    if W.dim() != 2 or W.shape[1] != H:
        raise ValueError(
            f"the trace's states have H = {H} units (h {_shape(trace.h)}), this "
            f"{type(layer).__name__}'s weight_hh_{trace.name} {_shape(W)} has "
            f"{W.shape[-1]}: the trace comes from another layer"
        )
    expected = {"h0": (B, H), "c0": (B, H)}
    for name in ("h0", "c", "c0", "i", "f", "g", "o", "dh", "dc"):
        x = getattr(trace, name)
        if x is None:
            if name in ("h0",) or (kind == "LSTM" and name not in ("dh", "dc")):
                raise ValueError(f"trace.{name} is None: an {kind} trace needs it")
            continue
        shape = expected.get(name, (T, B, H))
        if not isinstance(x, Tensor) or tuple(x.shape) != shape:
            got = _shape(x) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"trace.{name} must have shape ({', '.join(map(str, shape))}) like trace.h "
                f"{_shape(trace.h)}, got {got}"
            )
    n = trace.lengths
    if n is not None:
        if not isinstance(n, Tensor) or n.shape != (B,) or n.is_floating_point():
            got = _shape(n) if isinstance(n, Tensor) else type(n).__name__
            raise ValueError(f"trace.lengths must be an integer tensor of shape ({B},), got {got}")
        if B and not (int(n.min()) >= 1 and int(n.max()) <= T):
            raise ValueError(
                f"trace.lengths must lie in 1 .. {T} (the trace's steps), got {n.tolist()}"
            )
    if weights:
        trace.check_weights(layer)  # StaleTraceError if the layer's weights changed since


def check_steps(steps: object, trace: Trace) -> None:
    """TypeError unless steps are RNNSteps / LSTMSteps of the trace's kind; ValueError unless
    they have the trace's shape and lengths (steps built from another trace)."""
    kind = LSTMSteps if is_lstm(trace) else RNNSteps
    if not isinstance(steps, kind):
        raise TypeError(f"steps must be the trace's {kind.__name__}, got {type(steps).__name__}")
    T, B, H = trace.h.shape
    got = ((steps.f if kind is LSTMSteps else steps.a).shape[0], *steps.dim)
    same_lengths = (steps.lengths is None) == (trace.lengths is None) and (
        steps.lengths is None or torch.equal(steps.lengths.cpu(), trace.lengths.cpu())
    )
    if got != (T, B, H) or not same_lengths:
        raise ValueError(
            f"steps were built from another trace: (T, B, H) = {got}, the trace's "
            f"{(T, B, H)}{'' if same_lengths else ', and other lengths'}"
        )


@dataclass
class RNNSteps:
    """Per-step factors of J_s = dh_s/dh_{s-1} = diag(a_s) W, processing order (end-aligned
    with lengths: module docstring).

    jvp and vjp take a step index s (0-based) or a slice of steps; y, z (..., B, H) or, for
    a slice, (..., steps, B, H).
    """

    a: Tensor  # (T, B, H) act'(z_s), end-aligned (0 at padding)
    W: Tensor  # (H, H) W_rec
    lengths: Tensor | None = None  # (B,) each sequence's steps; None: all T

    @property
    def dim(self) -> tuple[int, int]:
        """(B, H): sequences and hidden units."""
        return self.a.shape[1], self.a.shape[2]

    @property
    def dtype(self) -> torch.dtype:
        return self.a.dtype

    @property
    def real(self) -> Tensor | None:
        """(T, B) bool, index s < lengths[b] (`real_steps`); None without lengths."""
        return real_steps(self.lengths, self.a.shape[0], self.a.device)

    def jacobian(self, s: int) -> Tensor:
        return self.a[s].unsqueeze(2) * self.W  # (B, H, H)

    def jvp(self, s: int | slice, y: Tensor) -> Tensor:
        return self.a[s] * (y @ self.W.t())  # (..., B, H) J_s y

    def vjp(self, s: int | slice, z: Tensor) -> Tensor:
        return (self.a[s] * z) @ self.W  # (..., B, H) J_s^T z


@dataclass
class LSTMSteps:
    """Per-step factors of J_s = dc_s/dc_{s-1} = diag(f_s) + sum_gate diag(alpha) U diag(beta).

    alpha[:, :, 0..2] are the left factors of C, A, D (gates i, f, g), beta the right factor;
    end-aligned with lengths, zero at padding (module docstring). jvp and vjp take a step
    index s (0-based) or a slice of steps, as `RNNSteps`.
    """

    f: Tensor  # (T, B, H) f_s
    alpha: Tensor  # (T, B, 3, H) [g sigma'(z_i), c_{s-1} sigma'(z_f), i tanh'(z_g)]
    beta: Tensor  # (T, B, H) o_{s-1} tanh'(c_{s-1}), 0 at s = 1
    U: Tensor  # (3H, H) [U_i; U_f; U_g]
    lengths: Tensor | None = None  # (B,) each sequence's steps; None: all T

    @property
    def dim(self) -> tuple[int, int]:
        """(B, H): sequences and hidden units."""
        return self.f.shape[1], self.f.shape[2]

    @property
    def dtype(self) -> torch.dtype:
        return self.f.dtype

    @property
    def real(self) -> Tensor | None:
        """(T, B) bool, index s < lengths[b] (`real_steps`); None without lengths."""
        return real_steps(self.lengths, self.f.shape[0], self.f.device)

    def terms(self, s: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """A_s, B_s, C_s, D_s, each (B, H, H)."""
        H = self.f.shape[2]
        U = self.U.view(3, H, H)  # (3, H, H)
        # (B, 3, H, H) diag(alpha) U diag(beta) for the gates i, f, g
        M = self.alpha[s].unsqueeze(3) * U * self.beta[s][:, None, None, :]
        B_s = torch.diag_embed(self.f[s])  # (B, H, H)
        return M[:, 1], B_s, M[:, 0], M[:, 2]

    def jacobian(self, s: int) -> Tensor:
        H = self.f.shape[2]
        U = self.U.view(3, H, H)  # (3, H, H)
        M = torch.einsum("bgi,gij->bij", self.alpha[s], U)  # (B, H, H) sum_gate diag(alpha) U
        return M * self.beta[s].unsqueeze(1) + torch.diag_embed(self.f[s])  # (B, H, H)

    def jvp(self, s: int | slice, y: Tensor) -> Tensor:
        H = self.f.shape[2]
        u = ((self.beta[s] * y) @ self.U.t()).unflatten(-1, (3, H))  # (..., B, 3, H)
        return self.f[s] * y + (self.alpha[s] * u).sum(-2)  # (..., B, H) J_s y

    def vjp(self, s: int | slice, z: Tensor) -> Tensor:
        w = (self.alpha[s] * z.unsqueeze(-2)).flatten(-2)  # (..., B, 3H)
        return self.f[s] * z + self.beta[s] * (w @ self.U)  # (..., B, H) J_s^T z


def lstm_steps(
    layer: nn.Module, trace: Trace, article_D: bool = False, dtype: torch.dtype = F64
) -> LSTMSteps:
    """The LSTM's step factors from lstm_local_factors; article_D: sigma'(z_g) in D (wrong)."""
    if not is_lstm(trace):
        raise ValueError("this trace has no gates: expected an LSTM trace")
    d, n = trace.direction, trace.lengths
    i, f, g, o, c = (
        processing(x, d, dtype, n) for x in (trace.i, trace.f, trace.g, trace.o, trace.c)
    )
    c0 = trace.c0.detach().to(dtype)  # (B, H)
    if kernel.supports(c):  # the same factors, one pass in parallel
        dc_dh, dz = kernel.lstm_local_factors(i, f, g, o, c0, c)  # (T, B, H), (T, B, 4H)
    else:
        c_prev = torch.cat((c0.unsqueeze(0), c[:-1]))  # (T, B, H) c_{s-1}
        dc_dh, dz = lstm_local_factors(torch.cat((i, f, g, o), dim=2), c_prev, c)
    T, B, H = c.shape
    alpha = dz[:, :, : 3 * H].unflatten(2, (3, H))  # (T, B, 3, H) blocks i, f, g
    if article_D:
        alpha = alpha.clone()
        alpha[:, :, 2] = i * sigmoid_grad_from_tanh(g)
    beta = torch.zeros_like(c)  # (T, B, H); 0 at s = 1: h_0 does not depend on c_0
    beta[1:] = dc_dh[:-1]
    U = weight_hh(layer, trace, dtype)[: 3 * H]  # (3H, H)
    real = real_steps(n, T, c.device)  # (T, B) or None
    f, alpha, beta = (_zero_padding(x, real, n) for x in (f, alpha, beta))  # end-aligned
    return LSTMSteps(f=f, alpha=alpha, beta=beta, U=U, lengths=n)


def rnn_steps(layer: nn.Module, trace: Trace, dtype: torch.dtype = F64) -> RNNSteps:
    """The RNN's step factors: act'(z_s) through h_s, and W_rec."""
    n = trace.lengths
    h = processing(trace.h, trace.direction, dtype, n)  # (T, B, H)
    a = _zero_padding(
        activation_grad(h, layer.nonlinearity), real_steps(n, h.shape[0], h.device), n
    )
    return RNNSteps(a=a, W=weight_hh(layer, trace, dtype), lengths=n)


def trace_steps(layer: nn.Module, trace: Trace, dtype: torch.dtype = F64) -> RNNSteps | LSTMSteps:
    """lstm_steps or rnn_steps, whichever the layer is."""
    return (
        lstm_steps(layer, trace, dtype=dtype) if is_lstm(layer) else rnn_steps(layer, trace, dtype)
    )
