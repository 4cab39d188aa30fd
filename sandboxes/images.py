"""Images for the Docker sandbox, made without a registry.

Two functions, both idempotent (they return at once when their tag exists):

* `bootstrap_base_image()` makes the *base image* offline: `debootstrap` a
  minimal Debian (bookworm: python3 3.11, glibc 2.36, so cp311 manylinux
  wheels fit) from the Debian mirror apt already uses, with python3 and
  python3-venv, `python` on PATH and the apt caches and docs removed; the
  rootfs is tarred and `docker import`ed as `harness-base:<suite>-<hash>`
  (the hash covers the suite, the packages and the bootstrap procedure) and
  tagged `harness-base:<suite>` too. Needs root, `debootstrap`, and the
  Debian mirror (not a Docker registry).
* `ensure_image(recipe_dir, spec)` returns the image id a recipe's trials
  run in: the recipe's `[sandbox] image` (looked up locally, pulled only when
  missing), or its `[sandbox] dockerfile` built FROM the base image, or the
  base image itself when the recipe names neither.

Building a recipe's Dockerfile
------------------------------
The build context is staged in a temporary folder:

* the Dockerfile; if it lies in the recipe folder itself, only the Dockerfile
  and a `requirements.txt` next to it are taken (the recipe folder also holds
  the source and the evaluator, which are mounted, never baked in); if it lies
  in a folder of its own (`docker/Dockerfile`), that whole folder is taken;
* `wheels/`: when a `requirements.txt` is present, `pip download` of it for
  the base image's Python and platform (`--only-binary :all:`), with the
  host's pip configuration (find-links, local indexes, proxies). The base
  image has no network and no index: the Dockerfile installs from these
  wheels with `pip install --no-index --find-links`.

The build runs with `network_mode="none"`, the build argument `BASE` set to
the base image's tag, and labels `harness=1`, `harness.recipe`,
`harness.context`, `harness.wheels`. Its tag is
`harness-recipe-<name>:<first 16 hex of the context hash>`, where the context
hash covers every staged file but the wheels (the Dockerfile, the
requirements, ...), the base image id and the wheel target. Pin every
requirement (the transitive ones too): the tag then names the image's
content, and an existing tag is reused without downloading anything. The
sha256 over the downloaded wheels is kept in the `harness.wheels` label.

The image *id* (`sha256:...`, content-addressed by the engine) is what the
sandbox reports in every `PhaseResult.image`.

Command line (CI uses it; the harness's `harness sandbox bootstrap` calls the
same functions)::

    python -m sandboxes.images bootstrap [--suite bookworm] [--mirror URL] [--force]
    python -m sandboxes.images build RECIPE_DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandboxes.errors import SandboxError, SandboxUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from harness.types import SandboxSpec

log = logging.getLogger(__name__)

BASE_REPOSITORY = "harness-base"
DEFAULT_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv")
BOOTSTRAP_VERSION = "1"
"""Bump when the bootstrap procedure changes: it is part of the base tag's hash."""
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_RECIPE_VERSION = "1"
"""Bump when the staging of recipe build contexts changes: part of the recipe tag's hash."""

Say = Callable[[str], None]


def _say_default(text: str) -> None:
    log.info("%s", text)


# --------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------


def connect(timeout_s: float = 60.0) -> Any:
    """A docker client whose engine answers, or `SandboxUnavailable` saying how to get one."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a dependency
        raise SandboxUnavailable("the docker sandbox needs the Python package `docker` (pip install 'docker>=7,<8')") from exc
    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine here"
        raise SandboxUnavailable(
            "no Docker engine answers "
            f"({os.environ.get('DOCKER_HOST') or 'unix:///var/run/docker.sock'}: {_short(exc)}); "
            "install one (`apt-get install docker.io`) and start it (`dockerd &` or "
            "`systemctl start docker`), or use the local sandbox"
        ) from exc
    return client


def engine_available(timeout_s: float = 3.0) -> bool:
    """Whether a Docker engine answers a ping within `timeout_s` (for `--sandbox auto`)."""
    try:
        client = connect(timeout_s)
    except SandboxUnavailable:
        return False
    client.close()
    return True


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def image_id(client: Any, ref: str) -> str | None:
    """The id of a local image (by tag or id), None when the engine has none."""
    import docker

    try:
        return client.images.get(ref).id
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        if getattr(exc, "status_code", None) == 404:
            return None
        raise


# --------------------------------------------------------------------------
# The base image
# --------------------------------------------------------------------------


def base_image_tag(suite: str = DEFAULT_SUITE, packages: tuple[str, ...] = BASE_PACKAGES) -> str:
    """`harness-base:<suite>-<hash>`: the hash covers what goes into the base image."""
    digest = hashlib.sha256(
        json.dumps({"v": BOOTSTRAP_VERSION, "suite": suite, "packages": sorted(packages),
                    "arch": platform.machine()}).encode()
    ).hexdigest()
    return f"{BASE_REPOSITORY}:{suite}-{digest[:12]}"


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (sources.list or deb822), else deb.debian.org."""
    candidates: list[Path] = [Path("/etc/apt/sources.list")]
    folder = Path("/etc/apt/sources.list.d")
    if folder.is_dir():
        candidates += sorted(p for p in folder.iterdir() if p.suffix in (".list", ".sources"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            # one-line format: deb [opts] URI suite components
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and "security" not in m.group(1) and "debian" in m.group(1):
                return m.group(1).rstrip("/")
            # deb822 format: URIs: ...
            m = re.match(r"^URIs:\s*(\S+)", line)
            if m and "security" not in m.group(1) and "debian" in m.group(1):
                return m.group(1).rstrip("/")
    return DEFAULT_MIRROR


def bootstrap_base_image(
    *,
    suite: str = DEFAULT_SUITE,
    mirror: str | None = None,
    force: bool = False,
    client: Any = None,
    work_dir: str | os.PathLike[str] | None = None,
    say: Say = _say_default,
) -> str:
    """Make the base image offline (see the module docstring); returns its id.

    Returns the existing image's id at once when its tag exists (unless
    `force`). Raises `SandboxUnavailable` when this machine cannot do it (no
    engine, not root, no debootstrap) and `SandboxError` when it failed.
    """
    client = client or connect()
    tag = base_image_tag(suite)
    alias = f"{BASE_REPOSITORY}:{suite}"
    existing = image_id(client, tag)
    if existing and not force:
        if image_id(client, alias) != existing:
            client.images.get(existing).tag(BASE_REPOSITORY, suite)
        return existing
    if os.geteuid() != 0:
        raise SandboxUnavailable("making the base image needs root (debootstrap, chroot); run it as root")
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise SandboxUnavailable("making the base image needs debootstrap: apt-get install -y debootstrap")
    mirror = mirror or debian_mirror()
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="harness-rootfs-", dir=work_dir or "/var/tmp"))
    rootfs = tmp / "rootfs"
    try:
        say(f"debootstrap {suite} from {mirror} (minbase + {', '.join(BASE_PACKAGES)}) into {rootfs}")
        done = subprocess.run(  # noqa: PLW1510 - the status is checked below
            [debootstrap, "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES), suite, str(rootfs), mirror],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        if done.returncode != 0:
            tail = done.stdout.decode(errors="replace")[-3000:]
            raise SandboxError(f"debootstrap failed (exit {done.returncode}):\n{tail}")
        facts = _finish_rootfs(rootfs)
        say(f"rootfs ready ({_du(rootfs) >> 20} MiB, python {facts['python']}, glibc {facts['glibc']}); importing")
        tarball = tmp / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tarball), "."],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        repository, tag_name = tag.split(":", 1)
        changes = [
            f"ENV PATH={SYSTEM_PATH}",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
            "LABEL harness=1",
            f"LABEL harness.base={tag}",
            f"LABEL harness.suite={suite}",
            f"LABEL harness.python={facts['python']}",
            f"LABEL harness.glibc={facts['glibc']}",
            f"LABEL harness.arch={platform.machine()}",
        ]
        client.api.import_image_from_file(str(tarball), repository=repository, tag=tag_name, changes=changes)
        new_id = image_id(client, tag)
        if new_id is None:
            raise SandboxError(f"docker import did not produce {tag}")
        client.images.get(new_id).tag(BASE_REPOSITORY, suite)
        say(f"base image {tag} ({new_id[:19]}) made in {time.monotonic() - started:.0f} s")
        return new_id
    finally:
        _remove_rootfs(tmp)


def _finish_rootfs(rootfs: Path) -> dict[str, str]:
    """`python` on PATH, caches and docs removed; returns the python and glibc versions."""
    python_link = rootfs / "usr/local/bin/python"
    python_link.parent.mkdir(parents=True, exist_ok=True)
    if not python_link.exists():
        python_link.symlink_to("/usr/bin/python3")
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/*.bin",
        "var/lib/apt/lists/*",
        "usr/share/doc/*",
        "usr/share/man/*",
        "usr/share/info/*",
        "var/log/*.log",
        "var/log/apt/*",
    ):
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_file() or path.is_symlink():
                path.unlink()
    out = subprocess.run(
        ["chroot", str(rootfs), "/usr/bin/python3", "-I", "-c",
         "import sys, platform; print('%d.%d' % sys.version_info[:2], platform.libc_ver()[1])"],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
    ).stdout.decode().split()
    return {"python": out[0], "glibc": out[1]}


def _du(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            pass
    return total


def _remove_rootfs(tmp: Path) -> None:
    """Unmount whatever a failed debootstrap left mounted, then remove (never crossing file systems)."""
    prefix = str(tmp.resolve()) + "/"
    try:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        mounts = []
    for point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], stdin=subprocess.DEVNULL, capture_output=True)
    subprocess.run(["rm", "-rf", "--one-file-system", str(tmp)], stdin=subprocess.DEVNULL, capture_output=True)


# --------------------------------------------------------------------------
# Recipe images
# --------------------------------------------------------------------------


def ensure_image(
    recipe_dir: str | os.PathLike[str],
    spec: SandboxSpec | None = None,
    *,
    client: Any = None,
    bootstrap: bool = True,
    say: Say = _say_default,
) -> str:
    """The id of the image a recipe's trials run in; builds or bootstraps it when missing.

    `spec` is the recipe's `[sandbox]` table (`harness.types.SandboxSpec`;
    read from `recipe_dir/recipe.toml` when None). With `bootstrap=False`, a
    missing base image is an error instead of being made.
    """
    recipe_dir = Path(recipe_dir).resolve()
    if spec is None:
        spec = _read_sandbox_spec(recipe_dir)
    client = client or connect()
    if spec.image and not spec.dockerfile:
        found = image_id(client, spec.image)
        if found:
            return found
        say(f"pulling {spec.image}")
        try:
            return client.images.pull(spec.image).id
        except Exception as exc:  # noqa: BLE001
            raise SandboxUnavailable(
                f"the recipe's image {spec.image!r} is not on this engine and cannot be pulled "
                f"({_short(exc)}); load it (`docker load`) or give the recipe a dockerfile"
            ) from exc
    base_tag = base_image_tag()
    base_id = image_id(client, base_tag)
    if base_id is None:
        if not bootstrap:
            raise SandboxUnavailable(
                f"no base image {base_tag}; make it with `harness sandbox bootstrap` "
                "(or `python -m sandboxes.images bootstrap`)"
            )
        say(f"no base image {base_tag} yet: bootstrapping it (about a minute)")
        base_id = bootstrap_base_image(client=client, say=say)
    if not spec.dockerfile:
        return base_id
    return build_recipe_image(recipe_dir, spec.dockerfile, client=client, base_tag=base_tag, base_id=base_id, say=say)


def _read_sandbox_spec(recipe_dir: Path) -> SandboxSpec:
    import tomllib

    from harness.types import SandboxSpec

    data = tomllib.loads((recipe_dir / "recipe.toml").read_text())
    return SandboxSpec(**data.get("sandbox", {}))


def context_files(recipe_dir: Path, dockerfile: str) -> dict[str, Path]:
    """Files of the build context (name in the context -> host file), see the module docstring."""
    path = (recipe_dir / dockerfile).resolve()
    if not path.is_relative_to(recipe_dir):
        raise SandboxError(f"the recipe's dockerfile {dockerfile!r} lies outside the recipe folder")
    if not path.is_file():
        raise SandboxError(f"the recipe's dockerfile {path} does not exist")
    folder = path.parent
    if folder == recipe_dir:
        files = {path.name: path}
        requirements = folder / "requirements.txt"
        if requirements.is_file():
            files["requirements.txt"] = requirements
        return files
    files = {}
    for item in sorted(folder.rglob("*")):
        if item.is_symlink():
            raise SandboxError(f"the build context {folder} holds a symlink: {item}")
        if item.is_file():
            files[item.relative_to(folder).as_posix()] = item
    if "wheels" in {Path(name).parts[0] for name in files}:
        raise SandboxError(f"the build context {folder} must not hold a wheels/ folder: the harness stages it")
    return files


def build_recipe_image(
    recipe_dir: Path,
    dockerfile: str,
    *,
    client: Any,
    base_tag: str,
    base_id: str,
    say: Say = _say_default,
) -> str:
    """Build (or reuse) the recipe image; returns its id."""
    import docker

    files = context_files(recipe_dir, dockerfile)
    dockerfile_name = (recipe_dir / dockerfile).resolve().name  # at the top of the context either way
    base_image = client.images.get(base_id)
    target = _wheel_target(base_image.labels or {})
    hasher = hashlib.sha256()
    hasher.update(json.dumps({"v": IMAGE_RECIPE_VERSION, "base": base_id, "wheels_for": target}, sort_keys=True).encode())
    for name, path in sorted(files.items()):
        hasher.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    context_hash = hasher.hexdigest()
    name = re.sub(r"[^a-z0-9_.-]", "-", recipe_dir.name.lower()).strip("-.") or "recipe"
    tag = f"harness-recipe-{name}:{context_hash[:16]}"
    existing = image_id(client, tag)
    if existing:
        return existing

    started = time.monotonic()
    ctx = Path(tempfile.mkdtemp(prefix="harness-build-"))
    try:
        for rel, path in files.items():
            dest = ctx / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        wheels = ctx / "wheels"
        wheels.mkdir()
        wheels_hash = ""
        if (ctx / "requirements.txt").is_file():
            say(f"downloading wheels for {tag} (python {target['python']}, {target['platform']})")
            _pip_download(ctx / "requirements.txt", wheels, target)
            wh = hashlib.sha256()
            for whl in sorted(wheels.iterdir()):
                wh.update(whl.name.encode() + b"\0" + _file_sha256(whl).encode() + b"\n")
            wheels_hash = wh.hexdigest()
        say(f"building {tag} FROM {base_tag}")
        try:
            image, build_log = client.images.build(
                path=str(ctx),
                dockerfile=dockerfile_name,
                tag=tag,
                buildargs={"BASE": base_tag},
                rm=True,
                forcerm=True,
                pull=False,
                network_mode="none",
                use_config_proxy=False,
                labels={
                    "harness": "1",
                    "harness.recipe": name,
                    "harness.context": context_hash,
                    "harness.wheels": wheels_hash,
                    "harness.base": base_id,
                },
            )
        except docker.errors.BuildError as exc:
            lines = [str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log]
            tail = "".join(lines)[-3000:]
            raise SandboxError(f"building {tag} from {recipe_dir / dockerfile} failed: {exc.msg}\n{tail}") from exc
        except docker.errors.APIError as exc:
            raise SandboxError(f"building {tag} failed: {_short(exc)}") from exc
        for chunk in build_log:
            if "stream" in chunk and chunk["stream"].strip():
                log.debug("build %s: %s", tag, chunk["stream"].rstrip())
        say(f"built {tag} ({image.id[:19]}) in {time.monotonic() - started:.0f} s")
        _prune_build_stages(client)
        return image.id
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


def _prune_build_stages(client: Any) -> None:
    """Remove the untagged images of finished build stages (the wheels and a second venv: GBs)."""
    try:
        client.images.prune(filters={"dangling": True, "label": "harness=1"})
    except Exception as exc:  # noqa: BLE001 - only disk space is at stake
        log.warning("could not prune build stages: %s", _short(exc))


def _wheel_target(labels: dict[str, str]) -> dict[str, str]:
    """Python version and platform tag the base image's interpreter accepts."""
    python = labels.get("harness.python", "3.11")
    glibc = labels.get("harness.glibc", "2.36")
    arch = labels.get("harness.arch", platform.machine())
    return {"python": python, "platform": f"manylinux_{glibc.replace('.', '_')}_{arch}"}


def _platform_tags(platform_tag: str) -> list[str]:
    """`manylinux_2_36_x86_64` and every older manylinux tag it accepts (pip does not expand them)."""
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform_tag)
    if not m:
        return [platform_tag]
    major, minor, arch = int(m.group(1)), int(m.group(2)), m.group(3)
    tags = [f"manylinux_{major}_{v}_{arch}" for v in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{arch}" for v, name in legacy.items() if v <= minor]
    return tags


def _pip_download(requirements: Path, dest: Path, target: dict[str, str]) -> None:
    abi = "cp" + target["python"].replace(".", "")
    argv = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", *[arg for tag in _platform_tags(target["platform"]) for arg in ("--platform", tag)],
        "--python-version", target["python"],
        "--implementation", "cp", "--abi", abi,
        "-d", str(dest), "-r", str(requirements),
    ]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True)
    if done.returncode != 0:
        err = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
        raise SandboxError(f"pip download of {requirements} failed (exit {done.returncode}):\n{err}")


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.images", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    boot = sub.add_parser("bootstrap", help="make the offline base image (idempotent)")
    boot.add_argument("--suite", default=DEFAULT_SUITE)
    boot.add_argument("--mirror", default=None, help="Debian mirror (default: the one apt uses)")
    boot.add_argument("--force", action="store_true", help="remake it even when the tag exists")
    build = sub.add_parser("build", help="build (or reuse) a recipe's image; prints its id")
    build.add_argument("recipe_dir", type=Path)
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = time.monotonic()
    try:
        if args.command == "bootstrap":
            result = bootstrap_base_image(suite=args.suite, mirror=args.mirror, force=args.force, say=say)
        else:
            result = ensure_image(args.recipe_dir, say=say)
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result)
    say(f"{args.command}: {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
