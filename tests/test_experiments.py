"""`vanishing experiments`: the quick suite on the process pool and on Ray (equal results),
the report, resume, failed runs, the results table and the command's bad options."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vanishing.cli import app
from vanishing.experiments.results import cells, summarize
from vanishing.experiments.runner import execute, run_pool
from vanishing.experiments.suite import (
    FULL,
    QUICK,
    Settings,
    parse_models,
    plan,
    select,
)
from vanishing.experiments.suite_report import write_suite_report
from vanishing.train import STATUSES

runner = CliRunner()
DETERMINISTIC = ("name", "status", "sequences", "sequences_to_success", "final_loss",
                 "final_correct", "curve", "gradflow")  # fmt: skip


@pytest.fixture(scope="module")
def quick_suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list[dict], Path]:
    """The quick suite, run once on a pool of 2 processes: (configs, outcomes, folder)."""
    folder = tmp_path_factory.mktemp("quick")
    configs = plan(QUICK, ("lstm", "rnn-tanh"), 1, Settings())
    outcomes = run_pool(configs, folder / "runs", 2, False, lambda record: None)
    return configs, outcomes, folder


def test_quick_suite_runs_every_task_and_model(quick_suite) -> None:  # noqa: ANN001
    configs, outcomes, _ = quick_suite
    assert len(outcomes) == len(configs) == 2 * len(QUICK)
    assert {r["name"] for r in outcomes} == {c.name for c in configs}
    assert all(r["status"] in STATUSES for r in outcomes), [r["message"] for r in outcomes]
    by_name = {r["name"]: r for r in outcomes}
    lstm = by_name["adding-T20-lstm-s0"]
    assert lstm["status"] == "solved" and lstm["sequences_to_success"] <= 20_000
    assert by_name["adding-T20-rnn-tanh-s0"]["status"] == "budget", "the RNN fails T = 20"
    for record in outcomes:
        assert record["curve"][0][0] == 0 and record["curve"][-1][0] == record["sequences"]


def test_the_monitor_measures_every_evaluation_of_seed_0(quick_suite) -> None:  # noqa: ANN001
    """Seed 0 trains with vanishing.monitor at every evaluation (the report's heatmaps): the
    measured sequences, the kept lags, and the article's contrast on the adding problem."""
    configs, outcomes, _ = quick_suite
    by_name = {r["name"]: r for r in outcomes}
    for config in configs:
        flow, train = by_name[config.name]["gradflow"], config.train
        assert train.gradflow_every == train.eval_every
        every = train.eval_every * train.batch  # all of them: fewer than HEATMAP_STEPS
        assert flow["sequences"] == list(range(every, by_name[config.name]["sequences"] + 1, every))
        T = config.make_task().max_length
        assert flow["lags"][0] == 0 and flow["lags"][-1] <= T - 1
        assert all(len(row) == len(flow["lags"]) for row in flow["norms"])
        assert len(flow["norms"]) == len(flow["sequences"])

    def last_lag(name: str) -> float:  # median over measurements of norm[last lag] / norm[0]
        rows = by_name[name]["gradflow"]["norms"]
        return float(np.median([row[-1] / row[0] for row in rows]))

    assert last_lag("adding-T20-lstm-s0") > 1e2 * last_lag("adding-T20-rnn-tanh-s0")


def test_suite_report_has_the_table_and_figures(quick_suite, tmp_path: Path) -> None:  # noqa: ANN001
    _, outcomes, _ = quick_suite
    report = write_suite_report(outcomes, tmp_path, {"command": "vanishing experiments --quick"})
    text = report.results_md.read_text()
    assert "| adding | 20 | LSTM (chrono) | 1/1 |" in text
    assert "| reber | - | LSTM (chrono) |" in text and "8.44k" in text
    assert sorted(p.name for p in report.figures.values()) == [
        "gradient_flow.png", "learning_curves.png", "sequences_vs_paper.png",
    ]  # fmt: skip
    html = report.html.read_text()
    assert html.count("<img") == 3 and "data:image/png;base64," in html
    assert len(report.rows) == 2 * len(QUICK)


def test_ray_gives_the_same_results_as_the_process_pool(quick_suite, tmp_path: Path) -> None:  # noqa: ANN001
    ray = pytest.importorskip("ray")
    from vanishing.experiments.runner import connect_ray, run_ray

    configs, pooled, _ = quick_suite
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert connect_ray("local", 2) is False, "an initialised Ray is used as it is"
        on_ray = run_ray(configs, tmp_path / "runs", False, lambda record: None)
    finally:
        ray.shutdown()
    key = {r["name"]: {k: r[k] for k in DETERMINISTIC} for r in pooled}
    assert {r["name"]: {k: r[k] for k in DETERMINISTIC} for r in on_ray} == key
    assert (tmp_path / "runs" / "adding-T20-lstm-s0" / "result.json").is_file()


def test_resume_keeps_finished_runs(quick_suite) -> None:  # noqa: ANN001
    configs, outcomes, folder = quick_suite
    from dataclasses import asdict

    config = configs[0]
    again = execute(asdict(config), str(folder / "runs" / config.name), True)
    first = next(r for r in outcomes if r["name"] == config.name)
    assert again == first


def test_a_failing_run_is_reported_not_dropped(tmp_path: Path) -> None:
    from dataclasses import asdict

    (config,) = plan(select(QUICK, "reber"), ("lstm",), 1, Settings())
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    record = execute(asdict(config), str(blocked), False)
    assert record["status"] == "error" and "run folder" in record["message"]
    (row,) = summarize([record])
    assert row.errors == 1 and row.solved == 0 and row.median_sequences is None


def outcome(seed: int, solved_at: int | None, budget: int = 1000) -> dict:
    return {"name": f"adding-T100-lstm-s{seed}", "task": "adding", "T": 100,
            "model": "LSTM (chrono)", "kind": "lstm", "seed": seed, "budget": budget,
            "status": "solved" if solved_at else "budget", "sequences": solved_at or budget,
            "sequences_to_success": solved_at, "final_loss": 0.01, "final_correct": 0.5,
            "seconds": 1.0, "message": "", "curve": [[0, 0.1, 0.0]]}  # fmt: skip


def test_median_counts_failures_as_beyond_the_budget() -> None:
    (row,) = summarize([outcome(0, 37_000), outcome(1, None), outcome(2, 74_000)])
    assert row.median_sequences == 74_000 and row.success_rate == pytest.approx(2 / 3)
    assert row.ratio == pytest.approx(1.0)
    assert cells(row)[3:5] == ["2/3", "74k"] and cells(row)[-1] == "1.00"
    (row,) = summarize([outcome(0, 500), outcome(1, None), outcome(2, None)])
    assert math.isinf(row.median_sequences) and cells(row)[4] == "> 1k"
    assert cells(row)[-1] == "not solved"


def test_learnable_lag_figure_when_adding_has_several_lengths(tmp_path: Path) -> None:
    records = [outcome(0, 500)]
    longer = outcome(0, None)
    longer.update(name="adding-T500-lstm-s0", T=500)
    report = write_suite_report([*records, longer], tmp_path, {})
    assert "learnable lag" in report.figures


def test_suite_selection_and_models() -> None:
    assert [e.T for e in select(FULL, "adding")] == [100, 500, 1000, 2000, 5000]
    (entry,) = select(FULL, "adding:3000")
    assert entry.T == 3000 and entry.budget == 150_000  # nearest: T = 2000
    assert parse_models("lstm, rnn-sigmoid") == ("lstm", "rnn-sigmoid")
    with pytest.raises(ValueError, match="unknown model gru; expected some of lstm"):
        parse_models("lstm,gru")
    configs = plan(select(FULL, "reber"), ("lstm",), 3, Settings(forget_bias=1.0, lr=1e-3))
    assert [c.train.seed for c in configs] == [0, 1, 2]
    assert configs[0].model.forget_bias == 1.0 and not configs[0].model.chrono
    assert configs[0].train.lr == 1e-3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "addition"], "unknown task 'addition'; expected one of adding"),
        (["--tasks", "adding:10"], "adding: T must be an int >= 20, got 10"),
        (["--lr", "-1"], "lr must be a finite number > 0, got -1.0"),
        (["--clip", "0"], "clip must be a finite number > 0, got 0.0"),
        (["--budget", "0"], "--budget must be >= 1 training sequence, got 0"),
        (["--models", "gru"], "unknown model gru"),
        (["--ray", "127.0.0.1:1"], "cannot reach a Ray cluster at 127.0.0.1:1"),
        (["--ray", "nohost"], "--ray nohost: expected HOST:PORT, 'auto' or 'local'"),
        (["--resume", "nowhere"], "nowhere is not a suite folder (no suite.json)"),
    ],
)
def test_bad_options_are_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["experiments", "--quick", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in re.sub(r"\s+", " ", lines[0]), result.output
    assert not list(tmp_path.iterdir()), "no suite folder for a bad option"


def test_gradflow_record_keeps_evenly_spaced_measurements_and_lags(tmp_path: Path) -> None:
    from vanishing.experiments.runner import HEATMAP_LAGS, HEATMAP_STEPS, gradflow_record

    lines = [{"step": 0, "loss": 1.0}]  # other lines are skipped
    for step in range(1, 251):
        norms = [1.0 / (1 + lag) for lag in range(500)]
        norms[-1] = None  # a lag no sequence had
        flow = {"kind": "LSTM", "horizon": 499, "dh_norm": norms, "dc_norm": norms}
        lines.append({"step": step, "gradflow": {"rnn.l0": flow}})
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"step": 251, "gra')
    record = gradflow_record(path, batch=16)
    assert record["key"] == "rnn.l0"
    assert len(record["sequences"]) == HEATMAP_STEPS and len(record["lags"]) == HEATMAP_LAGS
    assert record["sequences"][0] == 16 and record["sequences"][-1] == 250 * 16
    assert record["lags"][0] == 0 and record["lags"][-1] == 499
    assert record["norms"][0][0] == 1.0 and record["norms"][0][-1] is None
    assert record["norms"][0][1] == float(f"{1 / (1 + record['lags'][1]):.4g}")
    assert gradflow_record(tmp_path / "absent.jsonl", 16) is None  # and the cut line skipped
