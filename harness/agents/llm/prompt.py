"""What an LLM session opens with: the recipe's brief, rules and knowledge, the parent's files, the lineage view.

Only three things reach the model: the recipe spec (description, metric,
gates, budgets, editable globs, the specialist's brief), the texts of editable
files read through `ctx.read_file` (which refuses anything else), and the
lineage view rendered from the trial records. Evaluator code, held-out data and
the environment (API keys) are never read here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from harness.agents.base import AgentContext, AgentError
from harness.agents.llm.knowledge import knowledge_section, notebook_section
from harness.agents.llm.view import ViewOptions, render_view
from harness.types import Label, RecipeSpec, Specialist, matches_any, trial_id

TOOL_NAME = "submit_trial"

TOOL_DESCRIPTION = (
    "Submit the next trial: one hypothesis and the code edit that tests it. The edit is either a list of "
    "search/replace blocks (preferred) or a unified diff. Call this tool exactly once per answer."
)

TOOL_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "hypothesis": {
            "type": "string",
            "description": "What you change and why you expect it to move the metric (one idea per trial).",
        },
        "expected_delta": {
            "type": "number",
            "description": "The score change you expect against the parent, signed, in the metric's units.",
        },
        "parent": {
            "type": "string",
            "description": "Trial id to build on, e.g. t0003. Leave out to build on the current best, "
                           "whose files are shown; edits are applied to the parent's files.",
        },
        "edits": {
            "type": "array",
            "description": "Search/replace blocks applied in order. 'search' is copied verbatim from the file "
                           "(including indentation) and must occur exactly once; an empty 'search' on a file "
                           "that does not exist creates it.",
            "items": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "description": "Path relative to the recipe root, e.g. model.py."},
                    "search": {"type": "string", "description": "Exact text to find (exactly one occurrence)."},
                    "replace": {"type": "string", "description": "Text to put in its place."},
                },
                "required": ["file", "search", "replace"],
            },
        },
        "diff": {
            "type": "string",
            "description": "Alternative to 'edits': a unified diff with `--- a/FILE`, `+++ b/FILE` and `@@` hunks.",
        },
        "fidelity": {
            "type": "string",
            "description": "Optional: the recipe's fidelity level to run this trial at (default: the run's). "
                           "Ignored when the run promotes by successive halving.",
        },
    },
    "required": ["hypothesis", "expected_delta"],
}

LABEL_GLOSSARY: dict[Label, str] = {
    Label.keep: "beat its parent and the best by more than the noise margin; becomes the new best",
    Label.not_improved: "ran fine but did not beat the parent and the best by the margin",
    Label.apply_failed: "the edit did not apply to the parent's files",
    Label.malformed_proposal: "the answer could not be parsed or changed nothing",
    Label.illegal_edit: "touched a file outside the editable surface, or a path/mode trick, or too many lines",
    Label.preflight_crash: "a syntax or import error found before the real run",
    Label.crash: "the train or eval phase exited with an error",
    Label.budget_overrun: "training ran past the train wallclock budget and was killed",
    Label.eval_budget_overrun: "the eval phase ran past its wallclock budget",
    Label.oom: "ran out of memory",
    Label.size_failure: "the train phase left more bytes than the artifact cap",
    Label.gate_miss: "a required gate (e.g. a minimum accuracy) was not met",
    Label.metric_missing: "the evaluator could not compute the score from the trial's outputs",
    Label.tamper: "a protected file was changed at run time or metrics were forged",
    Label.harness_error: "infrastructure failure, not the proposal's fault",
}

DEFAULT_FILE_CHARS = 24_000
"""Characters of file text the opening message shows at most (editable files first); the
session reads the rest with `read_file`."""


# --------------------------------------------------------------------------
# The surface an agent may edit
# --------------------------------------------------------------------------


def _is_literal(glob: str) -> bool:
    return not any(c in glob for c in "*?[")


@dataclass(frozen=True)
class Surface:
    """The files one proposal may edit: the recipe's editable surface, narrowed to a specialist's files."""

    spec: RecipeSpec
    specialist: str | None = None
    focus_files: tuple[str, ...] = ()
    """Editable globs a team file gives this specialist (in place of the recipe's)."""
    focus_brief: str = ""
    """The specialist's brief from a team file (in place of the recipe's)."""

    @property
    def specialist_spec(self) -> Specialist | None:
        return self.spec.specialists.get(self.specialist) if self.specialist else None

    @property
    def narrowed(self) -> tuple[str, ...]:
        """The specialist's own globs (empty: the whole editable surface)."""
        if self.focus_files:
            return self.focus_files
        sp = self.specialist_spec
        return tuple(sp.files) if sp is not None else ()

    @property
    def globs(self) -> list[str]:
        return list(self.narrowed) or list(self.spec.editable)

    @property
    def brief(self) -> str:
        sp = self.specialist_spec
        return " ".join((self.focus_brief or (sp.brief if sp is not None else "")).split())

    def check(self, path: str) -> str | None:
        """None when `path` may be edited, else why not (in words for the model)."""
        if not self.spec.is_editable(path):
            return (f"{path} is not on the editable surface ({', '.join(self.spec.editable)}): protected files, "
                    "the evaluator and the data are out of reach")
        if self.narrowed and not matches_any(path, list(self.narrowed)):
            return (f"{path} is outside your specialty {self.specialist!r}, which may edit only "
                    f"{', '.join(self.narrowed)}")
        return None


def resolve_specialist(ctx: AgentContext, focused: bool = False) -> str | None:
    """`ctx.specialist`, checked against the recipe (unless a team file gives it a focus);
    None when none is asked for."""
    name = ctx.specialist
    if name is None:
        return None
    if name not in ctx.spec.specialists and not focused:
        known = ", ".join(sorted(ctx.spec.specialists)) or "none"
        raise AgentError(f"recipe {ctx.spec.name!r} has no specialist {name!r} (it has: {known})")
    return name


def candidate_files(ctx: AgentContext, tid: str) -> list[str]:
    """Editable paths of trial `tid`.

    Uses `ctx.list_files(tid)` when the context offers it; otherwise the
    literal names among the editable globs, the specialists' files and the
    knobs' files (globs cannot be expanded without a listing).
    """
    spec = ctx.spec
    lister = getattr(ctx, "list_files", None)
    if callable(lister):
        names = list(lister(tid))
    else:
        names = [g for g in spec.editable if _is_literal(g)]
        names += [g for sp in spec.specialists.values() for g in sp.files if _is_literal(g)]
        names += [k.file for k in spec.knobs]
    seen: dict[str, None] = {}
    for name in names:
        if spec.is_editable(name):
            seen.setdefault(name)
    return sorted(seen)


def read_files(ctx: AgentContext, tid: str) -> dict[str, str]:
    """Texts of the editable files of `tid` that can be read (path -> text)."""
    out: dict[str, str] = {}
    for path in candidate_files(ctx, tid):
        try:
            out[path] = ctx.read_file(tid, path)
        except Exception:  # noqa: BLE001 - a file the trial lacks is simply not shown
            continue
    return out


# --------------------------------------------------------------------------
# Prompt text
# --------------------------------------------------------------------------


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=0)
    return "`" * max(3, longest + 1)


def _language(path: str) -> str:
    return {"py": "python", "toml": "toml", "json": "json", "yaml": "yaml", "yml": "yaml", "sh": "bash",
            "md": "markdown", "cfg": "ini", "txt": ""}.get(path.rsplit(".", 1)[-1], "")


def fidelity_section(spec: RecipeSpec, policy: str, level: str) -> list[str]:
    """How trials are spread over the recipe's fidelity levels (empty with one level)."""
    if len(spec.fidelities) < 2:
        return []
    order = spec.fidelity_order()
    parts = ["", "## Fidelity levels (cheapest first; cost relative to full = 1)"]
    for name in order:
        level_spec = spec.fidelities[name]
        env = ", ".join(f"{k}={v}" for k, v in sorted(level_spec.env.items())) or "no overrides"
        parts.append(f"- {name}: cost {level_spec.cost:g}, {len(level_spec.seeds)} seed(s), {env}")
    parts.append("- Scores are compared only within a level: a trial is kept against the best and its nearest "
                 "ancestor at its own level.")
    if policy == "halving":
        parts.append(f"- This run uses successive halving: your new idea runs at the lowest level ({order[0]}); "
                     "the harness promotes the best of each group of ideas to the next level, up to the "
                     "baseline's level. You cannot choose the level; the lineage shows how each idea did at "
                     "each level.")
    else:
        parts.append(f"- Your trial runs at {level} unless you set `fidelity` to another level; the run's "
                     "compute budget, if it has one, is enforced.")
    return parts


INTRO = (
    "You are an ML research agent working inside an automated research harness. You improve a training "
    "recipe one trial at a time: each trial is one hypothesis plus a code edit to the recipe's editable "
    "files. The harness runs every trial in a fresh sandbox, an evaluator you can neither see nor edit "
    "scores it, and every proposal, diff, score and failure is recorded in a git lineage. Nobody repairs "
    "or overrides anything: what the evaluator measures is what counts."
)
"""The first paragraph of every agent's brief."""


def system_prompt(spec: RecipeSpec, surface: Surface, max_repairs: int, *, fidelity_policy: str = "fixed",
                  level: str | None = None, knowledge: dict[str, str] | None = None, max_turns: int = 40) -> str:
    """The standing brief: the recipe, how it is scored, what is allowed, its knowledge, how to work.

    The same bytes for every proposal of a run up to the specialty section at
    the end, so providers can serve that prefix from their prompt cache."""
    parts = [INTRO, "", *rules_sections(spec, surface, fidelity_policy, level)]
    parts += knowledge_section(knowledge or {})
    parts += session_sections(max_repairs, max_turns)
    parts += specialty_sections(spec, surface)
    return "\n".join(parts).strip() + "\n"


def rules_sections(spec: RecipeSpec, surface: Surface, fidelity_policy: str = "fixed",
                   level: str | None = None) -> list[str]:
    """Lines of the brief every agent gets: the recipe, how trials are scored, the budgets, what
    may be edited, the failure labels (Markdown, `##` sections)."""
    m = spec.metric
    b = spec.budgets
    parts = [
        f"## Recipe: {spec.name}",
        " ".join(spec.description.split()),
        "",
        "## How trials are scored",
        f"- Score: `{m.name}`, to {m.direction.value} ({'higher' if m.direction.value == 'maximize' else 'lower'} is better).",
        f"- Keep rule: a trial is kept only when its score beats both its parent's and the current best's by more "
        f"than the noise margin {m.noise_margin:g} (a one-sided test when several seeds run). Smaller effects "
        "count as not_improved, so aim for changes that can clear the margin.",
    ]
    for gate in spec.gates:
        parts.append(f"- Gate: mean `{gate.metric}` {gate.op} {gate.threshold:g} over at least {gate.min_seeds} "
                     "seed(s), or the trial fails with gate_miss.")
    parts += [
        "- The score is computed by the evaluator from the trial's outputs on held-out data; numbers your code "
        "prints are never read as the score.",
        "",
        "## Budgets (enforced; going over fails the trial)",
        f"- Train phase: {b.train_wallclock_s:g} s wallclock per seed, measured by the host (budget_overrun).",
        f"- Eval phase: {b.eval_wallclock_s:g} s wallclock per seed (eval_budget_overrun).",
        f"- Train outputs (artifacts): at most {b.artifact_bytes:,} bytes (size_failure).",
        f"- Memory: {b.memory_mb} MB per phase (oom); CPUs: {b.cpus:g}; GPUs: {b.gpus}.",
        f"- Diff size: at most {b.max_diff_lines} changed lines (added + removed).",
        *fidelity_section(spec, fidelity_policy, level or spec.default_fidelity),
        "",
        "## What you may and may not do",
        f"- The recipe's editable surface: {', '.join(spec.editable)}. Your specialty, if you have one, narrows it "
        "(see the end of this brief).",
        "- Everything else is protected" + (f", in particular {', '.join(spec.protected)}" if spec.protected else "")
        + ". Protected files are restored from the baseline before every run, so editing them is pointless "
        "and is labelled illegal_edit. You may read them.",
        "- The evaluator's code and the held-out data are out of your reach: they never enter the training "
        "sandbox. The sandbox has no network. Changing protected files at run time, reading what you were not "
        "given or forging metrics is labelled tamper.",
        "- No symlinks, renames, deletions, mode changes, binary files, or paths with '..' or '.git'.",
        "",
        "## Failure labels you will see in the lineage",
    ]
    parts += [f"- {label.value}: {text}" for label, text in LABEL_GLOSSARY.items()]
    return parts


def session_sections(max_repairs: int, max_turns: int) -> list[str]:
    """How a tool-using session works (the LLM agents' brief)."""
    return [
        "",
        "## How to work: a session with tools",
        "- Tools: list_files, read_file (paged), grep (the parent trial's code), show_trial (an earlier trial in "
        "full: diff, metrics, log tail), check_edit (dry-run an edit: applies it and runs the legality and syntax "
        f"checks, costs no trial), note (a lesson for the run notebook that later sessions read) and {TOOL_NAME}.",
        f"- Read the code you change before you change it. The session ends when you call {TOOL_NAME}, or after "
        f"{max_turns} turns without one (then the trial is recorded as failed).",
        f"- {TOOL_NAME} takes: hypothesis, expected_delta, optionally parent, and the change as `edits` "
        "(search/replace blocks) or as `diff` (a unified diff).",
        "- Each search text must be copied verbatim from the file (indentation included) and occur exactly once; "
        "add neighbouring lines when a line repeats. Edits apply in order, each to the result of the previous ones.",
        "- One idea per trial, so its effect can be measured. Read the lineage first: do not repeat what was "
        "tried, fix what crashed using the log tails, and stay well inside the budgets.",
        f"- A {TOOL_NAME} that does not parse, apply or compile comes back with the exact error; after "
        f"{max_repairs + 1} rejected submissions the session ends and the trial is recorded as failed.",
    ]


def specialty_sections(spec: RecipeSpec, surface: Surface) -> list[str]:
    """Lines of the brief on the specialist's share (when it has one) and the recipe's knobs."""
    parts: list[str] = []
    if surface.specialist is not None:
        parts += [
            "",
            f"## Your specialty: {surface.specialist}",
            surface.brief,
            f"You may edit only {', '.join(surface.globs)}. Other specialists work on the rest of the recipe "
            "in the same lineage; their trials are listed separately.",
        ]
    else:
        parts += ["", "## Your files", f"You may edit {', '.join(surface.globs)}."]
    sp = surface.specialist_spec
    if sp is not None and sp.knobs:
        parts.append(f"Knobs of your specialty: {', '.join(sp.knobs)}.")
    if spec.knobs:
        parts += ["", "## Known edit points (knobs) and values worth trying"]
        own = set(sp.knobs) if sp is not None and sp.knobs else None
        for knob in spec.knobs:
            if own is None or knob.name in own:
                parts.append(f"- {knob.name} in {knob.file}: {', '.join(repr(c) for c in knob.choices)}")
        parts.append("You are not limited to these: any edit of your files is allowed.")
    return parts


def files_section(files: dict[str, str], surface: Surface, parent: str, file_chars: int) -> str:
    editable = [p for p in files if surface.check(p) is None]
    context = [p for p in files if surface.check(p) is not None]
    parts = [f"# Files of the parent trial {parent}"]
    used = 0
    hidden: list[str] = []
    for path in editable + context:
        text = files[path]
        if used + len(text) > file_chars:
            hidden.append(path)
            continue
        used += len(text)
        role = "editable" if path in editable else "read-only for you: another specialty edits it"
        fence = _fence(text)
        parts += ["", f"## {path} ({role})", f"{fence}{_language(path)}", text.rstrip("\n"), fence]
    if hidden:
        parts += ["", f"(not shown here, over the opening message's file budget: {', '.join(hidden)}; "
                  "read them with read_file)"]
    if not files:
        parts += ["", "(no editable file could be read)"]
    return "\n".join(parts)


@dataclass(frozen=True)
class Prompt:
    """The opening of one session."""

    system: str
    user: str
    parent: str
    trial: str
    surface: Surface
    files: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256((self.system + "\x00" + self.user).encode()).hexdigest()


def build_prompt(ctx: AgentContext, *, max_repairs: int = 2, token_budget: int = 6000,
                 view_options: ViewOptions | None = None, file_chars: int = DEFAULT_FILE_CHARS,
                 max_turns: int = 40, surface: Surface | None = None) -> Prompt:
    """The system text and the opening user message of one proposal's session."""
    if surface is None:
        surface = Surface(ctx.spec, resolve_specialist(ctx))
    specialist = surface.specialist
    parent = ctx.best
    files = read_files(ctx, parent)
    view = render_view(ctx, token_budget, options=view_options, own_files=set(files))
    tid = trial_id(ctx.trial_number)
    rec = ctx.record(parent)
    score = rec.outcome.score if rec is not None and rec.outcome is not None else None
    who = f" for your specialty {specialist!r}" if specialist else ""
    user = "\n".join([
        files_section(files, surface, parent, file_chars),
        "",
        view.rstrip(),
        *notebook_section(ctx),
        "",
        "# Task",
        f"Propose trial {tid}{who}. Build on the current best {parent} ({ctx.spec.metric.name}="
        f"{'-' if score is None else f'{score:.4f}'}) unless the lineage gives you a reason to name another "
        f"parent. Look at the code and the lineage with the tools as much as you need, check your edit, then "
        f"call {TOOL_NAME}.",
    ]) + "\n"
    system = system_prompt(ctx.spec, surface, max_repairs, fidelity_policy=ctx.fidelity_policy, level=ctx.level(),
                           knowledge=ctx.knowledge, max_turns=max_turns)
    return Prompt(system=system, user=user, parent=parent, trial=tid, surface=surface, files=files)
