"""The command line: bad options fail cleanly; `profile` measures without training."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vanishing.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--T", "1"], "--T"),
        (["demo", "--hidden", "-3"], "--hidden"),
        (["demo", "--steps", "-1"], "--steps"),
        (["demo", "--models", "rnn-sigmoid,gru"], "unknown model gru"),
        (["profile", "--model", "gru"], "'gru' is not one of"),
        (["profile", "--T", "0"], "--T"),
        (["profile", "--hidden", "-1"], "--hidden"),
        (["profile", "--model", "lstm", "--nonlinearity", "relu"], "--model rnn only"),
        (["profile", "--rec-scale", "nan"], "rec-scale must be a finite number"),
        (["demo", "--T", "abc"], "--T"),
        (["demo", "--seed", "99999999999999999999"], "--seed"),
        (["demo", "--seed", "-1"], "--seed"),
        (["demo", "--quick", "--hidden", "100000"], "TiB of memory"),
        (["demo", "--quick", "--T", "10000000"], "of memory"),
        (["profile", "--seed", "99999999999999999999"], "--seed"),
        (["profile", "--hidden", "200000"], "TiB of memory"),
        (["profile", "--batch", "0"], "--batch"),
        (["profile", "--model", "lstm", "--forget-bias", "inf"], "--forget-bias must be a finite"),
        (["profile", "--forget-bias", "1"], "--model lstm only"),
        (["profile", "--detail", "all"], "'all' is not one of"),
        (["version", "--verbose"], "No such option"),
        (["train-everything"], "No such command"),
    ],
)
def test_bad_options_give_a_clear_error_and_no_traceback(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    text = re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)
    assert message in text
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, (ValueError, TypeError))


def test_bad_option_in_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vanishing.cli", "demo", "--T", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--T" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def rows(output: str) -> dict[int, list[float]]:
    """The profile table's numeric rows: {lag: [numbers...]}."""
    table = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) > 2 and cells[0].isdigit():
            table[int(cells[0])] = [float(c) for c in cells[1:]]
    return table


def test_profile_rec_scale_8_shows_growing_norms(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["profile", "--model", "rnn", "--rec-scale", "8", "--T", "40", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    lags = sorted(table)
    assert lags[0] == 0 and lags[-1] == 39
    dh = [table[lag][0] for lag in lags]
    assert dh[-1] > 1e3 * dh[0], "the gradient should explode with lag"
    assert "exploding possible" in result.output.replace("\n", " ")
    (figure,) = tmp_path.glob("profile-*/a_gradient_vs_lag.png")
    assert figure.stat().st_size > 10_000


def test_profile_default_rnn_vanishes_within_the_bound(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["profile", "--nonlinearity", "sigmoid", "--T", "30", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    for lag, (_dh, _ratio, jacobian, bound) in table.items():
        assert jacobian <= bound * (1 + 1e-9), lag
    assert table[29][1] < 1e-6
    assert "vanishing guaranteed" in result.output.replace("\n", " ")
    assert "Jacobian-product norm <= bound at every lag: yes" in result.output


def test_profile_lstm_has_a_cell_column(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["profile", "--model", "lstm", "--forget-bias", "1", "--T", "20", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "||dE/dc_t||" in result.output
    assert all(len(v) == 4 for v in rows(result.output).values())


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.strip()


@pytest.mark.parametrize("where", ["file", "below-a-file", "unwritable"])
def test_out_that_cannot_hold_a_run_folder_fails_before_any_work(
    tmp_path: Path, where: str
) -> None:
    blocker = tmp_path / "taken"
    if where == "unwritable":
        if os.geteuid() == 0:
            pytest.skip("root writes into any folder")
        blocker.mkdir(mode=0o500)
        out = blocker
    else:
        blocker.write_text("a file, not a folder")
        out = blocker if where == "file" else blocker / "runs"
    for command in (["demo", "--quick"], ["profile", "--T", "5"]):
        result = runner.invoke(app, [*command, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert "cannot create a run folder" in result.output
        assert "Traceback" not in result.output and "━" not in result.output  # no training ran


def test_choices_come_from_the_library_tables() -> None:
    from vanishing.gradflow import DETAILS
    from vanishing.nn.activations import NAMES

    result = runner.invoke(app, ["profile", "--help"], terminal_width=200)
    text = re.sub(r"\s+", " ", result.output)
    assert "|".join(NAMES) in text.replace(" ", "")
    assert "|".join(DETAILS) in text.replace(" ", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "addition"], "unknown task 'addition'; expected one of adding"),
        (["--T", "10"], "adding: T must be an int >= 20, got 10"),
        (["--task", "reber", "--T", "10"], "reber has no length parameter"),
        (["--lr", "-0.1"], "--lr must be a finite number > 0, got -0.1"),
        (["--clip", "0"], "--clip must be a finite number > 0, got 0.0"),
        (["--budget", "0"], "--budget must be >= 1 training sequence, got 0"),
        (["--model", "gru"], "--model must be one of lstm, rnn, got 'gru'"),
        (["--forget-bias", "1", "--chrono"], "give forget_bias or chrono"),
        (["--resume", "nowhere"], "nowhere is not a run folder (no config.json)"),
    ],
)
def test_train_bad_options_are_one_clear_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = [] if "--resume" in args else ["--out", str(tmp_path)]
    result = runner.invoke(app, ["train", *args, *out, "--no-progress"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not list(tmp_path.iterdir()), "nothing written"


def test_train_writes_its_run_folder_and_resume_of_a_finished_run_is_a_no_op(
    tmp_path: Path,
) -> None:
    args = ["train", "--task", "reber", "--hidden", "8", "--budget", "64", "--batch", "16"]
    args += ["--eval-every", "2", "--test-size", "16", "--out", str(tmp_path), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.glob("train-*")
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["checkpoints", "config.json", "metrics.jsonl", "result.json"]
    assert "64 sequences, 4 steps" in result.output
    again = runner.invoke(app, ["train", "--resume", str(run_dir), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "64 sequences, 4 steps" in again.output
