"""Mount folders as tar archives, for sandboxes that run a phase on another machine.

A remote phase cannot see the host's folders, so each mount travels as an
uncompressed tar archive (what a recipe writes, model weights, compresses
poorly, and two shared cores are better spent on training). Archives are
bounded: a folder over the cap is refused before a byte of it is read, with a
message that names the mount and both sizes.

What comes back from a phase is written by the trial, so it is unpacked with
tarfile's `data` filter: no absolute paths, no `..`, no link that points out of
the folder, no device files, no setuid bits. A refused archive leaves the host
folder untouched (it is unpacked next to it and swapped in only when whole).
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from sandboxes.errors import SandboxError


class ArchiveTooLarge(SandboxError):
    """A mount holds more bytes than may travel with one phase."""


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under `folder` (symlinks not followed)."""
    total = 0
    for parent, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                total += os.lstat(path).st_size
    return total


def pack(folder: Path, limit: int, what: str) -> bytes:
    """The folder as tar bytes (entries sorted, so equal folders give equal bytes).

    `what` names the folder in errors (e.g. "mount 'data' (/runs/r/.harness/data/train)").
    A missing folder packs as an empty archive: a read-write mount that does
    not exist yet is created empty by every sandbox.
    """
    if folder.exists() and not folder.is_dir():
        raise SandboxError(f"{what} is not a folder")
    size = folder_bytes(folder) if folder.is_dir() else 0
    if size > limit:
        raise ArchiveTooLarge(
            f"{what} holds {_size(size)} and at most {_size(limit)} may travel with one phase; "
            "raise the cap (HARNESS_RAY_MAX_ARCHIVE_MB) or make the folder smaller"
        )
    buffer = io.BytesIO()
    try:
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            if folder.is_dir():
                for parent, dirs, files in os.walk(folder):
                    dirs.sort()
                    for name in sorted(dirs + files):
                        path = Path(parent) / name
                        tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    except OSError as exc:
        raise SandboxError(f"cannot pack {what}: {exc}") from exc
    data = buffer.getvalue()
    if len(data) > limit:  # tar headers on top of many small files
        raise ArchiveTooLarge(f"{what} packs into {_size(len(data))}; at most {_size(limit)} may travel with one phase")
    return data


def unpack(data: bytes, dest: Path, what: str) -> None:
    """Unpack tar bytes into `dest` (created) through the `data` filter."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise SandboxError(f"cannot unpack {what}: {type(exc).__name__}: {exc}") from exc


def replace_contents(folder: Path, data: bytes, what: str) -> None:
    """Make `folder` hold exactly the archive's tree (files the phase deleted go too).

    The archive is unpacked into a sibling folder first; only when that worked
    are the old entries removed and the new ones moved in, so a refused archive
    never costs the host what it had.
    """
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-incoming-", dir=folder.parent))
    try:
        unpack(data, staging, what)
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for entry in staging.iterdir():
            entry.rename(folder / entry.name)
    finally:
        shutil.rmtree(staging)


def _size(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB" if size >= 1 << 20 else f"{size:,} bytes"
