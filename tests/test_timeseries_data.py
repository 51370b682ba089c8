"""Time-series data: the shipped loaders' shapes and splits, the user's files, every bad input."""

import subprocess
import sys

import numpy as np
import pytest

from vanishing.apps.timeseries.collection import SHIPPED, check_cases, load_collection
from vanishing.apps.timeseries.deps import EXTRA, require
from vanishing.apps.timeseries.errors import DataError
from vanishing.apps.timeseries.files import load_files, read_file
from vanishing.apps.timeseries.series import Series, load_series

HEADER = "@problemName t\n@timeStamps false\n@univariate true\n@equalLength {eq}\n"
TS = HEADER + "@classLabel true a b\n@data\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "n", "split", "start", "season", "horizon"),
    [("sunspots", 309, 249, 1949, None, 11), ("co2", 526, 406, np.datetime64("1992-01"), 12, 12)],
)
def test_series_loaders(name, n, split, start, season, horizon):
    series = load_series(name)
    assert series.values.shape == series.index.shape == (n,)
    assert series.split == split and series.index[split] == start
    assert len(series.train) + len(series.test) == n
    assert series.season == season and series.horizon == horizon
    assert np.isfinite(series.values).all()


def test_co2_is_monthly_means_with_gaps_interpolated():
    weekly = require("statsmodels.api").datasets.co2.load_pandas().data["co2"]
    co2 = load_series("co2")
    assert co2.values[0] == pytest.approx(weekly["1958-03"].mean())
    assert np.all(np.diff(co2.index).astype(int) == 1)  # one value per month, no month skipped
    gap = np.flatnonzero(co2.index == np.datetime64("1964-02"))[0]  # 1964-02 .. 04 are empty
    before, after = co2.values[gap - 1], co2.values[gap + 3]
    assert before < co2.values[gap] < co2.values[gap + 1] < co2.values[gap + 2] < after


SHAPES = {
    "GunPoint": ((50, 1, 150), (150, 1, 150), 2),
    "ItalyPowerDemand": ((67, 1, 24), (1029, 1, 24), 2),
    "ArrowHead": ((36, 1, 251), (175, 1, 251), 3),
    "BasicMotions": ((40, 6, 100), (40, 6, 100), 4),
}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_collections(name):
    data = load_collection(name)
    if name == "JapaneseVowels":  # unequal lengths: lists of (12, T_i)
        assert not data.equal_length and len(data.X_train) == 270 and len(data.X_test) == 370
        assert {x.shape[0] for x in data.X_train + data.X_test} == {12}
        assert data.lengths() == (7, 29) and len(data.classes) == 9
        return
    train, test, n_classes = SHAPES[name]
    assert data.X_train.shape == train and data.X_test.shape == test
    assert data.y_train.shape == train[:1] and data.y_test.shape == test[:1]
    assert len(data.classes) == n_classes and data.X_train.dtype == np.float64


def test_ts_and_csv_files(tmp_path):
    ts = write(tmp_path, "a.ts", TS.format(eq="false") + "1,2,3:a\n4,5:b\n1,1,1:a\n")
    X, y = read_file(ts)
    assert [x.shape for x in X] == [(1, 3), (1, 2), (1, 3)] and y.tolist() == ["a", "b", "a"]
    wide = write(tmp_path, "w.csv", "t0,t1,cls,t2\n1,2,a,3\n4,5,b,6\n")
    X, y = read_file(wide, label="cls")
    assert X.shape == (2, 1, 3) and X[1, 0].tolist() == [4, 5, 6] and y.tolist() == ["a", "b"]
    long = write(tmp_path, "l.csv", "id,label,x,y\n7,a,1,2\n7,a,3,4\n8,b,5,6\n")
    X, y = read_file(long, case="id")
    assert X[0].tolist() == [[1, 3], [2, 4]] and X[1].shape == (2, 1) and y.tolist() == ["a", "b"]


def test_user_files_split_stratified_without_a_test_file(tmp_path):
    rows = "".join(f"{'ab'[i % 2]},{i},{i + 1}\n" for i in range(20))
    data = load_files(write(tmp_path, "c.csv", "label,t0,t1\n" + rows), test_size=0.3, seed=1)
    assert len(data.y_train) == 14 and len(data.y_test) == 6
    assert sorted(np.unique(data.y_test, return_counts=True)[1]) == [3, 3]


TS_BAD = {
    "NaN in series": (TS.format(eq="true") + "1,2,3:a\n4,?,6:b\n", r"line 8: expected finite"),
    "ragged columns": (
        HEADER.replace("true\n", "false\n", 1).format(eq="true")
        + "@classLabel true a b\n@data\n1,2:3,4:a\n1,2:b\n",
        r"line 8: expected cases as the .ts header declares",
    ),
    "text in series": (TS.format(eq="true") + "1,2,3:a\n1,x,3:b\n", r"line 8: .*'x'"),
    "undeclared class": (TS.format(eq="true") + "1,2,3:a\n1,2,3:c\n", r"line 8: .*'c'"),
    "no @data": ("just text\n", r"expected a UCR/UEA .ts file with an @data line"),
    "blank line": (TS.format(eq="true") + "1,2,3:a\n\n1,2,3:b\n", r"line 8: .* an empty line"),
}


CSV_BAD = {
    "ragged columns": (
        "label,t0,t1\na,1,2\nb,1\n",
        r"line 3: expected 3 cells as the header, got 2",
    ),
    "NaN in series": ("label,t0,t1\na,1,nan\n", r"line 2: expected a finite number in column 't1'"),
    "gap in series": ("label,t0,t1,t2\na,1,,3\n", r"line 2: expected a number in column 't1'"),
    "text in series": ("label,t0\na,x1\n", r"line 2: expected a number in column 't0', got 'x1'"),
    "no label column": ("cls,t0\na,1\n", r"line 1: expected a label column named 'label'"),
    "empty file": ("", r"expected a header row and one row per case, got an empty file"),
}


BAD_FILES = {("ts", case): bad for case, bad in TS_BAD.items()}
BAD_FILES.update({("csv", case): bad for case, bad in CSV_BAD.items()})


@pytest.mark.parametrize("case", BAD_FILES, ids=" ".join)
def test_bad_file_is_one_line(tmp_path, case):
    text, message = BAD_FILES[case]
    path = write(tmp_path, f"bad.{case[0]}", text)
    with pytest.raises(DataError, match=message) as error:
        read_file(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_bad_long_csv(tmp_path):
    split = write(tmp_path, "s.csv", "id,label,x\n1,a,1\n2,b,1\n1,a,2\n")
    with pytest.raises(DataError, match=r"line 4: expected the rows of each case together"):
        read_file(split, case="id")
    two = write(tmp_path, "t.csv", "id,label,x\n1,a,1\n1,b,1\n")
    with pytest.raises(DataError, match=r"line 3: expected one label for case '1', got 'b'"):
        read_file(two, case="id")


def test_unreadable_files(tmp_path):
    with pytest.raises(DataError, match=r"missing.ts: expected a readable file, got No such"):
        read_file(tmp_path / "missing.ts")
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\x00\xff\xfe")
    with pytest.raises(DataError, match=r"b.csv: expected a UTF-8 text file"):
        read_file(binary)
    with pytest.raises(DataError, match=r"x.txt: expected a file ending in .ts or .csv"):
        read_file(write(tmp_path, "x.txt", ""))


def test_one_class_only(tmp_path):
    path = write(tmp_path, "one.csv", "label,t0,t1\na,1,2\na,3,4\n")
    with pytest.raises(DataError, match=r"one.csv: expected at least 2 classes, got one class"):
        load_files(path)
    with pytest.raises(DataError, match=r"one.csv: expected at least 2 classes, got one class"):
        load_files(path, path)


def test_unknown_dataset_lists_the_known():
    with pytest.raises(DataError, match=r"dataset: expected one of GunPoint, .*JapaneseVowels"):
        load_collection("gunpoint")
    with pytest.raises(DataError, match=r"dataset: expected one of sunspots, co2, got 'nile'"):
        load_series("nile")


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.zeros((4, 5)), r"expected a 3-D array .* got a 2-D array of shape \(4, 5\)"),
        ([np.zeros(5)] * 4, r"case 0: expected a 3-D array .* got case 0 of shape \(5,\)"),
        (np.full((4, 1, 5), np.nan), r"case 0: expected finite values .* got nan at channel 0"),
        ([np.zeros((1, 5)), np.zeros((2, 5))] * 2, r"case 1: expected 1 channels"),
    ],
)
def test_bad_arrays(X, message):
    with pytest.raises(DataError, match=message):
        check_cases(X, np.array(list("abab")), "X")


def test_bad_series():
    with pytest.raises(DataError, match=r"s: expected a 1-D series of values, got shape \(3, 2\)"):
        Series("s", np.zeros((3, 2)), np.arange(3), None, 2, "", 1)
    with pytest.raises(DataError, match=r"s: expected finite values, got nan at position 1"):
        Series("s", np.array([1.0, np.nan, 2, 3]), np.arange(4), None, 2, "", 1)
    with pytest.raises(DataError, match=r"s: expected a horizon in \[1, 2\] .* got 3"):
        Series("s", np.arange(4.0), np.arange(4), None, 2, "", 3)


def test_optional_dependencies_are_lazy():
    code = (
        "import sys, vanishing, vanishing.apps.timeseries;"
        "heavy = {'aeon', 'statsforecast', 'statsmodels', 'sklearn'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(ImportError, match=r"'no_such_module' is not installed.*" + EXTRA[:11]):
        require("no_such_module.sub")
