"""The Markdown brief an outside agent's command reads (`$HARNESS_BRIEF`).

It carries what an LLM agent's prompt carries (the recipe, how trials are
scored, the budgets, the editable surface, the failure labels, the specialty,
the lineage view) plus the recipe's knowledge files, and in place of the tool
instructions it says how a command answers: edit the work tree, write the
hypothesis file, exit 0. Nothing here reads evaluator code or data: the
sections come from the recipe spec and the trial records only.
"""

from __future__ import annotations

from harness.agents.base import AgentContext
from harness.agents.llm.knowledge import knowledge_section, notebook_section
from harness.agents.llm.prompt import INTRO, Surface, resolve_specialist, rules_sections, specialty_sections
from harness.agents.llm.view import render_view
from harness.types import trial_id

VIEW_TOKENS = 20_000
"""Token budget of the lineage view in a command's brief (a coding agent reads files itself)."""


def proposal_surface(ctx: AgentContext, focus_files: tuple[str, ...] = (), focus_brief: str = "") -> Surface:
    """What this proposal may edit: the recipe's surface, the specialist's files, a team file's focus."""
    focused = bool(focus_files or focus_brief)
    return Surface(ctx.spec, resolve_specialist(ctx, focused=focused), focus_files, focus_brief)


def render_brief(ctx: AgentContext, surface: Surface, *, timeout_s: float) -> str:
    """The brief of one proposal: trial `ctx.trial_number`, built on `ctx.best`."""
    specialist = surface.specialist
    tid = trial_id(ctx.trial_number)
    parent = ctx.best
    rec = ctx.record(parent)
    score = rec.outcome.score if rec is not None and rec.outcome is not None else None
    who = f" for the specialty {specialist!r}" if specialist else ""
    parts = [
        f"# Brief for trial {tid}{who}",
        "",
        INTRO,
        "",
        "## Your task",
        f"- Propose trial {tid}: one hypothesis and the code change that tests it, built on the current best "
        f"{parent} ({ctx.spec.metric.name}={'-' if score is None else f'{score:.6g}'}).",
        f"- The working directory is a git repository whose HEAD holds {parent}'s recipe files. Change the "
        "files in place (new files count too). Your proposal is `git diff HEAD` of this folder, taken by the "
        "harness when your command exits; commits, branches and stashes you make are ignored.",
        "- Write the hypothesis (what you change and why you expect the metric to move; plain text or "
        "Markdown) to the file named by `$HARNESS_HYPOTHESIS`. Without it, the trial is recorded as "
        "malformed_proposal, as it is when nothing changed, when the command exits non-zero or when it "
        f"runs past {timeout_s:g} s (--agent-timeout).",
        "- Your command runs jailed: it sees this work tree, this brief and the hypothesis folder; the run "
        "folder, the evaluator's code, the held-out data and other runs are hidden, the rest of the machine "
        "is read-only, and only the environment variables the user passed with --agent-env are set. It may "
        "reach the network (your model's API); the trial itself will run without one.",
        "- Everything your command prints (stdout and stderr) is stored with the proposal as its transcript.",
        "",
        *rules_sections(ctx.spec, surface, ctx.fidelity_policy, ctx.level()),
        *specialty_sections(ctx.spec, surface),
    ]
    parts += knowledge_section(ctx.knowledge)
    parts += notebook_section(ctx)
    parts += ["", render_view(ctx, VIEW_TOKENS).rstrip()]
    return "\n".join(parts).rstrip() + "\n"
