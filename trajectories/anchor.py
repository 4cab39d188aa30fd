"""Anchors: one line, kept outside the run folder, that pins a run's state.

Whoever can write a run folder can replace its whole history with another that
verifies. An anchor taken earlier and kept elsewhere (other storage, a ticket, a
mail) defeats that: `harness replay RUN --verify --anchor FILE_OR_LINE` fails
with a tamper finding unless the run's ledger *extends* the anchored state.

Format (one line, space-separated `key=value` fields after a version word):

    harness-anchor/1 run=<run id> ledger=<40 hex> trials=<n> at=<UTC time> [sig=<base64>]

* `ledger`: the ledger head commit (`refs/heads/ledger`); every record, trial
  commit and earlier ledger commit is reachable from it through git's hashes,
  so this one id pins the whole history up to the anchor;
* `trials`: the number of trial records in that ledger commit's tree;
* `at`: when the anchor was taken (`YYYY-MM-DDTHH:MM:SSZ`);
* `sig` (optional, `harness anchor --sign KEY`): an SSH signature of the line
  up to ` sig=`, made by git's own SSH signing (`gpg.format=ssh`): a tag object
  over that text, signed with `git tag -s`; the field is the signature block
  base64-encoded. Checked with `git verify-tag` against an allowed-signers
  file (`--anchor-key`: a public key or an allowed-signers file).

A run extends an anchor when the anchored ledger commit is the ledger head or an
ancestor of it (the ledger is a linear chain), the trial records of that commit
number `trials`, and the run id is the anchor's. A resumed run extends its
earlier anchors; a history written anew, even one with the same trials, does not.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from trajectories._ledger_tree import TRIALS_DIR
from trajectories.lineage import LEDGER_REF, Lineage

VERSION = "harness-anchor/1"
_FIELD = re.compile(r"([a-z]+)=(\S+)")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_TAGGER_NAME = "harness anchor"
_TAGGER_EMAIL = "anchor@harness.invalid"
_PRINCIPAL = "anchor-signer"
SIGNATURE_BEGIN = b"-----BEGIN SSH SIGNATURE-----"


class AnchorError(ValueError):
    """An anchor line that does not parse, or a signing step that failed; the message says why."""


class Anchor(BaseModel):
    """One anchor: the state of a run at a moment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run: str = Field(pattern=r"^\S+$")
    """Run id (the run folder's name)."""
    ledger: str = Field(pattern=r"^[0-9a-f]{40}$")
    """Ledger head commit at the anchor."""
    trials: int = Field(ge=0)
    """Trial records in that ledger commit."""
    at: str = Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    """UTC time the anchor was taken."""
    sig: str | None = None
    """Base64 of the SSH signature block over `payload()` (None: unsigned)."""

    def payload(self) -> str:
        """The signed text: the line without its signature."""
        return f"{VERSION} run={self.run} ledger={self.ledger} trials={self.trials} at={self.at}"

    def line(self) -> str:
        return self.payload() + (f" sig={self.sig}" if self.sig else "")

    def describe(self) -> str:
        return f"anchor {self.ledger[:12]} ({self.trials} trials, {self.at})"


def parse_anchor(text: str) -> Anchor:
    """An anchor from its line; AnchorError naming what is wrong."""
    words = text.strip().split(" ")
    if not words or words[0] != VERSION:
        raise AnchorError(f"not an anchor line (it must start with {VERSION!r}): {text.strip()[:80]!r}")
    fields: dict[str, str] = {}
    for word in words[1:]:
        match = _FIELD.fullmatch(word)
        if match is None or match.group(1) in fields:
            raise AnchorError(f"anchor line: cannot read field {word[:40]!r}")
        fields[match.group(1)] = match.group(2)
    unknown = set(fields) - set(Anchor.model_fields)
    missing = {"run", "ledger", "trials", "at"} - set(fields)
    if unknown or missing:
        raise AnchorError(f"anchor line: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")
    try:
        return Anchor.model_validate(fields)
    except ValueError as exc:
        first = exc.errors()[0] if hasattr(exc, "errors") else {"loc": ["?"], "msg": str(exc)}
        raise AnchorError(f"anchor line: {first['loc'][0]}: {first['msg']}") from None


def read_anchors(file_or_line: str) -> list[Anchor]:
    """The anchors of a file (one per line; blank lines and `#` comments skipped) or one line."""
    if file_or_line.lstrip().startswith(VERSION):
        return [parse_anchor(file_or_line)]
    path = Path(file_or_line).expanduser()
    if not path.is_file():
        raise AnchorError(f"{file_or_line}: neither an anchor line nor a file of anchor lines")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorError(f"{path}: cannot read: {exc}") from None
    anchors = []
    for number, text in enumerate(lines, 1):
        if text.strip() and not text.lstrip().startswith("#"):
            try:
                anchors.append(parse_anchor(text))
            except AnchorError as exc:
                raise AnchorError(f"{path}:{number}: {exc}") from None
    if not anchors:
        raise AnchorError(f"{path} holds no anchor line")
    return anchors


def current_anchor(lineage: Lineage) -> Anchor:
    """The anchor of the lineage's state now."""
    head = lineage.ledger_head()
    if head is None:
        raise AnchorError(f"{lineage.run_dir} has no ledger yet")
    return Anchor(run=lineage.run_info().run_id, ledger=head, trials=len(lineage.records()),
                  at=time.strftime(_TIME_FORMAT, time.gmtime()))


def append_anchor(path: Path, anchor: Anchor) -> None:
    """Append the anchor's line to `path` (created when missing) and flush it to storage."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (anchor.line() + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


# -- signing through git ---------------------------------------------------------


def _git(repo: Path, *args: str, input: bytes | None = None, date: int | None = None) -> bytes:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo), "LC_ALL": "C",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_COMMITTER_NAME": _TAGGER_NAME, "GIT_COMMITTER_EMAIL": _TAGGER_EMAIL}
    if date is not None:
        env["GIT_COMMITTER_DATE"] = f"{date} +0000"
    proc = subprocess.run(["git", "-C", str(repo), *args], input=input, env=env, capture_output=True)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        command = next(a for a in args if not a.startswith("-") and "=" not in a)
        raise AnchorError(f"git {command} failed: {message[-1] if message else proc.returncode}")
    return proc.stdout


def _epoch(at: str) -> int:
    return calendar.timegm(time.strptime(at, _TIME_FORMAT))


def _tag_header(repo: Path, payload: str, date: int) -> bytes:
    blob = _git(repo, "hash-object", "-w", "--stdin", input=payload.encode("utf-8")).decode().strip()
    return (f"object {blob}\ntype blob\ntag anchor\ntagger {_TAGGER_NAME} <{_TAGGER_EMAIL}> {date} +0000\n\n"
            f"{payload}\n").encode("utf-8")


def sign_anchor(anchor: Anchor, key: Path) -> Anchor:
    """The anchor with `sig` set: `git tag -s` (gpg.format=ssh, user.signingKey=KEY) over its payload."""
    key = Path(key).expanduser()
    if not key.is_file():
        raise AnchorError(f"--sign: no key file {key}")
    date = _epoch(anchor.at)
    with tempfile.TemporaryDirectory(prefix="harness-anchor-") as folder:
        repo = Path(folder)
        _git(repo, "init", "-q", "--bare")
        header = _tag_header(repo, anchor.payload(), date)
        blob = header.split(b"\n", 1)[0].removeprefix(b"object ").decode()
        _git(repo, "-c", "gpg.format=ssh", "-c", f"user.signingKey={key.resolve()}", "tag", "-s",
             "-m", anchor.payload(), "anchor", blob, date=date)
        raw = _git(repo, "cat-file", "tag", "anchor")
    # Verification rebuilds the tag from the line: it must be exactly the header rebuilt here.
    if not raw.startswith(header + SIGNATURE_BEGIN):
        raise AnchorError("git wrote a signed tag of an unexpected form")
    return anchor.model_copy(update={"sig": base64.b64encode(raw[len(header):]).decode("ascii")})


def signature_problem(anchor: Anchor, trusted_key: Path) -> str | None:
    """None when `git verify-tag` accepts the anchor's signature by a key of `trusted_key`
    (a public key file, or an allowed-signers file); else why not."""
    if anchor.sig is None:
        return "it is not signed"
    try:
        block = base64.b64decode(anchor.sig, validate=True)
    except (binascii.Error, ValueError):
        return "its sig field is not base64"
    if not block.startswith(SIGNATURE_BEGIN):
        return "its sig field is not an SSH signature"
    trusted = Path(trusted_key).expanduser()
    if not trusted.is_file():
        return f"no key file {trusted}"
    with tempfile.TemporaryDirectory(prefix="harness-anchor-") as folder:
        repo = Path(folder) / "repo"
        repo.mkdir()
        _git(repo, "init", "-q", "--bare")
        signers = Path(folder) / "allowed_signers"
        signers.write_text(_allowed_signers(trusted.read_text(encoding="utf-8", errors="replace")))
        try:
            tag = _git(repo, "mktag", input=_tag_header(repo, anchor.payload(), _epoch(anchor.at)) + block)
            _git(repo, "-c", f"gpg.ssh.allowedSignersFile={signers}", "verify-tag", tag.decode().strip())
        except AnchorError as exc:
            return f"the signature does not verify with {trusted} ({exc})"
    return None


def _allowed_signers(text: str) -> str:
    """An allowed-signers file from a public key file (one key per line) or from one already."""
    lines = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        is_key = parts[0].startswith(("ssh-", "ecdsa-", "sk-"))
        lines.append(f"{_PRINCIPAL} {line.strip()}" if is_key else line.strip())
    return "\n".join(lines) + "\n"


# -- checking a lineage against anchors -----------------------------------------


def anchor_problems(lineage: Lineage, anchors: list[Anchor], trusted_key: Path | None = None) -> list[str]:
    """Tamper findings: each anchor of this run whose state the lineage does not extend, or whose
    signature does not verify with `trusted_key` (when given)."""
    problems = []
    run_id = lineage.run_info().run_id
    for anchor in anchors:
        where = f"tamper: {anchor.describe()}"
        if anchor.run != run_id:
            problems.append(f"{where}: it pins run {anchor.run!r}, this is run {run_id!r}")
            continue
        if trusted_key is not None:
            problem = signature_problem(anchor, trusted_key)
            if problem is not None:
                problems.append(f"{where}: {problem}")
                continue
        problem = _extension_problem(lineage, anchor)
        if problem is not None:
            problems.append(f"{where}: {problem}")
    return problems


def _extension_problem(lineage: Lineage, anchor: Anchor) -> str | None:
    git = lineage.git
    if git.run("cat-file", "-e", f"{anchor.ledger}^{{commit}}", check=False).returncode != 0:
        return "its ledger commit is not in this lineage (the history was replaced)"
    head = lineage.ledger_head()
    if head is None:
        return "this lineage has no ledger"
    is_ancestor = git.run("merge-base", "--is-ancestor", anchor.ledger, head, check=False).returncode
    if is_ancestor != 0:
        return f"its ledger commit is not in the history of {LEDGER_REF} (the history was replaced)"
    listed = git.text("ls-tree", "-r", "--name-only", anchor.ledger, "--", f"{TRIALS_DIR}/")
    count = sum(1 for path in listed.splitlines() if path.endswith(".json"))
    if count != anchor.trials:
        return f"its ledger commit holds {count} trial records, the anchor says {anchor.trials}"
    return None
