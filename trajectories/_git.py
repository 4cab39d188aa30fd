"""Small, fast access to one git repository: plumbing subprocesses plus object writes.

Objects (blobs, trees, commits) are written from Python (`_objects`: held back,
then written as one pack or a few loose objects before git needs them), which is
what `git hash-object -w` / `mktree` / `commit-tree` do, without a process per
object. Everything that needs git's own logic (ref updates with compare-and-swap,
`apply`, `diff-tree`, reading packed objects) goes through the `git` binary with a
controlled environment: no system or global config, no inherited GIT_* variables,
a fixed identity, the C locale, fsync of what it writes. Frequent requests (object
reads, tree diffs, ref updates) go to long-lived processes (`_git_pipes`).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._objects import ObjectWriter, framed

if TYPE_CHECKING:
    from ._git_pipes import ObjectReader, TreeDiffer

IDENTITY_NAME = "harness"
IDENTITY_EMAIL = "harness@localhost"
ZERO_SHA = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
TRAILER_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")

MODE_FILE = "100644"
MODE_EXEC = "100755"
MODE_TREE = "40000"
MODE_LINK = "120000"
MODE_GITLINK = "160000"


def _spooled(command: list[str], input: bytes | None, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """`subprocess.run` with stdin, stdout and stderr in unnamed temporary files.

    Through pipes, a thread reads a large output 32 KiB at a time, and after each
    read it waits for the interpreter lock; while another thread computes (verify
    checks records while a reader thread takes in the next slice), that wait is
    the other thread's switch interval, and git, its pipe full, waits too: 0.35 s
    of a 10,000-trial verify. Through files git runs unhindered and the thread
    takes the lock back once. The files are never named (nothing is left behind)
    and live in the page cache."""
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        if input:
            stdin.write(input)
            stdin.seek(0)
        proc = subprocess.run(command, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd, env=env)
        stdout.seek(0)
        stderr.seek(0)
        return subprocess.CompletedProcess(command, proc.returncode, stdout.read(), stderr.read())


class GitError(Exception):
    """A git command failed; carries git's stderr."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        self.args_ = args
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()}")


DURABLE_FSYNC = "committed"
"""`core.fsync` of a new lineage (`Lineage.init`): git flushes the objects, packs and refs it
writes to disk, and the objects written from Python follow the same setting (`fsync_objects`),
so after a power loss no ref names an object that did not reach the disk."""
_FSYNC_OBJECT_COMPONENTS = {"objects", "committed", "all", "loose-object", "pack"}


def fsync_objects(core_fsync: str | None) -> bool:
    """Whether a `core.fsync` value asks for objects to be flushed to disk."""
    return any(part.strip() in _FSYNC_OBJECT_COMPONENTS for part in (core_fsync or "").split(","))


def git_env(git_dir: Path | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for git: inherited minus GIT_*, fixed identity, no outside config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": IDENTITY_NAME,
            "GIT_AUTHOR_EMAIL": IDENTITY_EMAIL,
            "GIT_COMMITTER_NAME": IDENTITY_NAME,
            "GIT_COMMITTER_EMAIL": IDENTITY_EMAIL,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "LANG": "C",
            # No hooks (update-ref runs the reference-transaction hook when one exists).
            "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "core.hooksPath",
            "GIT_CONFIG_VALUE_0": os.devnull,
            # Every object is named by its full id: no search of refs named like it (six file
            # system lookups per id in each ref update).
            "GIT_CONFIG_KEY_1": "core.warnAmbiguousRefs",
            "GIT_CONFIG_VALUE_1": "false",
        }
    )
    if git_dir is not None:
        env["GIT_DIR"] = str(git_dir)
    if extra:
        env.update(extra)
    return env


# ---------------------------------------------------------------------------
# Object encoding
# ---------------------------------------------------------------------------


def tree_sort_key(mode: str, name: str) -> bytes:
    """Git orders tree entries by their name's bytes, a folder's name as if it ended in '/'."""
    raw = name.encode("utf-8", "surrogateescape")
    return raw + b"/" if mode == MODE_TREE else raw


def _tree_sort_key(entry: tuple[str, str, str]) -> bytes:
    return tree_sort_key(entry[0], entry[1])


def _ascii_tree_sort_key(entry: tuple[str, str, str]) -> str:
    mode, name, _ = entry
    return name + "/" if mode == MODE_TREE else name


def encode_tree(entries: list[tuple[str, str, str]]) -> bytes:
    """Tree object content from (mode, name, sha) entries, in git's order."""
    out = bytearray()
    # Git orders entries by their bytes; for ASCII names the text orders the same, without encoding
    # each name for the comparison (the ledger rewrites trees of a hundred entries per event).
    ascii_names = all(name.isascii() for _mode, name, _sha in entries)
    for mode, name, sha in sorted(entries, key=_ascii_tree_sort_key if ascii_names else _tree_sort_key):
        if not name or "/" in name or "\0" in name:
            raise ValueError(f"bad tree entry name {name!r}")
        out += mode.encode() + b" " + name.encode("utf-8", "surrogateescape") + b"\0"
        out += bytes.fromhex(sha)
    return bytes(out)


def decode_tree(data: bytes) -> list[tuple[str, str, str]]:
    """(mode, name, sha) entries of a tree object's content."""
    entries = []
    i = 0
    while i < len(data):
        sp = data.index(b" ", i)
        nul = data.index(b"\0", sp)
        mode = data[i:sp].decode()
        name = data[sp + 1 : nul].decode("utf-8", "surrogateescape")
        sha = data[nul + 1 : nul + 21].hex()
        entries.append((mode, name, sha))
        i = nul + 21
    return entries


@dataclass(frozen=True)
class CommitObject:
    tree: str
    parents: tuple[str, ...]
    author: str
    committer: str
    message: str
    """Decoded message (UTF-8; invalid bytes replaced)."""


def decode_commit(data: bytes) -> CommitObject:
    head, sep, body = data.partition(b"\n\n")
    tree = ""
    parents: list[str] = []
    author = committer = ""
    for line in head.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key == b"tree":
            tree = value.decode("ascii", "replace")
        elif key == b"parent":
            parents.append(value.decode("ascii", "replace"))
        elif key == b"author":
            author = value.decode("utf-8", "replace")
        elif key == b"committer":
            committer = value.decode("utf-8", "replace")
    return CommitObject(tree, tuple(parents), author, committer, decode_message(body))


def encode_message(message: str) -> bytes:
    if "\0" in message:
        raise ValueError("a commit message may not contain NUL")
    return message.encode("utf-8", "surrogatepass")


def decode_message(raw: bytes) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def format_message(subject: str, trailers: dict[str, str]) -> str:
    """`subject`, a blank line, then one `Key: value` line per trailer."""
    lines = []
    for key, value in trailers.items():
        if not TRAILER_KEY_RE.match(key):
            raise ValueError(f"bad trailer key {key!r}")
        value = str(value)
        if "\n" in value or "\r" in value or value != value.strip():
            raise ValueError(f"trailer {key} has a bad value {value!r}")
        lines.append(f"{key}: {value}\n")
    return subject + "\n\n" + "".join(lines)


def parse_message(message: str) -> tuple[str, dict[str, str] | None]:
    """Split a message written by `format_message` into (subject, trailers).

    Trailers are the last paragraph; None when that paragraph is not made of
    `Key: value` lines (or a key repeats).
    """
    cut = message.rfind("\n\n")
    if cut < 0:
        return message, None
    subject, block = message[:cut], message[cut + 2 :]
    trailers: dict[str, str] = {}
    if not block.endswith("\n"):
        return subject, None
    for line in block[:-1].split("\n"):
        key, sep, value = line.partition(": ")
        if not sep or not TRAILER_KEY_RE.match(key) or key in trailers:
            return subject, None
        trailers[key] = value
    return subject, trailers


def object_id(kind: str, content: bytes) -> str:
    """The id git gives an object of this type and content (nothing is written)."""
    return hashlib.sha1(framed(kind, content)).hexdigest()


_EXITING: list[subprocess.Popen[bytes]] = []
"""Stopped git processes not reaped yet (see `stop_process`)."""
_EXITING_LOCK = threading.Lock()
EXIT_GRACE_S = 5.0
"""How long a stopped git process may take to exit before it is killed (`reap_stopped`)."""


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Close a long-lived git process's pipes; it exits on its own (end of input).

    Not waited for here: `Popen.wait(timeout)` polls with sleeps of 0.5 to 50 ms,
    so every stop cost a few milliseconds while git exits in one (over a 10,000-trial
    run, the processes restarted after each pack merge added seconds). The process
    is reaped at the next stop, or by `reap_stopped`."""
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    with _EXITING_LOCK:
        _EXITING.append(proc)
        _EXITING[:] = [p for p in _EXITING if p.poll() is None]


def reap_stopped() -> None:
    """Wait for the stopped git processes to exit (killing those past `EXIT_GRACE_S`)."""
    with _EXITING_LOCK:
        stopped = list(_EXITING)
        _EXITING.clear()
    for proc in stopped:
        try:
            proc.wait(timeout=EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------
# Repository access
# ---------------------------------------------------------------------------


class Git:
    """One repository (its `.git` folder), with the working tree root as cwd."""

    def __init__(self, git_dir: Path, cwd: Path) -> None:
        # Absolute: git runs with `cwd` and would read a relative GIT_DIR from there.
        git_dir = Path(git_dir).resolve()
        self.git_dir = git_dir
        self.cwd = Path(cwd).resolve()
        self.objects = git_dir / "objects"
        self.env = git_env(git_dir)
        # Closed by `close()` (Lineage.close / its context manager); if an owner
        # forgets, the processes still end with ours, when their stdin closes.
        self._updater: subprocess.Popen[bytes] | None = None
        self._reader: ObjectReader | None = None
        self._differ: TreeDiffer | None = None
        self.writer = ObjectWriter(self.objects, durable=self._config_fsync, packs_removed=self.stop_processes)

    def _config_fsync(self) -> bool:
        """Read once, when the first object is written: the repository's `core.fsync`."""
        proc = subprocess.run(["git", "config", "--get", "core.fsync"], cwd=self.cwd, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return fsync_objects(proc.stdout.decode("utf-8", "replace").strip() if proc.returncode == 0 else None)

    # -- processes ---------------------------------------------------------

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        spool: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `git ARGS`; its output in memory. `spool`: its input and output go through
        unnamed temporary files instead of pipes (for bulk reads made while another thread
        computes: see `_spooled`)."""
        self.writer.flush()  # whatever git is asked may read them, or name them in a ref
        command, full_env = ["git", *args], {**self.env, **(env or {})}
        if spool:
            proc = _spooled(command, input, self.cwd, full_env)
        else:
            proc = subprocess.run(command, input=input, cwd=self.cwd, env=full_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if check and proc.returncode != 0:
            raise GitError(list(args), proc.returncode, proc.stderr.decode("utf-8", "replace"))
        return proc

    def text(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
             spool: bool = False) -> str:
        return self.run(*args, input=input, env=env, spool=spool).stdout.decode("utf-8", "surrogateescape")

    # -- refs --------------------------------------------------------------

    def refs(self, prefix: str = "refs/") -> dict[str, str]:
        out = self.text("for-each-ref", "--format=%(objectname) %(refname)", prefix)
        refs = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            refs[name] = sha
        return refs

    def ref(self, name: str) -> str | None:
        proc = self.run("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False)
        if proc.returncode != 0:
            return None
        return proc.stdout.decode().strip()

    def update_refs(self, updates: list[tuple[str, str, str | None]]) -> None:
        """Atomically apply (ref, new, expected old) updates; old ZERO_SHA = must not exist,
        None = no check. Raises GitError when any check fails (nothing changes then).

        One `git update-ref --stdin` transaction (`start`/`prepare`/`commit`) on a
        long-lived process, so a ref move costs a pipe round trip, not a process."""
        self.writer.flush()  # objects first: a ref never names an object not on disk
        body = ""
        for ref, new, old in updates:
            for value in (ref, new, old or ""):
                if any(c in value for c in " \n\0"):
                    raise ValueError(f"bad ref update value {value!r}")
            body += f"update {ref} {new}" + (f" {old}" if old is not None else "") + "\n"
        proc = self._updater
        if proc is None or proc.poll() is not None:
            proc = self._updater = subprocess.Popen(
                ["git", "update-ref", "--stdin"],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        replies = []
        try:
            proc.stdin.write(f"start\n{body}prepare\ncommit\n".encode())
            proc.stdin.flush()
            for _ in range(3):
                replies.append(proc.stdout.readline())
        except (BrokenPipeError, OSError):
            pass
        if replies == [b"start: ok\n", b"prepare: ok\n", b"commit: ok\n"]:
            return
        # git dies on a failed transaction (and rolls it back): report its error, restart next time.
        self._updater = None
        try:
            proc.stdin.close()
        except OSError:
            pass
        stderr = proc.stderr.read().decode("utf-8", "replace")
        code = proc.wait()
        raise GitError(["update-ref", "--stdin"], code, stderr or f"unexpected replies {replies!r}")

    def close(self) -> None:
        """Write the held-back objects, stop the long-lived git processes (started again on demand)."""
        self.writer.flush()  # a caller may name them later, from another handle
        self.stop_processes()
        reap_stopped()

    def stop_processes(self) -> None:
        """Stop the long-lived git processes; the next request starts them again.

        Also after packs are removed (merged, repacked): a git process keeps every pack it has
        seen in its list and searches them all for an object it misses, so over a long run each
        ref update and read grew slower with the packs written since the process started."""
        proc, self._updater = self._updater, None
        if proc is not None:
            stop_process(proc)
        for pipe in (self._reader, self._differ):
            if pipe is not None:
                pipe.close()
        self._reader = self._differ = None

    def delete_ref(self, name: str) -> None:
        self.run("update-ref", "-d", name)

    # -- object writes -----------------------------------------------------

    def write_object(self, kind: str, content: bytes) -> str:
        """Add an object (held back until git needs it, see `_objects`); returns its sha."""
        return self.writer.add(kind, content)

    def flush(self) -> None:
        """Write the held-back objects now, flushed to disk (before anything names them)."""
        self.writer.flush()

    def write_blob(self, content: bytes) -> str:
        return self.write_object("blob", content)

    def write_tree(self, entries: list[tuple[str, str, str]]) -> str:
        return self.write_object("tree", encode_tree(entries))

    def write_commit(self, tree: str, parents: list[str], message: str) -> str:
        stamp = f"{int(time.time())} +0000"
        ident = f"{IDENTITY_NAME} <{IDENTITY_EMAIL}> {stamp}"
        head = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents)
        head += f"author {ident}\ncommitter {ident}\n\n"
        return self.write_object("commit", head.encode() + encode_message(message))

    # -- object reads ------------------------------------------------------

    def cat_batch(self, shas: list[str]) -> dict[str, tuple[str, bytes] | None]:
        """Read many objects with one `git cat-file --batch`; None for a missing one."""
        result: dict[str, tuple[str, bytes] | None] = {}
        unique = list(dict.fromkeys(shas))
        if not unique:
            return result
        out = self.run("cat-file", "--batch", input="".join(s + "\n" for s in unique).encode(), spool=True).stdout
        pos = 0
        for sha in unique:
            nl = out.index(b"\n", pos)
            header = out[pos:nl].decode("utf-8", "replace").split(" ")
            pos = nl + 1
            if len(header) == 3 and header[1] in ("blob", "tree", "commit", "tag"):
                size = int(header[2])
                result[sha] = (header[1], out[pos : pos + size])
                pos += size + 1
            else:  # "<sha> missing" / "ambiguous"
                result[sha] = None
        return result

    def read_object(self, name: str) -> tuple[str, bytes] | None:
        """(type, content) of one object (an id or any name `cat-file` takes); None when missing.

        Through one long-lived `git cat-file --batch` (see `_git_pipes`)."""
        held = self.writer.get(name)
        if held is not None:
            return held
        if not SHA_RE.match(name):  # `commit:path`, a ref...: resolving it may walk held-back objects
            self.writer.flush_for_reader()
        if self._reader is None:
            from ._git_pipes import ObjectReader

            self._reader = ObjectReader(self.cwd, self.env)
        return self._reader.read(name)

    def diff_trees(self, tree_a: str, tree_b: str, diff_args: tuple[str, ...]) -> bytes:
        """`git diff-tree DIFF_ARGS A B` of two tree ids, through one long-lived process
        (the options are fixed by the first call)."""
        self.writer.flush_for_reader([tree_a, tree_b])
        if self._differ is None:
            from ._git_pipes import TreeDiffer

            self._differ = TreeDiffer(diff_args, self.cwd, self.env)
        elif self._differ.args[2:] != list(diff_args):
            raise ValueError("diff_trees is called with other options than before")
        return self._differ.diff(tree_a, tree_b)
