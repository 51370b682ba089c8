"""Figures of the long-time-lag suite, from plain numbers: the learnable lag, sequences to
success against the paper, learning curves, and the gradient-flow heatmaps of the runs the
monitor watched."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from vanishing.report.figures import HEATMAP_FLOOR, color_for, draw_heatmap, plt


def plot_success_by_length(
    series: Mapping[str, Sequence[tuple[int, float]]], task: str = "adding"
) -> Figure:
    """Success rate over seeds against the sequence length, one line per model."""
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    for name, points in series.items():
        lengths, rates = zip(*sorted(points), strict=True)
        ax.plot(lengths, rates, marker="o", lw=2, color=color_for(name), label=name)
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("sequence length T (log scale)")
    ax.set_ylabel("fraction of seeds solved")
    ax.set_title(f"The learnable lag: {task}, success rate against T")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def plot_sequences_vs_paper(points: Sequence[tuple[str, float, float, bool]]) -> Figure:
    """Our median training sequences to success against the paper's, log-log, y = x dashed.

    points: (label, paper's sequences, ours, solved); unsolved runs are drawn at their budget
    as open triangles (the true figure is larger).
    """
    fig, ax = plt.subplots(figsize=(7.2, 5.4))
    values = [v for _, p, o, _ in points for v in (p, o)]
    low, high = min(values) / 2, max(values) * 2
    ax.plot([low, high], [low, high], ls="--", color="black", lw=1, label="as many as the paper")
    for label, paper, ours, solved in points:
        marker = dict(marker="o", color="#1f77b4") if solved else dict(
            marker="^", markerfacecolor="none", color="#d62728"
        )  # fmt: skip
        ax.plot([paper], [ours], ls="none", ms=8, **marker)
        ax.annotate(label, (paper, ours), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("training sequences, Hochreiter & Schmidhuber 1997 (log)")
    ax.set_ylabel("training sequences, ours: median over seeds (log)")
    ax.set_title("Sequences to success: below the diagonal = fewer than the paper")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9, loc="upper left")
    fig.tight_layout()
    return fig


def plot_suite_curves(
    panels: Mapping[str, Mapping[str, Sequence[Sequence[tuple[int, float]]]]],
    baselines: Mapping[str, float],
) -> Figure:
    """Held-out loss against training sequences: one panel per task and length, one colour
    per model, one line per seed, the trivial baseline dashed.

    panels: {panel title: {model name: [curve per seed: [(sequences, loss), ...]]}}.
    """
    n = len(panels)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.2 * rows), squeeze=False)
    for ax, (title, models) in zip(axes.flat, panels.items(), strict=False):
        for name, curves in models.items():
            for k, curve in enumerate(curves):
                if not curve:
                    continue
                x, y = np.array(curve, dtype=np.float64).T
                y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
                ax.plot(x, y, color=color_for(name), lw=1.2, alpha=0.8,
                        label=name if k == 0 else None)  # fmt: skip
        ax.axhline(baselines[title], color="black", ls="--", lw=1, label="trivial baseline")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training sequences", fontsize=8)
        ax.set_ylabel("held-out loss", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Learning curves (one line per seed)")
    fig.tight_layout()
    return fig


def plot_suite_heatmaps(
    panels: Mapping[str, Mapping[str, tuple[Sequence[int], Sequence[int], np.ndarray]]],
    fraction: float = 1e-3,
) -> Figure:
    """The gradient reaching each lag while the models train: one row per task and length,
    one panel per model, log10 norm relative to lag 0 over (training sequences, lag).

    panels: {row title: {model name: (sequences (S,), lags (L,), norms (S, L))}}.
    """
    models = list(dict.fromkeys(name for row in panels.values() for name in row))
    rows, cols = len(panels), len(models)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.8 * cols + 1.0, 2.9 * rows), squeeze=False, layout="constrained"
    )
    image = None
    for r, (title, row) in enumerate(panels.items()):
        for c, name in enumerate(models):
            ax = axes[r][c]
            if name not in row:
                ax.axis("off")
                continue
            x, lags, norms = row[name]
            image = draw_heatmap(
                ax, np.asarray(x), np.asarray(lags), np.asarray(norms, dtype=np.float64), fraction
            )
            ax.set_title(f"{title}: {name}", fontsize=9)
            ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
            ax.set_xlabel("training sequences", fontsize=8)
            ax.set_ylabel("time lag k − t", fontsize=8)
            ax.tick_params(labelsize=7)
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.01)
        bar.set_label(f"log10 relative gradient norm (floor {HEATMAP_FLOOR:g})")
    fig.suptitle(
        f"Gradient reaching lag k − t while training, seed 0 (white line: "
        f"10^{np.log10(fraction):g}, the horizon's threshold)",
        fontsize=11,
    )
    return fig


def _thousands(value: float, _position: object = None) -> str:
    """A tick label: 25000 -> '25k', 500 -> '500'."""
    return f"{value / 1000:g}k" if abs(value) >= 1000 else f"{value:g}"
