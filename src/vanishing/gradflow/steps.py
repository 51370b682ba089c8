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
  step s; right: its dc_dh at step s - 1). U_i, U_f, U_g are the blocks of weight_hh (gate
  order i, f, g, o). At step 1 the initial state h_0 does not depend on c_0, so
  A_1 = C_1 = D_1 = 0 and J_1 = B_1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vanishing.nn import Trace
from vanishing.nn.activations import activation_grad, sigmoid_grad_from_tanh
from vanishing.nn.lstm import lstm_local_factors
from vanishing.nn.naming import flip_time, is_lstm

F64 = torch.float64


def processing(x: Tensor, direction: int, dtype: torch.dtype = F64) -> Tensor:
    """A trace tensor (T, ...) in time order as dtype (float64) in processing order."""
    return flip_time(x.detach().to(dtype), direction)


def weight_hh(layer: nn.Module, trace: Trace, dtype: torch.dtype = F64) -> Tensor:
    """weight_hh of the trace's layer and direction, detached, as dtype: (G*H, H)."""
    name = "weight_hh_" + trace.name
    W = getattr(layer, name, None)
    if W is None:
        raise ValueError(f"{type(layer).__name__} has no parameter {name} for this trace")
    return W.detach().to(dtype)


def check_trace(layer: nn.Module, trace: Trace) -> None:
    """TypeError unless trace is a Trace; ValueError if it comes from another kind of layer."""
    if not isinstance(trace, Trace):
        raise TypeError(f"trace must be a vanishing.Trace, got {type(trace).__name__}")
    if is_lstm(layer) != is_lstm(trace):
        raise ValueError(
            f"the trace ({'LSTM' if is_lstm(trace) else 'RNN'}) does not belong to "
            f"this {type(layer).__name__} layer"
        )


@dataclass
class RNNSteps:
    """Per-step factors of J_s = dh_s/dh_{s-1} = diag(a_s) W, processing order.

    jvp and vjp take a step index s (0-based) or a slice of steps; y, z (..., B, H) or, for
    a slice, (..., steps, B, H).
    """

    a: Tensor  # (T, B, H) act'(z_s)
    W: Tensor  # (H, H) W_rec

    @property
    def dim(self) -> tuple[int, int]:
        """(B, H): sequences and hidden units."""
        return self.a.shape[1], self.a.shape[2]

    @property
    def dtype(self) -> torch.dtype:
        return self.a.dtype

    def jacobian(self, s: int) -> Tensor:
        return self.a[s].unsqueeze(2) * self.W  # (B, H, H)

    def jvp(self, s: int | slice, y: Tensor) -> Tensor:
        return self.a[s] * (y @ self.W.t())  # (..., B, H) J_s y

    def vjp(self, s: int | slice, z: Tensor) -> Tensor:
        return (self.a[s] * z) @ self.W  # (..., B, H) J_s^T z


@dataclass
class LSTMSteps:
    """Per-step factors of J_s = dc_s/dc_{s-1} = diag(f_s) + sum_gate diag(alpha) U diag(beta).

    alpha[:, :, 0..2] are the left factors of C, A, D (gates i, f, g), beta the right factor.
    jvp and vjp take a step index s (0-based) or a slice of steps, as `RNNSteps`.
    """

    f: Tensor  # (T, B, H) f_s
    alpha: Tensor  # (T, B, 3, H) [g sigma'(z_i), c_{s-1} sigma'(z_f), i tanh'(z_g)]
    beta: Tensor  # (T, B, H) o_{s-1} tanh'(c_{s-1}), 0 at s = 1
    U: Tensor  # (3H, H) [U_i; U_f; U_g]

    @property
    def dim(self) -> tuple[int, int]:
        """(B, H): sequences and hidden units."""
        return self.f.shape[1], self.f.shape[2]

    @property
    def dtype(self) -> torch.dtype:
        return self.f.dtype

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
    d = trace.direction
    i, f, g, o, c = (processing(x, d, dtype) for x in (trace.i, trace.f, trace.g, trace.o, trace.c))
    c0 = trace.c0.detach().to(dtype).unsqueeze(0)  # (1, B, H)
    c_prev = torch.cat((c0, c[:-1]))  # (T, B, H) c_{s-1}
    dc_dh, dz = lstm_local_factors(torch.cat((i, f, g, o), dim=2), c_prev, c)  # (T,B,H), (T,B,4H)
    T, B, H = c.shape
    alpha = dz[:, :, : 3 * H].unflatten(2, (3, H))  # (T, B, 3, H) blocks i, f, g
    if article_D:
        alpha = alpha.clone()
        alpha[:, :, 2] = i * sigmoid_grad_from_tanh(g)
    beta = torch.zeros_like(c)  # (T, B, H); 0 at s = 1: h_0 does not depend on c_0
    beta[1:] = dc_dh[:-1]
    U = weight_hh(layer, trace, dtype)[: 3 * H]  # (3H, H)
    return LSTMSteps(f=f, alpha=alpha, beta=beta, U=U)


def rnn_steps(layer: nn.Module, trace: Trace, dtype: torch.dtype = F64) -> RNNSteps:
    """The RNN's step factors: act'(z_s) through h_s, and W_rec."""
    h = processing(trace.h, trace.direction, dtype)  # (T, B, H)
    return RNNSteps(a=activation_grad(h, layer.nonlinearity), W=weight_hh(layer, trace, dtype))


def trace_steps(layer: nn.Module, trace: Trace, dtype: torch.dtype = F64) -> RNNSteps | LSTMSteps:
    """lstm_steps or rnn_steps, whichever the layer is."""
    return (
        lstm_steps(layer, trace, dtype=dtype) if is_lstm(layer) else rnn_steps(layer, trace, dtype)
    )
