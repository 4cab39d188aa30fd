"""Terminal output of `harness run`: one line per trial, a live bar on a terminal, a summary table."""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.fidelity import describe_spend
from harness.replay import trial_row
from harness.types import RunInfo, Status, Trial, TrialRecord
from trajectories.agent_text import escape_console as escape
from trajectories.agent_text import strip_controls

LABEL_STYLE = {Status.keep: "bold green", Status.discard: "yellow", Status.fail: "red"}


def short(text: str, width: int = 70) -> str:
    line = " ".join(strip_controls(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def fmt_score(score: float | None) -> str:
    return "-" if score is None else f"{score:.4f}"


class ConsoleReporter:
    """Implements the loop's Reporter protocol on a rich console."""

    def __init__(self, console: Console, total: int, metric: str) -> None:
        self.console = console
        self.metric = metric
        self.started: dict[str, float] = {}
        self.progress: Progress | None = None
        if console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]trials"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=console,
                transient=True,
            )
            self.task = self.progress.add_task("", total=total + 1)
            self.progress.start()

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    def trial_started(self, trial: Trial) -> None:
        self.started[trial.id] = time.monotonic()
        if self.progress is not None:
            self.progress.update(self.task, description=f"{trial.id} {escape(short(trial.proposal.hypothesis, 50))}")

    def trial_finished(self, record: TrialRecord, best: TrialRecord) -> None:
        outcome = record.outcome
        assert outcome is not None
        took = time.monotonic() - self.started.pop(record.trial.id, time.monotonic())
        style = LABEL_STYLE[outcome.status]
        best_score = best.outcome.score if best.outcome else None
        level = f"@{record.trial.fidelity} " if record.trial.fidelity != best.trial.fidelity else ""
        self.console.print(
            f"{record.trial.id}  {record.trial.proposal.agent:<9} {level}[{style}]{outcome.label.value:<19}[/] "
            f"{self.metric}={fmt_score(outcome.score):<7} best={fmt_score(best_score)} ({best.trial.id})  "
            f"{took:5.1f}s  {escape(short(record.trial.proposal.hypothesis, 60))}",
            highlight=False,
        )
        if outcome.status is Status.fail and outcome.explanation:
            self.console.print(f"       [dim]{escape(short(outcome.explanation, 110))}[/]", highlight=False)
        if self.progress is not None:
            self.progress.advance(self.task)

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{escape(text)}[/]", highlight=False)


def summary_table(records: list[TrialRecord], best_id: str | None, metric: str) -> Table:
    """The table `harness run` ends with."""
    return trial_table("Run summary", [trial_row(r) for r in records], best_id, metric)


def replay_table(report) -> Table:
    """The trial table of `harness replay` (from the verified report, not a second read)."""
    return trial_table(f"Run {report.run} ({report.recipe})", report.trials, report.best.id, "score")


def trial_table(title: str, rows, best_id: str | None, score_name: str) -> Table:
    """One line per trial (rows are `harness.replay.ReplayTrial`); the best is starred.
    A fidelity column appears when the trials ran at more than one level."""
    rows = list(rows)
    levels = len({row.fidelity for row in rows}) > 1
    table = Table(title=title)
    columns = ("trial", "parent", "agent", *(("fidelity",) if levels else ()), "label", score_name, "hypothesis")
    for column in columns:
        table.add_column(column, justify="right" if column == score_name else "left")
    for row in rows:
        style = LABEL_STYLE[Status(row.status)] if row.status else "dim"
        table.add_row(
            row.id + (" ★" if row.id == best_id else ""),
            row.parent or "-",
            row.agent,
            *((row.fidelity,) if levels else ()),
            f"[{style}]{row.label or '(not evaluated)'}[/]",
            fmt_score(row.score),
            escape(short(row.hypothesis, 60)),
        )
    return table


def fidelity_summary(info: RunInfo, records: list[TrialRecord]) -> str:
    """Compute spent per level against the run's budget (one line)."""
    policy = info.fidelity_policy
    return describe_spend(info.recipe, records, policy.budget if policy else None)


def label_counts(records: list[TrialRecord]) -> str:
    counts = Counter(r.outcome.label.value for r in records if r.outcome)
    return ", ".join(f"{label} {n}" for label, n in counts.most_common())


def _tokens(usage_in: int, read: int, write: int, usage_out: int) -> str:
    cached = [f"{read:,} cache read"] if read else []
    cached += [f"{write:,} cache write"] if write else []
    detail = f" ({', '.join(cached)})" if cached else ""
    return f"{usage_in:,} input{detail} + {usage_out:,} output tokens"


def usage_lines(records: list[TrialRecord]) -> list[str]:
    """The model usage of a run: totals, then one line per specialist (provider, model, proposals,
    tokens with cache reads/writes, cost) when more than one specialist or model proposed."""
    groups: dict[tuple[str, str, str], list[TrialRecord]] = {}
    for rec in records:
        p = rec.trial.proposal
        if p.model is not None or p.usage.input_tokens or p.usage.output_tokens:
            groups.setdefault((p.specialist or "-", p.agent, p.model or "?"), []).append(rec)
    if not groups:
        return []

    def line(recs: list[TrialRecord]) -> tuple[str, float]:
        usages = [r.trial.proposal.usage for r in recs]
        cost = sum(u.cost_usd for u in usages)
        text = _tokens(sum(u.input_tokens for u in usages), sum(u.cache_read_tokens for u in usages),
                       sum(u.cache_write_tokens for u in usages), sum(u.output_tokens for u in usages))
        return text, cost

    text, cost = line([r for recs in groups.values() for r in recs])
    lines = [f"model usage: {text}, ${cost:.4f}"]
    if len(groups) > 1:
        for (specialist, agent, model), recs in groups.items():
            text, cost = line(recs)
            lines.append(f"  {specialist}: {agent} {model}, {len(recs)} proposals, {text}, ${cost:.4f}")
    return lines
