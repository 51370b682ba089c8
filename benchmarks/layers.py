"""Speed of vanishing.LSTM / vanishing.RNN against torch.nn, in one process: forward +
backward, and the forward under torch.no_grad() (inference).

    .venv/bin/python benchmarks/layers.py          # `make bench`; writes docs/performance.md
    .venv/bin/python benchmarks/layers.py --quick  # fewer repeats, no file written

Every contender runs the same float32 batch with the machine's threads; the repeats are
interleaved (one run of each contender per round, in rotating order) and the median is
reported. Loss: the sum of the output sequence, so every step receives a gradient. Recording
keeps h_t, c_t, the gates and dL/dh_t, dL/dc_t of every step (under no_grad: h_t, c_t and the
gates). The `LSTMCell + hooks` row is PyTorch's answer to per-step gradients: a Python loop
over nn.LSTMCell with retain_grad() on every h_t and c_t. The header names the machine
(benchmarks/machine.py): timings compare within one table only.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from machine import describe, gemm_peaks
from torch import nn

import vanishing

SIZES = [
    (64, 200, 8, 128),
    (16, 1000, 1, 16),
    (64, 1000, 2, 32),
    (256, 100, 32, 256),
    (64, 100, 2, 64),
]
NO_GRAD_SIZES = [(1000, 100, 2, 64)]  # the forward alone, as an evaluation on 1,000 sequences
MEMORY_SIZE = (16, 100_000, 1, 16)
ROOT = Path(__file__).resolve().parents[1]


def kernel_paths() -> list[str]:
    """The backward implementations to time: the compiled kernel (if built) and the reference."""
    try:
        from vanishing.nn import kernel
    except ImportError:
        return ["reference"]
    return ["kernel", "reference"] if kernel.available() else ["reference"]


def use_path(path: str) -> None:
    try:
        from vanishing.nn import kernel
    except ImportError:
        return
    kernel.set_enabled(path == "kernel")


def fwd_bwd(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        model.zero_grad(set_to_none=True)
        out, _ = model(x)
        out.sum().backward()

    return run


def no_grad_forward(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            model(x)

    return run


def cell_loop(cell: nn.Module, x: torch.Tensor, lstm: bool) -> Callable[[], None]:
    """nn.LSTMCell / nn.RNNCell over time, retaining every h_t (and c_t) gradient."""

    def run() -> None:
        cell.zero_grad(set_to_none=True)
        T, B, _ = x.shape
        h = x.new_zeros(B, cell.hidden_size)
        c = x.new_zeros(B, cell.hidden_size)
        hs, states = [], []
        for t in range(T):
            if lstm:
                h, c = cell(x[t], (h, c))
                c.retain_grad()
            else:
                h = cell(x[t], h)
            h.retain_grad()
            hs.append(h)
            states.append((h, c))
        torch.stack(hs).sum().backward()

    return run


def with_path(path: str, run: Callable[[], None]) -> Callable[[], None]:
    def wrapped() -> None:
        use_path(path)
        run()

    return wrapped


def median_ms(runs: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median wall time in ms of each run, after one warm-up each.

    Rounds are interleaved and each starts one contender later than the last, so no run
    always follows the same other one (which shows at the largest sizes: allocator state).
    """
    for run in runs.values():
        run()
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def flops(kind: str, B: int, T: int, I: int, H: int, backward: bool = True) -> float:
    """GEMM flops of the forward, 2 T B G (I + H) (G = gate rows), x 3 with the backward."""
    G = 4 * H if kind == "LSTM" else H
    return (3 if backward else 1) * 2 * T * B * G * (I + H)


def contenders(
    kind: str, size: tuple[int, int, int, int], cell: bool, paths: list[str], backward: bool
) -> dict:
    B, T, I, H = size
    torch.manual_seed(0)
    x = torch.randn(T, B, I)
    if kind == "LSTM":
        ref, ours = nn.LSTM(I, H), vanishing.LSTM(I, H)
    else:
        ref, ours = nn.RNN(I, H), vanishing.RNN(I, H)
    ours.load_state_dict(ref.state_dict())
    recorded = type(ours)(I, H, record=True)
    recorded.load_state_dict(ref.state_dict())
    timed = fwd_bwd if backward else no_grad_forward
    runs = {f"torch.nn.{kind}": timed(ref, x)}
    for path in paths if backward else paths[:1]:  # no_grad: the kernel's inference path
        runs[f"vanishing ({path})"] = with_path(path, timed(ours, x))
        runs[f"vanishing ({path}, recording)"] = with_path(path, timed(recorded, x))
    if cell and backward:
        cell_module = nn.LSTMCell(I, H) if kind == "LSTM" else nn.RNNCell(I, H)
        runs[f"{kind}Cell loop + hooks"] = cell_loop(cell_module, x, kind == "LSTM")
    return runs


def peak_memory_mb(kind: str, module: str, size: tuple[int, int, int, int]) -> float:
    """Peak resident memory growth of one forward + backward, in a fresh process (Linux)."""
    B, T, I, H = size
    code = f"""
import torch, vanishing
from torch import nn
def status(key):  # kB; VmHWM is this process's peak resident memory (reset by exec)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
torch.manual_seed(0)
m = {module}.{kind}({I}, {H}); x = torch.randn({T}, {B}, {I})
if hasattr(m, "record"):
    m.record = True
m(x[:2])[0].sum().backward()  # warm-up: the kernel loaded, allocator primed
before = status("VmRSS:")
out, _ = m(x); out.sum().backward()
print((status("VmHWM:") - before) / 1024)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats, two sizes, no file")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds per size")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    sizes = SIZES[:2] if args.quick else SIZES
    peaks = gemm_peaks()
    peak = max(peaks.values())
    paths = kernel_paths()
    lines = [
        "| layer | (B, T, I, H) | pass | implementation | ms | x torch | GFLOP/s "
        "| % fastest GEMM |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for kind in ("LSTM", "RNN"):
        cases = [(size, True) for size in sizes] + [(size, False) for size in NO_GRAD_SIZES]
        for size, backward in cases:
            cell = size[1] <= 1000 and size[3] <= 128
            ms = median_ms(contenders(kind, size, cell, paths, backward), repeats)
            base = ms[f"torch.nn.{kind}"]
            gf = flops(kind, *size, backward=backward) / 1e9
            step = "forward + backward" if backward else "no_grad forward"
            for name, t in ms.items():
                row = (
                    f"| {kind} | {size} | {step} | {name} | {t:.1f} | {t / base:.2f} | "
                    f"{gf / (t * 1e-3):.1f} | {100 * gf / (t * 1e-3) / peak:.0f} |"
                )
                lines.append(row)
                print(row, flush=True)
    memory = [
        "| layer | (B, T, I, H) | implementation | peak memory growth (MB) |",
        "|---|---|---|---:|",
    ]
    if not args.quick:
        for module, name in (("nn", "torch.nn.LSTM"), ("vanishing", "vanishing.LSTM, recording")):
            mb = peak_memory_mb("LSTM", module, MEMORY_SIZE)
            memory.append(f"| LSTM | {MEMORY_SIZE} | {name} | {mb:.0f} |")
            print(memory[-1], flush=True)
    header = (
        "Measured with `make bench` (`.venv/bin/python benchmarks/layers.py`): "
        f"{describe(peaks)}. Float32, median of {repeats} interleaved runs; forward + "
        "backward of a sum-of-outputs loss, or the forward under torch.no_grad(); "
        "% fastest GEMM: GFLOP/s over the fastest of those GEMM peaks."
    )
    print(header)
    if not args.quick:
        write_report(header, lines, memory)


def write_section(name: str, lines: list[str]) -> None:
    """Replace the lines between <!-- name:begin --> and <!-- name:end --> in
    docs/performance.md (appending the markers if absent), keep the prose around them."""
    path = ROOT / "docs" / "performance.md"
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    table = "\n".join([begin, *lines, end])
    text = path.read_text() if path.exists() else "# Performance\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    path.write_text(head + table + rest.split(end, 1)[1])
    print(f"wrote {path}")


def write_report(header: str, lines: list[str], memory: list[str]) -> None:
    """Replace the generated section of docs/performance.md, keep the prose around it."""
    write_section("bench", [header, "", *lines, "", *memory])


if __name__ == "__main__":
    main()
