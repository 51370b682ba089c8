"""The trainer's configuration: typed dataclasses that reject unknown keys and bad values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

OPTIMIZERS = ("sgd", "momentum", "adam")
"""sgd: the article's W <- W - lr dE/dW; momentum: SGD with momentum; adam: Adam."""

C = TypeVar("C")


def from_dict(cls: type[C], values: Mapping[str, Any]) -> C:
    """cls(**values); unknown keys raise a ValueError naming the known ones."""
    known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; expected some of {known}")
    return cls(**values)


def check_int(name: str, value: object, low: int) -> None:
    """An int >= low, or a TypeError / ValueError naming what was expected."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


def check_positive(name: str, value: object) -> None:
    """A finite number > 0, or a TypeError / ValueError naming what was expected."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")


@dataclass
class TrainConfig:
    """How to train one model.

    optimizer: one of OPTIMIZERS, with learning rate lr (and momentum for 'momentum');
    batch: sequences per step; budget: training sequences after which the run stops (a
    failure if the task's success test has not passed by then; 0 only evaluates); clip: if
    set, the gradient-norm threshold of Pascanu et al.'s Algorithm 1 (the one rule,
    gradflow.clip_grad_norm_); seed: the data stream, shuffling and held-out set;
    eval_every: steps between evaluations on the held-out set (also at step 0 and at the
    end); test_size: held-out sequences drawn from a task; eval_batch: sequences per
    evaluation forward; eval_probe: evaluate these first held-out sequences, and the whole
    set only when they pass (0: always the whole set); checkpoint_every: steps between
    checkpoints when training into a run folder (0: at every evaluation); keep_checkpoints:
    how many to keep; stop_at_success: stop at the first evaluation that passes the success
    test; gradflow_every: steps between measurements of the training step's gradient flow by
    `vanishing.monitor` (horizon and norms by lag, a "gradflow" line in metrics.jsonl; 0:
    none); threads: torch threads during the run.
    """

    optimizer: str = "adam"
    lr: float = 3e-3
    momentum: float = 0.9
    batch: int = 16
    budget: int = 1_000_000
    clip: float | None = None
    seed: int = 0
    eval_every: int = 100
    test_size: int = 2560
    eval_batch: int = 512
    eval_probe: int = 256
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    stop_at_success: bool = True
    gradflow_every: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        check_positive("lr", self.lr)
        if isinstance(self.momentum, bool) or not isinstance(self.momentum, (int, float)):
            raise TypeError(f"momentum must be a number, got {self.momentum!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.clip is not None:
            check_positive("clip", self.clip)
        lows = {
            "batch": 1,
            "budget": 0,
            "eval_every": 1,
            "test_size": 1,
            "eval_batch": 1,
            "eval_probe": 0,
            "checkpoint_every": 0,
            "keep_checkpoints": 1,
            "gradflow_every": 0,
            "threads": 1,
        }
        for name, low in lows.items():
            check_int(name, getattr(self, name), low)
        check_int("seed", self.seed, 0)
        if not isinstance(self.stop_at_success, bool):
            raise TypeError(f"stop_at_success must be a bool, got {self.stop_at_success!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        return from_dict(cls, values)
