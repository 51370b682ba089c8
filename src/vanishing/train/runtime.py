"""Process-wide torch settings for a run, each restored when the block ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch ops on `count` threads inside; the previous setting is restored after.

    Measured on 2 cores (T 100, B 64, H 64): one thread is as fast as two for these small
    per-step GEMMs and much faster when other processes compete for the cores.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def flush_denormal_enabled() -> bool:
    """Whether this thread flushes denormals to zero (torch has no getter; this measures it)."""
    return bool(torch.tensor(1e-320, dtype=torch.float64).mul(1.0).item() == 0.0)


@contextmanager
def flush_denormal() -> Iterator[None]:
    """Flush denormal floats to zero inside; the setting found on entry is restored after.

    A vanishing gradient passes through denormals (|x| < 1e-38 in float32, 1e-308 in
    float64), where CPU arithmetic is up to 100x slower; values that small count as 0 here.
    """
    before = flush_denormal_enabled()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)
