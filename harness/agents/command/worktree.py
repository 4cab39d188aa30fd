"""The scratch work tree an outside agent's command edits, and the diff taken from it.

The work tree is a git repository whose HEAD holds the parent trial's files, so
the command can use `git diff`, `git status` or `git stash` as on any checkout.
That repository is the command's to change: its config, hooks and attributes
are never used by the harness. The proposal's diff comes from a second git
folder that the harness made beside it (`shadow`, hidden from the command),
with the same HEAD and git's outside configuration switched off: `git add -A`
then `git diff --cached HEAD` (new files included, binary-safe). Nested `.git`
folders the command makes show as gitlinks, which the legality checks refuse.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.agents.base import AgentError
from trajectories._git import git_env

DIFF_OPTIONS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--binary",
    "--full-index",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)
"""Options of the proposal diff (the loop canonicalises it once applied)."""

_SAFE = (
    "-c", "core.fsmonitor=false",
    "-c", "core.untrackedCache=false",
    "-c", "core.excludesFile=/dev/null",
    "-c", "core.symlinks=true",
    "-c", "core.fileMode=true",
)
"""Config that the harness's own git calls on the command's files always use."""


@dataclass(frozen=True)
class WorkTree:
    """A scratch folder: `work/` (the command's checkout), `shadow/` (the harness's git folder)."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def shadow(self) -> Path:
        return self.root / "shadow"

    def create(self, export: Callable[[str, Path], None], parent: str) -> None:
        """Fill `work/` with `parent`'s files and commit them as HEAD in both repositories."""
        self.work.mkdir(parents=True)
        export(parent, self.work)
        message = f"{parent}: the parent trial's files"
        for git_dir in (self.work / ".git", self.shadow):
            _git(git_dir, self.work, "init", "-q", "--initial-branch=parent")
            _git(git_dir, self.work, "add", "-A")
            _git(git_dir, self.work, "commit", "-q", "--allow-empty", "--no-verify", "-m", message)

    def changed(self) -> list[str]:
        """Paths the command added, changed or deleted (after `diff`, which stages them)."""
        out = _git(self.shadow, self.work, "diff", "--cached", "--name-only", "--no-renames", "-z", "HEAD")
        return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]

    def diff(self) -> str:
        """Everything the command changed in `work/` against HEAD, new files included."""
        _git(self.shadow, self.work, "add", "-A")
        return _git(self.shadow, self.work, "diff", "--cached", *DIFF_OPTIONS, "HEAD").decode("utf-8", "surrogateescape")


def _git(git_dir: Path, work: Path, *args: str) -> bytes:
    env = git_env(git_dir, {"GIT_WORK_TREE": str(work)})
    proc = subprocess.run(["git", *_SAFE, *args], cwd=work, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=300)
    if proc.returncode != 0:
        raise AgentError(f"git {args[0]} in the agent's work tree failed: "
                         f"{proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout
