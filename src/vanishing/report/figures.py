"""Figures (matplotlib, Agg) of gradient flow and training: (a) to (d) of the reports.

Every figure function takes plain numbers (LagProfiles, LSTMTerms, learning curves) and
returns a matplotlib Figure; `save_figure` writes it as PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vanishing.gradflow import LagProfile, LSTMTerms  # noqa: E402
from vanishing.nn.activations import NAMES  # noqa: E402
from vanishing.tasks import ADDING_BASELINE_MSE  # noqa: E402

COLORS = {
    **dict(zip(NAMES, ("#ff7f0e", "#8c564b", "#d62728"), strict=True)),  # tanh, relu, sigmoid
    "lstm": "#1f77b4",
}
"""A fixed colour per model family, recognised in display names: each RNN activation, LSTM."""
HEATMAP_FLOOR = -20.0  # log10 relative norms below this share the darkest colour


def color_for(name: str) -> str:
    """A fixed colour per model family, recognised from its display name."""
    lowered = name.lower()
    for key, color in COLORS.items():
        if key in lowered:
            return color
    return "#2ca02c"


def lag_norms(profile: LagProfile) -> np.ndarray:
    """The norms the horizon is measured on: ||dE_k/dc_t|| (LSTM) or ||dE_k/dh_t|| (RNN)."""
    return np.asarray(profile.norm, dtype=np.float64)


def relative(norms: np.ndarray) -> np.ndarray:
    """norms / norms[0], with zeros (float underflow) kept as 0."""
    return norms / norms[0] if norms[0] > 0 else np.zeros_like(norms)


def plot_lag_profiles(
    panels: Mapping[str, Mapping[str, LagProfile]], fraction: float = 1e-3
) -> Figure:
    """Figure (a): relative gradient norm vs lag k - t, log y, one curve per model, RNN bounds.

    panels: {panel title: {model name: LagProfile}}, e.g. at initialisation and after training.
    """
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(6.2 * len(panels) + 1.2, 5.4),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    low, high = 1.0, 1.0
    for ax, (title, profiles) in zip(axes[0], panels.items(), strict=True):
        for name, profile in profiles.items():
            rel = relative(lag_norms(profile))
            lags = np.arange(len(rel))
            color = color_for(name)
            which = "c" if profile.dc_norm is not None else "h"
            positive = rel > 0
            ax.semilogy(
                lags[positive],
                rel[positive],
                color=color,
                lw=2.2,
                label=f"{name}: measured ‖∂E/∂{which}_t‖",
            )
            if positive.any():
                low = min(low, float(rel[positive].min()))
                high = max(high, float(rel[positive].max()))
            bound = profile.bound
            if bound is not None:
                bound = np.asarray(bound, dtype=np.float64)[: len(rel)]
                ax.semilogy(
                    lags[: len(bound)],
                    bound,
                    color=color,
                    lw=1.2,
                    ls="--",
                    label=f"{name}: bound (γλ₁)^lag",
                )
            horizon = int(profile.horizon)
            ax.axvline(horizon, color=color, lw=0.8, ls=":", alpha=0.8)
        ax.axhline(fraction, color="grey", lw=0.8, ls="-.")
        ax.text(
            0.99,
            fraction,
            f"horizon threshold {fraction:g} ",
            color="grey",
            ha="right",
            va="bottom",
            fontsize=8,
            transform=ax.get_yaxis_transform(),
        )
        ax.set_title(title)
        ax.set_xlabel("time lag k − t (steps back from the loss at k = T)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("gradient norm relative to lag 0 (log scale)")
    bottom = max(min(low, fraction) / 10.0, 1e-300)
    axes[0][0].set_ylim(bottom, max(10.0, high * 10.0))
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="grey", lw=0.8, ls=":"))
    labels.append("gradient horizon (dotted, model's colour)")
    ncols = 3 if len(panels) > 1 else 1
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)
    fig.suptitle("(a) How much of the gradient of E_k reaches k − t steps back", fontsize=12)
    return fig


def plot_lstm_terms(terms_start: LSTMTerms, terms_end: LSTMTerms, name: str = "LSTM") -> Figure:
    """Figure (b): norms of A_t, B_t, C_t, D_t and their sum over t; forget-gate histogram."""
    fig, (ax, hx) = plt.subplots(
        1, 2, figsize=(12.4, 4.8), gridspec_kw={"width_ratios": [3, 2]}, layout="constrained"
    )
    styles = {
        "A": ("#9467bd", "A_t  (via the forget gate's input)"),
        "B": ("#1f77b4", "B_t = diag(f_t)  (the direct path)"),
        "C": ("#2ca02c", "C_t  (via the input gate)"),
        "D": ("#ff7f0e", "D_t  (via the candidate c̃_t)"),
    }
    # from t = 2: at t = 1, h_0 does not depend on c_0, so A_1 = C_1 = D_1 = 0
    steps = np.arange(2, len(np.asarray(terms_end.total)) + 1)
    for key, (color, label) in styles.items():
        values = np.asarray(getattr(terms_end, key))[1:]
        ax.semilogy(steps, values, color=color, lw=1.6, label=label)
    ax.semilogy(steps, np.asarray(terms_end.total)[1:], color="black", lw=2.2, label="‖A+B+C+D‖")
    ax.plot(
        steps,
        np.asarray(terms_end.forget_mean)[1:],
        color="#1f77b4",
        lw=1.0,
        ls="--",
        label="mean f_t",
    )
    ax.set_xlabel("time step t")
    ax.set_ylabel("spectral norm (batch mean)")
    ax.set_title(f"{name} after training: the four terms of ∂c_t/∂c_(t−1)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    bins = np.linspace(0.0, 1.0, 41)
    start = np.asarray(terms_start.forget).ravel()
    end = np.asarray(terms_end.forget).ravel()
    hx.hist(start, bins=bins, density=True, alpha=0.5, color="grey", label="at initialisation")
    hx.hist(end, bins=bins, density=True, alpha=0.6, color="#1f77b4", label="after training")
    hx.set_xlabel("forget-gate activation f_t")
    hx.set_ylabel("density")
    hx.set_title("Forget-gate values (all t, units, sequences)")
    hx.legend(fontsize=8, loc="upper left")
    fig.suptitle("(b) Inside the LSTM's cell-state Jacobian", fontsize=12)
    return fig


def plot_heatmaps(
    maps: Mapping[str, tuple[Sequence[int], np.ndarray]], fraction: float = 1e-3
) -> Figure:
    """Figure (c): log10 relative gradient norm over (training step, lag), one panel per model.

    maps: {model name: (steps (S,), norms (S, T) by lag)}.
    """
    fig, axes = plt.subplots(
        1,
        len(maps),
        figsize=(4.2 * len(maps) + 1.0, 4.4),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    image = None
    for ax, (name, (steps, norms)) in zip(axes[0], maps.items(), strict=True):
        norms = np.asarray(norms, dtype=np.float64)
        image = draw_heatmap(ax, np.asarray(steps), np.arange(norms.shape[1]), norms, fraction)
        ax.set_title(name)
        ax.set_xlabel("training step")
    axes[0][0].set_ylabel("time lag k − t")
    bar = fig.colorbar(image, ax=axes[0].tolist(), fraction=0.04, pad=0.01)
    bar.set_label(f"log10 relative gradient norm (floor {HEATMAP_FLOOR:g})")
    fig.suptitle(
        f"(c) Gradient reaching lag k − t during training (white line: 10^{np.log10(fraction):g})",
        fontsize=12,
    )
    return fig


def draw_heatmap(
    ax: plt.Axes, x: np.ndarray, lags: np.ndarray, norms: np.ndarray, fraction: float
) -> object:
    """log10 of norms (S, L) relative to lag 0, one column per x (S,) (training steps or
    sequences), one row per lag (L,), on ax; returns the mesh (for a colour bar). Below
    HEATMAP_FLOOR shares the darkest colour; NaN (a lag no sequence had) stays blank; the
    white line is the horizon's threshold `fraction`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(np.stack([relative(row) for row in norms]))  # (S, L)
    logs = np.clip(np.where(np.isneginf(logs), HEATMAP_FLOOR, logs), HEATMAP_FLOOR, 2.0)
    image = ax.pcolormesh(
        _edges(x), _edges(lags), logs.T, cmap="magma", vmin=HEATMAP_FLOOR, vmax=0.0,
        shading="flat",
    )  # fmt: skip
    level = np.log10(fraction)
    if len(x) > 1 and len(lags) > 1 and np.nanmin(logs) < level < np.nanmax(logs):
        ax.contour(x, lags, logs.T, levels=[level], colors="white")
    return image


def _edges(steps: np.ndarray) -> np.ndarray:
    """Cell edges around increasing centres, for pcolormesh."""
    steps = np.asarray(steps, dtype=np.float64)
    if len(steps) == 1:
        return np.array([steps[0] - 0.5, steps[0] + 0.5])
    mids = (steps[1:] + steps[:-1]) / 2.0
    return np.concatenate(
        [[steps[0] - (mids[0] - steps[0])], mids, [steps[-1] + (steps[-1] - mids[-1])]]
    )


def plot_learning_curves(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float], Sequence[float]]],
    baseline: float = ADDING_BASELINE_MSE,
) -> Figure:
    """Figure (d): test MSE (and smoothed train loss) vs step, log y, with the baseline 1/6.

    curves: {model name: (test steps, test MSE, train loss per step)}.
    """
    fig, ax = plt.subplots(figsize=(8.4, 4.6))
    for name, (steps, test, train) in curves.items():
        color = color_for(name)
        train = np.asarray(train, dtype=np.float64)
        if len(train) >= 2:
            width = max(1, len(train) // 50)
            smooth = np.convolve(train, np.ones(width) / width, mode="valid")
            ax.semilogy(np.arange(width, len(train) + 1), smooth, color=color, lw=0.8, alpha=0.35)
        ax.semilogy(steps, test, color=color, lw=2.2, marker="o", ms=3, label=f"{name} (test)")
    ax.axhline(baseline, color="black", ls="--", lw=1.2, label="baseline: always predict 1 (1/6)")
    ax.set_xlabel("training step")
    ax.set_ylabel("mean squared error (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title("(d) Learning curves on the adding problem (thin: train loss, smoothed)")
    fig.tight_layout()
    return fig


def plot_token_gradients(
    tokens: Sequence[str], norms: Mapping[str, Sequence[float] | np.ndarray], quantity: str
) -> Figure:
    """A gradient norm at each token of one text, one panel per model, relative to its largest.

    norms: {model name: (T,) norms, e.g. ||dL/dh_t||}; quantity names them (the y label).
    Log y: bars reach down to 1e-12 of the largest value (zeros are drawn at that floor).
    """
    floor = 1e-12
    T = len(tokens)
    fig, axes = plt.subplots(
        len(norms), 1, figsize=(max(6.0, 0.22 * T + 1.5), 1.9 * len(norms) + 1.2),
        squeeze=False, sharex=True, layout="constrained",
    )  # fmt: skip
    for ax, (name, values) in zip(axes[:, 0], norms.items(), strict=True):
        v = np.asarray(values, dtype=np.float64)
        rel = np.maximum(v / v.max(), floor) if v.max() > 0 else np.full(T, floor)
        ax.bar(np.arange(T), rel, bottom=floor, color=color_for(name), width=0.8)
        ax.set_yscale("log")
        ax.set_ylim(floor, 2.0)
        ax.set_ylabel(f"{name}\nrelative", fontsize=9)
        ax.grid(True, axis="y", which="major", alpha=0.3)
    axes[-1, 0].set_xticks(np.arange(T), tokens, rotation=90, fontsize=8)
    axes[-1, 0].set_xlim(-0.6, T - 0.4)
    fig.suptitle(
        f"{quantity} at each token, relative to its largest value (log scale)", fontsize=11
    )
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    """Write fig as PNG (110 dpi) and close it."""
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
