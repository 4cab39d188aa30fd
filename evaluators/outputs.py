"""What a trial left in a folder, checked before the host reads any of it.

Everything a phase writes (its workspace, its train outputs, its predictions)
is hostile. The host reads those folders afterwards: it hashes the committed
files, copies the workspace and outputs into the next phase (local sandbox),
measures the artifact and hands the predictions to the evaluator's score
function. A trial could turn each of those reads against the host:

- a **symlink** makes the host read (or copy into the eval phase) a file of
  its own choosing, e.g. the held-out labels or `/etc/shadow`;
- a **hardlink** is the same trick without a link to see (an inode shared with
  a file outside the folder), and makes one byte count twice or not at all;
- a **FIFO** or **socket** blocks whoever opens it; a **device file** reads
  forever (`/dev/zero`) or reaches hardware;
- a **sparse file** claims gigabytes it never wrote (and costs that much time
  to read);
- a **huge file** or folder costs the host its memory or disk when read;
- a **million-entry** or very deep folder costs the host minutes to walk.

`scan_folder` walks a folder with `lstat` only (it never follows a link, never
opens a file) and stops at the first `max_entries` entries, so the scan itself
cannot be made expensive. Each problem is an `OutputFinding` whose `label` is
`tamper` for a file of the wrong kind (links, FIFOs, sockets, devices) and
`size_failure` for a size trick (sparse, huge, too many entries, too deep).
The trial executor scans after every phase and labels the trial before
anything else reads the folder.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from harness.types import Frozen, Label

MAX_ENTRIES = 100_000
"""Entries (files and folders) one scanned folder may hold; the walk stops after this many."""
MAX_DEPTH = 64
"""Nesting depth one scanned folder may have."""
MAX_FOLDER_BYTES = 1 << 30
"""Bytes of regular files a workspace or predictions folder may hold (train outputs have
the recipe's `artifact_bytes`)."""
SPARSE_MIN_BYTES = 1 << 20
"""Files smaller than this are never called sparse (file systems round small files)."""
SPARSE_FRACTION = 0.5
"""A file with fewer allocated bytes than this fraction of its size is sparse."""
MAX_FINDINGS = 20
"""A scan stops after this many findings (one is enough to refuse the folder)."""

_KINDS = {
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "char-device",
    stat.S_IFBLK: "block-device",
}
WRONG_KIND = frozenset({*_KINDS.values(), "hardlink", "other"})
"""Problems labelled `tamper`; the others (sparse, huge, too-many-entries, too-deep) are `size_failure`."""


class OutputFinding(Frozen):
    """One thing in a trial's folder that the host refuses to read."""

    folder: str
    """The folder's name as the phase saw it: `workspace`, `out`, `preds`."""
    path: str
    """Relative posix path of the entry (`.` for the folder itself)."""
    problem: str
    """`symlink`, `hardlink`, `fifo`, `socket`, `char-device`, `block-device`, `other`,
    `sparse`, `huge`, `too-many-entries` or `too-deep`."""
    detail: str = ""
    """Sizes or counts measured, for the explanation."""

    @property
    def label(self) -> Label:
        return Label.tamper if self.problem in WRONG_KIND else Label.size_failure

    def describe(self) -> str:
        where = self.folder if self.path == "." else f"{self.folder}/{self.path}"
        return f"{where}: {self.problem}" + (f" ({self.detail})" if self.detail else "")


class ScanLimits(Frozen):
    """How much one folder may hold."""

    max_bytes: int | None = Field(default=MAX_FOLDER_BYTES, gt=0)
    """Total bytes of regular files; None: not checked here (train outputs: the artifact cap)."""
    max_entries: int = Field(default=MAX_ENTRIES, gt=0)
    """Entries the folder may hold."""
    max_depth: int = Field(default=MAX_DEPTH, gt=0)
    """Nesting depth."""


@dataclass
class FolderScan:
    """What `scan_folder` saw."""

    findings: list[OutputFinding] = field(default_factory=list)
    total_bytes: int = 0
    """Apparent bytes of the regular files seen."""
    entries: int = 0


def scan_folder(folder: Path, name: str, limits: ScanLimits = ScanLimits()) -> FolderScan:
    """Check every entry under `folder` by `lstat` alone; see the module docstring."""
    scan = FolderScan()

    def found(path: str, problem: str, detail: str = "") -> None:
        scan.findings.append(OutputFinding(folder=name, path=path, problem=problem, detail=detail))

    try:
        top = os.lstat(folder)
    except FileNotFoundError:
        return scan
    except OSError as exc:
        found(".", "other", f"cannot stat: {exc.strerror}")
        return scan
    if not stat.S_ISDIR(top.st_mode):
        found(".", _KINDS.get(stat.S_IFMT(top.st_mode), "other"), "the folder itself is not a folder")
        return scan
    stack: list[tuple[str, str, int]] = [(os.fspath(folder), "", 0)]
    while stack and len(scan.findings) < MAX_FINDINGS:
        path, rel, depth = stack.pop()
        if depth > limits.max_depth:
            found(rel, "too-deep", f"deeper than {limits.max_depth} folders")
            continue
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    scan.entries += 1
                    if scan.entries > limits.max_entries:
                        found(".", "too-many-entries", f"more than {limits.max_entries} entries")
                        return scan
                    child = f"{rel}/{entry.name}" if rel else entry.name
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError as exc:
                        found(child, "other", f"cannot stat: {exc.strerror}")
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        stack.append((entry.path, child, depth + 1))
                    elif stat.S_ISREG(st.st_mode):
                        _check_regular(st, child, scan, found)
                    else:
                        found(child, _KINDS.get(stat.S_IFMT(st.st_mode), "other"))
        except OSError as exc:
            found(rel or ".", "other", f"cannot list: {exc.strerror}")
    if limits.max_bytes is not None and scan.total_bytes > limits.max_bytes:
        found(".", "huge", f"{scan.total_bytes} bytes, at most {limits.max_bytes}")
    return scan


def _check_regular(st: os.stat_result, rel: str, scan: FolderScan, found) -> None:
    scan.total_bytes += st.st_size
    if st.st_nlink > 1:
        found(rel, "hardlink", f"{st.st_nlink} names share this file")
    allocated = st.st_blocks * 512
    if st.st_size >= SPARSE_MIN_BYTES and allocated < st.st_size * SPARSE_FRACTION:
        found(rel, "sparse", f"{st.st_size} bytes, {allocated} allocated")


def explain(findings: list[OutputFinding]) -> str:
    """One line naming the findings (at most five)."""
    shown = "; ".join(f.describe() for f in findings[:5])
    more = f" and {len(findings) - 5} more" if len(findings) > 5 else ""
    return f"refused before reading: {shown}{more}"
