"""`--team team.toml`: a team of specialists, each its own model behind its own API.

The file names each specialist once, under `[specialists.NAME]`::

    [specialists.arch]
    provider = "anthropic"              # anthropic | openai (any OpenAI-compatible server)
    model = "claude-sonnet-4-5"
    thinking_budget = 4096              # anthropic only
    focus.files = ["model.py", "config.py"]
    focus.brief = "Temporal encoders and heads."

    [specialists.opt]
    provider = "openai"
    model = "gemini-2.5-pro"
    base_url = "https://generativelanguage.googleapis.com/v1beta/openai/"
    api_key_env = "GEMINI_API_KEY"
    reasoning_effort = "high"           # openai only
    temperature = 0.7

    [specialists.data]
    provider = "command"                # an outside coding agent (docs/agents.md)
    command = "sh /path/to/agent.sh"
    timeout_s = 900
    env = ["ANTHROPIC_API_KEY"]
    focus.files = ["train.py"]

A NAME the recipe defines keeps the recipe's files and brief unless `focus`
replaces them; any other NAME needs `focus.files`. The specialists take turns
(round robin, in file order) on one lineage; every proposal records its own
agent (provider), model and cost, so the run summary shows what each cost.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.agents.base import AgentContext, AgentError, make_agent
from harness.types import Proposal, RecipeSpec


class Focus(BaseModel):
    """What a specialist works on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    files: list[str] = Field(default_factory=list)
    """Editable globs of this specialist (within the recipe's editable surface; empty: the recipe's)."""
    brief: str = ""
    """What the specialist is for, in words (empty: the recipe's brief of that name)."""


class _Member(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = None
    """Model id (default: the provider agent's)."""
    base_url: str | None = None
    """API server (default: the provider's own API)."""
    api_key_env: str | None = None
    """Environment variable holding the key (default: ANTHROPIC_API_KEY / OPENAI_API_KEY)."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Sampling temperature (default: the API's)."""
    max_turns: int | None = Field(default=None, ge=1)
    """Turns per session (default: --max-turns)."""
    focus: Focus = Field(default_factory=Focus)
    """Files and brief of this specialist."""


class AnthropicMember(_Member):
    provider: Literal["anthropic"]
    """The Messages API."""
    thinking_budget: int | None = Field(default=None, ge=1024)
    """Extended thinking tokens per turn (off when unset)."""


class OpenAIMember(_Member):
    provider: Literal["openai"]
    """Chat Completions (OpenAI or any compatible server)."""
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    """Reasoning effort of reasoning models (the API's default when unset)."""


class CommandMember(BaseModel):
    """An outside coding agent's command line (`--agent command`, docs/agents.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["command"]
    """The command agent."""
    command: str = Field(min_length=1)
    """The command line, run with `/bin/sh -c` in the proposal's scratch work tree (as `--agent-cmd`)."""
    timeout_s: float | None = Field(default=None, gt=0)
    """Seconds one proposal's command may run (default: --agent-timeout, else 1800)."""
    env: list[str] = Field(default_factory=list)
    """Environment variables passed to the command (as `--agent-env`); nothing else is."""
    focus: Focus = Field(default_factory=Focus)
    """Files and brief of this specialist."""


Member = Annotated[Union[AnthropicMember, OpenAIMember, CommandMember], Field(discriminator="provider")]

COMMAND_OPTIONS = ("run_dir", "evaluator_dir", "agent_timeout", "agent_env")
"""Run-wide options only a command member takes (the folders its jail hides, the --agent-* defaults)."""


class TeamFile(BaseModel):
    """A team file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specialists: dict[str, Member] = Field(min_length=1)
    """Specialist name -> its model and focus, in the order they take turns."""


def _where(loc: tuple[Any, ...]) -> str:
    # Drop the discriminator's own level ("anthropic"/"openai") from the path.
    parts = [str(p) for i, p in enumerate(loc) if not (i == 2 and p in ("anthropic", "openai", "command"))]
    return ".".join(parts) or "(file)"


def load_team(path: str | Path) -> TeamFile:
    """The validated team file; `AgentError` naming the file and every bad field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentError(f"{path}: cannot read the team file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AgentError(f"{path}: not valid TOML: {exc}") from None
    try:
        return TeamFile.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise AgentError(f"{path}: " + "; ".join(problems)) from None


def check_team(team: TeamFile, spec: RecipeSpec, where: str) -> None:
    """Refuse specialists the recipe cannot serve (before a run is created)."""
    problems = []
    for name, member in team.specialists.items():
        if name not in spec.specialists and not member.focus.files:
            problems.append(f"specialists.{name}: recipe {spec.name!r} has no specialist {name!r}, so give "
                            "focus.files")
        for glob in member.focus.files:
            if not any(c in glob for c in "*?[") and not spec.is_editable(glob):
                problems.append(f"specialists.{name}.focus.files: {glob} is not on the recipe's editable surface "
                                f"({', '.join(spec.editable)})")
    if problems:
        raise AgentError(f"{where}: " + "; ".join(problems))


class TeamAgent:
    """Hands each proposal to the agent of its specialist (`ctx.specialist`)."""

    name = "team"

    def __init__(self, team_file: str | Path, **options: Any) -> None:
        self.team = load_team(team_file)
        self.path = Path(team_file)
        self.members: dict[str, Any] = {}
        for name, member in self.team.specialists.items():
            focus = {"focus_files": tuple(member.focus.files), "focus_brief": member.focus.brief}
            if isinstance(member, CommandMember):
                defaults = {key: value for key, value in options.items() if key in COMMAND_OPTIONS}
                settings = {"agent_cmd": member.command, **focus, **({"agent_timeout": member.timeout_s}
                            if member.timeout_s is not None else {})}
                if member.env:
                    settings["agent_env"] = tuple(member.env)
            else:
                settings = {**member.model_dump(exclude={"provider", "focus"}, exclude_none=True), **focus}
                # Run-wide defaults of the other protocol (and of command members) do not apply to this member.
                other = "reasoning_effort" if member.provider == "anthropic" else "thinking_budget"
                defaults = {key: value for key, value in options.items() if key != other and key not in COMMAND_OPTIONS}
            try:
                self.members[name] = make_agent(member.provider, **{**defaults, **settings})
            except AgentError as exc:
                raise AgentError(f"{self.path}: specialists.{name}: {exc}") from None

    @property
    def specialists(self) -> tuple[str, ...]:
        return tuple(self.members)

    @property
    def priced(self) -> bool:
        return all(getattr(member, "priced", True) for member in self.members.values())  # a command has no price

    @property
    def model(self) -> str:
        return ", ".join(f"{name}={getattr(member, 'model', member.name)}" for name, member in self.members.items())

    def check(self, spec: RecipeSpec) -> None:
        check_team(self.team, spec, str(self.path))

    def propose(self, ctx: AgentContext) -> Proposal:
        member = self.members.get(ctx.specialist or "")
        if member is None:
            raise AgentError(f"{self.path} has no specialist {ctx.specialist!r} (it has: {', '.join(self.members)})")
        return member.propose(ctx)
