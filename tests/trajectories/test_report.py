"""`harness report`: one self-contained HTML file, escaped, small and fast at 10,000 trials."""

from __future__ import annotations

import base64
import gzip
import json
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lineage_helpers import RunBuilder, edit_diff, make_outcome
from test_report_synthetic import synthetic_run

from harness.types import Label, Outcome, PhaseUsage
from trajectories.report import (
    ReportError,
    build_report,
    json_for_html,
    render_html,
    write_report,
)

PAYLOAD = '</script><script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'"><!--'


def xss_run(builder: RunBuilder) -> RunBuilder:
    """A run whose agent-written text (hypothesis, specialist, diff, explanation, log) carries markup."""
    lin = builder.lineage
    builder.trial(score=0.6, hypothesis=f"Plain trial; then {PAYLOAD}")
    parent_commit = lin.record(lin.best()).trial.commit
    diff = edit_diff(lin, parent_commit, "model.py", 3, f"LAYER_3 = '{PAYLOAD}'")
    record = builder.propose(diff, hypothesis=f"H {PAYLOAD}", specialist="x<b>y</b>")
    outcome = make_outcome(Label.crash, None)
    outcome = Outcome.model_validate({
        **outcome.model_dump(),
        "explanation": f"crash: {PAYLOAD}",
        "phases": [PhaseUsage(phase="train", seed=0, wallclock_s=1.0, exit_code=1, log_tail=f"Traceback\n{PAYLOAD}")],
    })
    lin.record_outcome(record.model_copy(update={"outcome": outcome}))
    return builder


def embedded_json(html: str) -> dict:
    m = re.search(r'<script id="run-data" type="application/json">(.*?)</script>', html, re.DOTALL)
    if m:
        return json.loads(m.group(1))
    m = re.search(r'<script id="run-data-gz" type="application/octet-stream">(.*?)</script>', html, re.DOTALL)
    assert m, "no run data in the page"
    return json.loads(gzip.decompress(base64.b64decode(m.group(1))))


def test_report_is_one_self_contained_file(small_run: RunBuilder, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.html"
    write_report(small_run.run_dir, out)
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # No outside resource: no links, no src attributes, no URL but the SVG namespace name.
    assert "<link" not in html and " src=" not in html
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert html.count("<script") == 2  # the data and the app, nothing else
    data = embedded_json(html)
    assert data["trials"]["id"] == ["t0000", "t0001", "t0002", "t0003", "t0004"]
    assert data["run"]["best"] == "t0003" and data["run"]["problem_count"] == 0
    assert data["labels"][data["trials"]["label"][4]] == "apply_failed"
    assert data["details"][1]["d"].startswith("diff --git a/model.py b/model.py")
    assert data["stats"]["rates"]["n"] == 4


def test_agent_text_is_escaped(builder: RunBuilder, tmp_path: Path) -> None:
    xss_run(builder)
    html = build_report(builder.run_dir)
    # The only script elements are ours; no payload markup survives anywhere in the file.
    assert html.count("<script") == 2 and html.count("</script>") == 2
    assert "<img" not in html and "<b>" not in html and "<!--" not in html
    assert "pwned" in html  # the text is there, as escaped JSON
    data = embedded_json(html)
    assert data["details"][2]["h"] == f"H {PAYLOAD}"
    assert PAYLOAD in data["details"][2]["d"]
    assert data["details"][2]["p"][0][7].endswith(PAYLOAD)
    assert data["specialists"] == ["x<b>y</b>"]
    # The app never hands run text to an HTML parser.
    js = (Path(__file__).parents[2] / "trajectories" / "report_assets" / "report.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", js)


def test_json_for_html_cannot_close_the_element() -> None:
    text = json_for_html({"h": "</script><!-- & \u2028 \u2029 >"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"h": "</script><!-- & \u2028 \u2029 >"}


def test_compressed_payload_round_trips(small_run: RunBuilder) -> None:
    html = build_report(small_run.run_dir, compress_over=0)
    assert 'id="run-data-gz"' in html and 'id="run-data"' not in html
    assert embedded_json(html)["trials"]["id"][0] == "t0000"


def test_report_shows_given_problems(small_run: RunBuilder) -> None:
    data = embedded_json(build_report(small_run.run_dir, problems=["t0002: recorded keep, but the keep rule says no"]))
    assert data["run"]["problems"] == ["t0002: recorded keep, but the keep rule says no"]
    assert data["run"]["problem_count"] == 1


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="is not a run"):
        build_report(tmp_path)


def test_ten_thousand_trials_stay_small_and_fast() -> None:
    info, records = synthetic_run(10_000)
    start = time.perf_counter()
    html = render_html(info, records, best="t0001")
    elapsed = time.perf_counter() - start
    size = len(html.encode("utf-8"))
    print(f"\n10,000-trial report: {size / 1e6:.2f} MB in {elapsed:.2f} s")
    assert size < 6_000_000 and elapsed < 30
    data = embedded_json(html)
    assert len(data["trials"]["id"]) == len(data["details"]) == 10_000


def test_long_diffs_and_logs_are_capped(builder: RunBuilder) -> None:
    from trajectories.report import MAX_DIFF_LINES, MAX_TAIL_CHARS

    info = builder.lineage.run_info()
    builder.trial(score=0.6)
    records = builder.lineage.records()
    big = records[1].model_copy(deep=True)
    proposal = big.trial.proposal.model_copy(update={"diff": "+x\n" * (MAX_DIFF_LINES + 50)})
    trial = big.trial.model_copy(update={"proposal": proposal})
    phases = [PhaseUsage(phase="train", wallclock_s=1, exit_code=0, log_tail="y" * (MAX_TAIL_CHARS * 3))]
    outcome = big.outcome.model_copy(update={"phases": phases})
    data = embedded_json(render_html(info, [records[0], big.model_copy(update={"trial": trial, "outcome": outcome})]))
    assert data["details"][1]["dc"] is True and data["details"][1]["d"].count("\n") < MAX_DIFF_LINES
    assert len(data["details"][1]["p"][0][7]) == MAX_TAIL_CHARS + 1
