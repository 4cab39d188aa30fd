"""`show_trial`: one earlier trial in full, for a session that wants to look closer than the lineage view.

Hypothesis, who proposed it, label and score, every metric, missed gates, the
evaluator's explanation, phase wallclocks, the diff and the tail of the failing
phase's log. As in the view, eval-phase tracebacks keep where the evaluator's
frames are but not their source lines.
"""

from __future__ import annotations

from harness.agents.base import AgentContext
from harness.agents.llm.view import ViewOptions, _Entry, _failing_phase, _Lineage, redact_foreign_frames
from harness.types import TrialRecord

DIFF_CHARS = 12_000
LOG_LINES = 60
LOG_CHARS = 6000


def show_trial(ctx: AgentContext, rec: TrialRecord, own_files: set[str]) -> str:
    """The text `show_trial` returns for `rec`."""
    lin = _Lineage(ctx)
    entry = _Entry(rec, lin, ViewOptions(), own_files)
    proposal = rec.trial.proposal
    out = rec.outcome
    lines = [entry.headline().removeprefix("### "), f"hypothesis: {proposal.hypothesis}"]
    who = proposal.agent + (f" ({proposal.model})" if proposal.model else "")
    lines.append(f"proposed by: {who}" + (f", specialist {proposal.specialist}" if proposal.specialist else ""))
    if out is not None:
        if out.metrics:
            lines.append("metrics: " + ", ".join(f"{k}={v:.6g}" for k, v in sorted(out.metrics.items())))
        missed = [g for g in out.gates if not g.passed]
        for gate in missed:
            got = "-" if gate.value is None else f"{gate.value:.4g}"
            lines.append(f"gate missed: {gate.metric} {gate.op} {gate.threshold:g} (got {got})")
        if out.explanation:
            lines.append(f"evaluator: {out.explanation}")
        for phase in out.phases:
            seed = f" seed {phase.seed}" if phase.seed is not None else ""
            lines.append(f"{phase.phase}{seed}: {phase.wallclock_s:.1f} s, exit {phase.exit_code}"
                         f"{', timed out' if phase.timed_out else ''}{', out of memory' if phase.oom else ''}")
    diff = proposal.diff
    if diff:
        cut = f"\n[harness: diff cut at {DIFF_CHARS:,} of {len(diff):,} characters]" if len(diff) > DIFF_CHARS else ""
        lines += ["diff:", diff[:DIFF_CHARS].rstrip("\n") + cut]
    else:
        lines.append("diff: (none)")
    if out is not None and out.label.value not in ("keep", "not_improved"):
        phase = _failing_phase(out)
        if phase is not None:
            tail = phase.log_tail
            if phase.phase == "eval":
                tail = redact_foreign_frames(tail, own_files)
            text = "\n".join(tail.rstrip().splitlines()[-LOG_LINES:])[-LOG_CHARS:]
            lines += [f"log tail ({phase.phase}):", text]
    return "\n".join(lines)
