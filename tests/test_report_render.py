"""The demo's report.html renders in headless Chromium: no errors, figures visible.

Skipped when `chromium` is not on PATH (Debian: apt-get install chromium; CI installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from matplotlib.image import imread

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not on PATH (apt-get install chromium to run this)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_report_renders_with_visible_figures(
    quick_demo: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, run_dir = quick_demo
    tmp = tmp_path_factory.mktemp("chromium")
    url = (run_dir / "report.html").resolve().as_uri()
    shot = tmp / "report.png"
    proc = chromium(
        ["--enable-logging=stderr", f"--screenshot={shot}", "--window-size=1200,2400", url],
        tmp / "profile",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Uncaught" not in proc.stderr and "Not allowed to load" not in proc.stderr
    image = imread(shot)[..., :3]  # (H, W, 3) floats in [0, 1]
    assert image.shape[:2] == (2400, 1200)
    assert image.std() > 0.05, "the screenshot is blank"
    colour = image.max(axis=2) - image.min(axis=2)  # saturation: the figures' coloured curves
    assert (colour > 0.3).mean() > 0.002, "no coloured figure pixels in the screenshot"

    dom = chromium(["--dump-dom", url], tmp / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('src="data:image/png;base64,') >= 4
    assert 'id="results"' in dom.stdout
