"""`vanishing classify`'s work: every method on one collection over seeds, side by side.

The methods (`METHODS`): aeon's 1-NN DTW and MiniRocket (`classifiers.py`) and our
`LSTMClassifier` with cell "lstm" and "rnn", each through `classify_protocol.
evaluate_classifier` on the same train / test split and seeds; beside them the published
accuracies (`published.py`). Each trained network's gradient reach (`reach.py`) is measured
on the test part, beside the series length. `write_classify_run` writes the run folder:
metrics.json, a lag-profile figure per data set, the first seed's networks and report.html.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vanishing.apps.timeseries.classifiers import METHODS, baselines
from vanishing.apps.timeseries.classify_protocol import ClassifierResult, evaluate_classifier
from vanishing.apps.timeseries.collection import Collection
from vanishing.apps.timeseries.published import PUBLISHED, SOURCE
from vanishing.apps.timeseries.reach import Reach, describe, reach
from vanishing.apps.timeseries.recurrent import LSTMClassifier
from vanishing.report import Section, plot_lag_profiles, save_figure, write_report
from vanishing.report.machine import describe as describe_machine

NAMES = {
    "dtw": "1-NN DTW (aeon)",
    "minirocket": "MiniRocket (aeon)",
    "lstm": "LSTM (vanishing)",
    "rnn": "RNN (vanishing)",
}


@dataclass(frozen=True)
class NetworkSettings:
    """Our classifiers' parameters in a run (`LSTMClassifier`); the cell comes from the method.

    Defaults: a fifth of the (small) training parts held out for early stopping with a
    patience of 100 epochs, as the UCR training parts have 36 to 270 cases.
    """

    hidden_size: int = 64
    max_epochs: int = 500
    patience: int = 100
    validation_fraction: float = 0.2
    lr: float = 3e-3
    batch_size: int = 16
    nonlinearity: str = "tanh"

    def classifier(self, cell: str, seed: int) -> LSTMClassifier:
        """A new, checked LSTMClassifier seeded with seed (ValueError on a bad setting)."""
        model = LSTMClassifier(cell=cell, random_state=seed, **asdict(self))
        model._check_params()
        return model


@dataclass
class MethodRun:
    """One method's accuracies over seeds, each trained network's Reach, the first model."""

    method: str
    result: ClassifierResult
    reaches: list[Reach] = field(default_factory=list)
    model: Any = None


def run_classify(
    data: Collection,
    methods: Sequence[str],
    settings: NetworkSettings,
    seeds: Sequence[int] = (0, 1, 2),
    on_fit: Callable[[str], None] | None = None,
) -> list[MethodRun]:
    """Every method on data, as the module docstring says; on_fit(name) before each fit."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be among {', '.join(METHODS)}, got {unknown[0]!r}")
    done = on_fit or (lambda name: None)
    aeon = dict(zip(("dtw", "minirocket"), baselines(data).values(), strict=True))
    runs = []
    for method in methods:
        made: dict[int, Any] = {}

        def make(seed: int, method: str = method, made: dict[int, Any] = made) -> Any:
            done(f"{data.name}: {NAMES[method]}, seed {seed}")
            if method in aeon:
                model = aeon[method][0](seed)
            else:
                model = settings.classifier(method, seed)
            made[seed] = model
            return model

        deterministic = method in aeon and aeon[method][1]
        result = evaluate_classifier(make, data, NAMES[method], seeds, deterministic)
        run = MethodRun(method, result)
        if method not in aeon:
            run.reaches = [reach(made[s], data.X_test, data.y_test) for s in result.seeds]
            run.model = made[result.seeds[0]]
        runs.append(run)
    return runs


def fits(methods: Sequence[str], seeds: Sequence[int]) -> int:
    """How many times run_classify calls on_fit (1-NN DTW runs once)."""
    return sum(1 if m == "dtw" else len(seeds) for m in methods)


COLUMNS = (
    "data set",
    "train / test, channels, length",
    "method",
    "test accuracy (mean ± std)",
    "per seed",
    "fit s",
    "predict s",
    "published",
    "gradient horizon of length; at first step",
)


def shape(data: Collection) -> str:
    low, high = data.lengths()
    length = str(low) if low == high else f"{low}-{high}"
    return f"{len(data.y_train)} / {len(data.y_test)}, {data.n_channels}, {length}"


def rows(data: Collection, runs: Sequence[MethodRun]) -> list[list[str]]:
    """The comparison table (COLUMNS) of one collection, the published figures last."""
    out = []
    for run in runs:
        r = run.result
        spread = " (deterministic)" if r.deterministic else ""
        if len(r.accuracies) > 1:
            spread = f" ± {r.std:.3f}"
        published = PUBLISHED.get(data.name, {}).get("1-NN DTW") if run.method == "dtw" else None
        horizon = describe(run.reaches)
        out.append(
            [
                data.name,
                shape(data),
                NAMES[run.method],
                f"{r.mean:.3f}{spread}",
                " ".join(f"{a:.3f}" for a in r.accuracies),
                f"{statistics.fmean(r.fit_seconds):.2f}",
                f"{statistics.fmean(r.predict_seconds):.2f}",
                "-" if published is None else f"{published:.3f}",
                horizon,
            ]
        )
    for method, accuracy in PUBLISHED.get(data.name, {}).items():
        if method != "1-NN DTW":
            out.append(
                [
                    data.name,
                    shape(data),
                    f"{method} (published)",
                    "-",
                    "-",
                    "-",
                    "-",
                    f"{accuracy:.3f}",
                    "-",
                ]
            )
    return out


def metrics(data: Collection, runs: Sequence[MethodRun]) -> dict[str, Any]:
    """One collection's results as plain JSON."""
    low, high = data.lengths()
    return {
        "name": data.name,
        "train": len(data.y_train),
        "test": len(data.y_test),
        "channels": data.n_channels,
        "classes": len(data.classes),
        "length": [low, high],
        "published": PUBLISHED.get(data.name, {}),
        "methods": [
            {
                "method": run.method,
                "name": NAMES[run.method],
                "seeds": list(run.result.seeds),
                "accuracies": list(run.result.accuracies),
                "mean": run.result.mean,
                "std": run.result.std,
                "fit_seconds": list(run.result.fit_seconds),
                "predict_seconds": list(run.result.predict_seconds),
                "deterministic": run.result.deterministic,
                "epochs": getattr(run.model, "n_iter_", None),
                "reach": [x.as_dict() for x in run.reaches],
            }
            for run in runs
        ],
    }


def write_classify_run(
    folder: Path,
    results: Sequence[tuple[Collection, Sequence[MethodRun]]],
    settings: NetworkSettings,
    meta: dict[str, Any],
) -> dict[str, Path]:
    """metrics.json, gradient-<data set>.png, models/<data set>-<cell>/ and report.html."""
    folder = Path(folder)
    paths: dict[str, Path] = {}
    sections = []
    for data, runs in results:
        for run in runs:
            if run.model is not None:
                paths[f"model {data.name} {run.method}"] = run.model.save(
                    folder / "models" / f"{data.name}-{run.method}"
                )
        nets = {NAMES[r.method]: r.reaches[0].lags for r in runs if r.reaches}
        if not nets:
            continue
        low, high = data.lengths()
        length = f"length {low}" if low == high else f"lengths {low}-{high}"
        figure = plot_lag_profiles({f"{data.name} test part ({length})": nets})
        paths[f"gradient {data.name}"] = save_figure(figure, folder / f"gradient-{data.name}.png")
        sections.append(
            Section(
                f"{data.name}: how far back the trained networks' gradient reaches",
                paths[f"gradient {data.name}"],
                "Mean gradient norm of the training loss by lag from each series' own last "
                "step, relative to lag 0, for the first seed's networks on the test part. The "
                f"dotted lines are the gradient horizons (threshold 1e-3); the longest lag in "
                f"a series of length {high} is {high - 1}.",
            )
        )
    paths["metrics"] = folder / "metrics.json"
    paths["metrics"].write_text(
        json.dumps(
            {
                "command": "classify",
                "settings": asdict(settings),
                "datasets": [metrics(d, r) for d, r in results],
                "published_source": SOURCE,
                "machine": meta,
            },
            indent=2,
        )
    )
    table = [row for data, runs in results for row in rows(data, runs)]
    intro = (
        "Test accuracy on each data set's published train / test split: mean and sample "
        "standard deviation over the seeds (1-NN DTW is deterministic: one run), mean fit "
        f"time, the published accuracy ({SOURCE}) and each trained network's gradient "
        "horizon (one per seed) beside the longest series. 1-NN DTW's work is in predict."
    )
    paths["report"] = write_report(
        folder / "report.html",
        "vanishing classify",
        intro,
        COLUMNS,
        table,
        sections,
        describe_machine(meta),
    )
    return paths
