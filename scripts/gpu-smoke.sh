#!/usr/bin/env bash
# GPU smoke check of the GPU recipes, on a machine with NVIDIA GPUs and a Docker engine
# with the NVIDIA container runtime:
#
#   scripts/gpu-smoke.sh [--dry-run] [--out DIR] [RECIPE...]
#
# 1. bootstraps the offline base image and builds each recipe's image
#    (python -m sandboxes.images bootstrap | build recipes/NAME);
# 2. runs each recipe's baseline plus one trial (a comment-only edit of its first
#    editable file, which must score like the baseline) at its `smoke` fidelity (its
#    default level when it has none) in the Docker sandbox, the trials' phases asking
#    Docker for the visible GPUs (at most the recipe's budgets.gpus);
# 3. prints, per recipe: the baseline's and the trial's score and label, the run's
#    wallclock and the peak GPU memory nvidia-smi saw while it ran; then
#    `harness replay --verify` of each run.
#
# Default recipes: nanochat-d12 parameter-golf airbench96. Their data folders come from
# HARNESS_NANOCHAT_DATA, HARNESS_PARAMETER_GOLF_DATA and HARNESS_AIRBENCH96_DATA (see
# each recipe's README). --dry-run needs neither GPU nor Docker: it prints the
# commands it would run (the proposals are written, so they can be looked at).
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=0
out="runs/gpu-smoke-$(date -u +%Y%m%d-%H%M%S)"
recipes=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --out) out="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "gpu-smoke: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) recipes+=("$1") ;;
    esac
    shift
done
[ ${#recipes[@]} -gt 0 ] || recipes=(nanochat-d12 parameter-golf airbench96)
python=${PYTHON:-python3}

say() { printf '[gpu-smoke] %s\n' "$*" >&2; }
run() {
    if [ "$dry_run" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

if [ "$dry_run" = 0 ]; then
    command -v nvidia-smi >/dev/null || { say "nvidia-smi not found: this needs an NVIDIA GPU"; exit 1; }
    docker info >/dev/null 2>&1 || { say "no Docker engine answers (docker info)"; exit 1; }
    visible=$(nvidia-smi -L | grep -c '^GPU ' || true)
    [ "$visible" -gt 0 ] || { say "nvidia-smi lists no GPU"; exit 1; }
else
    visible=${GPU_SMOKE_GPUS:-8}
fi
for var in HARNESS_NANOCHAT_DATA HARNESS_PARAMETER_GOLF_DATA HARNESS_AIRBENCH96_DATA; do
    [ -n "${!var:-}" ] || say "$var is not set (the recipe that needs it fails its data preparation)"
done
mkdir -p "$out"

run "$python" -m sandboxes.images bootstrap
for name in "${recipes[@]}"; do
    run "$python" -m sandboxes.images build "recipes/$name"
done

# level, GPU ids and a one-line proposal file per recipe, from the recipe itself
plan() {
    "$python" - "$1" "$2" "$visible" <<'PY'
import difflib, json, sys
from pathlib import Path
from harness.recipe_loader import load_recipe

name, out, visible = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
recipe = load_recipe(name)
spec = recipe.spec
level = "smoke" if "smoke" in spec.fidelities else spec.default_fidelity
gpus = ",".join(str(i) for i in range(max(1, min(visible, spec.budgets.gpus))))
rel = next(p for p in spec.editable if "*" not in p)
old = (recipe.source_dir / rel).read_text(encoding="utf-8")
new = old + ("" if old.endswith("\n") else "\n") + "# gpu smoke: a comment-only trial\n"
diff = f"diff --git a/{rel} b/{rel}\n" + "".join(
    difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{rel}", f"b/{rel}"))
proposals = out / f"{name}.proposals.jsonl"
proposals.write_text(json.dumps({"hypothesis": "A comment-only edit scores like the baseline", "diff": diff}) + "\n")
print(level, gpus, proposals)
PY
}

summary=()
for name in "${recipes[@]}"; do
    read -r level gpus proposals < <(plan "$name" "$out")
    say "$name: fidelity $level, GPUs $gpus"
    peak_file="$out/$name.gpu-peak-mib"
    echo 0 >"$peak_file"
    sampler=""
    if [ "$dry_run" = 0 ]; then
        # peak of the summed memory.used over the GPUs, sampled every second while the run goes
        ( peak=0; while sleep 1; do
              used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | awk '{s+=$1} END {print s+0}')
              [ "$used" -gt "$peak" ] && peak=$used && echo "$peak" >"$peak_file"
          done ) &
        sampler=$!
    fi
    started=$(date +%s)
    status=0
    run "$python" -m harness.cli run "$name" --fidelity "$level" --sandbox docker --gpus "$gpus" \
        --agent scripted --proposals "$proposals" --trials 1 --out "$out" --run-id "$name" || status=$?
    took=$(( $(date +%s) - started ))
    [ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
    if [ "$dry_run" = 1 ]; then
        run "$python" -m harness.cli replay "$out/$name" --verify --json
        continue
    fi
    scores=$("$python" -m harness.cli replay "$out/$name" --verify --json \
        | "$python" -c 'import json, sys
r = json.load(sys.stdin)
print(" ".join("%s=%s:%s" % (t["id"], t["label"], t["score"]) for t in r["trials"]),
      "verified" if r["verified"] else "NOT-verified")' \
        || echo "no-replay")
    summary+=("$name  fidelity=$level  exit=$status  $scores  wallclock=${took}s  gpu_peak=$(cat "$peak_file")MiB")
done

if [ "$dry_run" = 0 ]; then
    printf '\n%s\n' "recipe results (scores from the evaluator, wallclock of the whole run):"
    printf '%s\n' "${summary[@]}"
fi
