"""`harness report RUN --html FILE`: one self-contained HTML file for auditors.

The page needs nothing but itself (no CDN, no network): the CSS and the
JavaScript in `report_assets/` are inlined, and the run is embedded as one JSON
document. Views (client-side, addressed by the URL fragment, so each trial has
its own link `#t/t0042`): an overview (score per trial with the best so far,
failure labels over time, label counts, the lineage's verification), the trial
list, the lineage tree, per-specialist (or per-agent) panels, the statistics of
`trajectories.analysis`, and a page per trial with its hypothesis, the diff
(highlighted), the outcome, the budgets (phase wallclocks against the caps) and
the log tails, and where the agent's transcript is stored (with the command
that prints it). With several fidelity levels, trials show their level, a
promotion's parent link shows the level change, the best so far counts only the
run's level (the baseline's), and the statistics show how well each level
predicts the next and the compute spent per level.

It stays fast on a 10,000-trial run: the trial list and the tree render only
the rows in view, the score chart is one SVG path per label, per-trial details
are built when a trial is opened, and the data is columnar (labels, agents and
specialists are indexes into small tables). Diffs and log tails are capped in
the page (the lineage keeps them whole). Above `compress_over` bytes the JSON is
stored gzip-compressed (base64) and inflated in the browser with
`DecompressionStream` (Chromium 80+, Firefox 113+, Safari 16.4+).

Everything from the run (hypotheses, diffs, logs: agent-written text) reaches
the page only as JSON inside a `<script type="application/json">` element with
`<`, `>` and `&` escaped, and the script puts it into the DOM only through
`textContent` and attribute setters, never as markup.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.types import Label, RunInfo, TrialRecord, trial_number

from .agent_text import escape_html, json_for_html
from .analysis import analyze
from .importers.common import source_fields
from .lineage import Lineage, LineageError
from .transcripts import transcript_path
from .verify import VerifyReport, verify_lineage

ASSETS = Path(__file__).parent / "report_assets"
MAX_DIFF_LINES = 1500
MAX_DIFF_CHARS = 150_000
MAX_TAIL_CHARS = 4000
MAX_PROBLEMS = 500
SHORT_HYPOTHESIS = 160
COMPRESS_OVER = 4_000_000
"""JSON above this many bytes is embedded gzip-compressed."""

LABEL_ORDER = [label.value for label in Label]


class ReportError(Exception):
    """The folder is not a run the report can read."""


def write_report(
    run_dir: Path,
    html_path: Path,
    *,
    problems: Sequence[str] | None = None,
    compress_over: int = COMPRESS_OVER,
    verified: VerifyReport | None = None,
) -> None:
    """Write the report of the run in `run_dir` to `html_path`.

    `problems`: the audit's findings to show (e.g. `harness.replay.replay(run).problems`,
    which adds the keep-rule checks); the run is then read without verifying it
    again. By default the report runs `verify_lineage` and shows its problems.
    `verified`: that caller's `verify_lineage` report, whose records are then used
    (the run is not read a second time). Raises `ReportError` when `run_dir` is not a run."""
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    text = build_report(run_dir, problems=problems, compress_over=compress_over, verified=verified)
    html_path.write_text(text, encoding="utf-8")


def build_report(
    run_dir: Path,
    *,
    problems: Sequence[str] | None = None,
    compress_over: int = COMPRESS_OVER,
    verified: VerifyReport | None = None,
) -> str:
    """The HTML text of the report (see `write_report`)."""
    run_dir = Path(run_dir)
    if verified is not None and verified.info is not None:
        found = list(verified.problems) if problems is None else list(problems)
        return render_html(verified.info, verified.records, best=verified.best, problems=found,
                           compress_over=compress_over)
    if problems is not None:
        # The caller audited the run already: read it without verifying it again.
        try:
            with Lineage.open(run_dir) as lineage:
                info, records, best = lineage.run_info(), lineage.records(), lineage.best()
            return render_html(info, records, best=best, problems=list(problems), compress_over=compress_over)
        except LineageError:
            pass  # damaged: verify_lineage reads what it can
    report = verify_lineage(run_dir)
    if report.info is None:
        raise ReportError(f"{run_dir} is not a run: " + ("; ".join(report.problems[:3]) or "no run.json"))
    found = list(report.problems) if problems is None else list(problems)
    return render_html(report.info, report.records, best=report.best, problems=found, compress_over=compress_over)


def render_html(
    info: RunInfo,
    records: Sequence[TrialRecord],
    *,
    best: str | None = None,
    problems: Sequence[str] = (),
    compress_over: int = COMPRESS_OVER,
) -> str:
    """The HTML of a report from records in memory."""
    data = report_data(info, records, best=best, problems=problems)
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if len(raw) > compress_over:  # encoded once: a large run's text is only compressed, never escaped
        blob = base64.b64encode(gzip.compress(raw.encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")
        data_tag = f'<script id="run-data-gz" type="application/octet-stream">{blob}</script>'
    else:
        data_tag = f'<script id="run-data" type="application/json">{json_for_html(data)}</script>'
    css = (ASSETS / "report.css").read_text(encoding="utf-8")
    js = (ASSETS / "report.js").read_text(encoding="utf-8")
    title = escape_html(f"harness report: {info.run_id} ({info.recipe.name})")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>{title}</title>\n<style>\n{css}\n</style>\n</head>\n<body>\n"
        "<div id=\"app\"><p class=\"loading\">Loading the report&hellip; (it needs JavaScript)</p></div>\n"
        f"{data_tag}\n<script>\n{js}\n</script>\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------
# The embedded data
# ---------------------------------------------------------------------------


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _cap_diff(diff: str) -> tuple[str, bool]:
    lines = diff.split("\n")
    cut = False
    if len(lines) > MAX_DIFF_LINES:
        lines, cut = lines[:MAX_DIFF_LINES], True
    text = "\n".join(lines)
    if len(text) > MAX_DIFF_CHARS:
        text, cut = text[:MAX_DIFF_CHARS], True
    return text, cut


def _cap_tail(tail: str) -> str:
    return tail if len(tail) <= MAX_TAIL_CHARS else "\u2026" + tail[-MAX_TAIL_CHARS:]


def report_data(
    info: RunInfo, records: Sequence[TrialRecord], *, best: str | None, problems: Sequence[str]
) -> dict[str, Any]:
    records = sorted(records, key=lambda r: trial_number(r.trial.id))
    index = {r.trial.id: i for i, r in enumerate(records)}
    agents: list[str] = []
    groups: list[str] = []
    agent_ix: dict[str, int] = {}
    group_ix: dict[str, int] = {}

    def intern(table: list[str], ix: dict[str, int], value: str) -> int:
        if value not in ix:
            ix[value] = len(table)
            table.append(value)
        return ix[value]

    label_ix = {name: i for i, name in enumerate(LABEL_ORDER)}
    levels = info.recipe.fidelity_order()
    levels += sorted({r.trial.fidelity for r in records} - set(levels))
    level_ix = {name: i for i, name in enumerate(levels)}
    cols: dict[str, list[Any]] = {
        k: [] for k in ("id", "parent", "agent", "spec", "label", "score", "hyp", "domain", "fid", "move")
    }
    details: list[dict[str, Any]] = []
    imported = info.imported is not None
    for r in records:
        t, o, p = r.trial, r.outcome, r.trial.proposal
        cols["id"].append(t.id)
        cols["parent"].append(index.get(t.parent, -1) if t.parent else -1)
        cols["agent"].append(intern(agents, agent_ix, p.agent))
        cols["spec"].append(intern(groups, group_ix, p.specialist) if p.specialist else -1)
        cols["label"].append(label_ix[o.label.value] if o else -1)
        cols["score"].append(_finite(o.score) if o else None)
        short = " ".join(p.hypothesis.split())
        cols["hyp"].append(short if len(short) <= SHORT_HYPOTHESIS else short[: SHORT_HYPOTHESIS - 1] + "\u2026")
        src = source_fields(o) if imported else {}
        cols["domain"].append(src.get("domain", ""))
        cols["fid"].append(level_ix[t.fidelity])
        cols["move"].append(t.fidelity_move or "")
        diff, cut = _cap_diff(p.diff)
        d: dict[str, Any] = {"h": p.hypothesis, "f": t.fidelity, "c": t.commit, "sd": t.seeds}
        if diff:
            d["d"] = diff
        if cut:
            d["dc"] = True
        if p.expected_delta is not None:
            d["x"] = _finite(p.expected_delta)
        if p.model:
            d["mo"] = p.model
        if p.usage.input_tokens or p.usage.output_tokens or p.usage.cost_usd:
            d["u"] = [p.usage.input_tokens, p.usage.output_tokens, p.usage.cost_usd]
        if p.knobs:
            d["k"] = dict(p.knobs)
        if t.transcript is not None:  # the page names it; the lineage holds the bytes
            tr = t.transcript
            d["tr"] = [tr.format, tr.size, tr.sha256, transcript_path(t.id, tr.format)]
        failure = getattr(p, "failure", None)
        if failure:
            d["fr"] = f"{failure}: {getattr(p, 'failure_reason', '')}".rstrip(": ")
        if o is not None:
            d["e"] = o.explanation
            d["m"] = {k: v for k, v in o.metrics.items() if math.isfinite(v)}
            if o.seed_scores:
                d["ss"] = [x for x in o.seed_scores if math.isfinite(x)]
            if o.gates:
                d["g"] = [[g.metric, g.op, g.threshold, _finite(g.value), g.passed] for g in o.gates]
            if o.phases:
                d["p"] = [
                    [ph.phase, ph.seed, ph.wallclock_s, ph.exit_code, ph.timed_out, ph.oom, ph.output_bytes, _cap_tail(ph.log_tail)]
                    for ph in o.phases
                ]
            if o.artifact_bytes is not None:
                d["ab"] = o.artifact_bytes
            if o.compared_to:
                d["ct"] = o.compared_to
            d["t"] = [o.started, o.finished]
            if o.original_label is not None:
                d["ol"] = o.original_label
            if o.image:
                d["im"] = o.image
        details.append(d)
    spec = info.recipe
    try:
        stats = analyze(records, info).model_dump(mode="json")
        stats["convergence"].pop("best_so_far", None)  # the page derives it
    except Exception as exc:  # noqa: BLE001 - the report still renders without statistics
        stats = {"error": f"{type(exc).__name__}: {exc}"}
    run = {
        "id": info.run_id,
        "recipe": spec.name,
        "description": spec.description,
        "metric": spec.metric.name,
        "direction": spec.metric.direction.value,
        "noise": spec.metric.noise_margin,
        "gates": [[g.metric, g.op, g.threshold] for g in spec.gates],
        "budgets": {
            "train_s": spec.budgets.train_wallclock_s,
            "eval_s": spec.budgets.eval_wallclock_s,
            "artifact_bytes": spec.budgets.artifact_bytes,
            "max_diff_lines": spec.budgets.max_diff_lines,
        },
        "agent": info.agent,
        "seed": info.seed,
        "created": info.created,
        "version": info.harness_version,
        "baseline": info.baseline_commit,
        "evaluator": info.evaluator_digest,
        "imported": info.imported.model_dump(mode="json") if info.imported else None,
        "best": best,
        "levels": [[name, spec.fidelities[name].cost if name in spec.fidelities else None] for name in levels],
        "level": next((r.trial.fidelity for r in records if r.trial.id == "t0000"), spec.default_fidelity),
        "policy": info.fidelity_policy.model_dump(mode="json") if info.fidelity_policy else None,
        "problems": list(problems)[:MAX_PROBLEMS],
        "problem_count": len(problems),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return {
        "run": run,
        "labels": LABEL_ORDER,
        "agents": agents,
        "specialists": groups,
        "trials": cols,
        "details": details,
        "stats": stats,
    }


__all__ = ["ReportError", "build_report", "json_for_html", "render_html", "report_data", "write_report"]
