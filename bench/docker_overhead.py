"""Per-phase overhead of the Docker sandbox against a bare `docker run`.

Runs the same commands (`python -c pass`, a short sleep) the two ways,
interleaved (the order alternates every repetition, so drift of the machine
hits both alike), and prints the medians side by side with their ratio:

* **harness**: `DockerSandbox.run` of a phase request shaped like a trial's
  (a read-only workspace and a read-write output folder, limits, labels),
  timed on the host around the whole call: create, attach, start, wait,
  inspect, remove, the capped log, the chown of the read-write mount.
* **bare**: `docker run --rm IMAGE CMD...` through the docker CLI, timed
  around the subprocess (no mounts, no limits, default bridge network).
* **bare-nonet**: the same with `--network none`, since setting up the
  bridge network is a large part of a bare run and the sandbox has none.

The ratio is harness / bare; ratio2 is harness / bare-nonet.

Also printed: the phase wallclock the harness *charges* the trial
(`PhaseResult.wallclock_s`, from just before start to the exit), so the part
of the overhead that counts against a trial's budget is visible. A trial is
two phases (train, eval), so its overhead is about twice the per-phase one.

Usage: python bench/docker_overhead.py [--image IMAGE] [--reps 15] [--sleep 1.0]
(default image: the offline base image; make it with
`python -m sandboxes.images bootstrap`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandboxes import Limits, Mount, PhaseRequest  # noqa: E402
from sandboxes.docker import DockerSandbox  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=None, help="image tag or id (default: the base image)")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds of the sleeping command")
    args = parser.parse_args()

    sandbox = DockerSandbox(image=args.image)
    image = sandbox.image
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        print("the docker CLI is needed for the bare runs", file=sys.stderr)
        return 1
    commands = {
        "python -c pass": ["python", "-c", "pass"],
        f"sleep {args.sleep:g} (python)": ["python", "-c", f"import time; time.sleep({args.sleep})"],
    }
    tmp = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    run_id = "bench-" + uuid.uuid4().hex[:8]

    def harness(argv: list[str]) -> tuple[float, float]:
        workspace = tmp / "workspace"
        out = tmp / ("out-" + uuid.uuid4().hex[:8])
        workspace.mkdir(exist_ok=True)
        out.mkdir()
        request = PhaseRequest(
            phase="train",
            command=argv,
            workdir="workspace",
            mounts=[Mount(source=workspace, target="workspace", read_only=True),
                    Mount(source=out, target="out", read_only=False)],
            limits=Limits(wallclock_s=60, memory_mb=1024, output_bytes=1_000_000),
            labels={"harness.run": run_id, "harness.trial": "t0001"},
            log_path=tmp / "phase.log",
        )
        started = time.monotonic()
        result = sandbox.run(request)
        total = time.monotonic() - started
        if result.exit_code != 0:
            raise SystemExit(f"harness run failed: {result.log_tail}")
        return total, result.wallclock_s

    def bare(argv: list[str], *flags: str) -> float:
        started = time.monotonic()
        done = subprocess.run([docker_cli, "run", "--rm", *flags, image, *argv], capture_output=True)
        total = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"docker run failed: {done.stderr.decode()[-500:]}")
        return total

    # Warm-up (page cache, engine), not measured.
    for argv in commands.values():
        harness(argv)
        bare(argv)

    samples: dict[str, dict[str, list[float]]] = {
        name: {"harness": [], "charged": [], "bare": [], "bare-nonet": []} for name in commands
    }
    for rep in range(args.reps):
        for name, argv in commands.items():
            ways = ["harness", "bare", "bare-nonet"]
            order = ways[rep % 3 :] + ways[: rep % 3]  # rotate who goes first
            for way in order:
                if way == "harness":
                    total, charged = harness(argv)
                    samples[name]["harness"].append(total)
                    samples[name]["charged"].append(charged)
                elif way == "bare":
                    samples[name]["bare"].append(bare(argv))
                else:
                    samples[name]["bare-nonet"].append(bare(argv, "--network", "none"))
    shutil.rmtree(tmp, ignore_errors=True)

    print(f"image {image[:19]}  reps {args.reps} (interleaved)  per phase, medians in seconds")
    header = (f"{'command':<22} {'harness':>9} {'bare':>9} {'nonet':>9} {'ratio':>7} {'ratio2':>7} "
              f"{'overhead':>9} {'charged':>9}")
    print(header)
    print("-" * len(header))
    for name, s in samples.items():
        h = statistics.median(s["harness"])
        b = statistics.median(s["bare"])
        n = statistics.median(s["bare-nonet"])
        c = statistics.median(s["charged"])
        print(f"{name:<22} {h:>9.3f} {b:>9.3f} {n:>9.3f} {h / b:>7.2f} {h / n:>7.2f} {h - b:>+9.3f} {c:>9.3f}")
    print("harness: DockerSandbox.run end to end; bare: `docker run --rm` via the CLI; nonet: the same with "
          "--network none;\nratio = harness/bare, ratio2 = harness/nonet, overhead = harness - bare; "
          "charged: the wallclock the trial is charged (start to exit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
