"""The kernel's sweeps (kernel/sweeps.h) against the torch loops of spectral.py.

sweep_forward and sweep_back run spectral._forward_bases' and _sweep_back's loops; with the
kernel on and off: the forward bases span the same spaces (equal projectors Q^T Q), the
backward sweep gives the same blocks and scales, and product_norms_estimate the same values,
float64 to 1e-9, float32 to 1e-3, for the RNN (tanh, relu, sigmoid) and the LSTM, with and
without variable lengths. A relu RNN's dependent basis vectors take the same unit vectors on
both paths (spectral._gram_schmidt).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vanishing.gradflow import spectral
from vanishing.gradflow.steps import LSTMSteps, RNNSteps
from vanishing.nn import kernel

F64 = torch.float64
RTOL = {torch.float64: 1e-9, torch.float32: 1e-3}
SPAN_ATOL = {torch.float64: 1e-7, torch.float32: 1e-2}
KINDS = ["tanh", "relu", "sigmoid", "lstm"]


def _steps(
    kind: str, T: int, B: int, H: int, dtype: torch.dtype, lengths: list[int] | None, seed: int
) -> RNNSteps | LSTMSteps:
    """Random step factors, end-aligned and zero at the padding as steps.py builds them; the
    LSTM's alpha a view of a (T, B, 4H) tensor (as lstm_steps slices dz)."""
    gen = torch.Generator().manual_seed(seed)
    n = None if lengths is None else torch.tensor(lengths)
    real = torch.ones(T, B, 1, dtype=torch.bool)  # (T, B, 1) end-aligned real indices
    if n is not None:
        real = (torch.arange(T).view(T, 1) >= (T - n).view(1, B)).unsqueeze(-1)
    if kind == "lstm":
        f = torch.rand(T, B, H, generator=gen, dtype=dtype)  # (T, B, H)
        dz = 0.5 * torch.randn(T, B, 4 * H, generator=gen, dtype=dtype)  # (T, B, 4H)
        alpha = dz[:, :, : 3 * H].unflatten(2, (3, H))  # (T, B, 3, H) a view
        beta = torch.rand(T, B, H, generator=gen, dtype=dtype)  # (T, B, H)
        beta[0] = 0.0
        U = torch.randn(3 * H, H, generator=gen, dtype=dtype) / H**0.5  # (3H, H)
        if n is not None:
            f, beta = f * real, beta * real
            alpha = alpha * real.unsqueeze(-1)
        return LSTMSteps(f=f, alpha=alpha, beta=beta, U=U, lengths=n)
    z = torch.randn(T, B, H, generator=gen, dtype=dtype)  # (T, B, H) pre-activations
    a = {
        "tanh": 1 - z.tanh() ** 2,
        "relu": (z > 0).to(dtype),
        "sigmoid": z.sigmoid() * (1 - z.sigmoid()) * 4,
    }[kind]
    W = 1.5 * torch.randn(H, H, generator=gen, dtype=dtype) / H**0.5  # (H, H)
    return RNNSteps(a=a * real, W=W, lengths=n)


@contextlib.contextmanager
def _kernel(on: bool) -> Iterator[None]:
    kernel.set_enabled(on)
    try:
        yield
    finally:
        kernel.set_enabled(None)


shapes = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(KINDS),
        "T": st.integers(1, 40),
        "B": st.integers(1, 5),
        "H": st.integers(1, 40),
        "columns": st.integers(1, 8),
        "dtype": st.sampled_from([torch.float64, torch.float32]),
        "seed": st.integers(0, 2**16),
        "ragged": st.booleans(),
    }
)


def _case(case: dict) -> tuple[RNNSteps | LSTMSteps, int, int]:
    T, B = case["T"], case["B"]
    gen = torch.Generator().manual_seed(case["seed"] + 1)
    lengths = torch.randint(1, T + 1, (B,), generator=gen).tolist() if case["ragged"] else None
    steps = _steps(case["kind"], T, B, case["H"], case["dtype"], lengths, case["seed"])
    return steps, T, min(case["columns"], case["H"])


@settings(max_examples=60, deadline=None)
@given(case=shapes)
def test_forward_bases_span_the_same_spaces(built: None, case: dict) -> None:
    """Each basis (n, k, B, H) after the forward loop: orthonormal, every leading set of its
    rows spanning the same space on both paths (equal projectors)."""
    steps, T, k = _case(case)
    B, H = steps.dim
    gen = torch.Generator().manual_seed(case["seed"])
    n = len(spectral.basis_lags(T))
    Z = spectral._orthonormal(torch.randn(n, k, B, H, generator=gen, dtype=steps.dtype))
    out = {}
    for on in (True, False):
        with _kernel(on):
            out[on] = (
                spectral._carry_bases(steps, T, Z, joint=False).to(F64).permute(0, 2, 1, 3)
            )  # (n,B,k,H)
    got, expected = out[True], out[False]
    assert got.shape == expected.shape == (n, B, k, H)
    eye = torch.eye(k, dtype=F64).expand(n, B, k, k)
    torch.testing.assert_close(got @ got.mT, eye, rtol=0, atol=RTOL[case["dtype"]])
    for m in range(1, k + 1):  # every leading set of rows
        P, P_ref = got[:, :, :m].mT @ got[:, :, :m], expected[:, :, :m].mT @ expected[:, :, :m]
        torch.testing.assert_close(P, P_ref, rtol=0, atol=SPAN_ATOL[case["dtype"]])


@settings(max_examples=60, deadline=None)
@given(case=shapes)
def test_sweep_back_equals_the_torch_loop(built: None, case: dict) -> None:
    steps, T, k = _case(case)
    B, H = steps.dim
    gen = torch.Generator().manual_seed(case["seed"])
    m = min(len(spectral.basis_lags(T)) * k, H)
    Q = torch.randn(m, B, H, generator=gen, dtype=steps.dtype)  # (m, B, H)
    with _kernel(True):
        Y, log_scale = spectral._sweep_back(steps, T, Q, k)
    with _kernel(False):
        Y_ref, log_scale_ref = spectral._sweep_back(steps, T, Q, k)
    rtol = RTOL[case["dtype"]]
    torch.testing.assert_close(log_scale, log_scale_ref, rtol=rtol, atol=rtol)
    assert len(Y) == len(Y_ref)
    for y, y_ref in zip(Y, Y_ref, strict=True):
        torch.testing.assert_close(y, y_ref, rtol=rtol, atol=rtol)


@settings(max_examples=60, deadline=None)
@given(case=shapes)
def test_product_norms_estimate_same_with_and_without_kernel(built: None, case: dict) -> None:
    steps, T, k = _case(case)
    with _kernel(True):
        got = spectral.product_norms_estimate(steps, T, columns=k)
    with _kernel(False):
        expected = spectral.product_norms_estimate(steps, T, columns=k)
    torch.testing.assert_close(
        torch.from_numpy(got),
        torch.from_numpy(expected),
        rtol=RTOL[case["dtype"]],
        atol=1e-300,
        equal_nan=True,
    )


@pytest.mark.parametrize(("m", "H"), [(1, 1), (2, 2), (3, 5), (3, 17), (17, 17), (40, 40)])
def test_gram_schmidt_completes_dependent_blocks(built: None, m: int, H: int) -> None:
    """Zero and repeated rows become unit vectors (up to a whole basis of R^H): the output is
    orthonormal and finite, and the kernel's orthonormalisation (one identity step, then its
    QR) agrees."""
    X = torch.zeros(4, m, H, dtype=F64)  # (N, m, H)
    X[1, 0, 0] = 1.0
    X[2] = torch.randn(H, dtype=F64)  # every row the same
    X[3, 0] = torch.randn(H, dtype=F64)  # one row, then zeros
    Q = spectral._gram_schmidt(X)
    torch.testing.assert_close(Q @ Q.mT, torch.eye(m, dtype=F64).expand(4, m, m))
    orth = spectral._orthonormal(X.movedim(0, 1)).movedim(1, 0)  # (N, m, H)
    sign = (orth * Q).sum(dim=-1, keepdim=True).sign()  # (N, m, 1) the QR's signs
    torch.testing.assert_close(orth * sign, Q)  # the dependent blocks: the same vectors
    Z = X.movedim(0, 1).unsqueeze(0).contiguous()  # (1, m, N, H) a basis per sequence
    a, W = torch.ones(1, 4, H, dtype=F64), torch.eye(H, dtype=F64)  # (1, N, H), (H, H)
    out = kernel.sweep_forward(Z, a, W, None, None, [0], 1, None)[0].movedim(1, 0)
    torch.testing.assert_close(out, Q)


A = torch.rand(5, 2, 4, dtype=F64)  # (T, B, H) an RNN's factors
W = torch.randn(4, 4, dtype=F64)  # (H, H)


def _forward(**changes: object) -> torch.Tensor:
    args = {"Z": torch.zeros(1, 2, 2, 4, dtype=F64), "a": A, "W": W, "f": None, "beta": None}
    args |= {"starts": [0], "qr_every": 4, "first": None} | changes
    return kernel.sweep_forward(**args)


def _back(**changes: object) -> tuple[list[torch.Tensor], torch.Tensor]:
    args = {"Q": torch.zeros(4, 2, 4, dtype=F64), "a": A, "W": W, "f": None, "beta": None}
    args |= {"groups": [(1, 4, 4)]} | changes
    return kernel.sweep_back(**args)


@pytest.mark.parametrize(
    ("call", "changes", "match"),
    [
        (_forward, {"Z": torch.zeros(1, 2, 2, 4)}, "dtype"),
        (_forward, {"Z": torch.zeros(1, 2, 3, 4, dtype=F64)}, r"\(\.\.\., 2, 4\)"),
        (_forward, {"Z": torch.zeros(2, 2, 2, 4, dtype=F64), "starts": [3, 0]}, "non-decreasing"),
        (_forward, {"starts": [0, 1]}, "starts"),
        (_forward, {"qr_every": 0}, "qr_every"),
        (_forward, {"Z": torch.zeros(1, 5, 2, 4, dtype=F64)}, "at most H"),
        (_forward, {"W": W[:3]}, "W must be"),
        (_forward, {"f": A}, "f and beta"),
        (_forward, {"f": A[:, :1].clone(), "beta": A[:, :1].clone()}, "f and beta must be"),
        (_forward, {"first": torch.zeros(2)}, "first"),
        (_forward, {"a": A.flatten()}, "a must be"),
        (_back, {"groups": [(1, 2, 4)]}, "cover"),
        (_back, {"groups": [(2, 4, 4)]}, "cover"),
        (_back, {"groups": [(1, 2, 4), (3, 4, 5)]}, "non-increasing"),
        (_back, {"Q": torch.zeros(4, 2, 4)}, "dtype"),
        (_back, {"Q": torch.zeros(4, 4, 2, dtype=F64).mT}, "contiguous"),
        (_back, {"Q": torch.zeros(2, 4, dtype=F64)}, "Q must be"),
    ],
)
def test_sweeps_bad_inputs_raise(built: None, call: object, changes: dict, match: str) -> None:
    with pytest.raises(RuntimeError, match=match):
        call(**changes)


@pytest.mark.parametrize("variant", list(kernel.VARIANTS))
def test_each_variant_and_thread_count_agree(built: None, variant: str) -> None:
    """One block of sequences, a block per thread, several per thread (200 sequences are more
    than a block holds here, sweeps.h's kSweepBlockBytes): the torch loops' estimates."""
    if variant not in kernel.supported_variants():
        pytest.skip(f"this CPU does not run the {variant} variant")
    lengths = torch.randint(1, 31, (200,), generator=torch.Generator().manual_seed(3)).tolist()
    steps = _steps("lstm", 30, 200, 19, F64, lengths, seed=3)  # H = 19: a partial vector
    with _kernel(False):
        expected = spectral.product_norms_estimate(steps, 30)
    threads = torch.get_num_threads()
    with kernel.use_variant(variant):
        for n in (1, 2):
            torch.set_num_threads(n)
            try:
                got = spectral.product_norms_estimate(steps, 30)
            finally:
                torch.set_num_threads(threads)
            torch.testing.assert_close(
                torch.from_numpy(got), torch.from_numpy(expected), rtol=1e-9, atol=0
            )
