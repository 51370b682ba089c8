"""What a benchmark ran on, for its table header: CPU model, the ISA torch runs, the kernel
variant, the per-step GEMM chosen at load, and the fastest GEMM measured on the machine.

Every published figure carries this line: timings are only comparable on one machine.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import torch

from vanishing.nn import kernel
from vanishing.report.machine import cpu_model


def kernel_description() -> str:
    """The kernel variant and the per-step GEMM chosen at load, per grid point."""
    if not kernel.available():
        return "kernel not available (reference path)"
    choice = kernel.gemm_choice()
    gemm = ", ".join(f"{p['rows']}x{p['H']}: {p['chosen']}" for p in choice) or "forced"
    return f"kernel variant {kernel.variant()}, step GEMM (rows per thread x H) {gemm}"


def _median_s(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def gemm_peaks(n: int = 1024, repeats: int = 10) -> dict[str, float]:
    """GFLOP/s of the fastest GEMMs measured here: an (n x n) @ (n x n) float32 product
    through torch.mm (MKL here) and through oneDNN with the weight prepacked
    (mkldnn._linear_pointwise, where it exists), and the kernel's load-time measurement of
    its step GEMMs (every thread its own product at once, as the time loops run them)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    flop = 2 * n**3 / 1e9
    peaks = {f"torch.mm {n}^3": flop / _median_s(lambda: torch.mm(a, b), repeats)}
    if kernel.available() and kernel.gemm_choice():
        best = max(
            (2 * p["flops"] / p["us"][p["chosen"]] * 1e-3 * torch.get_num_threads(), p)
            for p in kernel.gemm_choice()
        )  # forward + backward product per thread, all threads
        rows, H = best[1]["rows"], best[1]["H"]
        name = (
            f"LSTM step GEMMs at {rows} rows, H {H}, on {torch.get_num_threads()} threads at once"
        )
        peaks[name] = best[0]
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is not None and torch.backends.mkldnn.is_available():
        try:
            w = b.t().contiguous().to_mkldnn()
            peaks[f"oneDNN {n}^3"] = flop / _median_s(
                lambda: op(a, w, None, "none", [], ""), repeats
            )
        except RuntimeError:
            pass
    return peaks


def describe(peaks: dict[str, float] | None = None) -> str:
    """One line: date, CPU, ISA, threads, torch, kernel variant and GEMM choice, GEMM peaks."""
    line = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpu_model()}, torch reports ISA "
        f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, {kernel_description()}"
    )
    if peaks:
        shown = ", ".join(f"{k} {v:.0f}" for k, v in peaks.items())
        line += f"; fastest float32 GEMMs measured (GFLOP/s): {shown}"
    return line
