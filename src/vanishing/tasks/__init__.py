"""Long-time-lag tasks: seeded, vectorised generators of padded `Batch`es with their objective.

`TASKS` is the one table of task names (what `--task` accepts); `make_task(name, T)` builds one.
"""

from __future__ import annotations

from vanishing.tasks.adding import (
    ADDING_1997_BASELINE_MSE,
    ADDING_BASELINE_MSE,
    Adding,
    AddingLe,
    Multiplication,
    adding_problem,
)
from vanishing.tasks.batch import Batch, Objective, Task, step_mask
from vanishing.tasks.copying import Copying
from vanishing.tasks.latching import Latching
from vanishing.tasks.long_lag import LongLag
from vanishing.tasks.reber import EmbeddedReber
from vanishing.tasks.temporal_order import TemporalOrder, TemporalOrder3

TASKS: dict[str, type] = {
    task.name: task
    for task in (
        Adding,
        AddingLe,
        Multiplication,
        TemporalOrder,
        TemporalOrder3,
        LongLag,
        EmbeddedReber,
        Copying,
        Latching,
    )
}
"""Every task by its `--task` name."""


def make_task(name: str, T: int | None = None) -> Task:
    """The task `name` at length T (None: its default); a ValueError names what was expected."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    task = TASKS[name]
    if task.shortest is None:
        return task() if T is None else task(T)
    if T is None:
        T = 100
    if isinstance(T, bool) or not isinstance(T, int) or T < task.shortest:
        raise ValueError(f"{name}: T must be an int >= {task.shortest}, got {T!r}")
    return task(T)


__all__ = [
    "ADDING_1997_BASELINE_MSE",
    "ADDING_BASELINE_MSE",
    "TASKS",
    "Adding",
    "AddingLe",
    "Batch",
    "Copying",
    "EmbeddedReber",
    "Latching",
    "LongLag",
    "Multiplication",
    "Objective",
    "Task",
    "TemporalOrder",
    "TemporalOrder3",
    "adding_problem",
    "make_task",
    "step_mask",
]
