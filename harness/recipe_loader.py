"""Find recipe folders, load their `recipe.toml` into a validated `RecipeSpec`, and
materialize their starting source.

Validation runs in two steps so that errors read well: the TOML data is first
checked against the JSON Schema exported from `RecipeSpec` (each error names the
file, the field path and what was expected), then pydantic builds the model and
runs the cross-field checks.

Where recipes come from (`resolve_recipe_folder`, in this order):

1. a path to a folder holding `recipe.toml`;
2. a recipe shipped with the harness (`recipes/<name>/`);
3. a recipe an installed package registers in the entry point group
   `harness.recipes` (`name = value`, where value is a module or package whose
   folder holds `recipe.toml`, `module:attribute` naming such a folder, or a
   folder path, relative paths taken from the distribution's location).

Where a recipe's starting source comes from (`LoadedRecipe.source_dir`):

* `source = { type = "local", path = "src" }`: a folder of the recipe;
* `source = { type = "git", url = ..., commit = <40 hex>, subdir = "" }`: the
  upstream repository, cloned at run time into the recipe cache and checked
  out at the pinned commit. The cache lives in `$HARNESS_CACHE/recipes`
  (default `$XDG_CACHE_HOME/harness/recipes`, i.e. `~/.cache/harness/recipes`)
  as `<sha256(url)[:16]>/<commit>/`, one plain checkout per pinned commit.
  Every use verifies that `git rev-parse HEAD` is the pin and that the work
  tree holds nothing else; a checkout that fails this is removed and cloned
  again. A commit the repository does not have, or a repository that cannot
  be reached, is a `RecipeError` saying so. Fetched code is never written
  into the harness's own tree. Git's own configuration applies, so a mirror
  can stand in for an upstream with `url.<mirror>.insteadOf <upstream>`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import jsonschema
from pydantic import ValidationError

from harness.eval_view import path_problem
from harness.types import Frozen, GitSource, LocalSource, RecipeSpec

log = logging.getLogger(__name__)

RECIPES_ROOT = Path(__file__).resolve().parent.parent / "recipes"
DEFAULT_RECIPE = "collision"
ENTRY_POINT_GROUP = "harness.recipes"
"""Entry point group through which installed packages register recipes."""
CACHE_ENV = "HARNESS_CACHE"
"""Environment variable naming the harness's cache folder (git recipes land in its `recipes/`)."""
GIT_TIMEOUT_S = 900


class RecipeError(Exception):
    """A recipe that cannot be found or does not validate; the message says where and why."""


class LoadedRecipe(Frozen):
    spec: RecipeSpec
    """The validated spec."""
    folder: Path
    """The recipe folder (holding recipe.toml, the evaluator and, for local sources, the source)."""

    @property
    def evaluator_dir(self) -> Path:
        return self.folder / self.spec.evaluator.path

    @property
    def source_dir(self) -> Path:
        """The starting source; a git source is cloned into the recipe cache on first use."""
        return materialize_source(self.spec.source, self.folder)

    @property
    def is_git(self) -> bool:
        return isinstance(self.spec.source, GitSource)

    def knowledge(self) -> dict[str, str]:
        """The recipe's knowledge files, `knowledge/*.md` in the recipe folder (name -> text,
        sorted by name): what is known to work, rules, lessons, for the agents' briefs."""
        folder = self.folder / "knowledge"
        if not folder.is_dir():
            return {}
        return {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.md")) if path.is_file()}


# --------------------------------------------------------------------------
# Schema and parsing
# --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def recipe_json_schema() -> dict:
    """JSON Schema of recipe.toml, exported from the pydantic model."""
    return RecipeSpec.model_json_schema()


def load_recipe(name_or_path: str | os.PathLike[str]) -> LoadedRecipe:
    """Find and validate a recipe; a git source is not fetched until `source_dir` is used."""
    folder = resolve_recipe_folder(str(name_or_path))
    spec = parse_recipe_file(folder / "recipe.toml")
    recipe = LoadedRecipe(spec=spec, folder=folder)
    origin = str(folder / "recipe.toml")
    _confine(folder, spec.evaluator.path, "evaluator.path", origin)
    if not recipe.evaluator_dir.is_dir():
        raise RecipeError(f"{origin}: evaluator.path: folder {recipe.evaluator_dir} does not exist")
    for field, entry in (("evaluator.prepare", spec.evaluator.prepare), ("evaluator.score", spec.evaluator.score)):
        _confine(recipe.evaluator_dir, entry.partition(":")[0], field, origin)
    for rel in spec.evaluator.eval_files or []:
        problem = path_problem(recipe.evaluator_dir, rel)
        if problem is not None:
            raise RecipeError(f"{origin}: evaluator.eval_files: {problem}")
    if spec.sandbox.dockerfile:
        _confine(folder, spec.sandbox.dockerfile, "sandbox.dockerfile", origin)
    if isinstance(spec.source, LocalSource):
        _confine(folder, spec.source.path, "source.path", origin)
        if not recipe.source_dir.is_dir():
            raise RecipeError(f"{origin}: source.path: folder {recipe.source_dir} does not exist")
    if isinstance(spec.source, GitSource):
        _check_subdir(spec.source.subdir, origin=origin)
    return recipe


def _confine(folder: Path, rel: str, field: str, origin: str) -> None:
    """Refuse a recipe path that leads outside `folder`: absolute, through `..`, or through a
    symlink (an evaluator taken from elsewhere would not be the recipe's own)."""
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise RecipeError(f"{origin}: {field}: {rel!r} must be a relative path inside {folder}")
    root = folder.resolve()
    target = (folder / rel).resolve()
    if target != root and root not in target.parents:
        raise RecipeError(f"{origin}: {field}: {rel!r} leads outside {folder} (to {target})")


def parse_recipe_file(path: Path) -> RecipeSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # an integer past Python's digit limit
        raise RecipeError(f"{path}: not valid TOML: {str(exc).split(';')[0]}") from None
    except RecursionError:
        raise RecipeError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_recipe_data(data, origin=str(path))


MAX_DEPTH = 16
"""Tables and arrays nest at most this deep (a recipe needs 4); deeper data is refused
before validation, which recurses."""
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _field(path: tuple | list) -> str:
    """A field path as `a.b.0`; keys with other characters quoted, so that a message stays one line."""
    parts = [str(p) if isinstance(p, int) or _PLAIN_KEY.fullmatch(p) else repr(p) for p in path]
    text = ".".join(parts) or "(top level)"
    return text if len(text) <= 200 else text[:197] + "..."


def _value_problems(data: dict, origin: str) -> list[str]:
    """What no schema says: NaN and infinities, NUL characters, nesting too deep."""
    problems: list[str] = []
    stack: list[tuple[tuple[str | int, ...], object]] = [((), data)]
    while stack and len(problems) < 10:
        where, value = stack.pop()
        field = _field(where)
        if len(where) > MAX_DEPTH:
            problems.append(f"{origin}: {field}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{origin}: {field}: expected a finite number, got {value}")
        elif isinstance(value, str) and "\0" in value:
            problems.append(f"{origin}: {field}: holds a NUL character")
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\0" in key:
                    problems.append(f"{origin}: {field}: key {key[:60]!r} holds a NUL character")
                stack.append((where + (key,), item))
        elif isinstance(value, list):
            stack.extend((where + (i,), item) for i, item in enumerate(value))
    return sorted(problems)


def _spec_problems(spec: RecipeSpec, origin: str) -> list[str]:
    """Environment names no process can have (the sandbox would fail at the first trial).

    Globs reaching outside the source are left to `harness recipe check` (its isolation item)."""
    problems = []
    for level, fidelity in spec.fidelities.items():
        for name in fidelity.env:
            if not _ENV_NAME.fullmatch(name):
                problems.append(f"{origin}: fidelities.{level}.env: {name[:60]!r} is not an environment variable name")
    return problems


def parse_recipe_data(data: dict, origin: str) -> RecipeSpec:
    problems = _value_problems(data, origin)
    if problems:
        raise RecipeError("\n".join(problems))
    validator = jsonschema.Draft202012Validator(recipe_json_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise RecipeError("\n".join(_schema_message(origin, e) for e in errors[:10]))
    try:
        spec = RecipeSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = _field(err["loc"])
            lines.append(f"{origin}: {field}: {err['msg']}")
        raise RecipeError("\n".join(lines)) from None
    problems = _spec_problems(spec, origin)
    if problems:
        raise RecipeError("\n".join(problems))
    return spec


def _schema_message(origin: str, error: jsonschema.ValidationError) -> str:
    field = _field(list(error.absolute_path))
    expected = _expected(error)
    if len(expected) > 300:  # jsonschema quotes whole values in some messages
        expected = expected[:297] + "..."
    return f"{origin}: {field}: {expected}"


def _expected(error: jsonschema.ValidationError) -> str:
    got = json.dumps(error.instance, default=str)
    if len(got) > 80:
        got = got[:77] + "..."
    if error.validator == "required":
        return error.message.replace("is a required property", "is required but missing")
    if error.validator == "additionalProperties":
        return f"unknown field(s): {error.message.split('(')[-1].rstrip(')')}"
    if error.validator == "type":
        return f"expected {error.validator_value}, got {got}"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        return f"expected a number {word[error.validator]} {error.validator_value}, got {got}"
    if error.validator == "enum":
        return f"expected one of {error.validator_value}, got {got}"
    if error.validator == "pattern":
        return f"expected text matching {error.validator_value!r}, got {got}"
    return f"{error.message}"


# --------------------------------------------------------------------------
# Finding recipes: shipped folders and entry points
# --------------------------------------------------------------------------


class RecipeEntry(Frozen):
    """A recipe the harness can find by name."""

    name: str
    """Name it is found by."""
    folder: Path | None
    """Folder holding recipe.toml (None when the registration is broken)."""
    origin: str
    """`shipped`, or `entry point NAME = VALUE (distribution D)`."""
    problem: str | None = None
    """Why a registered recipe cannot be used."""


def shipped_recipes() -> dict[str, Path]:
    """Recipes shipped with the harness: name -> folder."""
    return {p.parent.name: p.parent for p in sorted(RECIPES_ROOT.glob("*/recipe.toml"))}


def entry_point_recipes() -> list[RecipeEntry]:
    """Recipes registered by installed packages (group `harness.recipes`), broken ones included."""
    entries = []
    seen: set[str] = set()
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "unknown"
        origin = f"entry point {ep.name} = {ep.value} (distribution {dist_name})"
        if ep.name in seen:
            entries.append(RecipeEntry(name=ep.name, folder=None, origin=origin,
                                       problem="another installed package registers the same name first"))
            continue
        seen.add(ep.name)
        try:
            folder = _entry_point_folder(ep)
        except RecipeError as exc:
            entries.append(RecipeEntry(name=ep.name, folder=None, origin=origin, problem=str(exc)))
            continue
        entries.append(RecipeEntry(name=ep.name, folder=folder, origin=origin))
    return entries


def _entry_point_folder(ep: importlib.metadata.EntryPoint) -> Path:
    value = ep.value.strip()
    dist = getattr(ep, "dist", None)
    if _looks_like_path(value):
        folder = Path(value).expanduser()
        if not folder.is_absolute():
            base = Path(str(dist.locate_file(""))) if dist is not None else Path.cwd()
            folder = base / folder
    else:
        module_name, _, attribute = value.partition(":")
        try:
            if attribute:
                module = importlib.import_module(module_name)
                target = module
                for part in attribute.split("."):
                    target = getattr(target, part)
                if not isinstance(target, (str, os.PathLike)):
                    raise RecipeError(f"{value} is a {type(target).__name__}, not a path to a recipe folder")
                folder = Path(target)
                if not folder.is_absolute():
                    folder = Path(module.__file__ or ".").parent / folder
            else:
                spec = importlib.util.find_spec(module_name)
                if spec is None:
                    raise RecipeError(f"module {module_name!r} is not installed")
                if spec.submodule_search_locations:
                    folder = Path(list(spec.submodule_search_locations)[0])
                elif spec.origin:
                    folder = Path(spec.origin).parent
                else:
                    raise RecipeError(f"module {module_name!r} has no folder")
        except RecipeError:
            raise
        except Exception as exc:  # an import error in someone else's package is reported, not raised
            raise RecipeError(f"cannot resolve {value!r}: {type(exc).__name__}: {exc}") from None
    folder = folder.resolve()
    if not (folder / "recipe.toml").is_file():
        raise RecipeError(f"{folder} holds no recipe.toml")
    return folder


def _looks_like_path(value: str) -> bool:
    return "/" in value or os.sep in value or value.startswith((".", "~"))


def recipe_entries() -> list[RecipeEntry]:
    """Every recipe findable by name: shipped ones first, then registered ones (shadowed
    names and broken registrations included, with their problem)."""
    shipped = shipped_recipes()
    entries = [RecipeEntry(name=n, folder=f, origin="shipped") for n, f in shipped.items()]
    for entry in entry_point_recipes():
        if entry.name in shipped and entry.problem is None:
            entry = entry.model_copy(update={"problem": "shadowed by the shipped recipe of the same name"})
        entries.append(entry)
    return entries


def available_recipes() -> list[str]:
    """Names of the recipes the harness can load by name (shipped and registered)."""
    return sorted({e.name for e in recipe_entries() if e.problem is None})


def resolve_recipe_folder(name_or_path: str) -> Path:
    """A path to a folder holding recipe.toml, a shipped recipe's name, or a registered one's."""
    candidate = Path(name_or_path).expanduser()
    if (candidate / "recipe.toml").is_file():
        return candidate.resolve()
    shipped = RECIPES_ROOT / name_or_path
    if "/" not in name_or_path and (shipped / "recipe.toml").is_file():
        return shipped
    for entry in entry_point_recipes():
        if entry.name == name_or_path:
            if entry.problem is not None or entry.folder is None:
                raise RecipeError(f"recipe {name_or_path!r} ({entry.origin}) cannot be used: {entry.problem}")
            return entry.folder
    known = ", ".join(available_recipes()) or "none"
    raise RecipeError(
        f"no recipe named {name_or_path!r}: not a shipped or registered recipe (known: {known}) "
        "and not a folder holding recipe.toml"
    )


# --------------------------------------------------------------------------
# Sources and the recipe cache
# --------------------------------------------------------------------------


def materialize_source(source: LocalSource | GitSource, folder: Path) -> Path:
    """The folder holding a recipe's starting source (cloned and verified for git sources)."""
    if isinstance(source, LocalSource):
        return folder / source.path
    checkout = git_checkout(source.url, source.commit)
    subdir = _check_subdir(source.subdir, origin=f"{folder / 'recipe.toml'}")
    target = (checkout / subdir).resolve() if subdir else checkout
    if not target.is_dir():
        raise RecipeError(
            f"{folder / 'recipe.toml'}: source.subdir: {source.subdir!r} is not a folder of "
            f"{source.url} at {source.commit}"
        )
    return target


def _check_subdir(subdir: str, origin: str) -> str:
    parts = Path(subdir).parts
    if Path(subdir).is_absolute() or ".." in parts:
        raise RecipeError(f"{origin}: source.subdir: {subdir!r} must be a relative path inside the repository")
    return subdir.strip("/")


def cache_root() -> Path:
    """Folder of the recipe cache: `$HARNESS_CACHE/recipes`, else `~/.cache/harness/recipes`."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser() / "recipes"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "harness" / "recipes"


def checkout_path(url: str, commit: str, root: Path | None = None) -> Path:
    """Where the checkout of `url` at `commit` lives in the cache (whether or not it exists)."""
    return (root or cache_root()) / hashlib.sha256(url.encode("utf-8")).hexdigest()[:16] / commit


def git_checkout(url: str, commit: str, *, root: Path | None = None) -> Path:
    """A verified checkout of `url` at `commit` in the recipe cache, cloned on first use.

    Raises `RecipeError` when git is missing, the repository cannot be fetched, it
    does not have the commit, or the checkout does not come out at the pin."""
    if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
        raise RecipeError(f"{commit!r} is not a full commit sha (40 lowercase hex digits)")
    if shutil.which("git") is None:
        raise RecipeError(f"git sources need the `git` command, which is not installed (recipe source {url})")
    dest = checkout_path(url, commit, root)
    base = dest.parent
    base.mkdir(parents=True, exist_ok=True)
    with _locked(base / ".lock"):
        (base / "url").write_text(url + "\n", encoding="utf-8")
        if dest.exists():
            problem = verify_checkout(dest, commit)
            if problem is None:
                return dest
            log.warning("recipe cache entry %s is not a clean checkout of %s (%s); cloning it again",
                        dest, commit, problem)
            shutil.rmtree(dest)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{commit[:12]}-", dir=base))
        tmp.chmod(0o755)
        try:
            _fetch_commit(url, commit, tmp)
            problem = verify_checkout(tmp, commit)
            if problem is not None:
                raise RecipeError(f"the checkout of {url} at {commit} is wrong: {problem}")
            tmp.rename(dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


def verify_checkout(folder: Path, commit: str) -> str | None:
    """None when `folder` is a checkout of exactly `commit` with nothing else in its work
    tree; else what is wrong."""
    try:
        head = _git(folder, "rev-parse", "HEAD").strip()
    except RecipeError as exc:
        return f"not a git checkout ({exc})"
    if head != commit:
        return f"HEAD is {head}, not the pinned commit {commit}"
    try:
        status = _git(folder, "status", "--porcelain", "--untracked-files=all", "--ignored", "--no-renames")
    except RecipeError as exc:
        return f"git status failed ({exc})"
    changed = [line[3:] for line in status.splitlines() if line and "__pycache__" not in line]
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        return f"the work tree differs from the commit: {shown}"
    return None


def _fetch_commit(url: str, commit: str, dest: Path) -> None:
    """Fetch `commit` from `url` into an empty repository at `dest` and check it out.

    Three ways, each from a fresh repository, until one yields the commit with all it
    needs: the pinned commit alone at depth 1 (servers allow wants by sha over protocol
    v2); every branch and tag, for servers that refuse a sha; and the commit as a shallow
    one, for a source that sends the commit without its history and ignores `--depth`
    (a shallow git bundle: git's connectivity check would miss the absent parents)."""
    unreachable = None
    for attempt in (_fetch_by_sha, _fetch_every_ref, _fetch_as_shallow):
        _empty_repository(dest)
        try:
            attempt(url, commit, dest)
        except RecipeError as exc:
            if attempt is _fetch_every_ref:  # fetching every ref fails only when the repository does
                unreachable = exc
            continue
        if _has_commit(dest, commit):
            _git(dest, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit)
            return
    if unreachable is not None:
        raise RecipeError(f"cannot fetch the recipe source {url}: {unreachable}")
    raise RecipeError(
        f"the pinned commit {commit} is not in {url} (fetched by sha, from every branch and tag, "
        "and as a shallow commit)"
    )


def _empty_repository(dest: Path) -> None:
    for entry in dest.iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    _git(dest, "init", "--quiet")


def _fetch_by_sha(url: str, commit: str, dest: Path) -> None:
    _git(dest, "fetch", "--quiet", "--depth", "1", "--no-tags", url, commit)


def _fetch_every_ref(url: str, commit: str, dest: Path) -> None:
    _git(dest, "fetch", "--quiet", url, "+refs/heads/*:refs/remotes/upstream/*", "+refs/tags/*:refs/tags/*")


def _fetch_as_shallow(url: str, commit: str, dest: Path) -> None:
    # Declared shallow before the fetch, the commit's parents are not looked for; a
    # server told so would think the commit is already here, so this comes last.
    (dest / ".git" / "shallow").write_text(commit + "\n", encoding="ascii")
    _git(dest, "fetch", "--quiet", "--no-tags", url, commit)


def _has_commit(dest: Path, commit: str) -> bool:
    try:
        _git(dest, "cat-file", "-e", f"{commit}^{{commit}}")
    except RecipeError:
        return False
    return True


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
    cmd = ["git", "-c", "core.hooksPath=/dev/null", "-c", "core.autocrlf=false", *args]
    try:
        result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                                timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RecipeError(f"`git {' '.join(args)}` took longer than {GIT_TIMEOUT_S} s") from None
    if result.returncode != 0:
        lines = [ln.strip() for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
        fatal = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith(("fatal:", "error:"))]
        shown = "; ".join(fatal) or (lines[-1] if lines else f"git {args[0]} exited with {result.returncode}")
        raise RecipeError(shown)
    return result.stdout


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
