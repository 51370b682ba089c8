"""Wall time for an LSTM to solve the adding problem: vanishing.LSTM against torch.nn.LSTM.

    .venv/bin/python benchmarks/time_to_solve.py            # T = 100 and 200; a few minutes
    .venv/bin/python benchmarks/time_to_solve.py --T 100    # one length

Both models start from the same weights (vanishing.LSTM with forget_bias=1, copied into
torch.nn.LSTM), see the same batches (U[0,1] adding problem, batch 64, H 64, Adam lr 3e-3)
and are evaluated on the same test set every 50 steps; training alternates between them step
by step, so machine load hits both alike. Reported: steps and wall seconds (training and
evaluation) until the test MSE is below 0.01.
"""

from __future__ import annotations

import argparse
import time

import torch
from machine import describe
from torch import nn

import vanishing
from vanishing.tasks import adding_problem
from vanishing.train import SequenceModel

TARGET_MSE = 0.01


def test_mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error of model(x) against y, without gradients."""
    with torch.no_grad():
        return torch.mean((model(x) - y) ** 2).item()


def models(seed: int) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    ours = vanishing.LSTM(2, 64, forget_bias=1.0)
    theirs = nn.LSTM(2, 64)
    theirs.load_state_dict(ours.state_dict())
    a, b = SequenceModel(ours), SequenceModel(theirs)
    b.readout.load_state_dict(a.readout.state_dict())
    return {"vanishing.LSTM": a, "torch.nn.LSTM": b}


def time_to_solve(T: int, seed: int, max_steps: int, every: int = 50) -> dict[str, tuple]:
    """{name: (steps, seconds) or (None, seconds spent)} to reach test MSE < TARGET_MSE."""
    runs = models(seed)
    optimizers = {n: torch.optim.Adam(m.parameters(), lr=3e-3) for n, m in runs.items()}
    x_test, y_test = adding_problem(1000, T, generator=torch.Generator().manual_seed(seed + 1))
    data = torch.Generator().manual_seed(seed)
    seconds = dict.fromkeys(runs, 0.0)
    solved: dict[str, int | None] = dict.fromkeys(runs)
    for step in range(1, max_steps + 1):
        x, y = adding_problem(64, T, generator=data)
        for name, model in runs.items():
            if solved[name] is not None:
                continue
            start = time.perf_counter()
            optimizers[name].zero_grad(set_to_none=True)
            torch.mean((model(x) - y) ** 2).backward()
            optimizers[name].step()
            if step % every == 0 and test_mse(model, x_test, y_test) < TARGET_MSE:
                solved[name] = step
            seconds[name] += time.perf_counter() - start
        if all(s is not None for s in solved.values()):
            break
    return {name: (solved[name], seconds[name]) for name in runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, nargs="+", default=[100, 200], help="sequence lengths")
    parser.add_argument("--seed", type=int, default=0, help="weights and data seed")
    parser.add_argument("--max-steps", type=int, default=10_000, help="give up after this")
    args = parser.parse_args()
    print(f"{describe()}; target MSE {TARGET_MSE}")
    print("| T | model | steps to MSE < 0.01 | wall seconds | x torch |")
    print("|---:|---|---:|---:|---:|")
    for T in args.T:
        result = time_to_solve(T, args.seed, args.max_steps)
        base = result["torch.nn.LSTM"][1]
        for name, (steps, seconds) in result.items():
            shown = steps if steps is not None else f"not within {args.max_steps}"
            print(f"| {T} | {name} | {shown} | {seconds:.1f} | {seconds / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
