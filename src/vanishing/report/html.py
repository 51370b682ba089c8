"""The self-contained HTML report: a results table and figures embedded as base64 PNGs."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Section:
    """One figure of the report: a title, its PNG and two or three sentences about it."""

    title: str
    png: Path
    text: str


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f0f0f0; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.95em; color: #333; margin-top: 0.4em; }
code { background: #f4f4f4; padding: 0 0.2em; }
.meta { color: #555; font-size: 0.9em; }
"""


def write_report(
    path: Path,
    title: str,
    intro: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    sections: Sequence[Section],
    meta: str = "",
    blocks: Sequence[tuple[str, str]] = (),
    style: str = "",
) -> Path:
    """One self-contained HTML page: intro, the results table, each figure with its text.

    blocks: (title, HTML fragment) pairs placed after the table, before the figures (the
    fragments are inserted as they are: escape what they quote); style: CSS they need.
    """
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{STYLE}{style}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{intro}</p>",
        f'<table id="results"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>',
    ]
    for k, (heading, fragment) in enumerate(blocks):
        parts += [f'<h2 id="block-{k}">{esc(heading)}</h2>', fragment]
    for k, section in enumerate(sections):
        data = base64.b64encode(Path(section.png).read_bytes()).decode("ascii")
        parts += [
            f'<h2 id="fig-{k}">{esc(section.title)}</h2>',
            f'<figure><img alt="{esc(section.title)}" data-file="{esc(Path(section.png).name)}" '
            f'src="data:image/png;base64,{data}">',
            f"<figcaption>{section.text}</figcaption></figure>",
        ]
    if meta:
        parts.append(f'<p class="meta">{meta}</p>')
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
