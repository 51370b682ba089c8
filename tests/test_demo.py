"""`vanishing demo --quick`: the table, the run folder, the figures and report.html."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

from vanishing.experiments.demo import DemoConfig, run_demo
from vanishing.experiments.demo_report import COLUMNS, write_demo_report


class ReportParser(HTMLParser):
    """Collects the images, the headings and the table cells of a report."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.cells: list[str] = []
        self.headings: list[str] = []
        self.captions = 0
        self._tag: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append({k: v or "" for k, v in attrs})
        if tag == "figcaption":
            self.captions += 1
        self._tag = tag

    def handle_data(self, data: str) -> None:
        if self._tag in ("td", "th"):
            self.cells.append(data.strip())
        if self._tag == "h2":
            self.headings.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        self._tag = None


def test_run_folder_has_the_figures_and_the_report(quick_demo: tuple[str, Path]) -> None:
    _, run_dir = quick_demo
    pngs = sorted(p.name for p in run_dir.glob("*.png"))
    assert pngs == [
        "a_gradient_vs_lag.png",
        "b_lstm_terms.png",
        "c_heatmap_lag_step.png",
        "d_learning_curves.png",
    ]
    for name in pngs:
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run_dir / "report.html").is_file()


def test_report_parses_and_embeds_every_figure(quick_demo: tuple[str, Path]) -> None:
    _, run_dir = quick_demo
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    parser = ReportParser()
    parser.feed(text)
    parser.close()
    assert len(parser.images) >= 4
    embedded = {img["data-file"] for img in parser.images}
    assert embedded == {p.name for p in run_dir.glob("*.png")}
    for img in parser.images:
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].split(",", 1)[1])
        assert png == (run_dir / img["data-file"]).read_bytes()
        assert img["alt"]
    assert parser.captions == len(parser.images)
    assert [h[:3] for h in parser.headings] == ["(a)", "(b)", "(c)", "(d)"]
    assert not re.search(r"""(src|href)=["']?https?:""", text), "the report must not need a network"


def test_report_and_terminal_show_the_same_table(quick_demo: tuple[str, Path]) -> None:
    output, run_dir = quick_demo
    parser = ReportParser()
    parser.feed((run_dir / "report.html").read_text(encoding="utf-8"))
    cells = parser.cells
    assert cells[: len(COLUMNS)] == list(COLUMNS)
    rows = [cells[k : k + len(COLUMNS)] for k in range(len(COLUMNS), len(cells), len(COLUMNS))]
    assert [r[0] for r in rows] == ["RNN (sigmoid)", "RNN (tanh)", "LSTM (forget_bias=1)"]
    lines = output.splitlines()
    for row in rows:
        line = next(line for line in lines if line.startswith(f"│ {row[0]} "))
        assert [c.strip() for c in line.strip("│ ").split("│")] == row
        mse = float(row[1])
        assert 0 < mse < 10
        start, end = (int(h) for h in row[3].split(" → "))
        assert 0 <= start < DemoConfig.quick().T and 0 <= end < DemoConfig.quick().T
    horizons = {r[0]: int(r[3].split(" → ")[0]) for r in rows}
    assert horizons["RNN (sigmoid)"] < horizons["LSTM (forget_bias=1)"]
    assert str(run_dir / "report.html") in output.replace("\n", "")


def test_single_model_run_without_lstm_has_no_terms_figure(tmp_path: Path) -> None:
    config = DemoConfig.quick(models=("rnn-tanh",), steps=4, T=6, out=tmp_path)
    written = write_demo_report(run_demo(config, progress=False), tmp_path)
    assert set(written.figures) == {"a", "c", "d"}
    assert written.report.is_file()


def test_run_without_training_steps_has_no_heatmap(tmp_path: Path) -> None:
    config = DemoConfig.quick(models=("lstm",), steps=0, T=6, out=tmp_path)
    result = run_demo(config, progress=False)
    assert result.runs["lstm"].heatmap is None
    assert set(write_demo_report(result, tmp_path).figures) == {"a", "b", "d"}


def test_heatmap_comes_from_the_monitor_every_few_training_steps(tmp_path: Path) -> None:
    config = DemoConfig.quick(models=("rnn-tanh",), steps=9, snapshots=3, T=6, out=tmp_path)
    steps, norms = run_demo(config, progress=False).runs["rnn-tanh"].heatmap
    assert steps == [3, 6, 9] and norms.shape == (3, 6)  # fit's steps, every 3rd
