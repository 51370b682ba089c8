"""Reading labelled text from CSV, TSV or JSON Lines files, with one clear error per bad file.

A CSV or TSV file has a header line naming its columns (fields may be quoted, the standard
library's ``csv`` dialects "excel" and "excel-tab"); a JSON Lines file has one JSON object per
line. Blank lines are skipped. Labels are read as strings, stripped of surrounding space
(JSON numbers and booleans by their JSON text: 1 -> "1", true -> "true"); texts are kept as
written. Every error is a TextDataError naming the file and, where there is one, the line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from vanishing.apps.text.errors import TextDataError, where
from vanishing.apps.text.labelled import LabelledTexts

FORMATS = ("csv", "tsv", "jsonl")
"""The file formats read_texts reads (the choices of a --format option)."""

EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
}
"""The file-name extensions that name a format; any other needs an explicit format."""

Record = tuple[int, dict[str, object]]  # (the line the record starts on, column -> value)


def file_format(path: str | Path, format: str | None = None) -> str:
    """The format of ``path``: ``format`` if given, else from the extension (case-insensitive)."""
    if format is not None:
        if format not in FORMATS:
            raise TextDataError(f"{path}: unknown format {format!r}; expected one of {FORMATS}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        known = ", ".join(EXTENSIONS)
        raise TextDataError(
            f"{path}: cannot tell the format from the extension {suffix or '(none)'!r}; "
            f"expected one of {known}, or give the format ({', '.join(FORMATS)})"
        )
    return EXTENSIONS[suffix]


def read_texts(
    path: str | Path,
    text_col: str,
    label_col: str | None = None,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
) -> LabelledTexts:
    """The texts (and labels, if ``label_col`` is given) of a CSV, TSV or JSON Lines file.

    ``format`` overrides the extension; ``encoding`` is the file's text encoding (UTF-8, with or
    without a byte-order mark, by default). Raises TextDataError for an empty file, undecodable
    bytes, a missing column, a ragged row, an empty text or label, or a file with no rows.
    """
    kind = file_format(path, format)
    text = _decode(Path(path), encoding)
    columns = [text_col] if label_col is None else [text_col, label_col]
    if kind == "jsonl":
        records = _jsonl_records(path, text)
    else:
        records = _csv_records(path, text, kind, columns)
    texts: list[str] = []
    labels: list[str] = []
    origins: list[str] = []
    for line, record in records:
        for column in (text_col, label_col):
            if column is not None and column not in record:
                available = ", ".join(repr(c) for c in record) or "none"
                raise TextDataError(
                    f"{where(path, line)}: no column {column!r}; the columns are {available}"
                )
        texts.append(_text_value(path, line, text_col, record[text_col]))
        if label_col is not None:
            labels.append(_label_value(path, line, label_col, record[label_col]))
        origins.append(f"{path}:{line}")
    if not texts:
        raise TextDataError(f"{path}: no rows after the header; expected at least one text")
    return LabelledTexts(
        texts=texts,
        labels=labels if label_col is not None else None,
        origins=origins,
        source=str(path),
    )


def _decode(path: Path, encoding: str) -> str:
    """The file's text; a TextDataError naming the line of the first undecodable byte."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TextDataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TextDataError(f"{path}: is a directory, expected a file") from None
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        text = raw.decode(codec)
    except LookupError:
        raise TextDataError(f"{path}: unknown text encoding {encoding!r}") from None
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        bad = raw[e.start : e.end]
        raise TextDataError(
            f"{where(path, line)}: bytes {bad!r} are not valid {encoding} (expected {encoding} "
            f"text; give the file's encoding, e.g. latin-1 or cp1252, if it is another)"
        ) from None
    if not text.strip():
        raise TextDataError(f"{path}: the file is empty; expected a header line and rows")
    return text


def _csv_records(path: str | Path, text: str, kind: str, columns: list[str]) -> Iterator[Record]:
    """The rows of a CSV/TSV file as (start line, header -> field), checking the header has
    ``columns`` and every row as many fields as the header."""
    dialect = "excel-tab" if kind == "tsv" else "excel"
    reader = csv.reader(io.StringIO(text, newline=""), dialect=dialect)
    header: list[str] | None = None
    header_line = 0
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise TextDataError(f"{where(path, line)}: not valid {kind.upper()}: {e}") from None
        if not row or (len(row) == 1 and not row[0].strip()):  # a blank line
            continue
        if header is None:
            header, header_line = [name.strip() for name in row], line
            duplicates = sorted({name for name in header if header.count(name) > 1})
            if duplicates:
                raise TextDataError(
                    f"{where(path, line)}: the header names {duplicates} more than once"
                )
            for column in columns:
                if column not in header:
                    available = ", ".join(repr(c) for c in header)
                    raise TextDataError(
                        f"{where(path, line)}: no column {column!r} in the header; "
                        f"the columns are {available}"
                    )
            continue
        if len(row) != len(header):
            raise TextDataError(
                f"{where(path, line)}: {len(row)} fields, but the header (line {header_line}) "
                f"has {len(header)}; a field that holds the delimiter must be quoted"
            )
        yield line, dict(zip(header, row, strict=True))


def _jsonl_records(path: str | Path, text: str) -> Iterator[Record]:
    """The objects of a JSON Lines file as (line, object)."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise TextDataError(f"{where(path, number)}: not valid JSON: {e.msg}") from None
        if not isinstance(record, dict):
            raise TextDataError(
                f"{where(path, number)}: expected a JSON object per line, "
                f"got {type(record).__name__}"
            )
        yield number, record


def _text_value(path: str | Path, line: int, column: str, value: object) -> str:
    if not isinstance(value, str):
        raise TextDataError(
            f"{where(path, line)}: column {column!r} must hold a text, got {json.dumps(value)}"
        )
    if not value.strip():
        raise TextDataError(f"{where(path, line)}: empty text in column {column!r}")
    return value


def _label_value(path: str | Path, line: int, column: str, value: object) -> str:
    if isinstance(value, (bool, int, float)) and not isinstance(value, str):
        value = json.dumps(value)
    if not isinstance(value, str):
        raise TextDataError(
            f"{where(path, line)}: column {column!r} must hold a label (a string, number or "
            f"boolean), got {json.dumps(value)}"
        )
    if not value.strip():
        raise TextDataError(f"{where(path, line)}: empty label in column {column!r}")
    return value.strip()
