"""Compiled CPU kernel: the time loops of `nn/rnn.py` / `nn/lstm.py` in C++ (`bptt.cpp`).

Same functions, signatures and cache dataclasses as the reference, so traces and everything
else are unchanged; per step one BLAS GEMM and one fused, vectorised elementwise pass instead
of a dozen torch calls. The all-steps GEMMs (input projection, weight gradients) stay in ATen.

Built on first use with `torch.utils.cpp_extension.load` (a C++ compiler and ninja, no
download), cached in torch's extensions directory (`TORCH_EXTENSIONS_DIR`, by default
~/.cache/torch_extensions) under a name that includes the instruction set (AVX2 or generic),
so a cache shared between machines never runs code their CPU lacks.

Selection (`supports`): `functions.py` runs CPU float32/float64 tensors with a batch and
without a projection here when `available()`, the reference otherwise (always for CUDA, other
dtypes and proj_size > 0). If the build or load fails, `available()` warns once per process
(naming the compiler's error, at the user's line) and returns False. `VANISHING_KERNEL=0` in
the environment, or `set_enabled(False)`, forces the reference path (without a warning).

The loops are `torch.library` custom operators (`vanishing::lstm_forward`, ...) with fake
implementations: torch.compile and torch.export see one node per loop. In eager mode their
implementations are called directly.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vanishing.nn.lstm import LSTMCache
from vanishing.nn.projection import project_input, weight_gradients
from vanishing.nn.rnn import RNNCache

SOURCE = Path(__file__).with_name("bptt.cpp")
DTYPES = (torch.float32, torch.float64)

_ops: Any = None  # torch.ops.vanishing_bptt once loaded
_failed = False  # the build or load failed (and the warning was given)
_enabled: bool | None = None  # set_enabled's choice; None: the environment decides


def _flags() -> tuple[str, list[str]]:
    """Extension name and compiler flags: AVX2 + FMA where torch itself runs AVX2 or better."""
    flags = ["-O3"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        return "vanishing_bptt_avx2", flags + [
            "-mavx2",
            "-mfma",
            "-mf16c",
            "-DCPU_CAPABILITY=AVX2",
            "-DCPU_CAPABILITY_AVX2",
        ]
    return "vanishing_bptt_generic", flags + ["-DCPU_CAPABILITY=DEFAULT"]


def _ninja_path() -> str:
    """PATH with the venv's ninja (pip's `ninja`) added when the venv is not activated."""
    path = os.environ.get("PATH", "")
    if shutil.which("ninja") is None:
        for candidate in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
            if (candidate / "ninja").exists():
                return f"{candidate}{os.pathsep}{path}"
    return path


def _load() -> Any:
    """Compile (or reuse the cached build of) bptt.cpp and return its operators."""
    from torch.utils.cpp_extension import load

    name, flags = _flags()
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = _ninja_path()
    try:
        load(name=name, sources=[str(SOURCE)], extra_cflags=flags, is_python_module=False)
    finally:
        os.environ["PATH"] = path
    return torch.ops.vanishing_bptt


def _cause(error: BaseException, lines: int = 3) -> str:
    """The lines of a build error that say why: the compiler's `error` lines (its message
    starts with the whole command line), else the last lines."""
    text = [line.strip() for line in str(error).splitlines() if line.strip()]
    errors = [line for line in text if "error" in line.lower() and len(line) < 500]
    return " | ".join((errors or text)[:lines] if errors else text[-lines:]) or repr(error)


def _user_stacklevel() -> int:
    """warnings.warn's stacklevel of the first caller outside vanishing and torch."""
    packages = (Path(__file__).parents[2], Path(torch.__file__).parent)  # vanishing/, torch/
    frame, level = sys._getframe(1), 1  # available()'s frame: stacklevel 1
    while frame is not None and any(
        Path(frame.f_code.co_filename).is_relative_to(p) for p in packages
    ):
        frame, level = frame.f_back, level + 1
    return level


def set_enabled(enabled: bool | None) -> None:
    """Force the kernel on (if it loads) or off; None gives the choice back to VANISHING_KERNEL."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    """Whether the kernel is wanted: set_enabled's choice, else VANISHING_KERNEL != '0'."""
    if _enabled is not None:
        return _enabled
    return os.environ.get("VANISHING_KERNEL", "1").strip() != "0"


@torch.compiler.assume_constant_result  # torch.compile runs it eagerly, once, when tracing
def available() -> bool:
    """True if the kernel is enabled and loaded; builds it on the first call.

    A failed build or load gives one warning per process and False from then on.
    """
    global _ops, _failed
    if not enabled() or _failed:
        return False
    if _ops is None:
        try:
            _ops = _load()
        except Exception as error:  # any failure: compiler, ninja, headers, linking
            _failed = True
            warnings.warn(
                "vanishing: the compiled CPU kernel could not be built or loaded "
                f"({type(error).__name__}: {_cause(error)}); using the slower reference "
                "path. Set VANISHING_KERNEL=0 to choose it without this warning.",
                RuntimeWarning,
                stacklevel=_user_stacklevel(),
            )
            return False
    return True


def supports(x: Tensor, projection: bool = False) -> bool:
    """True if a call on x goes to the kernel: a CPU float32/float64 tensor with a batch
    (B >= 1), no projection (an LSTM with proj_size > 0 runs the reference), the kernel
    available."""
    return (
        x.device.type == "cpu"
        and x.dtype in DTYPES
        and x.shape[1] > 0
        and not projection
        and available()
    )


def _loaded() -> Any:
    """The operators; RuntimeError if the kernel is disabled or failed to build."""
    if not available():
        raise RuntimeError("the vanishing kernel is not available (see kernel.available())")
    return _ops


def config(key: str, value: int = -1) -> int:
    """Read (value < 0) or set a tuning knob of the C++ loops; returns the value in effect.

    'blas': 1 calls torch's BLAS (sgemm_/dgemm_) directly per step, 0 ATen's mm (reads 0
    where the BLAS symbols are not found); 'parallel_gemm_flops': time loops whose per-step
    GEMM has fewer flops run the BLAS on one thread (MKL); 'elementwise_grain': batch rows of
    the elementwise pass run in parallel in chunks of at least this many elements.
    """
    return int(_loaded().config(key, value))


def nonlinearities() -> list[str]:
    """The names in the kernel's nonlinearity table (to hold equal to activations.NAMES)."""
    return list(_loaded().nonlinearities())


def lstm_local_factors(gates: Tensor, cs: Tensor) -> tuple[Tensor, Tensor]:
    """The kernel's lstm_local_factors over all steps: gates (T, B, 4H), cs (T+1, B, H) ->
    (dc_dh (T, B, H), dz (T, B, 4H)), as nn.lstm.lstm_local_factors(gates, cs[:-1], cs[1:])."""
    dc_dh, dz = _loaded().lstm_local_factors(gates, cs)
    return dc_dh, dz


def rnn_buffers(x: Tensor, h0: Tensor, W_ih: Tensor, b: Tensor | None) -> Tensor:
    """hs (T+1, B, H): h0 at index 0, then W_in x_t + b for every step, which the time loop
    overwrites with h_t."""
    T, B, _ = x.shape
    H = h0.shape[1]
    hs = torch.empty(T + 1, B, H, dtype=x.dtype, device=x.device)  # (T+1, B, H)
    hs[0] = h0
    project_input(x, W_ih, b, out=hs[1:].view(T * B, H))  # W_in x_t + b, all steps
    return hs


def lstm_buffers(
    x: Tensor, h0: Tensor, c0: Tensor, W_ih: Tensor, b: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """hs, cs (T+1, B, H) with h0, c0 at index 0; gates (T, B, 4H) holding W_ih x_t + b."""
    T, B, _ = x.shape
    H = h0.shape[1]
    hs = torch.empty(T + 1, B, H, dtype=x.dtype, device=x.device)  # (T+1, B, H)
    cs = torch.empty(T + 1, B, H, dtype=x.dtype, device=x.device)  # (T+1, B, H)
    hs[0], cs[0] = h0, c0
    gates = torch.empty(T, B, 4 * H, dtype=x.dtype, device=x.device)  # (T, B, 4H)
    project_input(x, W_ih, b, out=gates.view(T * B, 4 * H))  # W_ih x_t + b, all steps
    return hs, cs, gates


# The time loops as functional custom operators (fresh outputs, inputs untouched), each with
# a fake implementation that gives the output shapes, so torch.compile and torch.export see
# one opaque node per call instead of tracing into the C++ loops. The operators run the
# in-place C++ loops of bptt.cpp on buffers they allocate. In eager mode the implementation
# is called directly (`_op`): the dispatcher's round trip costs ~10 us a call (measured).


def _op(op: Any, implementation: Any) -> Any:
    """The custom operator while torch.compile / torch.export trace, else its implementation."""
    return op if torch.compiler.is_compiling() else implementation


def _none(t: Tensor) -> Tensor | None:
    """An empty tensor stands for None in a custom operator's outputs."""
    return None if t.numel() == 0 and t.dim() == 1 else t


def _rnn_forward_impl(
    x: Tensor,
    h0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b: Tensor | None,
    nonlinearity: str,
    batch_sizes: Tensor | None,
) -> Tensor:
    hs = rnn_buffers(x, h0, W_ih, b)  # (T+1, B, H); the loop zeroes the ended rows
    # the time loop: h_t = act(. + W_hh h_{t-1}), rows :batch_sizes[t] of step t
    _loaded().rnn_forward(hs, W_hh.contiguous(), nonlinearity, batch_sizes)
    return hs


_rnn_forward_op = torch.library.custom_op(
    "vanishing::rnn_forward", _rnn_forward_impl, mutates_args=()
)


@_rnn_forward_op.register_fake
def _(x, h0, W_ih, W_hh, b, nonlinearity, batch_sizes):  # noqa: ANN001, ANN202
    return x.new_empty((x.shape[0] + 1, x.shape[1], h0.shape[1]))


def _rnn_backward_impl(
    dout: Tensor,
    dh_n: Tensor,
    x: Tensor,
    hs: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    nonlinearity: str,
    batch_sizes: Tensor | None,
    need_dx: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    T, B, _ = x.shape
    H = W_hh.shape[0]
    dh = hs.new_empty((T, B, H))  # (T, B, H) dL/dh_t
    dz = hs.new_empty((T, B, H))  # (T, B, H) dL/dz_t
    dh0 = _loaded().rnn_backward(
        dout.contiguous(), dh_n, hs, W_hh.contiguous(), nonlinearity, dh, dz, batch_sizes
    )
    dx, dW_ih, dW_hh, db = weight_gradients(dz, x, hs, W_ih, need_dx)
    return x.new_empty(0) if dx is None else dx, dh0, dW_ih, dW_hh, db, dh


_rnn_backward_op = torch.library.custom_op(
    "vanishing::rnn_backward", _rnn_backward_impl, mutates_args=()
)


@_rnn_backward_op.register_fake
def _(dout, dh_n, x, hs, W_ih, W_hh, nonlinearity, batch_sizes, need_dx):  # noqa: ANN001, ANN202
    dx = torch.empty_like(x) if need_dx else x.new_empty(0)
    db = W_hh.new_empty(W_hh.shape[0])
    return (
        dx,
        torch.empty_like(dh_n),
        torch.empty_like(W_ih),
        torch.empty_like(W_hh),
        db,
        (torch.empty_like(dout)),
    )


def _lstm_forward_impl(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b: Tensor | None,
    batch_sizes: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    hs, cs, gates = lstm_buffers(x, h0, c0, W_ih, b)  # (T+1, B, H) x 2, (T, B, 4H)
    # the time loop, rows :batch_sizes[t] of step t (the loop zeroes the ended rows);
    # gates -> [i, f, g, o]
    _loaded().lstm_forward(gates, hs, cs, W_hh.contiguous(), batch_sizes)
    return hs, cs, gates


_lstm_forward_op = torch.library.custom_op(
    "vanishing::lstm_forward", _lstm_forward_impl, mutates_args=()
)


@_lstm_forward_op.register_fake
def _(x, h0, c0, W_ih, W_hh, b, batch_sizes):  # noqa: ANN001, ANN202
    T, B, H = x.shape[0], x.shape[1], h0.shape[1]
    return x.new_empty((T + 1, B, H)), x.new_empty((T + 1, B, H)), x.new_empty((T, B, 4 * H))


def _lstm_backward_impl(
    dout: Tensor,
    dh_n: Tensor,
    dc_n: Tensor,
    x: Tensor,
    hs: Tensor,
    cs: Tensor,
    gates: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    batch_sizes: Tensor | None,
    need_dx: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    T, B, _ = x.shape
    H = W_hh.shape[1]
    dh = hs.new_empty((T, B, H))  # (T, B, H) dL/dh_t
    dc = torch.empty_like(dh)  # (T, B, H) dL/dc_t
    dz = hs.new_empty((T, B, 4 * H))  # (T, B, 4H) dL/dz_t
    dh0, dc0 = _loaded().lstm_backward(
        dout.contiguous(), dh_n, dc_n, cs, gates, W_hh.contiguous(), dh, dc, dz, batch_sizes
    )
    dx, dW_ih, dW_hh, db = weight_gradients(dz, x, hs, W_ih, need_dx)
    return x.new_empty(0) if dx is None else dx, dh0, dc0, dW_ih, dW_hh, db, dh, dc


_lstm_backward_op = torch.library.custom_op(
    "vanishing::lstm_backward", _lstm_backward_impl, mutates_args=()
)


@_lstm_backward_op.register_fake
def _(dout, dh_n, dc_n, x, hs, cs, gates, W_ih, W_hh, batch_sizes, need_dx):  # noqa: ANN001, ANN202
    dx = torch.empty_like(x) if need_dx else x.new_empty(0)
    db = W_hh.new_empty(W_hh.shape[0])
    dh0, dc0, dW_ih, dW_hh = (torch.empty_like(a) for a in (dh_n, dc_n, W_ih, W_hh))
    return dx, dh0, dc0, dW_ih, dW_hh, db, torch.empty_like(dout), torch.empty_like(dout)


# The kernel's side of nn/rnn.py and nn/lstm.py: same functions, signatures and caches.


def rnn_forward(
    x: Tensor,
    h0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b: Tensor | None,
    nonlinearity: str,
    batch_sizes: Tensor | None = None,
) -> tuple[Tensor, RNNCache]:
    """As rnn.rnn_forward: hs (T+1, B, H) with hs[0] = h0, and the cache."""
    hs = _op(_rnn_forward_op, _rnn_forward_impl)(x, h0, W_ih, W_hh, b, nonlinearity, batch_sizes)
    return hs, RNNCache(x, hs, W_ih, W_hh, nonlinearity, batch_sizes)


def rnn_backward(
    dout: Tensor, dh_n: Tensor, cache: RNNCache, need_dx: bool = True
) -> tuple[Tensor | None, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """As rnn.rnn_backward: (dx or None, dh0, dW_ih, dW_hh, db, dh (T, B, H))."""
    c = cache
    dx, *grads = _op(_rnn_backward_op, _rnn_backward_impl)(
        dout, dh_n, c.x, c.hs, c.W_ih, c.W_hh, c.nonlinearity, c.batch_sizes, need_dx
    )
    return (_none(dx), *grads)


def lstm_forward(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b: Tensor | None,
    W_hr: Tensor | None = None,
    batch_sizes: Tensor | None = None,
) -> tuple[Tensor, Tensor, LSTMCache]:
    """As lstm.lstm_forward, without a projection (`supports` declines W_hr)."""
    if W_hr is not None:
        raise ValueError("the kernel has no projection (proj_size); use nn.lstm.lstm_forward")
    hs, cs, gates = _op(_lstm_forward_op, _lstm_forward_impl)(x, h0, c0, W_ih, W_hh, b, batch_sizes)
    return hs, cs, LSTMCache(x, hs, cs, gates, None, W_ih, W_hh, None, batch_sizes)


def lstm_backward(
    dout: Tensor, dh_n: Tensor, dc_n: Tensor, cache: LSTMCache, need_dx: bool = True
) -> tuple[Tensor | None, Tensor, Tensor, Tensor, Tensor, Tensor, None, Tensor, Tensor]:
    """As lstm.lstm_backward: (dx or None, dh0, dc0, dW_ih, dW_hh, db, None, dh, dc)."""
    c = cache
    dx, dh0, dc0, dW_ih, dW_hh, db, dh, dc = _op(_lstm_backward_op, _lstm_backward_impl)(
        dout, dh_n, dc_n, c.x, c.hs, c.cs, c.gates, c.W_ih, c.W_hh, c.batch_sizes, need_dx
    )
    return _none(dx), dh0, dc0, dW_ih, dW_hh, db, None, dh, dc
