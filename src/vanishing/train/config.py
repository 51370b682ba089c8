"""The training loop's configuration: a typed dataclass that rejects unknown keys and bad values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass
class TrainConfig:
    """What to train for, and how.

    steps: Adam steps per model; batch: sequences per step; lr: Adam's learning rate;
    seed: seeds the weights (the caller's) and the data; clip: if set, the gradient norm
    threshold of Pascanu et al.'s Algorithm 1 (rescale when ||g|| >= clip); T: sequence length;
    eval_every: steps between test evaluations (also at 0 and at the end); test_size: size of
    the fixed test set; hook_every: steps between hook calls (0 = only at 0 and at the end).
    """

    steps: int = 4000
    batch: int = 64
    lr: float = 1e-3
    seed: int = 0
    clip: float | None = None
    T: int = 100
    eval_every: int = 100
    test_size: int = 1000
    hook_every: int = 0

    def __post_init__(self) -> None:
        minimum = {"steps": 0, "batch": 1, "T": 2, "eval_every": 1, "test_size": 1}
        for name, low in {**minimum, "hook_every": 0}.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        for name in ("lr", "clip"):
            value = getattr(self, name)
            if value is None and name == "clip":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> TrainConfig:
        """A config from a mapping; unknown keys raise a ValueError naming the known ones."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; expected some of {known}")
        return cls(**values)  # type: ignore[arg-type]
