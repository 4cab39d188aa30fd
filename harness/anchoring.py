"""`harness run --anchor-to PATH`: append an anchor line (trajectories.anchor) to a file
outside the run folder every N recorded trials, and once more when the run stops.

The file should live on other storage than the run (another disk, a mounted share,
a synced folder): whoever can rewrite the run folder must not be able to rewrite
the anchors too. A path inside the run folder is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.types import Trial, TrialRecord
from trajectories.anchor import append_anchor, current_anchor, sign_anchor
from trajectories.lineage import Lineage


class AnchorOptionError(ValueError):
    """An --anchor-to destination that cannot serve (inside the run folder)."""


def check_destination(path: Path, run_dir: Path) -> Path:
    """`path` resolved; refused when it lies inside the run folder."""
    resolved, run = Path(path).expanduser().resolve(), Path(run_dir).resolve()
    if resolved == run or run in resolved.parents:
        raise AnchorOptionError(f"--anchor-to {path} lies inside the run folder {run_dir}: whoever can "
                                "rewrite the run could rewrite its anchors; give a file on other storage")
    return resolved


@dataclass
class AnchoringReporter:
    """A Reporter that passes everything on to `inner` and writes anchors as trials finish."""

    inner: object
    """The reporter being wrapped (the console's)."""
    path: Path
    """The anchor file (outside the run folder)."""
    every: int
    """Trials between two anchors."""
    sign_key: Path | None = None
    """SSH key that signs each anchor (None: unsigned)."""
    lineage: Lineage | None = None
    """The run's lineage, set once the run is open."""
    _since: int = field(default=0, init=False)
    _last: str | None = field(default=None, init=False)

    def trial_started(self, trial: Trial) -> None:
        self.inner.trial_started(trial)

    def trial_finished(self, record: TrialRecord, best: TrialRecord) -> None:
        self.inner.trial_finished(record, best)
        self._since += 1
        if self._since >= self.every:
            self.write()

    def note(self, text: str) -> None:
        self.inner.note(text)

    def stop(self) -> None:
        self.inner.stop()

    def write(self) -> None:
        """Append the anchor of the lineage's state now, unless it is the last one written."""
        if self.lineage is None or self.lineage.ledger_head() in (None, self._last):
            return
        anchor = current_anchor(self.lineage)
        if self.sign_key is not None:
            anchor = sign_anchor(anchor, self.sign_key)
        append_anchor(self.path, anchor)
        self._since, self._last = 0, anchor.ledger
