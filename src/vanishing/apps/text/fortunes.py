"""A real labelled corpus from a system package: Debian's ``fortunes`` (category = file).

Install it once with ``apt-get install fortunes`` (Debian, Ubuntu; ``.ci/run`` does this for
the tests): it puts one file per category under /usr/share/games/fortunes, each holding
fortunes (quotations, jokes, definitions) separated by lines of a single "%". Nothing is
downloaded at run time and nothing is read at import.

``load_fortunes`` reads the chosen categories: the text of each fortune, stripped, labelled
with its file's name. The index files (``*.dat``), the ``*.u8`` links to the same files and
sub-folders (the offensive ``off/`` collection of ``fortunes-off``) are ignored. A fortune
found in more than one chosen category is dropped (its label would be ambiguous and it would
leak between the splits), and a repeated one inside a category is kept once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from vanishing.apps.text.errors import TextDataError, where
from vanishing.apps.text.labelled import LabelledTexts

FORTUNES_DIR = Path("/usr/share/games/fortunes")

FORTUNE_CATEGORIES = (
    "drugs",
    "education",
    "food",
    "law",
    "linux",
    "love",
    "science",
    "sports",
    "startrek",
)
"""The default categories: nine distinct topics of 150 to 620 fortunes each (2298 in all in
fortunes 1:1.99), so every class has enough examples for a stratified split."""

INSTALL_HINT = "install it with `apt-get install fortunes` (Debian/Ubuntu)"


def fortune_categories(directory: str | Path = FORTUNES_DIR) -> dict[str, Path]:
    """The category files of a fortunes directory, by name (sorted)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TextDataError(
            f"{directory}: the fortunes corpus is not installed (no such directory); {INSTALL_HINT}"
        )
    files = {
        path.name: path
        for path in sorted(directory.iterdir())
        if path.is_file() and not path.is_symlink() and path.suffix not in (".dat", ".u8")
    }
    if not files:
        raise TextDataError(f"{directory}: holds no fortune files; {INSTALL_HINT}")
    return files


def read_fortunes(path: str | Path) -> list[tuple[int, str]]:
    """The fortunes of one file, as (line the fortune starts on, text), in file order."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raw = path.read_bytes()
        line = raw[: e.start].count(b"\n") + 1
        raise TextDataError(
            f"{where(path, line)}: bytes {raw[e.start : e.end]!r} are not valid utf-8 "
            f"(fortune files are expected in utf-8)"
        ) from None
    fortunes: list[tuple[int, str]] = []
    start, lines = 1, []
    for number, line in enumerate(text.split("\n") + ["%"], start=1):
        if line.rstrip("\r") == "%":
            if "".join(lines).strip():
                fortunes.append((start, "\n".join(lines).strip()))
            start, lines = number + 1, []
        else:
            lines.append(line.rstrip("\r"))
    return fortunes


def load_fortunes(
    categories: tuple[str, ...] | list[str] | None = FORTUNE_CATEGORIES,
    directory: str | Path = FORTUNES_DIR,
    max_chars: int | None = None,
) -> LabelledTexts:
    """The fortunes of ``categories`` (None: every category) as texts labelled by category.

    ``max_chars`` drops longer fortunes (None keeps all). A missing corpus or category is a
    TextDataError saying how to install it or which categories there are.
    """
    files = fortune_categories(directory)
    chosen = sorted(files) if categories is None else list(categories)
    unknown = [name for name in chosen if name not in files]
    if unknown:
        raise TextDataError(
            f"{directory}: no fortune categories {unknown}; the installed ones are {sorted(files)}"
        )
    if len(set(chosen)) < 2:
        raise TextDataError(f"{directory}: need at least 2 distinct categories, got {chosen}")
    by_category: dict[str, dict[str, int]] = {}
    for name in sorted(set(chosen)):
        kept: dict[str, int] = {}
        for line, fortune in read_fortunes(files[name]):
            if max_chars is None or len(fortune) <= max_chars:
                kept.setdefault(fortune, line)
        by_category[name] = kept
    seen = Counter(fortune for kept in by_category.values() for fortune in kept)
    texts, labels, origins = [], [], []
    for name, kept in by_category.items():
        for fortune, line in kept.items():
            if seen[fortune] == 1:
                texts.append(fortune)
                labels.append(name)
                origins.append(f"{files[name]}:{line}")
    return LabelledTexts(texts, labels, origins, source=str(directory))
