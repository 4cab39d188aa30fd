"""The report in headless Chromium (Debian's `chromium` package): the page's
script runs, builds the views, keeps agent text inert, and a screenshot is taken.

Without Chromium these tests are skipped, except under `CI=true`, where they
fail: CI must run them (install `chromium`). Screenshots go to
`$HARNESS_SCREENSHOT_DIR` when set, else to the test's temporary folder; each
test prints where.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lineage_helpers import RunBuilder
from test_import import SAMPLE
from test_report import xss_run

from trajectories.importers import import_run
from trajectories.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1400,1000",
    "--virtual-time-budget=8000",
)


@pytest.fixture(scope="session")
def chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    reason = f"no headless browser found ({', '.join(BROWSERS)}); install Debian's chromium package"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the report cannot be tested in a browser: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HARNESS_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def browse(chromium: str, page: Path, view: str, profile: Path, *, screenshot: Path | None = None) -> str:
    """The DOM after the page's script ran (or "" when only a screenshot is taken)."""
    url = page.resolve().as_uri() + "#" + view
    action = [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    proc = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *action, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    if screenshot:
        data = screenshot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, "the screenshot is not a real picture"
        print(f"\nscreenshot: {screenshot}")
        return ""
    return proc.stdout.decode("utf-8", "replace")


def app_part(dom: str) -> str:
    """The DOM the script built (the embedded data and the script text left out)."""
    return re.sub(r"<script\b.*?</script>", "", dom, flags=re.DOTALL)


@pytest.fixture(scope="module")
def cifar_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cifar")
    import_run("auto-research-recipes", SAMPLE / "results.tsv", folder / "run")
    write_report(folder / "run", folder / "report.html")
    return folder / "report.html"


def test_overview_draws_the_charts(chromium: str, cifar_report: Path, tmp_path: Path, shots: Path) -> None:
    dom = app_part(browse(chromium, cifar_report, "overview", tmp_path / "p"))
    assert 'data-ready="1"' in dom and 'data-view="overview"' in dom
    chart = re.search(r'<svg[^>]*id="score-chart".*?</svg>', dom, re.DOTALL)
    assert chart, "no score chart"
    assert 'class="points" data-label="keep"' in chart.group(0) and 'id="best-line"' in chart.group(0)
    assert 'class="strip" data-label="gate_miss"' in chart.group(0)  # unscored failures over time
    label_chart = re.search(r'<svg[^>]*id="label-chart".*?</svg>', dom, re.DOTALL)
    assert label_chart and label_chart.group(0).count("<rect") >= 49
    assert "lineage verified" in dom and "98" in dom
    counts = re.search(r'<table[^>]*id="label-counts".*?</table>', dom, re.DOTALL).group(0)
    assert re.search(r"gate_miss</span></td><td class=\"num\">81<", counts)
    browse(chromium, cifar_report, "overview", tmp_path / "p", screenshot=shots / "cifar-overview.png")


def test_trial_list_and_tree_render_rows_lazily(chromium: str, cifar_report: Path, tmp_path: Path, shots: Path) -> None:
    dom = app_part(browse(chromium, cifar_report, "trials", tmp_path / "p"))
    rows = re.findall(r'class="row trial-row" data-trial="(t\d+)"', dom)
    assert rows[:3] == ["t0000", "t0001", "t0002"] and 20 <= len(rows) < 98  # only those in view
    assert "98 of 98 trials" in dom
    tree = app_part(browse(chromium, cifar_report, "tree", tmp_path / "p"))
    assert re.search(r'class="row tree-row onbest" data-trial="t0000"', tree)
    assert "16 children" in tree
    browse(chromium, cifar_report, "tree", tmp_path / "p", screenshot=shots / "cifar-tree.png")


def test_trial_page(chromium: str, cifar_report: Path, tmp_path: Path, shots: Path) -> None:
    dom = app_part(browse(chromium, cifar_report, "t/t0070", tmp_path / "p"))
    assert 'id="trial-page" data-trial="t0070"' in dom
    assert "exp 070: 42ep + lr=11 + warmup fraction" in dom
    assert 'class="badge ok">best<' in dom and "25.1464" in dom
    assert re.search(r'<table class="t" id="gates">.*accuracy &gt;= 0.96.*passed', dom, re.DOTALL)
    browse(chromium, cifar_report, "t/t0070", tmp_path / "p", screenshot=shots / "cifar-trial-t0070.png")
    for view, marker in (("groups", 'data-group="opt"'), ("stats", 'id="jsd-matrix"'), ("problems", "exp 006")):
        assert marker in app_part(browse(chromium, cifar_report, view, tmp_path / "p")), view


def test_native_run_with_diff_and_log(chromium: str, builder: RunBuilder, tmp_path: Path, shots: Path) -> None:
    xss_run(builder)
    page = tmp_path / "native.html"
    write_report(builder.run_dir, page)
    dom = app_part(browse(chromium, page, "t/t0002", tmp_path / "p"))
    # Agent text shows as text; none of it became markup, and none of it ran.
    assert "<title>harness report: run-test (toy)</title>" in dom
    assert "pwned" not in re.search(r"<title>.*?</title>", dom).group(0)
    assert "<img" not in dom
    assert "x<b>y" not in dom and "x&lt;b&gt;y&lt;/b&gt;" in dom  # the specialist's name
    assert "H &lt;/script&gt;&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;&lt;img" in dom
    assert '<span class="add">+LAYER_3 = \'&lt;/script&gt;' in dom  # the diff, highlighted
    assert re.search(r'<pre class="log">Traceback\n&lt;/script&gt;', dom)
    assert re.search(r'class="chip" style="[^"]*">crash<', dom)
    browse(chromium, page, "t/t0002", tmp_path / "p", screenshot=shots / "native-trial-diff.png")


def test_compressed_report_opens(chromium: str, small_run: RunBuilder, tmp_path: Path) -> None:
    page = tmp_path / "gz.html"
    write_report(small_run.run_dir, page, compress_over=0)
    assert 'id="run-data-gz"' in page.read_text()
    dom = app_part(browse(chromium, page, "trials", tmp_path / "p"))
    assert re.findall(r'data-trial="(t\d+)"', dom) == ["t0000", "t0001", "t0002", "t0003", "t0004"]
