"""`vanishing explain`: the per-token gradients of a saved text classifier's prediction."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from vanishing.cli.common import RUNS, console, fail, new_run_dir, run_meta
from vanishing.report import shade

Opt = typer.Option


def token_line(tokens: list[str], values: object, rgb: tuple[int, int, int]) -> Text:
    """The tokens, each on a background shaded by its value (`report.shade`, log scale)."""
    line = Text()
    for token, a in zip(tokens, shade(values), strict=True):  # type: ignore[arg-type]
        r, g, b = (round(255 - (255 - c) * float(a)) for c in rgb)
        line.append(token, style=f"black on #{r:02x}{g:02x}{b:02x}")
        line.append(" ")
    return line


def explain(
    model: Annotated[
        Path, Opt("--model", help="A saved text classifier (classify-text's model/ folder).")
    ],
    text: Annotated[str, Opt("--text", help="The text to explain.")],
    target: Annotated[
        str | None,
        Opt("--target", help="Explain this class's loss instead of the predicted class's."),
    ] = None,
    out: Annotated[Path, Opt("--out", help="Parent folder of the run folder.")] = RUNS,
) -> None:
    """Show which tokens a saved text classifier's prediction depends on.

    Prints the text with each token shaded by ||dL/dh_t|| (and ||dL/dc_t|| for an LSTM),
    L = -log p(predicted class | text), and the gradient horizon; writes explain.html,
    lag_profile.png and tokens.json into runs/explain-<time>/.
    """
    from vanishing.apps.model_file import ModelFileError, read_kind
    from vanishing.apps.text.classifier import TextClassifier
    from vanishing.apps.text.compare import model_name
    from vanishing.apps.text.explain import FRACTION
    from vanishing.apps.text.explain import explain as explain_text
    from vanishing.apps.text.report import write_explanation
    from vanishing.report.machine import describe

    try:
        kind = read_kind(model)
        if kind != TextClassifier.kind:
            fail(f"--model {model}: expected a saved {TextClassifier.kind}, got a {kind} model")
        classifier = TextClassifier.load(model)
        grads = explain_text(classifier, text, target)
    except (ModelFileError, ValueError, TypeError) as error:
        fail(str(error))
    run_dir = new_run_dir(out, "explain")
    name = model_name(classifier.cell, classifier.nonlinearity)
    probability = grads.probabilities[grads.target]
    console.print(
        f"{name} predicts [bold]{grads.predicted}[/]; L = -log p({grads.target} | text) = "
        f"{grads.loss:.3g} (p = {probability:.3f})",
        highlight=False,
    )
    console.print("‖∂L/∂h_t‖ (log shade, darkest = largest):", highlight=False)
    console.print(token_line(grads.tokens, grads.dh_norm, (214, 39, 40)))
    if grads.dc_norm is not None:
        console.print("‖∂L/∂c_t‖:", highlight=False)
        console.print(token_line(grads.tokens, grads.dc_norm, (31, 119, 180)))
    console.print(
        f"gradient horizon: {grads.horizon} of {len(grads.tokens) - 1} tokens back from the "
        f"last (norm >= {FRACTION:g} of the last token's)",
        highlight=False,
    )
    meta = html.escape(describe(run_meta()))
    page = write_explanation(run_dir, name, grads, model, meta)
    console.print(f"wrote {page}", highlight=False)
