"""Compiled CPU kernel: the time loops of `nn/rnn.py` / `nn/lstm.py` in C++ (`bptt.cpp`).

Same functions, signatures and cache dataclasses as the reference, so traces and everything
else are unchanged; per step one GEMM and one fused, vectorised elementwise pass instead of a
dozen torch calls. The all-steps GEMMs (input projection, weight gradients) stay in ATen; an
LSTM with a small input (I <= config 'fused_input_max') computes its input term in the step
GEMM instead, over [x_t, h_{t-1}]. The batch rows are independent through a time loop, so each
thread runs the whole loop on its own block of rows (`gemm.h`, RowBlocks). `lstm_inference`
is the LSTM's forward without a cache, for calls that record nothing and need no gradient.
Buffers of 4 MiB and more are advised to transparent huge pages (config 'huge_page_bytes').
`lanczos.h` holds gradflow's estimates of the LSTM's term norms (`lstm_term_norms`) and the
tridiagonal eigenvalue they end with (`tridiagonal_max_eigenvalue`), which also gives the
largest eigenvalue of small Gram matrices (`gram_max_eigenvalue`); `sweeps.h` the
two time loops of the product-norm estimate (`sweep_forward`, `sweep_back`).

Built on first use with `torch.utils.cpp_extension.load` (a C++ compiler and ninja, no
download), cached in torch's extensions directory (`TORCH_EXTENSIONS_DIR`, by default
~/.cache/torch_extensions) under a name that includes the variant and a hash of the sources.
Variants (`VARIANTS`) follow the CPU capability torch reports: AVX-512 where torch runs
AVX-512 (16 floats a vector), AVX2 + FMA, generic; so a cache shared between machines never
runs code their CPU lacks. `VANISHING_KERNEL_VARIANT` (avx512, avx2, generic) asks for one.

The per-step GEMM (`gemm.h`): the BLAS torch links (MKL's sgemm_), MKL's packed GEMM or
oneDNN through the dispatcher, chosen per call size by a short measurement when the kernel
loads (`gemm_choice()`; float64 always takes the BLAS). `VANISHING_GEMM` (blas, mkl_packed,
onednn, aten, auto) forces one, e.g. for bit-identical results across processes.

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

import contextlib
import hashlib
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vanishing.nn.lstm import LSTMCache
from vanishing.nn.projection import ALL_GRADIENTS, Needed, project_input, weight_gradients
from vanishing.nn.rnn import RNNCache

HERE = Path(__file__).parent
SOURCE = HERE / "bptt.cpp"
# what the build depends on (the cache name hashes them)
SOURCES = (SOURCE, HERE / "gemm.h", HERE / "lanczos.h", HERE / "sweeps.h")
DTYPES = (torch.float32, torch.float64)

# Variant: (the torch CPU capabilities that run it, compiler flags). The AVX-512 flags are
# those torch compiles its own AVX512 kernels with; CPU_CAPABILITY selects ATen's
# Vectorized<T> width (16 floats for AVX512, 8 for AVX2 and generic).
VARIANTS: dict[str, tuple[tuple[str, ...], list[str]]] = {
    "avx512": (
        ("AVX512",),
        [
            "-mavx512f",
            "-mavx512bw",
            "-mavx512vl",
            "-mavx512dq",
            "-mavx2",
            "-mfma",
            "-mf16c",
            "-DCPU_CAPABILITY=AVX512",
            "-DCPU_CAPABILITY_AVX512",
        ],
    ),
    "avx2": (
        ("AVX2", "AVX512"),
        ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"],
    ),
    "generic": ((), ["-DCPU_CAPABILITY=DEFAULT"]),
}
# config("gemm", ...) values, as gemm.h's Gemm
GEMMS = {"aten": 0, "blas": 1, "mkl_packed": 2, "onednn": 3, "auto": 4}
ONEDNN_OP = "mkldnn::_linear_pointwise"

_ops: Any = None  # the default variant's operators once loaded
_loaded_variants: dict[str, Any] = {}  # variant -> its operators (torch.ops.<library>)
_failed = False  # the build or load failed (and the warning was given)
_enabled: bool | None = None  # set_enabled's choice; None: the environment decides
_gemm_measurement: list[dict] | None = None  # the load-time GEMM measurement (gemm_choice)


def supported_variants() -> list[str]:
    """The variants this CPU runs, fastest first: those whose instructions torch itself runs
    here (torch.backends.cpu.get_cpu_capability())."""
    capability = torch.backends.cpu.get_cpu_capability()
    return [name for name, (caps, _) in VARIANTS.items() if not caps or capability in caps]


def default_variant() -> str:
    """VANISHING_KERNEL_VARIANT if set (it must be one this CPU runs), else the fastest."""
    supported = supported_variants()
    asked = os.environ.get("VANISHING_KERNEL_VARIANT", "").strip().lower()
    if not asked:
        return supported[0]
    if asked not in supported:
        raise ValueError(
            f"VANISHING_KERNEL_VARIANT={asked!r}: this CPU (torch reports "
            f"{torch.backends.cpu.get_cpu_capability()}) runs {', '.join(supported)}"
        )
    return asked


def library_name(variant: str) -> str:
    """The extension's (and its operator library's) name: the variant and a hash of the
    sources, so a build of other sources or for another CPU is never reused."""
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in SOURCES)).hexdigest()
    return f"vanishing_bptt_{variant}_{digest[:10]}"


def _ninja_path() -> str:
    """PATH with the venv's ninja (pip's `ninja`) added when the venv is not activated."""
    path = os.environ.get("PATH", "")
    if shutil.which("ninja") is None:
        for candidate in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
            if (candidate / "ninja").exists():
                return f"{candidate}{os.pathsep}{path}"
    return path


def load_variant(variant: str) -> Any:
    """Compile (or reuse the cached build of) one variant and return its operators, with the
    GEMM chosen (`gemm_choice`). Raises if the CPU does not run it or the build fails."""
    if variant in _loaded_variants:
        return _loaded_variants[variant]
    if variant not in supported_variants():
        raise ValueError(f"this CPU does not run the {variant!r} kernel variant")
    from torch.utils.cpp_extension import load

    name = library_name(variant)
    flags = ["-O3", "-fopenmp", f"-DVANISHING_LIBRARY={name}", *VARIANTS[variant][1]]
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = _ninja_path()
    try:
        load(
            name=name,
            sources=[str(SOURCE)],
            extra_cflags=flags,
            extra_ldflags=["-fopenmp"],  # at::parallel_for runs in parallel only with OpenMP
            is_python_module=False,
        )
    finally:
        os.environ["PATH"] = path
    ops = getattr(torch.ops, name)
    ops.find_onednn(ONEDNN_OP)
    _configure_gemm(ops)
    _loaded_variants[variant] = ops
    return ops


def _load() -> Any:
    """The default variant's operators (built on first use)."""
    return load_variant(default_variant())


@contextlib.contextmanager
def use_variant(variant: str) -> Iterator[None]:
    """Run the layers on another variant inside the block (for tests and measurements)."""
    global _ops
    if not available():
        raise RuntimeError("the vanishing kernel is not available (see kernel.available())")
    previous, _ops = _ops, load_variant(variant)
    try:
        yield
    finally:
        _ops = previous


def variant() -> str | None:
    """The variant the layers run now (None if the kernel is not loaded)."""
    return next((name for name, ops in _loaded_variants.items() if ops is _ops), None)


# The load-time GEMM measurement: per-thread step GEMMs of an LSTM, (rows per thread, H),
# forward (rows, H) x (H, 4H) and backward (rows, 4H) x (4H, H), every thread at once.
GEMM_GRID = ((8, 16), (32, 64), (64, 128), (128, 256))
GEMM_MARGIN = 0.95  # another backend replaces the BLAS only if at least 5 % faster


def _measure_gemms(ops: Any) -> list[dict]:
    """[{rows, H, flops, us: {backend: microseconds}, chosen}] for GEMM_GRID. Its random
    matrices come from torch's generator, whose state is restored: loading the kernel must
    not move the user's random stream (e.g. the next dropout mask)."""
    backends = [n for n in ("blas", "mkl_packed", "onednn") if ops.gemm_available(GEMMS[n])]
    threads = torch.get_num_threads()
    result = []
    with torch.random.fork_rng(devices=[]):
        for rows, H in GEMM_GRID:
            flops = 2 * rows * 4 * H * H
            repeats = max(7, min(400, int(1e8 / flops)))
            us = {
                name: sum(
                    ops.gemm_time(GEMMS[name], rows, N, K, trans, threads, repeats)
                    for N, K, trans in ((4 * H, H, True), (H, 4 * H, False))
                )
                for name in backends
            }
            fastest = min(us, key=us.get)
            chosen = fastest if us[fastest] < GEMM_MARGIN * us["blas"] else "blas"
            result.append({"rows": rows, "H": H, "flops": flops, "us": us, "chosen": chosen})
    return result


def _configure_gemm(ops: Any) -> None:
    """Fill the kernel's GEMM table from the measurement (once per process), or apply
    VANISHING_GEMM. A call uses the choice of the grid point nearest in flops."""
    global _gemm_measurement
    forced = os.environ.get("VANISHING_GEMM", "auto").strip().lower()
    if forced not in GEMMS:
        raise ValueError(f"VANISHING_GEMM={forced!r}: expected one of {', '.join(GEMMS)}")
    if ops.gemm_available(GEMMS["blas"]) and forced == "auto":
        if _gemm_measurement is None:
            _gemm_measurement = _measure_gemms(ops)
        points = _gemm_measurement
        flops = [p["flops"] for p in points]
        bounds = [int((a * b) ** 0.5) for a, b in zip(flops, flops[1:], strict=False)]
        ops.set_gemm_choice(bounds + [0], [GEMMS[p["chosen"]] for p in points])
    ops.config("gemm", GEMMS[forced])


def gemm_choice() -> list[dict]:
    """The load-time GEMM measurement: per grid point (rows per thread, H), microseconds of
    each backend (forward + backward step GEMM, every thread at once) and the one chosen.
    Empty if VANISHING_GEMM forced a backend or the BLAS is missing."""
    _loaded()
    return list(_gemm_measurement or [])


def gemm_in_use(rows: int, N: int, K: int) -> str:
    """The backend the loops use for a float32 step GEMM (rows, K) x (K, N) now."""
    code = int(_loaded().gemm_for(rows, N, K))
    return next(name for name, value in GEMMS.items() if value == code)


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

    'gemm': the per-step GEMM, a value of GEMMS (4, auto: the load-time choice; a backend
    this process lacks falls back to the BLAS); 'split_rows': each thread runs the time loop
    on its own block of at least this many batch rows (0: never); 'parallel_gemm_flops': a
    loop on one block whose per-step GEMM has fewer flops runs the BLAS on one thread (MKL);
    'elementwise_grain': batch rows of the elementwise pass run in parallel in chunks of at
    least this many elements (one block only); 'fused_input_max': the LSTM forward computes
    the input term in its step GEMM when the input size is at most this; 'huge_page_bytes':
    buffers of at least this many bytes are advised to transparent huge pages (0: never).
    """
    return int(_loaded().config(key, value))


def nonlinearities() -> list[str]:
    """The names in the kernel's nonlinearity table (to hold equal to activations.NAMES)."""
    return list(_loaded().nonlinearities())


def vector_width(dtype: torch.dtype = torch.float32) -> int:
    """Lanes of the vectors the loaded variant runs: 16 float32 for avx512, 8 otherwise."""
    return int(_loaded().vector_width(dtype == torch.float64))


def lstm_local_factors(
    i: Tensor, f: Tensor, g: Tensor, o: Tensor, c0: Tensor, c: Tensor
) -> tuple[Tensor, Tensor]:
    """The kernel's lstm_local_factors over all steps, rows in parallel: i, f, g, o, c
    (T, B, H) (views of a gates buffer are fine), c0 (B, H) -> (dc_dh (T, B, H), dz
    (T, B, 4H)), as nn.lstm.lstm_local_factors(cat(i, f, g, o), cat(c0, c[:-1]), c)."""
    dc_dh, dz = _loaded().lstm_local_factors(i, f, g, o, c0, c)
    return dc_dh, dz


def lstm_term_norms(
    f: Tensor, alpha: Tensor, beta: Tensor, U: Tensor, start: Tensor, iterations: int
) -> Tensor:
    """(4, N) float64 Lanczos estimates of sigma_max of diag(alpha_g) U_g diag(beta) for the
    gates i, f, g and of their sum with diag(f), for every item n (`lanczos.h`): f, beta
    (N, H), alpha (N, 3, H), U (3H, H) [U_i; U_f; U_g], start (4, H) the start vector of each
    operator; `iterations` Golub-Kahan steps, as spectral.lanczos_norm."""
    return _loaded().lstm_term_norms(f, alpha, beta, U, start, iterations)


def tridiagonal_max_eigenvalue(d: Tensor, e: Tensor) -> Tensor:
    """(N,) largest eigenvalue of symmetric tridiagonal matrices, d (N, k) the diagonals,
    e (N, k-1) the off-diagonals, float64; within 1e-12 relative (`lanczos.h`)."""
    return _loaded().tridiagonal_max_eigenvalue(d, e)


def gram_max_eigenvalue(Y: Tensor) -> Tensor:
    """(N,) float64 largest eigenvalue of each Gram Y_i Y_i^T, Y (N, m, H) float32/float64:
    the Gram in double, Householder reduction, tridiagonal_max_eigenvalue (`lanczos.h`)."""
    return _loaded().gram_max_eigenvalue(Y)


def sweep_forward(
    Z: Tensor,
    a: Tensor,
    W: Tensor,
    f: Tensor | None,
    beta: Tensor | None,
    starts: list[int],
    qr_every: int,
    first: Tensor | None,
    joint: bool = False,
) -> Tensor:
    """spectral._forward_bases' loop (`sweeps.h`): Z (n, k, B, H) carried through the steps,
    basis j from processing index starts[j] (non-decreasing), each (basis, sequence) block
    re-orthonormalised where (T - 1 - s) % qr_every == 0; a sequence's indices before
    first (B,) int64 leave its bases unchanged. Factors: the RNN's a (T, B, H), W (H, H), or
    the LSTM's alpha (T, B, 3, H), U (3H, H), f and beta (T, B, H). Returns the new Z, or
    with joint its n k rows orthonormalised together: (min(n k, H), B, H)."""
    return _loaded().sweep_forward(Z, a, W, f, beta, starts, qr_every, first, joint)


def sweep_back(
    Q: Tensor,
    a: Tensor,
    W: Tensor,
    f: Tensor | None,
    beta: Tensor | None,
    groups: list[tuple[int, int, int]],
) -> tuple[list[Tensor], Tensor]:
    """spectral._sweep_back's loop (`sweeps.h`): y = J^T y from Q (m, B, H) for lags 1 .. T-1,
    the first `rows` rows in each group (first, last, rows), each sequence's block divided by
    its norm. Returns a (last - first + 1, B, rows, H) block per group and the norms (T-1, B).
    Factors as sweep_forward's."""
    firsts, lasts, rows = ([g[i] for g in groups] for i in range(3))
    flat, scale = _loaded().sweep_back(Q, a, W, f, beta, firsts, lasts, rows)
    B, H = Q.shape[1], Q.shape[2]
    sizes = [(last - first + 1) * B * r * H for first, last, r in groups]
    Y = [
        y.view(last - first + 1, B, r, H)
        for y, (first, last, r) in zip(flat.split(sizes), groups, strict=True)
    ]
    return Y, scale


def _new(like: Tensor, *shape: int) -> Tensor:
    """An uninitialised buffer of like's dtype and device; a large one is backed by huge
    pages where the OS allows (config 'huge_page_bytes')."""
    t = like.new_empty(shape)
    if t.nbytes >= 2 << 20:  # the C++ side compares with huge_page_bytes
        _loaded().huge_pages(t)
    return t


def rnn_buffers(x: Tensor, h0: Tensor, W_ih: Tensor, b: Tensor | None) -> Tensor:
    """hs (T+1, B, H): h0 at index 0, then W_in x_t + b for every step, which the time loop
    overwrites with h_t."""
    T, B, _ = x.shape
    H = h0.shape[1]
    hs = _new(x, T + 1, B, H)  # (T+1, B, H)
    hs[0] = h0
    project_input(x, W_ih, b, out=hs[1:].view(T * B, H))  # W_in x_t + b, all steps
    return hs


def lstm_buffers(
    x: Tensor, h0: Tensor, c0: Tensor, W_ih: Tensor, b: Tensor | None, project: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """hs, cs (T+1, B, H) with h0, c0 at index 0; gates (T, B, 4H) holding W_ih x_t + b (if
    project, else uninitialised: the loop computes the input term)."""
    T, B, _ = x.shape
    H = h0.shape[1]
    hs = _new(x, T + 1, B, H)  # (T+1, B, H)
    cs = _new(x, T + 1, B, H)  # (T+1, B, H)
    hs[0], cs[0] = h0, c0
    gates = _new(x, T, B, 4 * H)  # (T, B, 4H)
    if project:
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


def _empty(x: Tensor, grads: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
    """None (a gradient not asked for) as an empty tensor, for a custom operator's outputs."""
    return tuple(x.new_empty(0) if g is None else g for g in grads)


def _fake_grads(x: Tensor, W_ih: Tensor, W_hh: Tensor, needed: list[bool]) -> list[Tensor]:
    """The fake implementations' (dx, dW_ih, dW_hh, db): empty where not asked for."""
    likes = (x, W_ih, W_hh, W_hh[:, 0])
    return [
        torch.empty_like(a) if need else x.new_empty(0)
        for a, need in zip(likes, needed, strict=True)
    ]


def _dz_steps(T: int, needed: list[bool]) -> int:
    """Steps of the backward's dz buffer: T when an all-steps GEMM reads it (dx or a weight
    gradient asked for), else 1 (the loop reuses one step's buffer, which stays in cache)."""
    return T if any(needed[:4]) else 1


def _all_steps_gradients(
    dz: Tensor, x: Tensor, hs: Tensor, W_ih: Tensor, needed: list[bool]
) -> tuple[Tensor | None, ...]:
    """weight_gradients (dx, dW_ih, dW_hh, db), or four None when none is asked for."""
    if not any(needed[:4]):
        return None, None, None, None
    return weight_gradients(dz, x, hs, W_ih, Needed(*needed))


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
    needed: list[bool],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    T, B, _ = x.shape
    H = W_hh.shape[0]
    dh = _new(hs, T, B, H)  # (T, B, H) dL/dh_t
    dz = _new(hs, _dz_steps(T, needed), B, H)  # (T, B, H) dL/dz_t, or one step's
    dh0 = _loaded().rnn_backward(
        dout.contiguous(), dh_n, hs, W_hh.contiguous(), nonlinearity, dh, dz, batch_sizes
    )
    grads = _all_steps_gradients(dz, x, hs, W_ih, needed)  # dx, dW_ih, dW_hh, db
    return *_empty(x, grads), dh0, dh


_rnn_backward_op = torch.library.custom_op(
    "vanishing::rnn_backward", _rnn_backward_impl, mutates_args=()
)


@_rnn_backward_op.register_fake
def _(dout, dh_n, x, hs, W_ih, W_hh, nonlinearity, batch_sizes, needed):  # noqa: ANN001, ANN202
    dx, dW_ih, dW_hh, db = _fake_grads(x, W_ih, W_hh, needed)
    return dx, dW_ih, dW_hh, db, torch.empty_like(dh_n), torch.empty_like(dout)


def _lstm_forward_impl(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b: Tensor | None,
    batch_sizes: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    ops = _loaded()
    # a small input: its term comes from the step GEMM over [x_t, h_{t-1}] (bptt.cpp InputTerm)
    fused = x.shape[2] <= ops.config("fused_input_max", -1)
    hs, cs, gates = lstm_buffers(
        x, h0, c0, W_ih, b, project=not fused
    )  # (T+1, B, H) x 2, (T, B, 4H)
    # the time loop, rows :batch_sizes[t] of step t (the loop zeroes the ended rows);
    # gates -> [i, f, g, o]
    inputs = (x.contiguous(), W_ih.contiguous(), b) if fused else (None, None, None)
    ops.lstm_forward(gates, hs, cs, W_hh.contiguous(), batch_sizes, *inputs)
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
    needed: list[bool],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    T, B, _ = x.shape
    H = W_hh.shape[1]
    dh = _new(hs, T, B, H)  # (T, B, H) dL/dh_t
    dc = _new(hs, T, B, H)  # (T, B, H) dL/dc_t
    dz = _new(hs, _dz_steps(T, needed), B, 4 * H)  # (T, B, 4H) dL/dz_t, or one step's
    dh0, dc0 = _loaded().lstm_backward(
        dout.contiguous(), dh_n, dc_n, cs, gates, W_hh.contiguous(), dh, dc, dz, batch_sizes
    )
    grads = _all_steps_gradients(dz, x, hs, W_ih, needed)  # dx, dW_ih, dW_hh, db
    return *_empty(x, grads), dh0, dc0, dh, dc


_lstm_backward_op = torch.library.custom_op(
    "vanishing::lstm_backward", _lstm_backward_impl, mutates_args=()
)


@_lstm_backward_op.register_fake
def _(dout, dh_n, dc_n, x, hs, cs, gates, W_ih, W_hh, batch_sizes, needed):  # noqa: ANN001, ANN202
    dx, dW_ih, dW_hh, db = _fake_grads(x, W_ih, W_hh, needed)
    dh0, dc0, dh, dc = (torch.empty_like(a) for a in (dh_n, dc_n, dout, dout))
    return dx, dW_ih, dW_hh, db, dh0, dc0, dh, dc


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
    dout: Tensor, dh_n: Tensor, cache: RNNCache, needed: Needed = ALL_GRADIENTS
) -> tuple[Tensor | None, Tensor, Tensor | None, Tensor | None, Tensor | None, Tensor]:
    """As rnn.rnn_backward: (dx, dh0, dW_ih, dW_hh, db, dh (T, B, H)), None where not needed."""
    c = cache
    dx, dW_ih, dW_hh, db, dh0, dh = _op(_rnn_backward_op, _rnn_backward_impl)(
        dout, dh_n, c.x, c.hs, c.W_ih, c.W_hh, c.nonlinearity, c.batch_sizes, list(needed[:4])
    )
    return _none(dx), dh0, _none(dW_ih), _none(dW_hh), _none(db), dh


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
    dout: Tensor, dh_n: Tensor, dc_n: Tensor, cache: LSTMCache, needed: Needed = ALL_GRADIENTS
) -> tuple[Tensor | None, ...]:
    """As lstm.lstm_backward: (dx, dh0, dc0, dW_ih, dW_hh, db, None, dh, dc), None where not
    needed."""
    c = cache
    dx, dW_ih, dW_hh, db, dh0, dc0, dh, dc = _op(_lstm_backward_op, _lstm_backward_impl)(
        dout, dh_n, dc_n, c.x, c.hs, c.cs, c.gates, c.W_ih, c.W_hh, c.batch_sizes, list(needed[:4])
    )
    return _none(dx), dh0, dc0, _none(dW_ih), _none(dW_hh), _none(db), None, dh, dc


def lstm_inference(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b: Tensor | None,
    batch_sizes: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The LSTM forward without a cache, for calls that need no gradient and record nothing:
    (out (T, B, H) = h_1 .. h_T, h_n, c_n (B, H) at each row's last step). One GEMM per step
    over [x_t, h_{t-1}] and [W_ih, W_hh]; no gates or c_t kept."""
    return _loaded().lstm_inference(
        x.contiguous(), h0, c0, W_ih.contiguous(), W_hh.contiguous(), b, batch_sizes
    )
