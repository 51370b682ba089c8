"""Cost of vanishing.profile's details and of vanishing.monitor, relative to a training step.

    .venv/bin/python benchmarks/gradflow.py           # writes its section of docs/performance.md
    .venv/bin/python benchmarks/gradflow.py --quick   # two sizes, fewer repeats, no file

The model is the issue's: torch.nn.LSTM(2, H) + torch.nn.Linear(H, 1) on the last step, MSE
loss; a training step is zero_grad, forward, backward and an Adam step of that model. Each
detail runs the same float32 batch (T, B, 2) in the same process, interleaved with the
training step (one run of each per round, in rotating order), median of the rounds;
denormals are flushed for all (as the demo trains). "exact" runs once per size, alone,
and not at the largest size (minutes). The monitor's overhead: blocks of 10 training
steps with and without vanishing.monitor(every=10) (one measured step per block),
interleaved, median of --blocks blocks (31); for a torch.nn.LSTM model (the monitor
replays the measured step through a vanishing twin) and for the same model with
vanishing.LSTM (it reads the step's own recording). Accuracy of "terms" against "exact":
float64 layers (RNN tanh / sigmoid / relu, LSTM with forget_bias 0, 1, 3), weights scaled
by 0.5 .. 4, T = 50, B = 4, seeded; estimate / exact at every lag and step, worst and
median.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from collections.abc import Callable

import numpy as np
import torch
from layers import median_ms, write_section  # benchmarks/layers.py
from torch import nn

import vanishing
from vanishing import gradflow
from vanishing.gradflow import profile
from vanishing.report.machine import cpu_model

SIZES = [(64, 100, 64), (32, 200, 128), (16, 1000, 16), (256, 100, 256)]  # (B, T, H)
EXACT_UP_TO_H = 128  # "exact" forms T B matrices of H x H per term: minutes beyond


class Model(nn.Module):
    """The recurrent layer, then a linear read-out of the last step."""

    def __init__(self, layer: nn.Module, H: int) -> None:
        super().__init__()
        self.lstm = layer
        self.head = nn.Linear(H, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (T, B, 2)
        out, _ = self.lstm(x)
        return self.head(out[-1])  # (B, 1)


def model(H: int, kind: str = "torch") -> Model:
    torch.manual_seed(0)
    layer = nn.LSTM(2, H) if kind == "torch" else vanishing.LSTM(2, H)
    return Model(layer, H)


def trainer(
    m: nn.Module, x: torch.Tensor, y: torch.Tensor, mon: vanishing.Monitor | None = None
) -> Callable[[], None]:
    """One Adam training step of m on (x, y) per call, driving mon's callbacks if given."""
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    counter = [0]

    def step() -> None:
        if mon is not None:
            mon.on_step_start(counter[0], m)
        opt.zero_grad()
        loss = torch.mean((m(x) - y) ** 2)
        loss.backward()
        if mon is not None:
            mon.on_step_end(counter[0], m, loss)
        opt.step()
        counter[0] += 1

    return step


def detail_costs(size: tuple[int, int, int], repeats: int) -> dict[str, float]:
    """profile() at each detail over a training step, and the step in ms, for one size."""
    B, T, H = size
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(T, B, 2, generator=gen), torch.randn(B, 1, generator=gen)
    m = model(H)

    def mse(y_hat: torch.Tensor) -> torch.Tensor:
        return torch.mean((y_hat - y) ** 2)

    step = trainer(copy.deepcopy(m), x, y)
    ratios = {}
    for detail in ("norms", "terms"):  # each against the step alone (allocator state)
        ms = median_ms(
            {"step": step, detail: lambda d=detail: profile(m, x, mse, detail=d)}, repeats
        )
        ratios["training step (ms)"] = ms["step"]
        ratios[detail] = ms[detail] / ms["step"]
    if H <= EXACT_UP_TO_H:
        start = time.perf_counter()
        profile(m, x, mse, detail="exact")
        ratios["exact"] = 1e3 * (time.perf_counter() - start) / ratios["training step (ms)"]
    return ratios


def monitor_overhead(size: tuple[int, int, int], kind: str, blocks: int) -> float:
    """Median time of 10 training steps with vanishing.monitor(every=10) over without."""
    B, T, H = size
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(T, B, 2, generator=gen), torch.randn(B, 1, generator=gen)
    plain, watched = model(H, kind), model(H, kind)
    mon = vanishing.monitor(watched, every=10)
    steps = {"plain": trainer(plain, x, y), "watched": trainer(watched, x, y, mon)}

    def block(name: str) -> Callable[[], None]:
        def run() -> None:
            for _ in range(10):
                steps[name]()

        return run

    ms = median_ms({name: block(name) for name in steps}, blocks)
    assert len(mon.history) == blocks + 1  # one measured step per block (and the warm-up)
    return ms["watched"] / ms["plain"] - 1.0


def accuracy(hidden: list[int], layers: int = 6) -> list[str]:
    """Rows of estimate / exact ('terms' over 'exact' detail) for random float64 layers."""
    rng = np.random.default_rng(0)
    rows = []
    for H in hidden:
        ratios: dict[str, list[np.ndarray]] = {k: [] for k in ("products", "A", "C", "D", "sum")}
        for k in range(layers):
            torch.manual_seed(int(rng.integers(2**31)))
            kind = ("lstm", "tanh", "lstm", "sigmoid", "lstm", "relu")[k % 6]
            if kind == "lstm":
                fb = float(rng.choice([0.0, 1.0, 3.0]))
                layer = vanishing.LSTM(3, H, forget_bias=fb, dtype=torch.float64)
            else:
                layer = vanishing.RNN(3, H, nonlinearity=kind, dtype=torch.float64)
            with torch.no_grad():
                for p in layer.parameters():
                    p.mul_(float(rng.choice([0.5, 1.0, 2.0, 4.0])))
            with vanishing.record(layer) as rec:
                out, _ = layer(torch.randn(50, 4, 3, dtype=torch.float64))
                out[-1].sum().backward()
            (trace,) = rec[""]
            est, exact = (
                gradflow.lag_profile(layer, trace),
                gradflow.lag_profile(layer, trace, exact=True),
            )
            ratios["products"].append(est.jacobian_norm[1:] / exact.jacobian_norm[1:])
            if kind == "lstm":
                t_est = gradflow.lstm_terms(layer, trace)
                t_exact = gradflow.lstm_terms(layer, trace, exact=True)
                for name, field in (("A", "A"), ("C", "C"), ("D", "D"), ("sum", "total")):
                    e, x = getattr(t_est, field)[1:], getattr(t_exact, field)[1:]
                    ratios[name].append(e[x > 0] / x[x > 0])
        cells = []
        for values in ratios.values():
            r = np.concatenate(values)
            r = r[np.isfinite(r)]
            cells.append(f"{r.min():.3f} / {np.median(r):.4f}")
        rows.append(f"| {H} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two sizes, 3 repeats, no file")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds per size")
    parser.add_argument(
        "--blocks", type=int, default=31, help="blocks of 10 steps per monitor measurement"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    load = os.getloadavg()[0]
    repeats = 3 if args.quick else args.repeats
    blocks = 7 if args.quick else args.blocks
    sizes = SIZES[:2] if args.quick else SIZES
    lines = [
        "| (B, T, H) | training step (ms) | norms | terms | exact |",
        "|---|---:|---:|---:|---:|",
    ]
    for size in sizes:
        r = detail_costs(size, repeats)
        cells = [f"{r['norms']:.2f}x", f"{r['terms']:.1f}x"]
        cells.append(f"{r['exact']:,.0f}x" if "exact" in r else "not run (minutes)")
        lines.append(f"| {size} | {r['training step (ms)']:.1f} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    monitor_lines = [
        "| (B, T, H) | layer in the model | monitor overhead at every=10 |",
        "|---|---|---:|",
    ]
    for size in sizes[:2]:
        for kind, name in (("torch", "torch.nn.LSTM"), ("vanishing", "vanishing.LSTM")):
            overhead = monitor_overhead(size, kind, blocks)
            monitor_lines.append(f"| {size} | {name} | {100 * overhead:+.1f} % |")
            print(monitor_lines[-1], flush=True)
    accuracy_lines = [
        "| H | products | A_t | C_t | D_t | A_t + B_t + C_t + D_t |",
        "|---|---:|---:|---:|---:|---:|",
        *accuracy([16, 32] if args.quick else [16, 32, 64, 128]),
    ]
    header = (
        "Measured with `.venv/bin/python benchmarks/gradflow.py"
        + (f" --threads {args.threads}" if args.threads else "")
        + f"`: {cpu_model()}, torch reports ISA {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, float32, denormals "
        f"flushed, median of {repeats} interleaved runs ({blocks} blocks of 10 steps "
        f"for the monitor); load average {load:.1f} before, {os.getloadavg()[0]:.1f} after "
        "(2 cores)."
    )
    print(header)
    if not args.quick:
        write_report(header, lines, monitor_lines, accuracy_lines)


def write_report(
    header: str, lines: list[str], monitor_lines: list[str], accuracy_lines: list[str]
) -> None:
    """Replace the generated gradflow section of docs/performance.md, keep the rest."""
    accuracy_note = "Estimate / exact of the 'terms' detail, worst / median over lags, steps:"
    write_section(
        "gradflow",
        [header, "", *lines, "", *monitor_lines, "", accuracy_note, "", *accuracy_lines],
    )


if __name__ == "__main__":
    main()
