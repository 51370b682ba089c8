"""A `vanishing classify-text` run: its data, and its folder once the models are compared.

`load_split` reads the user's file(s) or makes a named data set and splits it;
`write_run` saves the chosen model and its vocabulary, `metrics.json` (data, parameters,
scores, machine, command) and `report.html` (the scores, and the per-token gradients of the
first test text for every recurrent model). The command compares (`compare.py`) between them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vanishing.apps.text.classifier import TextClassifier
from vanishing.apps.text.compare import Score, model_name
from vanishing.apps.text.datasets import load_dataset
from vanishing.apps.text.explain import explain
from vanishing.apps.text.reading import read_texts
from vanishing.apps.text.report import write_page
from vanishing.apps.text.split import Split, read_split, stratified_split
from vanishing.report.machine import describe

COLUMNS = ["model", "accuracy", "macro-F1", "fit s", "epochs", "note"]


def load_split(
    file: Path | None,
    test_file: Path | None,
    val_file: Path | None,
    dataset: str | None,
    text_col: str,
    label_col: str,
    *,
    val: float,
    test: float,
    seed: int,
    n: int,
    length: int,
    head: int,
    fmt: str | None = None,
    encoding: str = "utf-8",
) -> tuple[Split, str]:
    """(split, a description of its source): the given train/test(/val) files, or one file or
    a named data set (n, length, head: the generated ones') split stratified by seed."""
    if file is not None and test_file is not None:
        split = read_split(
            file,
            test_file,
            text_col,
            label_col,
            val_file,
            val_fraction=val,
            seed=seed,
            format=fmt,
            encoding=encoding,
        )
        return split, f"{file} (test: {test_file})"
    if file is not None:
        data = read_texts(file, text_col, label_col, format=fmt, encoding=encoding)
    elif dataset is not None:
        data = load_dataset(dataset, n, length, head, seed)
    else:
        raise ValueError("expected a file or a data set name, got neither")
    return stratified_split(data, val=val, test=test, seed=seed), data.source


def score_rows(scores: Sequence[Score]) -> list[list[str]]:
    """The scores as table rows under COLUMNS."""
    return [
        [
            s.name,
            f"{s.accuracy:.3f}",
            f"{s.macro_f1:.3f}",
            f"{s.fit_seconds:.1f}",
            "" if s.epochs is None else str(s.epochs),
            s.detail,
        ]
        for s in scores
    ]


def write_run(
    run_dir: Path,
    split: Split,
    source: str,
    params: Mapping[str, Any],
    scores: Sequence[Score],
    models: Mapping[str, TextClassifier],
    chosen: str,
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """Write the run folder (module docstring) and return its metrics. models: {cell: fitted
    model}; chosen: the cell saved as model/; meta: the machine and the "command"."""
    nonlinearity = str(params.get("nonlinearity", "tanh"))
    models[chosen].save(run_dir / "model")
    models[chosen].vocabulary_.save(run_dir / "vocabulary.json")
    machine = {k: v for k, v in meta.items() if k != "command"}
    command = str(meta.get("command", ""))
    sizes = {"train": len(split.train), "val": len(split.val), "test": len(split.test)}
    majority = max(split.test.class_counts().values()) / len(split.test)
    metrics = {
        "command": command,
        "machine": machine,
        "data": {"source": source, "classes": split.classes, "sizes": sizes, "majority": majority},
        "params": {k: v for k, v in params.items() if k != "verbose"},
        "scores": [vars(s) for s in scores],
        "saved_model": model_name(chosen, nonlinearity),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")

    text = split.test.texts[0]
    explained = {model_name(c, nonlinearity): explain(m, text) for c, m in models.items()}
    first_label = split.test.require_labels()[0]
    intro = (
        f"Data: {html.escape(source)}; {len(split.classes)} classes; train/val/test = "
        f"{sizes['train']}/{sizes['val']}/{sizes['test']} texts (majority class on test: "
        f"{majority:.3f}). Scores on the test part. Below: the per-token gradients of the "
        f"first test text (true label {html.escape(repr(first_label))})."
    )
    line = html.escape(describe(meta))
    rows = score_rows(scores)
    write_page(run_dir, "vanishing classify-text", intro, COLUMNS, rows, explained, line)
    return metrics
