"""The kernel's Lanczos operators (kernel/lanczos.h) against the torch reference of gradflow.

lstm_term_norms equals terms._lanczos_terms (spectral.lanczos_norm on the same factors and
start vectors): float64 to 1e-9 (the reference's bisection stops 2^-32 of its bracket above
the eigenvalue), float32 to 1e-4. tridiagonal_max_eigenvalue equals eigvalsh's largest.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import vanishing
from vanishing import gradflow as gf
from vanishing.gradflow import terms
from vanishing.gradflow.steps import LSTMSteps
from vanishing.nn import kernel

F64 = torch.float64
RTOL = {torch.float64: 1e-9, torch.float32: 1e-4}


def _steps(N: int, H: int, dtype: torch.dtype, zero_rows: int, seed: int) -> LSTMSteps:
    """Random factors of one step (index 1) of N sequences; the first zero_rows have beta = 0."""
    gen = torch.Generator().manual_seed(seed)
    f = torch.rand(2, N, H, generator=gen, dtype=dtype)  # (2, N, H)
    alpha = 0.5 * torch.randn(2, N, 3, H, generator=gen, dtype=dtype)  # (2, N, 3, H)
    beta = torch.rand(2, N, H, generator=gen, dtype=dtype)  # (2, N, H)
    beta[1, :zero_rows] = 0.0
    U = torch.randn(3 * H, H, generator=gen, dtype=dtype) / H**0.5  # (3H, H)
    return LSTMSteps(f=f, alpha=alpha, beta=beta, U=U)


def _op(steps: LSTMSteps, start: torch.Tensor, iterations: int, spaced: bool) -> torch.Tensor:
    """kernel.lstm_term_norms on step 2's factors; spaced: f and alpha as views whose rows
    are spaced, as slices of the gates and of dz are (N, 4H) rows, else contiguous."""
    f, alpha, beta = (x[1] for x in (steps.f, steps.alpha, steps.beta))  # (N, H), (N, 3, H)
    if spaced:
        N, H = f.shape
        gates, dz = f.new_zeros(N, 4, H), f.new_zeros(N, 4, H)  # (N, 4H) rows
        gates[:, 1], dz[:, :3] = f, alpha
        f, alpha = gates[:, 1], dz[:, :3]  # (N, H) and (N, 3, H) views, rows 4H apart
    else:
        alpha = alpha.contiguous()
    return kernel.lstm_term_norms(f, alpha, beta, steps.U, start, iterations)


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from([torch.float64, torch.float32]),
    N=st.integers(1, 40),
    H=st.integers(1, 70),
    extra=st.integers(0, 72),
    zero_rows=st.integers(0, 2),
    seed=st.integers(0, 2**16),
    spaced=st.booleans(),
)
def test_term_norms_equal_lanczos_norm(
    built: None,
    dtype: torch.dtype,
    N: int,
    H: int,
    extra: int,
    zero_rows: int,
    seed: int,
    spaced: bool,
) -> None:
    iterations = 1 + extra % (H + 2)  # 1 .. H + 2
    steps = _steps(N, H, dtype, zero_rows, seed)
    start = terms._starts(steps.U, torch.Generator().manual_seed(seed)).to(dtype)  # (4, H)
    got = _op(steps, start, iterations, spaced)  # (4, N)
    expected = terms._lanczos_terms(steps, start, iterations).view(4, N)
    assert got.dtype == F64 and got.shape == (4, N)
    torch.testing.assert_close(got, expected, rtol=RTOL[dtype], atol=1e-12)
    assert torch.all(got[:3, :zero_rows] == 0)  # beta = 0: the gate terms vanish


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lstm_terms_same_with_and_without_kernel(built: None, dtype: torch.dtype) -> None:
    torch.manual_seed(5)
    layer = vanishing.LSTM(3, 21, forget_bias=1.0, dtype=dtype)
    x = torch.randn(9, 4, 3, dtype=dtype)
    lengths = torch.tensor([9, 7, 7, 2])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths)
    for inputs in (x, packed):
        with vanishing.record(layer) as rec:
            out = layer(inputs)[0]
            (out.data if inputs is packed else out).sum().backward()
        (trace,) = rec[""]
        with_kernel = gf.lstm_terms(layer, trace)
        kernel.set_enabled(False)
        try:
            without = gf.lstm_terms(layer, trace)
        finally:
            kernel.set_enabled(None)
        for name in ("A", "B", "C", "D", "total"):
            np.testing.assert_allclose(
                getattr(with_kernel, name), getattr(without, name), rtol=RTOL[dtype], err_msg=name
            )


@pytest.mark.parametrize("k", [1, 2, 3, 7, 30])
def test_tridiagonal_max_eigenvalue_matches_eigvalsh(built: None, k: int) -> None:
    gen = torch.Generator().manual_seed(k)
    d = 3 * torch.rand(300, k, generator=gen, dtype=F64) - 1  # indefinite as well
    e = torch.randn(300, k - 1, generator=gen, dtype=F64)
    d[0], e[0] = 0.0, 0.0  # the zero matrix
    e[1] = 0.0  # diagonal
    e[2, : (k - 1) // 2] = 0.0  # splits into blocks
    e[3] = 1e-3 * e[3]  # nearly split: close eigenvalues
    d[4] = 1.0  # ones on the diagonal, a cluster when e is small
    e[4] = 1e-9 * e[4]
    T = torch.diag_embed(d) + torch.diag_embed(e, 1) + torch.diag_embed(e, -1)
    expected = torch.linalg.eigvalsh(T)[:, -1]
    scale = T.abs().sum(dim=-1).amax(dim=-1)  # (N,) ||T||_inf: eigvalsh's own accuracy is
    got = kernel.tridiagonal_max_eigenvalue(d, e)  # absolute, eps ||T||
    assert torch.all((got - expected).abs() <= 1e-12 * expected.abs() + 1e-14 * scale)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda f, a, b, U, s: (f.float(), a, b, U, s, 3), "dtype"),
        (lambda f, a, b, U, s: (f, a[:, :2].contiguous(), b, U, s, 3), "expected f"),
        (lambda f, a, b, U, s: (f, a, b, U[:-1], s, 3), "expected f"),
        (lambda f, a, b, U, s: (f, a, b, U, s[:3], 3), "expected f"),
        (lambda f, a, b, U, s: (f, a, b.t(), U, s, 3), "contiguous"),
        (lambda f, a, b, U, s: (f, a, b, U, s, 0), "iterations"),
        (lambda f, a, b, U, s: (f.int(), a.int(), b.int(), U.int(), s.int(), 3), "float32"),
    ],
)
def test_term_norms_bad_inputs_raise(built: None, call: object, match: str) -> None:
    H = N = 4
    f, b = torch.rand(N, H, dtype=F64), torch.rand(N, H, dtype=F64)
    a, U, s = torch.rand(N, 3, H, dtype=F64), torch.rand(3 * H, H, dtype=F64), torch.rand(4, H)
    with pytest.raises(RuntimeError, match=match):
        kernel.lstm_term_norms(*call(f, a, b, U, s.to(F64)))


def test_tridiagonal_bad_inputs_raise(built: None) -> None:
    d = torch.rand(5, 3, dtype=F64)
    with pytest.raises(RuntimeError, match="float64"):
        kernel.tridiagonal_max_eigenvalue(d.float(), torch.rand(5, 2))
    with pytest.raises(RuntimeError, match="expected d"):
        kernel.tridiagonal_max_eigenvalue(d, torch.rand(5, 3, dtype=F64))
    with pytest.raises(RuntimeError, match="contiguous"):
        kernel.tridiagonal_max_eigenvalue(d.t(), torch.rand(3, 4, dtype=F64).t())


@pytest.mark.parametrize("variant", list(kernel.VARIANTS))
def test_each_variant_and_thread_count_agree(built: None, variant: str) -> None:
    if variant not in kernel.supported_variants():
        pytest.skip(f"this CPU does not run the {variant} variant")
    steps = _steps(300, 19, torch.float64, 1, seed=7)  # H = 19: a partial vector in each row
    start = terms._starts(steps.U, torch.Generator().manual_seed(7))  # (4, H)
    expected = terms._lanczos_terms(steps, start, 5).view(4, 300)
    threads = torch.get_num_threads()
    with kernel.use_variant(variant):
        for n, spaced in ((1, False), (2, False), (2, True)):  # one block, or one per thread
            torch.set_num_threads(n)
            try:
                got = _op(steps, start, 5, spaced)
            finally:
                torch.set_num_threads(threads)
            torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)
