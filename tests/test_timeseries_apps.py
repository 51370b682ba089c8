"""The time-series applications end to end: short runs of our networks against the naive
baselines, the commands' run folders, predict on the saved models, every bad input one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vanishing.apps.timeseries.collection import load_collection
from vanishing.apps.timeseries.errors import DataError
from vanishing.apps.timeseries.forecast_protocol import evaluate
from vanishing.apps.timeseries.forecast_run import NetworkSettings
from vanishing.apps.timeseries.naive import Persistence
from vanishing.apps.timeseries.recurrent import LSTMClassifier
from vanishing.apps.timeseries.series import Series
from vanishing.apps.timeseries.windows import RecursiveWindows
from vanishing.cli import app

runner = CliRunner()


def test_a_short_lstm_forecast_beats_persistence_on_a_noisy_sine() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(300)
    y = np.sin(2 * np.pi * t / 20) + 0.1 * rng.normal(size=300)
    series = Series("noisy sine", y, t, None, 240, "steps", 5)
    settings = NetworkSettings(hidden_size=16, max_epochs=60, patience=60, difference=False)
    lstm = evaluate(RecursiveWindows(settings.regressor(0), 20, scale=False), series)
    persistence = evaluate(Persistence(), series)
    for strategy in ("one-step", "recursive"):
        assert lstm.scores[strategy].rmse < 0.7 * persistence.scores[strategy].rmse, strategy


def test_a_short_lstm_classification_beats_chance_on_gunpoint() -> None:
    data = load_collection("GunPoint")  # two classes, balanced test part: chance is 0.5
    model = LSTMClassifier(hidden_size=32, max_epochs=150, patience=30, random_state=0)
    assert model.fit(data.X_train, data.y_train).score(data.X_test, data.y_test) > 0.75


def write_cases(path: Path, n: int = 30, T: int = 20, labels: bool = True) -> Path:
    """A wide CSV: class "up" rises, class "down" falls, with noise."""
    rng = np.random.default_rng(1)
    lines = [",".join((["label"] if labels else []) + [f"t{i}" for i in range(T)])]
    for i in range(n):
        label = "up" if i % 2 else "down"
        values = np.linspace(0, 1 if label == "up" else -1, T) + 0.3 * rng.normal(size=T)
        lines.append(",".join(([label] if labels else []) + [f"{v:.4f}" for v in values]))
    path.write_text("\n".join(lines) + "\n")
    return path


def one_run(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


def test_classify_writes_its_run_folder_and_predict_reads_the_saved_model(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.csv")
    args = ["classify", "--file", str(cases), "--methods", "dtw,lstm", "--seeds", "1"]
    out = ["--epochs", "5", "--out", str(tmp_path / "c")]
    result = runner.invoke(app, [*args, *out], terminal_width=250)
    assert result.exit_code == 0, result.output
    run = one_run(tmp_path / "c")
    metrics = json.loads((run / "metrics.json").read_text())
    methods = metrics["datasets"][0]["methods"]
    assert [m["method"] for m in methods] == ["dtw", "lstm"]
    assert methods[1]["reach"][0]["length"] == [20, 20] and metrics["machine"]["isa"]
    assert "data:image/png;base64," in (run / "report.html").read_text()
    assert "LSTM" in result.output  # the table

    unlabelled = write_cases(tmp_path / "new.csv", n=4, labels=False)
    model = run / "models" / "cases-lstm"
    for file, summary in ((cases, "30 labelled cases, accuracy"), (unlabelled, "4 cases")):
        out = tmp_path / f"p-{file.stem}"
        result = runner.invoke(
            app, ["predict", "--model", str(model), "--file", str(file), "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert summary in re.sub(r"\s+", " ", result.output)
        table = (one_run(out) / "predictions.csv").read_text().splitlines()
        assert table[0].startswith("case,predicted,p(down),p(up)")
        assert len(table) == 1 + (30 if file == cases else 4)

    config = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**config, "kind": "audio-classifier"}))
    result = runner.invoke(app, ["predict", "--model", str(model), "--file", str(cases)])
    assert result.exit_code == 2 and "expected a model kind among timeseries-classifier" in (
        re.sub(r"\s+", " ", result.output)
    )


def test_forecast_writes_its_run_folder_and_predict_forecasts_from_a_series(
    tmp_path: Path,
) -> None:
    args = ["forecast", "--dataset", "sunspots", "--seeds", "1", "--epochs", "2", "--no-progress"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    run = one_run(tmp_path / "f")
    metrics = json.loads((run / "metrics.json").read_text())
    names = [m["name"] for m in metrics["models"]]
    assert names[:3] == ["persistence", "AutoARIMA (statsforecast)", "AutoETS (statsforecast)"]
    assert set(metrics["models"][3]["scores"]) == {"one-step", "recursive"}
    assert set(metrics["models"][4]["scores"]) == {"one-step", "direct"}
    assert (run / "forecast.png").stat().st_size > 0 and (run / "report.html").exists()

    history = tmp_path / "history.csv"
    history.write_text("value\n" + "\n".join(str(v) for v in np.arange(40.0) % 11) + "\n")
    for kind, steps, width in (("direct", [], 11), ("recursive", ["--steps", "3"], 3)):
        out = tmp_path / f"p-{kind}"
        model = run / "models" / kind
        result = runner.invoke(
            app,
            ["predict", "--model", str(model), "--file", str(history), *steps, "--out", str(out)],
        )
        assert result.exit_code == 0, result.output
        rows = (one_run(out) / "predictions.csv").read_text().splitlines()
        assert len(rows) == 2 and len(rows[1].split(",")) == 2 + width


@pytest.fixture
def ragged(tmp_path: Path) -> Path:
    path = tmp_path / "ragged.csv"
    path.write_text("label,t0,t1\na,1,2\nb,3\n")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forecast", "--dataset", "nile"], "dataset: expected one of sunspots, co2, got 'nile'"),
        (["forecast", "--window", "0"], "--window must be an int in [1, 237] for sunspots"),
        (["forecast", "--hidden", "0"], "--hidden must be an int >= 1, got 0"),
        (["forecast", "--seeds", "0"], "--seeds must be at least 1, got 0"),
        (["classify", "--dataset", "Nope"], "--dataset: expected one of GunPoint, ItalyPowerDem"),
        (["classify", "--file", "RAGGED"], "ragged.csv, line 3: expected 3 cells as the header"),
        (["classify", "--methods", "lstm,gru"], "--methods: expected names among dtw, minir"),
        (["classify", "--epochs", "0"], "--epochs must be an int >= 1, got 0"),
        (["classify", "--validation", "1"], "--validation must be in [0, 1), got 1.0"),
        (["predict", "--model", "nowhere", "--file", "RAGGED"], "nowhere: expected a saved mo"),
    ],
)
def test_bad_options_and_files_are_one_line(
    args: list[str], message: str, ragged: Path, tmp_path: Path
) -> None:
    args = [str(ragged) if a == "RAGGED" else a for a in args]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert message in re.sub(r"\s+", " ", result.output)
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.zeros((4, 1, 2, 5)), "ab" * 2, r"^X: expected a 3-D array .* got a 4-D array"),
        (np.full((4, 1, 5), np.nan), "ab" * 2, r"^X, case 0: expected finite values .* got nan"),
        (np.zeros((4, 1, 5)), "aaaa", r"^y: expected at least 2 classes, got one class only"),
    ],
)
def test_bad_estimator_input_is_one_line(X: np.ndarray, y: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        LSTMClassifier(max_epochs=1).fit(X, list(y))
    assert "\n" not in str(error.value)
    assert isinstance(error.value, DataError) or "class" in message
