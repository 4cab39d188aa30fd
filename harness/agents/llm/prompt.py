"""What an LLM agent is told: the recipe's brief and rules, the parent's files, the lineage view.

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

DEFAULT_FILE_CHARS = 150_000
"""Characters of file text a prompt shows at most (editable files first)."""


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

    @property
    def specialist_spec(self) -> Specialist | None:
        return self.spec.specialists.get(self.specialist) if self.specialist else None

    @property
    def globs(self) -> list[str]:
        sp = self.specialist_spec
        return list(sp.files) if sp is not None and sp.files else list(self.spec.editable)

    def check(self, path: str) -> str | None:
        """None when `path` may be edited, else why not (in words for the model)."""
        if not self.spec.is_editable(path):
            return (f"{path} is not on the editable surface ({', '.join(self.spec.editable)}): protected files, "
                    "the evaluator and the data are out of reach")
        sp = self.specialist_spec
        if sp is not None and sp.files and not matches_any(path, sp.files):
            return (f"{path} is outside your specialty {self.specialist!r}, which may edit only "
                    f"{', '.join(sp.files)}")
        return None


def resolve_specialist(ctx: AgentContext) -> str | None:
    """`ctx.specialist`, checked against the recipe; None when none is asked for."""
    name = ctx.specialist
    if name is None:
        return None
    if name not in ctx.spec.specialists:
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
                  level: str | None = None) -> str:
    """The standing brief: the recipe, how it is scored, what is allowed, how to answer."""
    parts = [INTRO, "", *rules_sections(spec, surface, fidelity_policy, level)]
    parts += [
        "",
        "## How to answer",
        f"- Call the tool `{TOOL_NAME}` exactly once with: hypothesis, expected_delta, optionally parent, and "
        "the change as `edits` (search/replace blocks) or as `diff` (a unified diff).",
        "- Each search text must be copied verbatim from the file as shown (indentation included) and occur "
        "exactly once; add neighbouring lines when a line repeats. Edits apply in order, each to the result "
        "of the previous ones.",
        "- One idea per trial, so its effect can be measured. Read the lineage first: do not repeat what was "
        "tried, fix what crashed using the log tails, and stay well inside the budgets.",
        f"- If your answer does not parse or apply you get the exact error back and may correct it "
        f"({max_repairs} time{'s' if max_repairs != 1 else ''}); after that the trial is recorded as failed.",
    ]
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
        f"- You may edit only: {', '.join(surface.globs)}" + (
            f" (your specialty's share of the editable surface {', '.join(spec.editable)})."
            if surface.globs != list(spec.editable) else "."),
        "- Everything else is protected" + (f", in particular {', '.join(spec.protected)}" if spec.protected else "")
        + ". Protected files are restored from the baseline before every run, so editing them is pointless "
        "and is labelled illegal_edit.",
        "- The evaluator's code and the held-out data are out of your reach: they never enter the training "
        "sandbox. The sandbox has no network. Changing protected files at run time, reading what you were not "
        "given or forging metrics is labelled tamper.",
        "- No symlinks, renames, deletions, mode changes, binary files, or paths with '..' or '.git'.",
        "",
        "## Failure labels you will see in the lineage",
    ]
    parts += [f"- {label.value}: {text}" for label, text in LABEL_GLOSSARY.items()]
    return parts


def specialty_sections(spec: RecipeSpec, surface: Surface) -> list[str]:
    """Lines of the brief on the specialist's share (when it has one) and the recipe's knobs."""
    parts: list[str] = []
    sp = surface.specialist_spec
    if sp is not None:
        parts += [
            "",
            f"## Your specialty: {surface.specialist}",
            " ".join(sp.brief.split()),
            f"You may edit only {', '.join(surface.globs)}. Other specialists work on the rest of the recipe "
            "in the same lineage; their trials are listed separately.",
        ]
        if sp.knobs:
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
        parts += ["", f"(not shown, over the prompt's file budget: {', '.join(hidden)})"]
    if not files:
        parts += ["", "(no editable file could be read)"]
    return "\n".join(parts)


@dataclass(frozen=True)
class Prompt:
    """One request's text."""

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
                 view_options: ViewOptions | None = None, file_chars: int = DEFAULT_FILE_CHARS) -> Prompt:
    """The system and user text of the first request of one proposal."""
    specialist = resolve_specialist(ctx)
    surface = Surface(ctx.spec, specialist)
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
        "",
        "# Task",
        f"Propose trial {tid}{who}. Build on the current best {parent} ({ctx.spec.metric.name}="
        f"{'-' if score is None else f'{score:.4f}'}), whose files are shown above, unless the lineage gives you a "
        f"reason to name another parent. Think about what the lineage shows, then call {TOOL_NAME}.",
    ]) + "\n"
    system = system_prompt(ctx.spec, surface, max_repairs, fidelity_policy=ctx.fidelity_policy, level=ctx.level())
    return Prompt(system=system, user=user, parent=parent, trial=tid, surface=surface, files=files)


def repair_message(error: str, attempt: int, max_repairs: int) -> str:
    """What the model reads when its answer was rejected (attempt counts from 1)."""
    last = " This is your last chance." if attempt >= max_repairs else ""
    return (f"Your {TOOL_NAME} call was rejected: {error}\n"
            f"Call {TOOL_NAME} again with a corrected answer (correction {attempt} of {max_repairs}).{last} "
            "Copy search text exactly from the files shown.")
