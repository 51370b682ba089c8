"""The published LSTM results the suite compares against (Hochreiter & Schmidhuber 1997).

`sequences`: training sequences the 1997 LSTM needed to meet the task's success criterion
(mean over its runs); None where the paper reports no such count. `note`: what else the
paper reports for that task and length.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One published result: sequences to success (or None) and a short note with its source."""

    sequences: int | None
    note: str


PAPER: dict[tuple[str, int | None], Published] = {
    ("adding", 100): Published(74_000, "1997 task 4: 1/2560 test sequences wrong"),
    ("adding", 500): Published(209_000, "1997 task 4: 0/2560 wrong"),
    ("adding", 1000): Published(853_000, "1997 task 4: range 370k - 2.02M"),
    ("multiplication", 100): Published(482_000, "1997 task 5: test MSE 0.0223 (<= 140/2000 wrong)"),
    ("temporal-order", 100): Published(31_390, "1997 task 6a: 1/2560 wrong"),
    ("temporal-order-3", 100): Published(571_100, "1997 task 6b: 2/2560 wrong"),
    ("long-lag", 100): Published(5_040, "1997 task 2a, p = 100"),
    ("reber", None): Published(8_440, "1997 task 1: 100 % of runs; Elman nets 0 %"),
    ("latching", 1000): Published(452_000, "1997 task 3 (two-sequence, noise), N = 3"),
    ("copying", 100): Published(None, "Arjovsky et al. 2016: LSTM stays near the baseline"),
}
"""(task, T) -> the published result."""


def published(task: str, T: int | None) -> Published | None:
    """The published result for a task at a length, or None."""
    return PAPER.get((task, T))
