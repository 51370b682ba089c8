"""A text with each token shaded by a per-token number (a gradient norm), as HTML.

Gradient norms fall by orders of magnitude along a text, so the shade is logarithmic: a
token's opacity is 1 + log10(value / max) / DECADES, clipped to [0, 1], i.e. full colour at the
largest value and none at DECADES orders of magnitude below it (or at 0).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

DECADES = 6.0
"""Orders of magnitude below the largest value at which a token's shade reaches nothing."""

TOKEN_STYLE = """
.tokens { line-height: 2.1; font-family: ui-monospace, monospace; font-size: 0.95em;
          border: 1px solid #ddd; padding: 0.6em; }
.tok { padding: 0.15em 0.25em; margin: 0 0.1em; border-radius: 3px; }
.tok.unk { text-decoration: underline dotted; }
.scale { font-size: 0.85em; color: #555; }
"""


def shade(values: Sequence[float] | np.ndarray, decades: float = DECADES) -> np.ndarray:
    """(T,) opacities in [0, 1]: 1 + log10(v / max v) / decades, clipped; 0 where v is 0."""
    v = np.asarray(values, dtype=np.float64)
    top = v.max() if v.size else 0.0
    if not (np.isfinite(top) and top > 0):
        return np.zeros_like(v)
    with np.errstate(divide="ignore"):
        level = 1.0 + np.log10(np.where(v > 0, v / top, 0.0)) / decades
    return np.clip(np.nan_to_num(level, nan=0.0, neginf=0.0), 0.0, 1.0)


def shaded_tokens(
    tokens: Sequence[str],
    values: Sequence[float] | np.ndarray,
    name: str,
    unknown: Sequence[bool] | None = None,
    rgb: tuple[int, int, int] = (214, 39, 40),
) -> str:
    """An HTML fragment: the tokens in order, each on a background of opacity `shade(values)`,
    its value (named `name`) in a tooltip; unknown tokens dotted-underlined; then the scale."""
    alpha = shade(values)
    spans = []
    for t, (token, value, a) in enumerate(zip(tokens, values, alpha, strict=True)):
        cls = "tok unk" if unknown is not None and unknown[t] else "tok"
        tip = f"t={t + 1}: {name} = {float(value):.3g}"
        spans.append(
            f'<span class="{cls}" style="background: rgba({rgb[0]},{rgb[1]},{rgb[2]},{a:.3f})" '
            f'title="{html.escape(tip)}">{html.escape(token)}</span>'
        )
    top = float(np.max(values)) if len(values) else 0.0
    scale = (
        f'<p class="scale">Shade: {html.escape(name)} on a log scale, full colour at its largest '
        f"value ({top:.3g}), none at {DECADES:g} orders of magnitude below it; hover a token "
        "for its value; dotted: not in the vocabulary (read as &lt;unk&gt;).</p>"
    )
    return f'<div class="tokens">{" ".join(spans)}</div>{scale}'
