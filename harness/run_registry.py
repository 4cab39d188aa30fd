"""The run folders this user made on this machine, so that no phase sees another run's secrets.

With a recipe whose data comes from fixed seeds, every run of it holds the same
held-out labels. The local sandbox's jail hides a trial's own run by its path;
it can hide the other runs only if it knows where they are, and they may lie
anywhere (`--out`). Every run therefore writes its folder into one registry
file when it is created or resumed, and each trial hides every registered run
folder that still exists.

The registry is a text file, one absolute path per line, at
`$HARNESS_STATE_DIR/runs` (default `$XDG_STATE_HOME/harness/runs`, else
`~/.local/state/harness/runs`). Writers take an exclusive `flock` and drop the
folders that no longer exist, so it stays as long as the list of live runs.
It holds paths only: nothing a phase learns from it is readable to the phase.

Runs made before the registry existed, or under another user or another
`HARNESS_STATE_DIR`, are not known and so not hidden (docs/security.md).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from harness.recipe_loader import RECIPES_ROOT
from sandboxes.local_jail import covers, interpreter_paths

STATE_DIR_ENV = "HARNESS_STATE_DIR"
"""Environment variable naming the folder that holds the registry."""


def registry_file() -> Path:
    """Where the registry lives (its folder need not exist yet)."""
    folder = os.environ.get(STATE_DIR_ENV)
    if not folder:
        state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        folder = str(Path(state_home) / "harness")
    return Path(folder) / "runs"


def register(run_dir: Path) -> None:
    """Add `run_dir` to the registry (once) and drop folders that are gone; raises OSError
    when the registry cannot be written."""
    path = registry_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    me = str(run_dir.resolve())
    with path.open("a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes
        fh.seek(0)
        known = [line for line in fh.read().splitlines() if line]
        kept = [p for p in dict.fromkeys(known) if p != me and os.path.isdir(p)] + [me]
        if kept != known:
            fh.seek(0)
            fh.truncate()
            fh.write("".join(p + "\n" for p in kept))
            fh.flush()
            os.fsync(fh.fileno())


def registered_runs() -> list[Path]:
    """Registered run folders that exist now (an unreadable or missing registry: none)."""
    try:
        text = registry_file().read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    found = [Path(line) for line in dict.fromkeys(text.splitlines()) if line.startswith("/")]
    return [p for p in found if p.is_dir()]


def other_runs(run_dir: Path, keep_visible: list[Path]) -> list[Path]:
    """Registered run folders other than `run_dir`, leaving out any that is, or contains, a
    path in `keep_visible` (what a phase needs to run at all) or `run_dir` itself."""
    me = run_dir.resolve()
    needed = [me, *(Path(p).resolve() for p in keep_visible)]
    out = []
    for folder in registered_runs():
        folder = folder.resolve()
        if any(covers(folder, n) for n in needed):
            continue
        out.append(folder)
    return out


def hidden_paths(run_dir: Path, evaluator_source: Path) -> list[Path]:
    """What no phase (nor an outside agent's command) may see, even by its host path (where
    the sandbox can hide it).

    The whole run folder (lineage, held-out data, the evaluator copy, every
    trial's folders: a phase's own mounts stay visible), the recipe's evaluator
    source, the shipped recipes (their data generators would regenerate the
    held-out labels) and every other run folder of this user that the harness
    knows of (a recipe with fixed seeds has the same held-out labels in each)."""
    hidden = [run_dir.resolve(), evaluator_source.resolve()]
    if RECIPES_ROOT.is_dir():
        hidden.append(RECIPES_ROOT)
    # A run folder holding the interpreter or the phase roots' folder stays visible (hiding
    # it would stop every phase; the local sandbox refuses such a hidden path).
    hidden += other_runs(run_dir, [*interpreter_paths(), Path(tempfile.gettempdir())])
    return hidden
