"""The user's own labelled series: UCR/UEA `.ts` files (read by aeon) and CSV files.

CSV layouts (a header row is required; cells are numbers, "," separated):

- wide (the default, as the UCR archive's CSV exports): one row per case; the column named by
  `label` (default "label") holds the class; every other column is a time point, in order.
  Univariate. Cases may be shorter than the header: their trailing cells are left empty
  (",,"); an empty cell before a value is a missing value and an error.
- long (`case="<column>"`, as sensor logs come): one row per time point; the column named by
  `case` identifies the case (its rows consecutive, in time order), `label` the class
  (the same on each of its rows); every other column is a channel.

Every row must have as many cells as the header. Every problem is one `DataError` naming the
file, the line, what was expected and what came.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np

from vanishing.apps.timeseries.collection import (
    Cases,
    Collection,
    check_cases,
    check_series,
    make_collection,
)
from vanishing.apps.timeseries.deps import require
from vanishing.apps.timeseries.errors import DataError

SUFFIXES = (".ts", ".csv")


def read_text(path: Path) -> str:
    """The file's text, or a DataError saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(path, "a UTF-8 text file", f"undecodable bytes ({error.reason})") from None
    except OSError as error:
        raise DataError(path, "a readable file", error.strerror or str(error)) from None


def ts_data_lines(path: Path, text: str) -> tuple[list[int], list[str]]:
    """The line numbers of the cases after @data, and the @classLabel values (if declared)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().lower() == "@data"]
    if not starts:
        raise DataError(path, "a UCR/UEA .ts file with an @data line", "no @data line")
    declared: list[str] = []
    for line in lines[: starts[0]]:
        words = line.split()
        if words and words[0].lower() == "@classlabel" and len(words) > 2:
            declared = words[2:]
    data = list(range(starts[0] + 2, len(lines) + 1))  # 1-based: every line after @data
    blank = [n for n in data if not lines[n - 1].strip()]
    if blank:  # aeon's reader takes a blank line for a case with no channels
        raise DataError(path, "one case on every line after @data", "an empty line", blank[0])
    return data, declared


def read_ts(path: str | Path) -> tuple[Cases, np.ndarray, list[int]]:
    """X, y and each case's line from a UCR/UEA .ts file (classification), via aeon's reader."""
    path = Path(path)
    data, declared = ts_data_lines(path, read_text(path))
    if not data:
        raise DataError(path, "at least one case after @data", "none")
    try:
        X, y = require("aeon.datasets").load_from_ts_file(str(path))
    except ImportError:
        raise
    except Exception as error:  # aeon's reader raises OSError, ValueError, IndexError ...
        message = re.sub(r"^Error loading <[^>]*>\.\s*", "", str(error))
        case = re.search(r"case (\d+)", message)
        line = data[int(case.group(1)) - 1] if case and int(case.group(1)) <= len(data) else None
        token = re.search(r"could not convert string to float: '([^']*)'", message)
        if token:
            text = read_text(path).splitlines()
            line = next((n for n in data if token.group(1) in text[n - 1]), line)
        expected = "cases as the .ts header declares (channels split by ':', values by ',')"
        raise DataError(path, expected, message, line) from None
    if len(y) != len(data):
        raise DataError(path, f"{len(data)} labelled cases (one per line)", f"{len(y)}")
    if declared:
        for i, label in enumerate(y):
            if str(label) not in declared:
                got = f"{str(label)!r} (declared: {' '.join(declared)})"
                raise DataError(path, "a class label declared by @classLabel", got, data[i])
    X, y = check_cases(X, np.asarray(y), str(path), data)
    return X, y, data


def number(cell: str, path: Path, line: int, column: str) -> float:
    """A CSV cell as a finite float, or a DataError at its line and column."""
    try:
        value = float(cell)
    except ValueError:
        raise DataError(path, f"a number in column {column!r}", repr(cell), line) from None
    if not math.isfinite(value):
        raise DataError(path, f"a finite number in column {column!r}", repr(cell), line)
    return value


def csv_rows(path: Path, label: str, case: str | None) -> tuple[list[str], list[tuple]]:
    """The header and [(line, cells)] of a CSV file; ragged rows and missing columns rejected."""
    text = read_text(path)
    reader = csv.reader(text.splitlines())
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise DataError(path, "a header row and one row per case", "an empty file") from None
    for option, column in (("label", label), ("case", case)):
        if column is not None and column not in header:
            got = f"the columns {header}"
            raise DataError(path, f"a {option} column named {column!r}", got, 1)
    rows = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            got = f"{len(cells)} cells"
            raise DataError(path, f"{len(header)} cells as the header", got, reader.line_num)
        rows.append((reader.line_num, [cell.strip() for cell in cells]))
    if not rows:
        raise DataError(path, "at least one row after the header", "none")
    return header, rows


def read_csv(
    path: str | Path, label: str | None = "label", case: str | None = None
) -> tuple[Cases, np.ndarray | None, list[int]]:
    """X, y and each case's first line from a CSV file in the wide or the long layout.

    label None: the file has no label column (y is None; to predict)."""
    path = Path(path)
    header, rows = csv_rows(path, label, case)
    at = None if label is None else header.index(label)
    if case is None:
        return wide_cases(path, header, rows, at)
    return long_cases(path, header, rows, at, header.index(case))


def wide_cases(
    path: Path, header: list[str], rows: list[tuple], at: int | None
) -> tuple[Cases, np.ndarray | None, list[int]]:
    """One row per case: label at `at` (or none), the other cells the series; trailing empties
    shorten."""
    columns = [i for i in range(len(header)) if i != at]
    X, y, lines = [], [], []
    for line, cells in rows:
        values = [cells[i] for i in columns]
        while values and values[-1] == "":
            values.pop()
        if not values:
            raise DataError(path, "a series of at least 1 value", "an empty row", line)
        series = [number(v, path, line, header[i]) for v, i in zip(values, columns, strict=False)]
        if at is not None and cells[at] == "":
            raise DataError(path, f"a class in column {header[at]!r}", "an empty cell", line)
        X.append(np.array([series]))  # (1, T_i)
        y.append(None if at is None else cells[at])
        lines.append(line)
    if at is None:
        return check_series(X, str(path), lines), None, lines
    X, y = check_cases(X, np.array(y), str(path), lines)
    return X, y, lines


def long_cases(
    path: Path, header: list[str], rows: list[tuple], at: int | None, key: int
) -> tuple[Cases, np.ndarray | None, list[int]]:
    """One row per time point: case id at `key`, label at `at` (or none), the other cells the
    channels."""
    channels = [i for i in range(len(header)) if i not in (at, key)]
    if not channels:
        raise DataError(path, "at least one channel column besides case and label", "none", 1)
    X, y, lines, seen = [], [], [], set()
    current = None
    for line, cells in rows:
        if cells[key] != current:
            if cells[key] in seen:
                got = f"case {cells[key]!r} again after other cases"
                raise DataError(path, "the rows of each case together", got, line)
            current = cells[key]
            seen.add(current)
            X.append([])
            y.append(None if at is None else cells[at])
            lines.append(line)
        elif at is not None and cells[at] != y[-1]:
            got = f"{cells[at]!r} after {y[-1]!r}"
            raise DataError(path, f"one label for case {current!r}", got, line)
        X[-1].append([number(cells[i], path, line, header[i]) for i in channels])
    X = [np.array(steps).T for steps in X]  # each (n_channels, T_i)
    if at is None:
        return check_series(X, str(path), lines), None, lines
    X, y = check_cases(X, np.array(y), str(path), lines)
    return X, y, lines


def read_file(
    path: str | Path, label: str = "label", case: str | None = None
) -> tuple[Cases, np.ndarray]:
    """X, y from a .ts or .csv file (by its suffix); label and case apply to CSV only."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(path, f"a file ending in {' or '.join(SUFFIXES)}", repr(path.suffix))
    if path.suffix.lower() == ".ts":
        X, y, _ = read_ts(path)
    else:
        X, y, _ = read_csv(path, label, case)
    return X, y


def load_files(
    train: str | Path,
    test: str | Path | None = None,
    label: str = "label",
    case: str | None = None,
    test_size: float = 0.3,
    seed: int = 0,
) -> Collection:
    """A Collection from the user's files: train and test, or train split stratified by class.

    Without a test file, a stratified `test_size` share of the cases (seeded) is held out.
    """
    X, y = read_file(train, label, case)
    where = str(train)
    if test is not None:
        return make_collection(
            Path(train).stem, (X, y), read_file(test, label, case), (where, str(test))
        )
    if not 0 < test_size < 1:
        raise DataError("test_size", "a fraction in (0, 1)", f"{test_size}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(where, "at least 2 classes", f"one class only ({classes[0]!r})")
    if counts.min() < 2:
        got = f"class {classes[counts.argmin()]!r} with {counts.min()} case"
        raise DataError(where, "at least 2 cases per class to hold some out for testing", got)
    split = require("sklearn.model_selection").train_test_split
    train_at, test_at = split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    part = (lambda ix: X[ix]) if isinstance(X, np.ndarray) else (lambda ix: [X[i] for i in ix])
    return make_collection(
        Path(train).stem,
        (part(train_at), y[train_at]),
        (part(test_at), y[test_at]),
        (f"{where} (train share)", f"{where} (held-out share)"),
    )


def read_cases(
    path: str | Path, label: str = "label", case: str | None = None
) -> tuple[Cases, np.ndarray | None]:
    """X and, if the file has them, y from a .ts or .csv file (to predict): a CSV without the
    `label` column is read as unlabelled cases; a .ts file as aeon reads it."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        header, _ = csv_rows(path, None, case)
        X, y, _ = read_csv(path, label if label in header else None, case)
        return X, y
    return read_file(path, label, case)
