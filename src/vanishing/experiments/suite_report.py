"""The suite's report in its folder: results.md, results.json, figures and report.html."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vanishing.experiments.results import COLUMNS, Row, cells, markdown_table, summarize
from vanishing.experiments.runner import Outcome
from vanishing.report import Section, save_figure, write_report
from vanishing.report.suite_figures import (
    plot_sequences_vs_paper,
    plot_success_by_length,
    plot_suite_curves,
    plot_suite_heatmaps,
)
from vanishing.tasks import make_task


@dataclass
class SuiteReport:
    """What write_suite_report wrote."""

    results_md: Path
    results_json: Path
    html: Path
    figures: dict[str, Path]
    rows: list[Row]


def label(task: str, T: int | None) -> str:
    return task if T is None else f"{task} T={T}"


def draw(outcomes: Sequence[Outcome], rows: Sequence[Row], folder: Path) -> dict[str, Path]:
    """The figures that the outcomes support, as PNGs in folder."""
    figures = {}
    lengths = {}
    for row in rows:
        if row.task == "adding" and row.T is not None:
            lengths.setdefault(row.model, []).append((row.T, row.success_rate))
    if any(len(points) >= 2 for points in lengths.values()):
        figures["learnable lag"] = save_figure(
            plot_success_by_length(lengths), folder / "learnable_lag.png"
        )
    points = []
    for row in rows:
        if row.model.startswith("LSTM") and row.paper is not None and row.paper.sequences:
            if row.median_sequences is not None:
                solved = row.median_sequences != float("inf")
                ours = row.median_sequences if solved else row.budget
                points.append((label(row.task, row.T), row.paper.sequences, ours, solved))
    if points:
        figures["sequences vs paper"] = save_figure(
            plot_sequences_vs_paper(points), folder / "sequences_vs_paper.png"
        )
    panels: dict[str, dict[str, list]] = {}
    baselines = {}
    for record in outcomes:
        title = label(record["task"], record["T"])
        baselines[title] = make_task(record["task"], record["T"]).objective.baseline
        curve = [(s, loss) for s, loss, _ in record["curve"] if loss is not None]
        panels.setdefault(title, {}).setdefault(record["model"], []).append(curve)
    if panels:
        figures["learning curves"] = save_figure(
            plot_suite_curves(panels, baselines), folder / "learning_curves.png"
        )
    maps: dict[str, dict[str, tuple]] = {}  # rows by task and length, models by name
    for record in sorted(outcomes, key=lambda r: (r["task"], r["T"] or 0, r["model"])):
        flow = record.get("gradflow")
        if flow and flow["sequences"]:
            norms = np.array(flow["norms"], dtype=float)  # (S, L), None -> NaN
            row = maps.setdefault(label(record["task"], record["T"]), {})
            row[record["model"]] = (flow["sequences"], flow["lags"], norms)
    if maps:
        figures["gradient flow"] = save_figure(
            plot_suite_heatmaps(maps), folder / "gradient_flow.png"
        )
    return figures


CAPTIONS = {
    "learnable lag": "Fraction of seeds that solved the 1997 adding problem within their "
    "budget, against the sequence length T: where a model stops learning the lag.",
    "sequences vs paper": "Median training sequences our LSTM needed to meet each task's "
    "success criterion, against Hochreiter & Schmidhuber 1997. Below the diagonal: fewer than "
    "the paper. Open triangles: not solved by half the seeds, drawn at the budget.",
    "learning curves": "Held-out loss against training sequences, one line per seed; dashed: "
    "the trivial predictor's loss (a model stuck there has learned nothing across the lag).",
    "gradient flow": "The training steps themselves, measured by vanishing.monitor at every "
    "evaluation of seed 0: the batch-mean norm of dE/dc_t (LSTM) or dE/dh_t (RNN) for the "
    "loss at the last step, relative to lag 0, against the lag k - t and the training "
    "sequences seen. Dark: the gradient does not reach that lag; the white line is the "
    "gradient horizon's threshold 1e-3.",
}


def write_suite_report(
    outcomes: Sequence[Outcome], folder: Path, meta: dict[str, Any]
) -> SuiteReport:
    """results.json (every outcome and meta), figures, results.md and report.html in folder."""
    folder = Path(folder)
    rows = summarize(outcomes)
    results_json = folder / "results.json"
    results_json.write_text(json.dumps({"meta": meta, "outcomes": list(outcomes)}, indent=1))
    figures = draw(outcomes, rows, folder)
    header = (
        f"Command: `{meta.get('command', '')}`  \n"
        f"Date: {meta.get('date')}; CPU: {meta.get('cpu')} ({meta.get('cores')} cores), "
        f"torch {meta.get('torch')} ISA {meta.get('isa')}; {meta.get('backend', '')}; "
        f"wall time {meta.get('wall_seconds', 0) / 60:.1f} min."
    )
    problems = [r for r in outcomes if r["status"] in ("error", "diverged")]
    lines = ["# Long-time-lag suite: results", "", header, "", markdown_table(rows), ""]
    if problems:
        lines += ["Runs that did not finish normally:", ""]
        lines += [f"- {r['name']}: {r['status']}: {r['message']}" for r in problems]
        lines.append("")
    lines += [f"![{name}]({path.name})" for name, path in figures.items()]
    results_md = folder / "results.md"
    results_md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sections = [Section(name, path, CAPTIONS[name]) for name, path in figures.items()]
    html = write_report(
        folder / "report.html",
        "Long-time-lag suite",
        header.replace("`", "").replace("  \n", "<br>"),
        COLUMNS,
        [cells(row) for row in rows],
        sections,
    )
    return SuiteReport(results_md, results_json, html, figures, rows)
