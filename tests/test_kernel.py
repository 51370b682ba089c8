"""The compiled CPU kernel (vanishing.kernel) against the reference path, and the fallback.

Each case runs one layer forward and backward twice, kernel on and kernel off, with the same
weights, inputs and loss, and compares outputs, final states, every gradient and every
recorded per-step tensor: float64 to 1e-12, float32 to 1e-5.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import torch
from conftest import forward_backward, packed_call
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

import vanishing
from vanishing.gradflow.steps import lstm_steps
from vanishing.nn import kernel
from vanishing.nn.activations import NAMES
from vanishing.nn.lstm import lstm_local_factors

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


@pytest.fixture(autouse=True)
def restore_kernel_choice() -> Iterator[None]:
    """Leave the kernel's on/off choice as the test found it."""
    yield
    kernel.set_enabled(None)


def run(layer: torch.nn.Module, x: Tensor, hx: object, use_kernel: bool, seed: int) -> dict:
    """conftest.forward_backward with the kernel on or off."""
    kernel.set_enabled(use_kernel)
    return forward_backward(layer, x, hx, seed=seed)


def assert_same(a: dict, b: dict, dtype: torch.dtype) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if a[name] is None or b[name] is None:
            assert a[name] is None and b[name] is None, name
            continue
        torch.testing.assert_close(
            a[name], b[name], rtol=TOL[dtype], atol=TOL[dtype], msg=lambda m, n=name: f"{n}: {m}"
        )


def make(kind: str, nonlinearity: str, I: int, H: int, dtype: torch.dtype, **kw) -> torch.nn.Module:
    if kind == "lstm":
        return vanishing.LSTM(I, H, dtype=dtype, record=True, **kw)
    return vanishing.RNN(I, H, nonlinearity=nonlinearity, dtype=dtype, record=True, **kw)


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["lstm", "rnn"]),
    nonlinearity=st.sampled_from(["tanh", "relu", "sigmoid"]),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    T=st.integers(1, 12),
    B=st.integers(1, 5),
    I=st.integers(1, 6),
    H=st.integers(1, 21),  # below, at and above the vector widths 4 and 8, with tails
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    bias=st.booleans(),
    with_states=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_kernel_equals_reference(
    built: None,
    kind: str,
    nonlinearity: str,
    dtype: torch.dtype,
    T: int,
    B: int,
    I: int,
    H: int,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    bias: bool,
    with_states: bool,
    seed: int,
) -> None:
    torch.manual_seed(seed)
    layer = make(
        kind,
        nonlinearity,
        I,
        H,
        dtype,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        bias=bias,
    )
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=dtype)
    hx = None
    if with_states:
        shape = (num_layers * (2 if bidirectional else 1), B, H)
        hx = torch.randn(shape, dtype=dtype)
        if kind == "lstm":
            hx = (hx, torch.randn(shape, dtype=dtype))
    name = f"{kind}_forward"
    with mock.patch.object(kernel, name, wraps=getattr(kernel, name)) as spy:
        fast = run(layer, x, hx, use_kernel=True, seed=seed)
    assert spy.call_count == num_layers * (2 if bidirectional else 1)
    slow = run(layer, x, hx, use_kernel=False, seed=seed)
    assert_same(fast, slow, dtype)


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["lstm", "rnn"]),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    T=st.integers(1, 9),
    H=st.integers(1, 21),
    bidirectional=st.booleans(),
    data=st.data(),
)
def test_kernel_equals_reference_packed(
    built: None, kind: str, dtype: torch.dtype, T: int, H: int, bidirectional: bool, data
) -> None:
    """A PackedSequence batch, traces included: the kernel's running rows and zeroed ended
    rows equal the reference's."""
    lengths = data.draw(st.lists(st.integers(1, T), min_size=1, max_size=6), label="lengths")
    torch.manual_seed(len(lengths) * T + H)
    layer = make(kind, "tanh", 3, H, dtype, num_layers=2, bidirectional=bidirectional)
    x = torch.randn(T, len(lengths), 3, dtype=dtype)
    results, lengths_seen = [], []
    for use_kernel in (True, False):
        kernel.set_enabled(use_kernel)
        call = packed_call(layer, T, lengths)
        results.append(forward_backward(layer, x, call=call, with_traces=True))
        lengths_seen.append([trace.lengths.tolist() for trace in layer.traces])
    assert_same(*results, dtype)
    assert lengths_seen[0] == lengths_seen[1] == [lengths] * len(layer.traces)


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_unbatched_and_expanded_gradient(built: None, kind: str, dtype: torch.dtype) -> None:
    """Unbatched input and out.sum(): dL/d(output) reaches the kernel as a stride-0 tensor."""
    torch.manual_seed(0)
    layer = make(kind, "tanh", 3, 19, dtype)
    x = torch.randn(30, 3, dtype=dtype)
    results = []
    for use_kernel in (True, False):
        kernel.set_enabled(use_kernel)
        layer.zero_grad(set_to_none=True)
        layer(x)[0].sum().backward()
        results.append({n: p.grad for n, p in layer.named_parameters()})
        results[-1].update({f: getattr(layer.traces[0], f) for f in ("h", "dh")})
    assert_same(*results, dtype)


@pytest.fixture
def knobs() -> Iterator[None]:
    """Two threads (the suite runs on one; row blocks need two), the kernel's GEMM and
    split_rows restored after the test."""
    threads, before = torch.get_num_threads(), {k: kernel.config(k) for k in ("gemm", "split_rows")}
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)
    kernel.set_enabled(None)
    for key, value in before.items():
        kernel.config(key, value)


@pytest.mark.parametrize("split_rows", [0, 1, 4], ids=lambda n: f"split{n}")
@pytest.mark.parametrize("gemm", list(kernel.GEMMS))
def test_gemm_backends_and_row_blocks_agree(built: None, knobs: None, gemm: str, split_rows: int):
    """Every per-step GEMM backend (the ones this process lacks fall back to the BLAS), on one
    block of rows or one per thread (B = 9: blocks of 5 and 4 rows), equals the reference."""
    kernel.config("gemm", kernel.GEMMS[gemm])
    kernel.config("split_rows", split_rows)
    if gemm != "auto" and kernel._loaded().gemm_available(kernel.GEMMS[gemm]):
        assert kernel.gemm_in_use(9, 36, 9) == gemm  # forced: the loops run it (oneDNN too)
    for kind, dtype in (("lstm", torch.float32), ("rnn", torch.float32), ("lstm", torch.float64)):
        torch.manual_seed(1)
        layer = make(kind, "tanh", 2, 9, dtype, bidirectional=True)
        x = torch.randn(6, 9, 2, dtype=dtype)
        assert_same(run(layer, x, None, True, 0), run(layer, x, None, False, 0), dtype)
        call = packed_call(layer, 6, [6, 6, 5, 5, 4, 3, 2, 2, 1])  # some blocks end early
        packed = []
        for use_kernel in (True, False):
            kernel.set_enabled(use_kernel)
            packed.append(forward_backward(layer, x, call=call, with_traces=True))
        assert_same(*packed, dtype)


def test_onednn_missing_falls_back_to_blas(built: None, knobs: None) -> None:
    """oneDNN's operator is private: where the lookup fails, the GEMM choice leaves it out and
    a loop asked to use it takes the BLAS (results still equal the reference)."""
    ops = kernel._loaded()
    try:
        assert not ops.find_onednn("mkldnn::_no_such_operator")
        assert "onednn" not in {name for p in kernel._measure_gemms(ops) for name in p["us"]}
        kernel.config("gemm", kernel.GEMMS["onednn"])
        assert kernel.gemm_in_use(64, 256, 64) == "blas"
        layer = make("lstm", "tanh", 2, 9, torch.float32)
        x = torch.randn(6, 9, 2)
        assert_same(run(layer, x, None, True, 0), run(layer, x, None, False, 0), torch.float32)
    finally:
        ops.find_onednn(kernel.ONEDNN_OP)


@pytest.mark.parametrize("gemm", ["onednn", "blas"])
def test_forced_gemm_is_the_one_that_runs(built: None, knobs: None, gemm: str) -> None:
    """Forced to oneDNN, every step's GEMM is a call of its operator (seen by the profiler:
    T forward and T backward, T more under no_grad); forced to the BLAS, none is."""
    if not kernel._loaded().gemm_available(kernel.GEMMS[gemm]):
        pytest.skip(f"this torch build has no {gemm}")
    kernel.config("gemm", kernel.GEMMS[gemm])
    kernel.config("split_rows", 0)
    layer = make("lstm", "tanh", 2, 9, torch.float32)
    x = torch.randn(6, 9, 2)
    with torch.profiler.profile() as profiler:
        layer(x)[0].sum().backward()
        with torch.no_grad():
            layer.record = False
            layer(x)
    calls = sum(e.count for e in profiler.key_averages() if e.key == kernel.ONEDNN_OP)
    assert calls == (3 * 6 if gemm == "onednn" else 0)


def test_gemm_choice_is_measured(built: None) -> None:
    """The load-time measurement covers every grid size and chooses one backend per size."""
    choice = kernel.gemm_choice()
    if os.environ.get("VANISHING_GEMM", "auto") != "auto":
        assert choice == []
        return
    assert [(p["rows"], p["H"]) for p in choice] == list(kernel.GEMM_GRID)
    for p in choice:
        assert "blas" in p["us"] and p["chosen"] in p["us"]
        assert all(us > 0 for us in p["us"].values())


def test_environment_variable_forces_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VANISHING_KERNEL", "0")
    assert not kernel.available()
    layer = make("lstm", "tanh", 2, 4, torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with mock.patch.object(kernel, "lstm_forward") as spy:
            layer(torch.randn(5, 2, 2))[0].sum().backward()
    spy.assert_not_called()
    assert layer.traces[0].dh is not None


def test_loading_the_kernel_leaves_torchs_random_stream_alone() -> None:
    """The load-time GEMM measurement draws random matrices; a fresh process's first forward
    (which loads the kernel) must leave the generator as it found it, or the next dropout
    mask of a seeded run would depend on whether the kernel was loaded yet."""
    code = (
        "import torch, vanishing\n"
        "layer = vanishing.LSTM(3, 8)\n"
        "torch.manual_seed(0)\n"
        "before = torch.get_rng_state()\n"
        "layer(torch.ones(5, 2, 3))\n"
        "assert vanishing.nn.kernel.available()\n"
        "assert vanishing.nn.kernel.gemm_choice(), 'the measurement ran'\n"
        "assert torch.equal(before, torch.get_rng_state())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def test_failed_build_falls_back_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that fails (here: simulated) warns once per process; the layers still work."""

    def broken_load() -> None:
        raise RuntimeError("simulated: no C++ compiler")

    monkeypatch.delenv("VANISHING_KERNEL", raising=False)
    monkeypatch.setattr(kernel, "_load", broken_load)
    monkeypatch.setattr(kernel, "_ops", None)
    monkeypatch.setattr(kernel, "_failed", False)
    layers = [make("lstm", "tanh", 2, 4, torch.float32), make("rnn", "relu", 2, 4, torch.float64)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            for layer in layers:
                layer(torch.randn(5, 3, 2, dtype=layer.weight_hh_l0.dtype))[0].sum().backward()
                assert layer.traces[0].dh is not None
        assert not kernel.available()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    assert "simulated: no C++ compiler" in messages[0] and "reference path" in messages[0]


def test_kernel_nonlinearity_table_is_pythons(built: None) -> None:
    """bptt.cpp mirrors nn/activations.py's table under the same names, in the same order."""
    assert kernel.nonlinearities() == list(NAMES)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kernel_local_factors_are_pythons(built: None, dtype: torch.dtype) -> None:
    """bptt.cpp's lstm_local_factors (used in its backward loop) equals nn/lstm.py's."""
    torch.manual_seed(3)
    T, B, H = 7, 3, 13  # H: vector tails at widths 4, 8 and 16
    gates = torch.cat(
        (torch.rand(T, B, 2 * H), torch.rand(T, B, H) * 2 - 1, torch.rand(T, B, H)), dim=2
    ).to(dtype)  # [i, f] in (0, 1), g in (-1, 1), o in (0, 1)
    cs = (3 * torch.randn(T + 1, B, H)).to(dtype)
    ours = kernel.lstm_local_factors(*gates.chunk(4, 2), cs[0], cs[1:])  # strided views
    python = lstm_local_factors(gates, cs[:-1], cs[1:])
    for a, b in zip(ours, python, strict=True):
        torch.testing.assert_close(a, b, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradflow_step_factors_are_the_same_with_the_kernel_on_and_off(
    built: None, dtype: torch.dtype
) -> None:
    """gradflow's lstm_steps takes its factors from the kernel when it can: both directions,
    variable lengths (each sequence flipped within its steps), a nonzero c_0."""
    torch.manual_seed(4)
    layer = vanishing.LSTM(3, 13, bidirectional=True, dtype=dtype)
    x = torch.randn(9, 4, 3, dtype=dtype)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, [9, 4, 7, 1], enforce_sorted=False)
    state = torch.randn(2, 4, 13, dtype=dtype)
    with vanishing.record(layer) as recording:
        layer(packed, (state, 2 * state))
    for trace in recording[""]:
        kernel.set_enabled(True)
        ours = lstm_steps(layer, trace, dtype=dtype)
        kernel.set_enabled(False)
        torchs = lstm_steps(layer, trace, dtype=dtype)
        for name in ("f", "alpha", "beta"):
            torch.testing.assert_close(
                getattr(ours, name), getattr(torchs, name), rtol=TOL[dtype], atol=TOL[dtype]
            )


# Lanes of a float32 vector in each variant's build (ATen's Vectorized at that capability).
VECTOR_WIDTH = {"avx512": 16, "avx2": 8, "generic": 8}


def test_variants_follow_torchs_cpu_capability() -> None:
    """The default is the widest variant whose instructions torch itself runs here."""
    capability = torch.backends.cpu.get_cpu_capability()
    expected = {"AVX512": ["avx512", "avx2", "generic"], "AVX2": ["avx2", "generic"]}
    assert kernel.supported_variants() == expected.get(capability, ["generic"])
    assert kernel.default_variant() == kernel.supported_variants()[0]
    names = {kernel.library_name(v) for v in kernel.VARIANTS}
    assert len(names) == len(kernel.VARIANTS) and all(v in kernel.library_name(v) for v in names)


@pytest.mark.parametrize("variant", list(kernel.VARIANTS))
def test_each_variant_equals_reference(built: None, variant: str) -> None:
    """Every variant this CPU runs (built and loaded beside the default one) equals the
    reference: forward, backward and recorded steps, and the no_grad inference path; H covers
    full vectors and tails at widths 8 and 16."""
    if variant not in kernel.supported_variants():
        pytest.skip(f"torch reports {torch.backends.cpu.get_cpu_capability()}: no {variant}")
    with kernel.use_variant(variant):
        assert kernel.variant() == variant
        assert kernel.vector_width(torch.float32) == VECTOR_WIDTH[variant]
        assert kernel.vector_width(torch.float64) == VECTOR_WIDTH[variant] // 2
        for kind, nonlinearity, dtype, H in (
            ("lstm", "tanh", torch.float32, 16),
            ("lstm", "tanh", torch.float32, 21),
            ("lstm", "tanh", torch.float64, 13),
            ("rnn", "tanh", torch.float32, 35),
            ("rnn", "sigmoid", torch.float64, 8),
            ("rnn", "relu", torch.float32, 19),
        ):
            torch.manual_seed(H)
            layer = make(kind, nonlinearity, 3, H, dtype, num_layers=2)
            x = 3 * torch.randn(7, 5, 3, dtype=dtype)  # saturating gates too
            assert_same(run(layer, x, None, True, 0), run(layer, x, None, False, 0), dtype)
            outs = []
            for use_kernel in (True, False):
                kernel.set_enabled(use_kernel)
                layer.record = False
                with torch.no_grad():
                    outs.append(dict(zip(("out", "h_n"), layer(x), strict=True)))
                layer.record = True
            assert kernel.variant() == variant
            assert_same(*outs, dtype)


@pytest.mark.parametrize("fused_input_max", [0, 1000], ids=["input_before_loop", "input_in_loop"])
def test_lstm_input_term_before_or_in_the_loop_agree(built: None, fused_input_max: int) -> None:
    """The LSTM forward's input term, one all-steps GEMM before the loop or the step GEMM
    over [x_t, h_{t-1}] with the bias in the elementwise pass: both equal the reference
    (with and without bias, packed, two threads with row blocks)."""
    before = kernel.config("fused_input_max"), torch.get_num_threads()
    kernel.config("fused_input_max", fused_input_max)
    torch.set_num_threads(2)
    try:
        for dtype, bias in ((torch.float64, True), (torch.float32, False)):
            torch.manual_seed(2)
            layer = make("lstm", "tanh", 5, 11, dtype, bias=bias, num_layers=2)
            x = torch.randn(6, 9, 5, dtype=dtype)
            assert_same(run(layer, x, None, True, 0), run(layer, x, None, False, 0), dtype)
            call = packed_call(layer, 6, [6, 6, 5, 5, 4, 3, 2, 2, 1])
            packed = []
            for use_kernel in (True, False):
                kernel.set_enabled(use_kernel)
                packed.append(forward_backward(layer, x, call=call, with_traces=True))
            assert_same(*packed, dtype)
    finally:
        kernel.set_enabled(None)
        kernel.config("fused_input_max", before[0])
        torch.set_num_threads(before[1])


def _anon_huge_kb(t: Tensor) -> int:
    """AnonHugePages (kB) of this process's mapping that holds the first 2 MiB boundary in t
    (madvise splits a mapping at the advised range)."""
    page = 2 << 20
    address = (t.data_ptr() + page - 1) // page * page
    lines = Path("/proc/self/smaps").read_text().splitlines()
    inside = False
    for line in lines:
        head = line.split()[0]
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            start, end = (int(v, 16) for v in head.split("-"))
            inside = start <= address < end
        elif inside and line.startswith("AnonHugePages:"):
            return int(line.split()[1])
    return 0


def test_large_buffers_get_huge_pages(built: None) -> None:
    """A buffer of at least huge_page_bytes is advised to transparent huge pages (where the OS
    runs them on request): first touch then maps 2 MiB pages, not 4 KiB ones; below the
    threshold (or with the knob at 0) nothing is advised."""
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not thp.exists() or "[never]" in thp.read_text():
        pytest.skip("no transparent huge pages on this OS")
    before = kernel.config("huge_page_bytes")
    try:
        big = kernel._new(torch.empty(0), 4 << 20)  # 16 MiB of float32
        big.fill_(1.0)
        assert _anon_huge_kb(big) >= 2048
        if "[madvise]" in thp.read_text():  # only advised memory gets them
            kernel.config("huge_page_bytes", 0)
            plain = kernel._new(torch.empty(0), 4 << 20)
            plain.fill_(1.0)
            assert _anon_huge_kb(plain) == 0
    finally:
        kernel.config("huge_page_bytes", before)
