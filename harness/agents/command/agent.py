"""`--agent command`: an outside coding agent (any command line) writes each proposal.

For each proposal the agent makes a scratch folder outside the run:
`work/` (a git checkout of the parent trial's files, see `worktree`),
`briefing/brief.md` (the brief, `$HARNESS_BRIEF`, with the recipe's knowledge
files beside it) and `answer/` (where `$HARNESS_HYPOTHESIS` points). It runs
the command with `/bin/sh -c CMD` in `work/`, in the local sandbox: the mount
jail hides the run folder, the evaluator's source, the shipped recipes, every
other registered run, the credential folders of the user's home
(`HOME_SECRETS`) and the scratch folder's own bookkeeping; the rest of
the host is read-only; the environment holds only the names given with
`--agent-env` (and PATH, HOME, TMPDIR of the phase); unlike a trial phase it
keeps the host's network. Its stdout and stderr, capped, become the
proposal's transcript (with the values of the passed variables blanked out).

The answer is judged by the harness, never taken on trust: the diff is taken
with the harness's own git folder, the hypothesis file is read without
following links, and the loop's legality checks decide the rest. A command
that times out, exits non-zero, writes no hypothesis or changes nothing gives
a `malformed_proposal` whose explanation says which.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from harness.agents.base import AgentContext, AgentError
from harness.agents.command.brief import proposal_surface, render_brief
from harness.agents.command.worktree import WorkTree
from harness.run_registry import hidden_paths
from harness.types import Proposal, Transcript, trial_id
from sandboxes.base import Limits, Mount, PhaseRequest
from sandboxes.errors import SandboxError
from sandboxes.local import LocalSandbox, force_remove
from sandboxes.local_jail import covers, interpreter_paths

DEFAULT_TIMEOUT_S = 1800.0
"""`--agent-timeout` default: wallclock seconds one proposal's command may take."""
MEMORY_MB = 16384
"""RLIMIT_DATA of the command (coding agents run Node or Python runtimes with large heaps)."""
PIDS = 1024
"""Processes and threads the command may create (where a pids cgroup is available)."""
TRANSCRIPT_BYTES = 20_000_000
"""Output kept as the transcript at most (beyond it, the tail)."""
HYPOTHESIS_BYTES = 20_000
"""Bytes of the hypothesis file read at most."""
SCRUB_MIN_CHARS = 6
"""Values of passed variables at least this long are blanked out of the transcript and hypothesis."""
SCRATCH_PREFIX = "harness-agent-"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_ENV = ("HARNESS_BRIEF", "HARNESS_HYPOTHESIS", "HARNESS_TRIAL", "HARNESS_PARENT")
"""Variables the harness sets for the command; `--agent-env` may not name them."""
HOME_SECRETS = (
    ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".config", ".netrc", ".git-credentials",
    ".pypirc", ".npmrc", ".anthropic", ".codex", ".claude", ".claude.json", ".aider.conf.yml", ".env",
)
"""Entries of the harness user's home that hold credentials and are hidden from the command (it
gets an empty HOME of its own, so its tools never need them; the rest of the home stays
readable, where `pipx` or `npm` may have installed the agent's CLI)."""


class CommandAgent:
    """Runs `agent_cmd` once per proposal in a jailed scratch work tree (module docstring)."""

    name = "command"

    def __init__(
        self,
        agent_cmd: str | None = None,
        agent_timeout: float | None = None,
        agent_env: tuple[str, ...] | list[str] = (),
        run_dir: Path | None = None,
        evaluator_dir: Path | None = None,
        focus_files: tuple[str, ...] | list[str] = (),
        focus_brief: str = "",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not agent_cmd or not agent_cmd.strip():
            raise AgentError("--agent command needs --agent-cmd 'CMD' (the command line that writes a proposal)")
        timeout = DEFAULT_TIMEOUT_S if agent_timeout is None else float(agent_timeout)
        if not timeout > 0:
            raise AgentError(f"--agent-timeout must be > 0 seconds, got {agent_timeout}")
        if run_dir is None or evaluator_dir is None:
            raise AgentError("the command agent needs the run folder and the evaluator folder to hide them")
        source = os.environ if environ is None else environ
        for name in agent_env:
            if not ENV_NAME.match(name):
                raise AgentError(f"--agent-env {name!r} is not an environment variable name")
            if name in RESERVED_ENV:
                raise AgentError(f"--agent-env {name}: the harness sets this variable itself")
            if name not in source:
                raise AgentError(f"--agent-env {name}: not set in the harness's environment")
        self.command = agent_cmd
        self.timeout_s = timeout
        self.env_names = tuple(dict.fromkeys(agent_env))
        self.environ = source
        self.run_dir = Path(run_dir)
        self.evaluator_dir = Path(evaluator_dir)
        self.focus_files = tuple(focus_files)
        """Editable globs a team file gives this specialist (in place of the recipe's)."""
        self.focus_brief = focus_brief
        """The specialist's brief from a team file (in place of the recipe's)."""
        self.sandbox = LocalSandbox()

    def propose(self, ctx: AgentContext) -> Proposal:
        if ctx.export_files is None:
            raise AgentError("the command agent needs a context that can export a trial's files")
        scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
        try:
            return self._propose_in(ctx, scratch)
        finally:
            force_remove(scratch)

    def _propose_in(self, ctx: AgentContext, scratch: Path) -> Proposal:
        surface = proposal_surface(ctx, self.focus_files, self.focus_brief)
        tree = WorkTree(scratch)
        tree.create(ctx.export_files, ctx.best)  # type: ignore[arg-type]  # checked by propose
        briefing, answer = scratch / "briefing", scratch / "answer"
        briefing.mkdir()
        answer.mkdir()
        (briefing / "brief.md").write_text(
            render_brief(ctx, surface, timeout_s=self.timeout_s), encoding="utf-8")
        if ctx.knowledge:
            (briefing / "knowledge").mkdir()
            for name, text in ctx.knowledge.items():
                (briefing / "knowledge" / Path(name).name).write_text(text, encoding="utf-8")
        hypothesis_file = answer / "hypothesis.md"
        passed = {name: self.environ[name] for name in self.env_names if name in self.environ}
        log = scratch / "agent.log"
        request = PhaseRequest(
            phase="agent",
            command=["/bin/sh", "-c", self.command],
            workdir="work",
            # Read-write mounts are visible at their host paths, so the paths in the env are real.
            mounts=[
                Mount(source=tree.work, target="work", read_only=False),
                Mount(source=briefing, target="briefing", read_only=False),
                Mount(source=answer, target="answer", read_only=False),
            ],
            env={
                **passed,
                "HARNESS_BRIEF": str((briefing / "brief.md").resolve()),
                "HARNESS_HYPOTHESIS": str(hypothesis_file.resolve()),
                "HARNESS_TRIAL": trial_id(ctx.trial_number),
                "HARNESS_PARENT": ctx.best,
            },
            limits=Limits(wallclock_s=self.timeout_s, memory_mb=MEMORY_MB, output_bytes=TRANSCRIPT_BYTES, pids=PIDS),
            labels={"harness.phase": "agent", "harness.trial": trial_id(ctx.trial_number)},
            hidden=[*hidden_paths(self.run_dir, self.evaluator_dir), *_home_secrets(), scratch.resolve()],
            network=True,
            log_path=log,
        )
        try:
            result = self.sandbox.run(request)
        except SandboxError as exc:
            raise AgentError(f"the agent command could not be run: {exc}") from exc
        scrub = _scrubber(passed)
        transcript = Transcript(format="text", content=scrub(log.read_bytes() if log.exists() else b""))
        hypothesis = scrub(_read_plain_file(hypothesis_file, HYPOTHESIS_BYTES)).decode("utf-8", "replace").strip()
        try:
            diff = tree.diff()
            # Files on the recipe's surface but outside this specialty (the rest is the loop's legality check).
            foreign = [p for p in tree.changed() if ctx.spec.is_editable(p) and surface.check(p) is not None]
        except AgentError as exc:
            diff, diff_error, foreign = "", str(exc), []
        else:
            diff_error = None

        problem = None
        if result.timed_out:
            problem = f"the agent command timed out after {self.timeout_s:g} s (--agent-timeout)"
        elif result.exit_code != 0:
            problem = f"the agent command exited with status {result.exit_code}"
        elif diff_error is not None:
            problem = diff_error
        elif not hypothesis and not diff:
            problem = "the agent command wrote no hypothesis to $HARNESS_HYPOTHESIS and changed no file"
        elif not hypothesis:
            problem = "the agent command wrote no hypothesis to $HARNESS_HYPOTHESIS"
        elif not diff:
            problem = "the agent command changed no file of the work tree"
        failure = "malformed_proposal" if problem is not None else None
        if problem is None and foreign:
            failure, problem = "illegal_edit", surface.check(foreign[0]) + (
                f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else "")
        if problem is not None:
            if result.log_tail.strip():
                problem += "; output tail: " + scrub(result.log_tail.strip()[-300:].encode()).decode("utf-8", "replace")
        return Proposal(
            hypothesis=hypothesis or "(the agent command wrote no hypothesis)",
            diff=diff,
            parent=ctx.best,
            agent=self.name,
            specialist=ctx.specialist,
            transcript=transcript,
            failure=failure,
            failure_reason=problem or "",
        )


def _home_secrets() -> list[Path]:
    """The `HOME_SECRETS` that exist, except any holding the interpreter (hiding it would stop the phase)."""
    home = Path.home()
    found = [(home / name).resolve() for name in HOME_SECRETS if os.path.lexists(home / name)]
    needed = [p.resolve() for p in interpreter_paths()]
    return [path for path in found if not any(covers(path, n) for n in needed)]


def _read_plain_file(path: Path, limit: int) -> bytes:
    """Up to `limit` bytes of a regular file, never following a link nor blocking on a FIFO; b"" otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _scrubber(passed: Mapping[str, str]):  # noqa: ANN202 - bytes -> bytes
    """Blank out the values of the passed variables (an API key the command printed)."""
    secrets = sorted(((v.encode(), f"[{k}]".encode()) for k, v in passed.items() if len(v) >= SCRUB_MIN_CHARS),
                     key=lambda pair: -len(pair[0]))

    def scrub(data: bytes) -> bytes:
        for value, mark in secrets:
            data = data.replace(value, mark)
        return data

    return scrub
