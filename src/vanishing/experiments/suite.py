"""The long-time-lag suite: which tasks, lengths, budgets and models `vanishing experiments` runs.

Every task runs at the lengths of the paper it comes from; the adding problem also at
T = 2000 and 5000, to find where our LSTM stops. Each (task, length) runs every model with
several seeds, each run the same `RunConfig` `vanishing train` would use.

How the full suite's numbers were chosen (2 cores, under 2 hours): batch 16 (at T = 1000
one sequence costs about as much at batch 4 - 32, and smaller batches take more updates per
sequence), H = 32, Adam lr 3e-3 (long lag: 1e-2, measured better at p = 20), chrono
initialisation; budgets of 100k - 200k sequences (150k at T = 2000, 80k at 5000), 2 - 5 times
what our LSTM needed in trial runs (adding T = 1000: 35k; the paper: 853k); the simple RNN
gets the same budget, which it uses up. Held-out sets of 2560 sequences as in the paper
(Reber: 256 strings, as the paper; long lag: only two distinct sequences exist), probed on
256 every 50 steps. The full run took 60 minutes on 2 shared cores (docs/results.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from vanishing.tasks import TASKS
from vanishing.train import ModelConfig, RunConfig, TrainConfig

MODELS = ("lstm", "rnn-tanh", "rnn-sigmoid", "rnn-relu")
"""Model names the suite knows: the LSTM and the simple RNN with each activation."""
DEFAULT_MODELS = ("lstm", "rnn-tanh")


@dataclass(frozen=True)
class Entry:
    """One task at one length: its budget (training sequences per run) and evaluation."""

    task: str
    T: int | None
    budget: int
    test_size: int = 2560
    eval_every: int = 50
    lr: float | None = None  # None: TrainConfig's default

    @property
    def label(self) -> str:
        return self.task if self.T is None else f"{self.task} T={self.T}"


FULL: tuple[Entry, ...] = (
    Entry("adding", 100, 200_000),
    Entry("adding", 500, 200_000),
    Entry("adding", 1000, 200_000),
    Entry("adding", 2000, 150_000),
    Entry("adding", 5000, 80_000, eval_every=100),
    Entry("multiplication", 100, 200_000),
    Entry("temporal-order", 100, 200_000),
    Entry("temporal-order-3", 100, 200_000),
    Entry("long-lag", 100, 100_000, test_size=16, eval_every=20, lr=1e-2),
    Entry("reber", None, 50_000, test_size=256, eval_every=20),
    Entry("latching", 1000, 100_000),
    Entry("copying", 100, 100_000, test_size=1000),
)
"""The full suite, 3 seeds by default."""

QUICK: tuple[Entry, ...] = (
    Entry("adding", 20, 20_000, test_size=256, eval_every=20, lr=1e-2),
    Entry("multiplication", 20, 20_000, test_size=256, eval_every=20, lr=1e-2),
    Entry("temporal-order", 20, 6_000, test_size=256, eval_every=20, lr=1e-2),
    Entry("temporal-order-3", 20, 6_000, test_size=256, eval_every=20, lr=1e-2),
    Entry("long-lag", 5, 6_000, test_size=16, eval_every=20, lr=1e-2),
    Entry("reber", None, 6_000, test_size=64, eval_every=20, lr=1e-2),
    Entry("latching", 20, 6_000, test_size=256, eval_every=20, lr=1e-2),
    Entry("copying", 5, 20_000, test_size=256, eval_every=20, lr=1e-2),
)
"""Short lengths and small budgets, one seed: the whole suite in well under a minute."""


@dataclass(frozen=True)
class Settings:
    """Overrides for every run of a suite (None: the suite's own choice)."""

    hidden: int = 32
    batch: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    clip: float | None = None
    budget: int | None = None
    forget_bias: float | None = None
    chrono: bool | None = None


def parse_models(text: str) -> tuple[str, ...]:
    """'lstm,rnn-tanh' -> ('lstm', 'rnn-tanh'); unknown names raise a ValueError."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [n for n in names if n not in MODELS]
    if bad or not names:
        raise ValueError(f"unknown model {', '.join(bad) or repr(text)}; expected some of "
                         + ", ".join(MODELS))  # fmt: skip
    if len(set(names)) != len(names):
        raise ValueError(f"models must not repeat, got {text}")
    return names


def select(entries: Sequence[Entry], text: str | None) -> list[Entry]:
    """The entries named by 'adding,reber' or 'adding:1000' (a task at one length; a length
    not in the suite takes the settings of that task's nearest one); None: all entries."""
    if text is None:
        return list(entries)
    chosen: list[Entry] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, length = part.partition(":")
        if name not in TASKS:
            raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
        own = [e for e in entries if e.task == name] or [e for e in FULL if e.task == name]
        if not length:
            chosen += [e for e in own if e not in chosen]
            continue
        if not length.isdigit():
            raise ValueError(f"{part!r}: the length after ':' must be an integer")
        T = int(length)
        nearest = min(own, key=lambda e: abs((e.T or 0) - T))
        entry = replace(nearest, T=T)
        if entry not in chosen:
            chosen.append(entry)
    if not chosen:
        raise ValueError(f"no task selected by {text!r}")
    return chosen


def model_config(name: str, settings: Settings) -> ModelConfig:
    """The ModelConfig of one of MODELS under the suite's settings."""
    if name == "lstm":
        return ModelConfig(
            "lstm", settings.hidden, forget_bias=settings.forget_bias, chrono=settings.chrono
        )
    return ModelConfig("rnn", settings.hidden, nonlinearity=name.split("-", 1)[1])


def plan(
    entries: Sequence[Entry], models: Sequence[str], seeds: int, settings: Settings
) -> list[RunConfig]:
    """Every run of the suite: each entry x model x seed 0 .. seeds-1, as RunConfigs.

    Seed 0 of each also measures its gradient flow at every evaluation (`vanishing.monitor`,
    TrainConfig.gradflow_every = eval_every): the report's lag x sequences heatmaps.

    Raises ValueError (naming what was expected) for a bad length or setting.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    runs = []
    for entry in entries:
        for name in models:
            for seed in range(seeds):
                train = dict(budget=settings.budget or entry.budget, seed=seed,
                             test_size=entry.test_size, eval_every=entry.eval_every,
                             gradflow_every=entry.eval_every if seed == 0 else 0)  # fmt: skip
                for key in ("batch", "optimizer", "clip"):
                    if getattr(settings, key) is not None:
                        train[key] = getattr(settings, key)
                lr = settings.lr or entry.lr
                if lr is not None:
                    train["lr"] = lr
                config = RunConfig(entry.task, entry.T, model_config(name, settings),
                                   TrainConfig(**train))  # fmt: skip
                runs.append(config)
    return runs


def save_plan(folder: Path, configs: Sequence[RunConfig], command: str) -> Path:
    """suite.json: the command and every run's config, so the suite can be resumed."""
    path = Path(folder) / "suite.json"
    path.write_text(json.dumps({"command": command, "runs": [asdict(c) for c in configs]}))
    return path


def load_plan(folder: Path) -> tuple[list[RunConfig], str]:
    """The runs and command saved by save_plan, or a ValueError saying what is wrong."""
    path = Path(folder) / "suite.json"
    if not path.is_file():
        raise ValueError(f"{folder} is not a suite folder (no suite.json)")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return [RunConfig.from_dict(values) for values in saved["runs"]], saved["command"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not a valid suite plan: {error}") from None
