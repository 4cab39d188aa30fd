"""The lineage view: what an LLM agent reads about the trials so far.

Rendered from `ctx.records` (the measured lineage), bounded to a token budget
(estimated at 4 characters a token):

1. a header: trial count, metric and direction, noise margin, label counts,
   the current best;
2. a leaderboard of kept trials, best first: id, score, delta vs parent,
   specialist, hypothesis;
3. with several fidelity levels, the cross-fidelity record: each idea that ran at
   more than one level with its score at each (`t0007 smoke 0.81 -> t0012 short
   0.86`), most recent ideas kept first;
4. the recent trials of this specialist, then those of the others (or one
   section when no specialist is asked for), oldest first so the newest sit
   next to the task: id, parent, label, score and delta vs parent, the lines
   the diff changed, train wallclock against the budget, the evaluator's
   explanation and, for trials that crashed or ran over, the log tail.

Whatever does not fit is dropped, oldest first; the header, the top of the
leaderboard and the most recent failures always stay (shortened if they must).
Log tails of the eval phase keep the frames of the evaluator's own code but not
its source lines: agents never read evaluator code.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from harness.agents.base import AgentContext
from harness.types import BASELINE_TRIAL_ID, Direction, Label, Outcome, PhaseUsage, RecipeSpec, TrialRecord

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token), good enough for budgeting."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


@dataclass(frozen=True)
class ViewOptions:
    token_budget: int = 6000
    """Tokens the whole view may take (estimated)."""
    leaderboard_size: int = 10
    """Kept trials listed at most."""
    recent_own: int = 15
    """Trials of this specialist shown at most."""
    recent_other: int = 10
    """Trials of other specialists shown at most."""
    always_failures_own: int = 2
    """Most recent failures of this specialist kept whatever the budget."""
    always_failures_other: int = 1
    """Most recent failures of other specialists kept whatever the budget."""
    hypothesis_chars: int = 400
    explanation_chars: int = 700
    diff_lines: int = 12
    log_tail_lines: int = 25
    log_tail_chars: int = 2000


# Labels whose log tail tells the agent what went wrong.
LOG_LABELS = frozenset({
    Label.preflight_crash, Label.crash, Label.oom, Label.budget_overrun, Label.eval_budget_overrun,
    Label.metric_missing, Label.size_failure, Label.tamper,
})


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def _fmt_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _direction_word(spec: RecipeSpec, delta: float) -> str:
    better = delta > 0 if spec.metric.direction is Direction.maximize else delta < 0
    if abs(delta) <= spec.metric.noise_margin:
        return "within noise"
    return "better" if better else "worse"


class _Lineage:
    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.spec = ctx.spec
        self.by_id = {r.trial.id: r for r in ctx.records}
        self.levels = len({r.trial.fidelity for r in ctx.records}) > 1
        """Whether the trials ran at more than one fidelity level (then each line names its level)."""

    def score(self, tid: str | None) -> float | None:
        rec = self.by_id.get(tid) if tid else None
        return rec.outcome.score if rec is not None and rec.outcome is not None else None

    def level(self, rec: TrialRecord) -> str:
        return f" @{rec.trial.fidelity}" if self.levels else ""

    def delta(self, rec: TrialRecord) -> str:
        score = rec.outcome.score if rec.outcome else None
        parent = self.by_id.get(rec.trial.parent) if rec.trial.parent else None
        if parent is not None and parent.trial.fidelity != rec.trial.fidelity:
            return ""  # scores of different levels do not compare
        parent_score = self.score(rec.trial.parent)
        if score is None or parent_score is None:
            return ""
        d = score - parent_score
        return f" ({d:+.4f} vs {rec.trial.parent}, {_direction_word(self.spec, d)})"


def _failing_phase(outcome: Outcome) -> PhaseUsage | None:
    phases = [p for p in outcome.phases if p.log_tail]
    bad = [p for p in phases if p.exit_code != 0 or p.timed_out or p.oom]
    if bad:
        return bad[-1]
    return phases[-1] if phases else None


_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+')


def redact_foreign_frames(tail: str, own_files: set[str]) -> str:
    """Drop the source lines of traceback frames in files that are not the trial's own.

    A frame line `File "/x/eval/predict.py", line 12, in main` stays (it says
    where), the quoted source line under it goes: evaluator code is not for agents.
    """
    out: list[str] = []
    skip_source = False
    for line in tail.splitlines():
        if skip_source:
            skip_source = False
            if line.startswith("    ") and not _FRAME.match(line):
                out.append("    [source hidden: not a file of the trial]")
                continue
        found = _FRAME.match(line)
        if found:
            path = found.group(1).replace("\\", "/")
            own = any(path == f or path.endswith("/" + f) for f in own_files)
            skip_source = not own
        out.append(line)
    return "\n".join(out)


def _changed_lines(diff: str, limit: int) -> list[str]:
    lines: list[str] = []
    path = ""
    in_hunk = False
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            in_hunk = False
            path = line.split(" b/", 1)[-1]
            continue
        if line.startswith("@@"):
            in_hunk = True
            continue
        if not in_hunk:
            if line.startswith("+++ ") and not path:
                path = line[4:].removeprefix("b/")
            continue
        if line[:1] in "+-" and line.strip() not in ("+", "-"):
            lines.append(f"{path}: {line[:1]} {line[1:].strip()[:140]}")
    if len(lines) > limit:
        more = len(lines) - limit
        lines = lines[:limit] + [f"(+{more} more changed lines)"]
    return lines


class _Entry:
    """One trial of a recent-trials section, renderable in full or compact form."""

    def __init__(self, rec: TrialRecord, lin: _Lineage, opts: ViewOptions, own_files: set[str]) -> None:
        self.rec = rec
        self.lin = lin
        self.opts = opts
        self.own_files = own_files

    @property
    def failed(self) -> bool:
        out = self.rec.outcome
        return out is not None and out.status.value == "fail" and out.label is not Label.harness_error

    def headline(self) -> str:
        rec, out = self.rec, self.rec.outcome
        t = rec.trial
        who = f" [{t.proposal.specialist}]" if t.proposal.specialist else ""
        if out is None:
            status = "RUNNING (outcome not known yet)"
        else:
            status = f"{out.status.value.upper()} {out.label.value}"
            if out.score is not None:
                status += f" {self.lin.spec.metric.name}={_fmt_score(out.score)}{self.lin.delta(rec)}"
        expected = t.proposal.expected_delta
        exp = f" (expected {expected:+.4f})" if expected is not None else ""
        return f"### {t.id} <- {t.parent or '-'}{self.lin.level(rec)}{who}: {status}{exp}"

    def render(self, compact: bool = False) -> str:
        rec, out, opts = self.rec, self.rec.outcome, self.opts
        lines = [self.headline()]
        lines.append("hypothesis: " + _clip(rec.trial.proposal.hypothesis, 160 if compact else opts.hypothesis_chars))
        if not compact:
            changed = _changed_lines(rec.trial.proposal.diff, opts.diff_lines)
            if changed:
                lines.append("changed:")
                lines.extend("  " + c for c in changed)
        if out is not None:
            train = [p for p in out.phases if p.phase == "train"]
            if train and not compact:
                longest = max(p.wallclock_s for p in train)
                lines.append(f"train wallclock: {longest:.1f} s of {self.lin.spec.budgets.train_wallclock_s:g} s budget")
            extra = {k: v for k, v in out.metrics.items() if k != self.lin.spec.metric.name}
            if extra and not compact:
                lines.append("metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(extra.items())[:8]))
            missed = [g for g in out.gates if not g.passed]
            if missed:
                lines.append("gates missed: " + ", ".join(
                    f"{g.metric} {g.op} {g.threshold:g} (got {'-' if g.value is None else f'{g.value:.4g}'})"
                    for g in missed))
            if out.explanation and out.label not in (Label.keep,):
                lines.append("evaluator: " + _clip(out.explanation, 200 if compact else opts.explanation_chars))
            if not compact and out.label in LOG_LABELS:
                phase = _failing_phase(out)
                if phase is not None:
                    tail = phase.log_tail
                    if phase.phase == "eval":
                        tail = redact_foreign_frames(tail, self.own_files)
                    tail_lines = tail.rstrip().splitlines()[-opts.log_tail_lines:]
                    text = "\n".join(tail_lines)[-opts.log_tail_chars:]
                    seed = f", seed {phase.seed}" if phase.seed is not None else ""
                    lines.append(f"log tail ({phase.phase}{seed}, exit {phase.exit_code}"
                                 f"{', timed out' if phase.timed_out else ''}{', out of memory' if phase.oom else ''}):")
                    lines.extend("    " + line for line in text.splitlines())
        return "\n".join(lines)


def _leader_row(rec: TrialRecord, lin: _Lineage, opts: ViewOptions) -> str:
    t = rec.trial
    who = f" [{t.proposal.specialist}]" if t.proposal.specialist else ""
    hyp = "baseline (the recipe as shipped)" if t.id == BASELINE_TRIAL_ID else _clip(t.proposal.hypothesis, 160)
    return (f"- {t.id}{lin.level(rec)} {lin.spec.metric.name}={_fmt_score(rec.outcome.score if rec.outcome else None)}"
            f"{lin.delta(rec)}{who}: {hyp}")


def _across_row(chain: list[TrialRecord], lin: _Lineage) -> str:
    """`- t0007 smoke 0.8100 -> t0012 short 0.8600 (promotion) ...: hypothesis` for one idea."""
    steps = []
    for rec in chain:
        out = rec.outcome
        what = "running" if out is None else (_fmt_score(out.score) if out.score is not None else out.label.value)
        steps.append(f"{rec.trial.id} {rec.trial.fidelity} {what}")
    first = chain[0].trial
    hyp = "baseline (the recipe as shipped)" if first.id == BASELINE_TRIAL_ID else _clip(first.proposal.hypothesis, 120)
    return f"- {' -> '.join(steps)}: {hyp}"


def render_view(ctx: AgentContext, token_budget: int | None = None, *, options: ViewOptions | None = None,
                own_files: set[str] | frozenset[str] = frozenset()) -> str:
    """The lineage view for a proposal of `ctx.specialist`, within `token_budget` tokens (estimated).

    `own_files` are the trial's editable files: traceback source lines of other
    files (the evaluator's) are hidden in eval-phase log tails.
    """
    opts = options or ViewOptions()
    budget = opts.token_budget if token_budget is None else token_budget
    lin = _Lineage(ctx)
    spec = ctx.spec
    metric = spec.metric
    own_name = ctx.specialist

    records = ctx.records
    counts = Counter(r.outcome.label.value if r.outcome else "running" for r in records if r.trial.id != BASELINE_TRIAL_ID)
    best = lin.by_id.get(ctx.best)
    header = [
        f"# Lineage: {len(records)} trials so far ({records[0].trial.id}..{records[-1].trial.id})" if records
        else "# Lineage: no trials yet",
        f"Metric {metric.name}: {metric.direction.value}; a trial is kept only when it beats its parent and the "
        f"current best by more than the noise margin {metric.noise_margin:g}.",
        "Labels so far: " + (", ".join(f"{k} {v}" for k, v in counts.most_common()) or "none"),
        f"Current best: {ctx.best}{lin.level(best) if best else ''} "
        f"{metric.name}={_fmt_score(best.outcome.score if best and best.outcome else None)}",
    ]
    if lin.levels:
        header.append(f"Fidelity: scores compare only within a level; this proposal runs at {ctx.level()} "
                      f"({ctx.fidelity_policy} policy).")

    sign = 1 if metric.direction is Direction.maximize else -1
    kept = [r for r in records if r.outcome is not None and r.outcome.label is Label.keep and r.outcome.score is not None]
    if lin.levels and best is not None:
        kept = [r for r in kept if r.trial.fidelity == best.trial.fidelity]
    kept.sort(key=lambda r: -sign * r.outcome.score)  # type: ignore[operator, union-attr]
    kept = kept[: opts.leaderboard_size]
    leader_title = "## Leaderboard: kept trials, best first" + (
        f" (at {best.trial.fidelity}, the run's level)" if lin.levels and best is not None else "")
    across_rows = [_across_row(chain, lin) for chain in ctx.across_levels()]
    across_title = "## Ideas tried at several fidelity levels, oldest first" if across_rows else ""
    leader_rows = [_leader_row(r, lin, opts) for r in kept]

    trials = [r for r in records if r.trial.id != BASELINE_TRIAL_ID]
    if own_name is not None:
        own_all = [r for r in trials if r.trial.proposal.specialist == own_name]
        other_all = [r for r in trials if r.trial.proposal.specialist != own_name]
        own_cap, other_cap = opts.recent_own, opts.recent_other
        own_title = f"## Recent trials of your specialty ({own_name}), oldest first"
        other_title = "## Recent trials of the other specialists, oldest first"
    else:
        own_all, other_all = trials, []
        own_cap, other_cap = opts.recent_own + opts.recent_other, 0
        own_title = "## Recent trials, oldest first"
        other_title = ""

    def entries(records_: list[TrialRecord], cap: int, failures: int) -> tuple[list[_Entry], list[_Entry]]:
        """The section's candidates (the `cap` most recent plus its latest failures) and those failures."""
        made = [_Entry(r, lin, opts, set(own_files)) for r in records_]
        must_ = [e for e in reversed(made) if e.failed][:failures]
        recent = made[-cap:] if cap > 0 else []
        keep_ids = {id(e) for e in recent} | {id(e) for e in must_}
        return [e for e in made if id(e) in keep_ids], must_

    own_entries, own_must = entries(own_all, own_cap, opts.always_failures_own)
    other_entries, other_must = entries(other_all, other_cap, opts.always_failures_other)

    # Pick what to show: mandatory parts first, then the rest newest first.
    chosen: dict[int, str] = {}  # id(entry) -> rendered text
    used = estimate_tokens("\n".join(header + [leader_title, across_title, own_title, other_title])) + 40
    lead_shown = 0
    if leader_rows:
        used += estimate_tokens(leader_rows[0]) + 1
        lead_shown = 1

    must = own_must + other_must
    for entry in must:
        full = entry.render()
        text = full if used + estimate_tokens(full) <= budget else entry.render(compact=True)
        chosen[id(entry)] = text
        used += estimate_tokens(text) + 1

    order: list[object] = []
    newest_own = list(reversed(own_entries))
    newest_other = list(reversed(other_entries))
    order.extend(("lead", i) for i in range(1, min(3, len(leader_rows))))
    order.extend(("across", i) for i in reversed(range(len(across_rows))))  # the most recent ideas first
    # Own trials are preferred two to one over the others', newest first.
    while newest_own or newest_other:
        order.extend(newest_own[:2])
        newest_own = newest_own[2:]
        if newest_other:
            order.append(newest_other.pop(0))
    order.extend(("lead", i) for i in range(3, len(leader_rows)))

    section_of = {id(e): "own" for e in own_entries} | {id(e): "other" for e in other_entries}
    skipped: set[str] = set()
    across_shown: set[int] = set()
    for item in order:
        if isinstance(item, tuple) and item[0] == "across":
            row = across_rows[item[1]]
            if used + estimate_tokens(row) + 1 <= budget:
                used += estimate_tokens(row) + 1
                across_shown.add(item[1])
            continue
        if isinstance(item, tuple):
            row = leader_rows[item[1]]
            if used + estimate_tokens(row) + 1 <= budget and lead_shown == item[1]:
                used += estimate_tokens(row) + 1
                lead_shown += 1
            continue
        entry = item  # type: ignore[assignment]
        if id(entry) in chosen:
            continue
        where = section_of[id(entry)]
        if where in skipped:
            continue  # keep each section contiguous in time: once one is left out, older ones are too
        for compact in (False, True):
            text = entry.render(compact=compact)  # type: ignore[attr-defined]
            if used + estimate_tokens(text) + 1 <= budget:
                chosen[id(entry)] = text
                used += estimate_tokens(text) + 1
                break
        else:
            skipped.add(where)

    out = header + ["", leader_title]
    out.extend(leader_rows[:lead_shown] or ["(none yet)"])
    if len(leader_rows) > lead_shown:
        out.append(f"({len(leader_rows) - lead_shown} more kept trials left out to fit the budget)")
    if across_rows:
        out.extend(["", across_title])
        out.extend(row for i, row in enumerate(across_rows) if i in across_shown)
        if len(across_shown) < len(across_rows):
            out.append(f"({len(across_rows) - len(across_shown)} older ideas left out to fit the budget)")

    def section(title: str, entries: list[_Entry], total: int) -> None:
        if not title:
            return
        out.extend(["", title])
        shown = [chosen[id(e)] for e in entries if id(e) in chosen]
        left_out = total - len(shown)
        if left_out > 0:
            out.append(f"({left_out} of {total} trials not shown to fit the budget, the oldest first)")
        if not shown:
            out.append("(none yet)" if total == 0 else "")
        for text in shown:
            out.append(text)
            out.append("")

    section(own_title, own_entries, len(own_all))
    section(other_title, other_entries, len(other_all))
    return "\n".join(out).rstrip() + "\n"
