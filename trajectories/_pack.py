"""Writing git pack files (version 2, with a version 2 index) from Python.

A pack holds many objects in one file, so a write of five objects costs two
files (the pack and its index) instead of five loose objects. The objects are
stored whole (no deltas; `git repack` adds those when it rolls packs
together). Format: git's `Documentation/gitformat-pack.txt`.

The pack is written under a temporary name, then renamed into place before
its index (git sees a pack once its `.idx` exists), each file flushed to disk
first when `durable` is set, so a crash leaves a whole pack or none.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

_TYPE_CODES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}
TEMP_PREFIX = "tmp_pack_"
"""Name prefix of a pack or index still being written (git's own temporary packs use it too)."""


def _entry_header(kind: str, size: int) -> bytes:
    code = _TYPE_CODES[kind]
    byte = (code << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


PackEntry = tuple[bytes, bytes]
"""One object as a pack stores it: (raw 20-byte id, entry bytes: type and size header, zlib data)."""


def pack_entry(sha: str, kind: str, content: bytes) -> PackEntry:
    """The pack entry of one object (stored whole; reusable in a later pack as it is)."""
    return bytes.fromhex(sha), _entry_header(kind, len(content)) + zlib.compress(content, 1)


def assemble_pack(entries: list[PackEntry]) -> tuple[bytes, bytes, str]:
    """(pack bytes, index bytes, pack checksum hex) of pack entries (ids must differ)."""
    pack = bytearray(b"PACK" + struct.pack(">II", 2, len(entries)))
    located: list[tuple[bytes, int, int]] = []  # (raw sha, crc32, offset)
    for raw, chunk in entries:
        located.append((raw, zlib.crc32(chunk), len(pack)))
        pack += chunk
    checksum = hashlib.sha1(pack).digest()
    pack += checksum
    if len(pack) >= 1 << 31:
        raise ValueError("a pack this large needs 64-bit offsets; write smaller packs")
    located.sort()
    index = bytearray(b"\xfftOc" + struct.pack(">I", 2))
    fanout = [0] * 256
    for raw, _crc, _offset in located:
        fanout[raw[0]] += 1
    total = 0
    for count in fanout:
        total += count
        index += struct.pack(">I", total)
    index += b"".join(raw for raw, _crc, _offset in located)
    index += b"".join(struct.pack(">I", crc) for _raw, crc, _offset in located)
    index += b"".join(struct.pack(">I", offset) for _raw, _crc, offset in located)
    index += checksum
    index += hashlib.sha1(index).digest()
    return bytes(pack), bytes(index), checksum.hex()


def _write_files(files: list[tuple[Path, bytes]], durable: bool) -> None:
    """Create and write each file, then (`durable`) flush them all to disk: the first flush
    commits the file system's journal with every file's creation in it, so the later ones
    have only their data left to write."""
    fds: list[int] = []
    try:
        for path, data in files:
            fds.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444))
            view = memoryview(data)
            while view:
                view = view[os.write(fds[-1], view) :]
        if durable:
            for fd in fds:
                os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)


def write_pack(pack_dir: Path, entries: list[PackEntry], durable: bool, tag: str) -> Path:
    """Write pack entries (see `pack_entry`) as one pack in `pack_dir` (git's `objects/pack`);
    returns the `.pack` path.

    `tag` makes the temporary names unique to the writer (pid and a counter)."""
    pack, index, checksum = assemble_pack(entries)
    final = pack_dir / f"pack-{checksum}.pack"
    if final.with_suffix(".idx").exists():
        return final  # the same objects in the same order: already there
    tmp_pack, tmp_index = pack_dir / f"{TEMP_PREFIX}{tag}.pack", pack_dir / f"{TEMP_PREFIX}{tag}.idx"
    files = [(tmp_pack, pack), (tmp_index, index)]
    try:
        try:
            _write_files(files, durable)
        except FileNotFoundError:  # no pack folder yet: made on demand (a mkdir per pack cost ~0.15 ms)
            pack_dir.mkdir(parents=True, exist_ok=True)
            _write_files(files, durable)
        os.replace(tmp_pack, final)
        os.replace(tmp_index, final.with_suffix(".idx"))
    except BaseException:
        for path in (tmp_pack, tmp_index):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        raise
    return final


def remove_pack(pack: Path) -> None:
    """Delete a pack and its index (the index first: git lists a pack by its index)."""
    for path in (pack.with_suffix(".idx"), pack):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
