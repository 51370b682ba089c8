"""The text pages: the per-token gradient view of one text (and a run's report around it).

`write_page` writes one self-contained HTML page (`report.write_report`): a table, then for
each explained model the text with every token shaded by ||dL/dh_t|| (and ||dL/dc_t|| for the
LSTM, `report.tokens`), then the same norms as bars (`report.plot_token_gradients`) and their
lag profile (`report.plot_lag_profiles`: norm relative to the last token against the lag in
tokens, each model's gradient horizon).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from vanishing.apps.text.explain import FRACTION, TokenGradients
from vanishing.report import (
    TOKEN_STYLE,
    Section,
    plot_lag_profiles,
    plot_token_gradients,
    save_figure,
    shaded_tokens,
    write_report,
)

LOSS = "L = −log p(predicted class | text)"


def token_blocks(name: str, grads: TokenGradients) -> list[tuple[str, str]]:
    """(title, HTML) of the shaded text for ||dL/dh_t|| and, for the LSTM, ||dL/dc_t||."""
    probability = grads.probabilities[grads.target]
    head = (
        f"<p>{html.escape(name)} predicts <b>{html.escape(grads.predicted)}</b>; "
        f"L = −log p({html.escape(grads.target)} | text) = {grads.loss:.3g} "
        f"(p = {probability:.3f}); gradient horizon {grads.horizon} tokens back from the last "
        f"of {len(grads.tokens)}.</p>"
    )
    blocks = [
        (
            f"{name}: ‖∂L/∂h_t‖ at each token",
            head + shaded_tokens(grads.tokens, grads.dh_norm, "‖∂L/∂h_t‖", grads.unknown),
        )
    ]
    if grads.dc_norm is not None:
        blocks.append(
            (
                f"{name}: ‖∂L/∂c_t‖ at each token",
                shaded_tokens(
                    grads.tokens, grads.dc_norm, "‖∂L/∂c_t‖", grads.unknown, rgb=(31, 119, 180)
                ),
            )
        )
    return blocks


def write_page(
    folder: Path,
    title: str,
    intro: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    explained: Mapping[str, TokenGradients],
    meta: str = "",
    name: str = "report.html",
) -> Path:
    """Write ``name`` (HTML), token_gradients.png, lag_profile.png and tokens.json (the
    numbers per model and token) into ``folder``; explained: {model's display name: its
    TokenGradients}, all of the same text."""
    blocks: list[tuple[str, str]] = []
    for model_name, grads in explained.items():
        blocks += token_blocks(model_name, grads)
    sections = []
    if explained:
        first = next(iter(explained.values()))
        if all(g.tokens == first.tokens for g in explained.values()):
            bars = plot_token_gradients(
                first.tokens, {n: g.dh_norm for n, g in explained.items()}, "‖∂L/∂h_t‖"
            )
            sections.append(
                Section(
                    "‖∂L/∂h_t‖ token by token",
                    save_figure(bars, folder / "token_gradients.png"),
                    f"The gradient of {LOSS} with respect to the first recurrent layer's state "
                    "at each token, each model's bars relative to its largest (log scale): the "
                    "shaded texts above, as numbers.",
                )
            )
        panel = {n: g.profiles["l0"] for n, g in explained.items()}
        figure = plot_lag_profiles({"the explained text": panel}, FRACTION)
        png = save_figure(figure, folder / "lag_profile.png")
        sections.append(
            Section(
                "How far back the gradient reaches, token by token",
                png,
                f"The norm of the gradient of {LOSS} with respect to the first recurrent layer's "
                "state at each token (c_t for the LSTM, h_t for the RNN), relative to its value at "
                "the last token, against the number of tokens back from it (the forward "
                f"direction); dotted: the gradient horizon (the last lag above {FRACTION:g}).",
            )
        )
        numbers = {n: g.to_dict() for n, g in explained.items()}
        (folder / "tokens.json").write_text(
            json.dumps(numbers, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    return write_report(
        folder / name, title, intro, columns, rows, sections, meta, blocks, TOKEN_STYLE
    )


def write_explanation(
    folder: Path, name: str, grads: TokenGradients, model: str | Path, meta: str = ""
) -> Path:
    """`vanishing explain`'s page, explain.html (with write_page's figures and tokens.json):
    the token-by-token table of one text's gradients and the shaded text; name: the model's
    display name; model: the folder it was loaded from; meta: the run's line (HTML)."""
    rows = [
        [str(t + 1), token, f"{grads.dh_norm[t]:.3g}"]
        + ([] if grads.dc_norm is None else [f"{grads.dc_norm[t]:.3g}"])
        for t, token in enumerate(grads.tokens)
    ]
    columns = ["t", "token", "‖∂L/∂h_t‖"] + ([] if grads.dc_norm is None else ["‖∂L/∂c_t‖"])
    intro = (
        f"The per-token gradients of the model in <code>{html.escape(str(model))}</code> on "
        "one text; the table lists them token by token, the shaded texts show them at a glance."
    )
    return write_page(
        folder, "vanishing explain", intro, columns, rows, {name: grads}, meta, "explain.html"
    )
