"""The `harness` command line (contract in DESIGN.md)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from harness import __version__
from harness.lazy_console import LazyConsole, escape

# Imports of every command are made inside it: `harness --help` and each command's
# `--help` start without loading pydantic models, rich, git access or the SDKs.
DEFAULT_RECIPE = "collision"
"""The recipe `run` and `sandbox build` use when none is named (harness.recipe_loader's default)."""

# Logs and CI output are read in wide windows: do not wrap trial lines at 80 columns there.
console = LazyConsole(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = LazyConsole(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def load_recipe(name_or_path):
    """`harness.recipe_loader.load_recipe`, imported when first needed."""
    from harness.recipe_loader import load_recipe as load

    return load(name_or_path)


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's input or the environment, reported in one line, never as a traceback."""
    from harness.agents.base import AgentError
    from harness.evaluator_code import EvaluatorCodeError
    from harness.loop import RunError
    from harness.rerun import RerunError
    from sandboxes.errors import SandboxError
    from trajectories.importers import TrajectoryImportError
    from trajectories.report import ReportError
    from trajectories.lineage import LineageError
    from trajectories.anchor import AnchorError
    from harness.recipe_loader import RecipeError

    return (
        RecipeError,
        AgentError, EvaluatorCodeError, RunError, RerunError, SandboxError, LineageError, TrajectoryImportError,
        ReportError, AnchorError,
    )


def main() -> None:
    try:
        cli(standalone_mode=False)
    except SystemExit:
        raise  # before the clauses below: naming the expected errors imports every command's modules
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted; an unfinished run continues with `harness run --resume RUN_DIR`")
        sys.exit(130)
    except _expected_errors() as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)  # one line, however long
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
def cli() -> None:
    """Auto-research harness: agents propose code edits to training recipes; every
    trial runs sandboxed, is scored by the recipe's evaluator and recorded in a git lineage."""


def recipe_of_run(info):
    """The recipe a run was made from: its folder when it still exists, else by name."""
    return load_recipe(info.recipe_dir if Path(info.recipe_dir).is_dir() else info.recipe.name)


def trial_sandbox(kind: str, recipe):
    """The sandbox trials run in: Docker with the recipe's image when asked for, or
    (`auto`) when an engine answers and the image can be had; else the local sandbox."""
    from sandboxes import make_sandbox

    choice = _sandbox_choice(kind, recipe)
    return make_sandbox(choice.kind, **({"image": choice.image} if choice.image else {}))


def _sandbox_choice(kind: str, recipe):
    """`--sandbox` resolved on this machine: an `InnerSandbox` (kind, and the image id for docker)."""
    from sandboxes.errors import SandboxError
    from sandboxes.images import engine_available, ensure_image
    from sandboxes.ray_node import InnerSandbox

    def say(text: str) -> None:
        err_console.print(f"[dim]{escape(text)}[/]")

    if kind == "local" or (kind == "auto" and not engine_available()):
        return InnerSandbox(kind="local")
    try:
        image = ensure_image(recipe.folder, recipe.spec.sandbox, say=say)
    except SandboxError as exc:
        if kind == "docker":
            raise
        say(f"Docker engine found but the recipe image is not available ({exc}); using the local sandbox")
        return InnerSandbox(kind="local")
    return InnerSandbox(kind="docker", image=image)


def cluster_sandbox(address: str, kind: str, recipe, gpus_per_trial: int | None):
    """Phases as Ray tasks on the cluster at `address` (docs/cluster.md); `--sandbox` picks
    what runs them on the nodes, and each asks Ray for `gpus_per_trial` GPUs (default: the recipe's)."""
    from sandboxes import make_sandbox
    from sandboxes.ray_cluster import connect

    connect(address)  # before an image is built for nothing
    inner = _sandbox_choice(kind, recipe)
    gpus = recipe.spec.budgets.gpus if gpus_per_trial is None else gpus_per_trial
    return make_sandbox("ray", inner=inner, address=address, gpus_per_phase=gpus)


def _fidelity_policy(name: str | None, budget: float | None, eta: int | None, bracket: int | None):
    """The FidelityPolicy the options ask for (None: plain fixed, no budget, nothing given)."""
    from harness.types import FidelityPolicy

    from harness.loop import RunError

    if name != "halving" and (eta is not None or bracket is not None):
        raise RunError("--eta and --bracket go with --fidelity-policy halving")
    if name is None and budget is None:
        return None
    name = name or "fixed"
    if name == "halving":
        return FidelityPolicy(name=name, budget=20.0 if budget is None else budget, eta=eta or 3, bracket=bracket)
    return FidelityPolicy(name=name, budget=budget)


def _trial_cap(trials: int | None, policy, spec) -> int:
    """--trials, or its default: 20, or under halving enough for the budget to be the limit
    (every paid trial at the cheapest level, and as many again that fail before running)."""
    if trials is not None:
        return trials
    if policy is None or policy.name != "halving":
        return 20
    cheapest = min(level.cost for level in spec.fidelities.values())
    return 2 * math.ceil(policy.budget / cheapest) + len(spec.fidelities)


def _command_options(agent_name: str, agent_cmd, agent_timeout, agent_env, run_dir: Path, loaded) -> dict:
    """The options of `--agent command` that were given (others refuse them by name)."""
    given = {"agent_cmd": agent_cmd, "agent_timeout": agent_timeout, "agent_env": tuple(agent_env) or None}
    options = {key: value for key, value in given.items() if value is not None}
    if agent_name == "team" and agent_cmd is not None:
        raise click.UsageError("--team names each command member's command in the team file: leave out --agent-cmd")
    if agent_name in ("command", "team"):  # a team's command members hide the same folders
        options.update(run_dir=run_dir, evaluator_dir=loaded.evaluator_dir)
    return options


def team_option(agent_name: str, team_file: Path, model: str | None, base_url: str | None) -> tuple[str, Path]:
    """`--team FILE` stands for `--agent team` (the model and API come from the file)."""
    from harness.loop import RunError

    if agent_name not in ("random", "team"):
        raise RunError(f"--team gives each specialist its own agent: leave out --agent {agent_name}")
    if model is not None or base_url is not None:
        raise RunError("--team sets each specialist's model and base_url in the team file: leave out "
                       "--model and --base-url")
    return "team", team_file


def _parse_gpus(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        gpus = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated GPU ids like 0,1 (got {value!r})") from None
    if any(g < 0 for g in gpus):
        raise click.BadParameter("GPU ids are non-negative")
    return gpus


@cli.command()
@click.argument("recipe", required=False)
@click.option("--agent", "agent_name", default="random", show_default=True,
              help="Who proposes trials: random, bayes, scripted, anthropic, openai or command (--agent-cmd); "
                   "or a --team.")
@click.option("--proposals", type=click.Path(path_type=Path), help="JSONL proposals for --agent scripted.")
@click.option("--trials", type=click.IntRange(min=0), default=None,
              help="New trials to propose (the baseline t0000 comes on top)  [default: 20; with "
                   "--fidelity-policy halving: as many as the --budget pays for]")
@click.option("--sandbox", "sandbox_kind", type=click.Choice(["auto", "local", "docker"]), default="auto",
              envvar="HARNESS_SANDBOX",
              show_default=True, help="Where trial phases run.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Folder that receives the run directory.")
@click.option("--run-id", help="Run directory name (default: RECIPE-<UTC time>).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the agents and the scheduler.")
@click.option("--fidelity", help="Fidelity level of the recipe to run trials at (default: the recipe's; "
              "on --resume: the run's).")
@click.option("--fidelity-policy", type=click.Choice(["fixed", "halving"]), default=None,
              help="fixed: every trial at --fidelity (a proposal may ask for another level); halving: successive "
                   "halving from the cheapest level up to --fidelity  [default: fixed]")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True),
              help="Compute budget in full-trial units (sum of the level costs of the trials that ran, the "
                   "baseline not counted); no trial starts that would exceed it  [default with halving: 20]")
@click.option("--eta", type=click.IntRange(min=2), default=None,
              help="halving: the best 1/eta of a rung (rounded up) is promoted one level up  [default: 3]")
@click.option("--bracket", type=click.IntRange(min=1), default=None,
              help="halving: new proposals per bracket at the lowest level  [default: eta^(levels - 1)]")
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              help="Trials run at once; with K > 1 proposals are prepared while trials run.")
@click.option("--proposers", type=click.IntRange(min=1), default=None,
              help="Proposals prepared at once, each on the lineage as it stands when it starts "
                   "(default: --parallel).")
@click.option("--gpus", help="GPU ids given to trials, e.g. 0,1,2,3.")
@click.option("--gpus-per-trial", type=click.IntRange(min=0), default=None,
              help="GPUs each trial gets from --gpus (default: all of them when --parallel is 1, else 1).")
@click.option("--cluster", metavar="ray://HOST:PORT|auto",
              help="Run trial phases as Ray tasks on this cluster (docs/cluster.md); needs harness[cluster].")
@click.option("--resume", type=click.Path(path_type=Path, file_okay=False), help="Continue this run directory.")
@click.option("--model", help="Model for --agent anthropic|openai (default: the agent's).")
@click.option("--base-url", help="API server for the LLM agents, e.g. a vLLM, llama.cpp or Ollama server.")
@click.option("--prices", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="JSON/TOML price table {model: {input, output}} in USD per million tokens.")
@click.option("--max-repairs", type=click.IntRange(min=0),
              help="Rejected submit_trial calls an LLM session survives (it ends at the N+1th; default 2).")
@click.option("--view-tokens", type=click.IntRange(min=500), help="Token budget of the lineage view (default 6000).")
@click.option("--specialists", help="Comma-separated specialists of the recipe that take turns proposing.")
@click.option("--max-cost", type=click.FloatRange(min=0), help="Stop proposing once proposals cost this many USD.")
@click.option("--team", "team_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="TOML team file: per specialist its provider, model, API, thinking and focus (docs/agents.md); "
                   "replaces --agent and --specialists.")
@click.option("--max-turns", type=click.IntRange(min=1), help="Model turns per LLM session (default 40).")
@click.option("--session-tokens", type=click.IntRange(min=1), help="Input + output tokens one LLM session may use.")
@click.option("--session-cost", type=click.FloatRange(min=0, min_open=True), help="USD one LLM session may cost.")
@click.option("--thinking-budget", type=click.IntRange(min=1024),
              help="Anthropic extended thinking tokens per turn, interleaved with tool use.")
@click.option("--reasoning-effort", type=click.Choice(["minimal", "low", "medium", "high"]),
              help="OpenAI reasoning effort.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature of the LLM agents.")
@click.option("--anchor-to", type=click.Path(path_type=Path, dir_okay=False),
              help="Append an anchor line (docs/audit.md) to this file outside the run folder every "
                   "--anchor-every trials and when the run stops.")
@click.option("--anchor-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="Recorded trials between two anchors of --anchor-to.")
@click.option("--anchor-sign", type=click.Path(path_type=Path, dir_okay=False, exists=True), metavar="KEY",
              help="SSH private key that signs each anchor of --anchor-to (git's SSH signing).")
@click.option("--agent-cmd", help="For --agent command: the command line run (jailed, in a scratch git work tree "
              "of the parent's files) once per proposal; see docs/agents.md.")
@click.option("--agent-timeout", type=click.FloatRange(min=0, min_open=True),
              help="For --agent command: seconds one proposal's command may run  [default: 1800]")
@click.option("--agent-env", "agent_env", multiple=True, metavar="NAME",
              help="For --agent command: pass this environment variable (e.g. its API key) to the command; "
                   "repeatable. Nothing else of the environment is passed.")
def run(recipe, agent_name, proposals, trials, sandbox_kind, out, run_id, seed, fidelity, fidelity_policy, budget,
        eta, bracket, parallel, proposers, gpus, gpus_per_trial, cluster, resume, model, base_url, prices, max_repairs,
        view_tokens, specialists, max_cost, team_file, max_turns, session_tokens, session_cost, thinking_budget,
        reasoning_effort, temperature, anchor_to, anchor_every, anchor_sign, agent_cmd, agent_timeout, agent_env):
    """Run trials of RECIPE (default: the CPU recipe `collision`) and record them in a lineage."""
    from harness.agents.base import make_agent
    from harness.console import ConsoleReporter, fidelity_summary, label_counts, summary_table, usage_lines
    from harness.loop import Run, RunError, check_specialists, default_run_id, describe_policy

    from harness.scheduler import plan_slots

    gpu_ids = _parse_gpus(gpus)
    if cluster and gpu_ids:
        raise RunError("--gpus names GPUs of this machine; with --cluster Ray assigns GPUs on the nodes: "
                       "give --gpus-per-trial N instead")
    cluster_gpus = gpus_per_trial
    if gpus_per_trial is None:
        gpus_per_trial = len(gpu_ids) if parallel == 1 else min(1, len(gpu_ids))
    try:
        slots = plan_slots(parallel, gpu_ids, gpus_per_trial, proposers)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if resume is not None:
        from harness.loop import refuse_interrupted_creation
        from trajectories.lineage import Lineage

        refuse_interrupted_creation(resume)  # no run.json to read: say what to do instead
        with Lineage.open(resume) as existing:
            info = existing.run_info()
        if recipe and recipe != info.recipe.name:
            raise RunError(f"{resume} is a run of recipe {info.recipe.name!r}, not {recipe!r}")
        loaded = recipe_of_run(info)
        run_dir = resume
        seed = info.seed
    else:
        loaded = load_recipe(recipe or DEFAULT_RECIPE)
        run_dir = out / (run_id or default_run_id(loaded.spec.name, out))
    policy = _fidelity_policy(fidelity_policy, budget, eta, bracket)
    effective = info.fidelity_policy if resume is not None else policy
    if effective is not None and effective.name == "halving" and (parallel > 1 or slots.proposers > 1):
        raise RunError("--fidelity-policy halving runs one trial at a time (a rung is ranked once all its "
                       "trials are recorded): use --parallel 1 --proposers 1")
    trials = _trial_cap(trials, effective, loaded.spec)
    chosen_specialists = tuple(n.strip() for n in specialists.split(",") if n.strip()) if specialists else ()
    if team_file is None:
        check_specialists(loaded.spec, chosen_specialists)  # before anything is created
    llm_options = {"model": model, "base_url": base_url, "prices": prices, "max_repairs": max_repairs,
                   "token_budget": view_tokens, "max_turns": max_turns, "session_tokens": session_tokens,
                   "session_cost": session_cost, "thinking_budget": thinking_budget,
                   "reasoning_effort": reasoning_effort, "temperature": temperature}
    if team_file is not None:
        agent_name, llm_options["team_file"] = team_option(agent_name, team_file, model, base_url)
    if agent_name in ("anthropic", "openai", "team"):
        # Answers are cached per trial in the run, so a resumed run never pays twice.
        llm_options["cache_dir"] = run_dir / ".harness" / "llm-cache"
    set_options = {key: value for key, value in llm_options.items() if value is not None}
    set_options.update(_command_options(agent_name, agent_cmd, agent_timeout, agent_env, run_dir, loaded))
    agent = make_agent(agent_name, proposals_file=proposals, seed=seed, **set_options)
    team_names: tuple[str, ...] = getattr(agent, "specialists", ()) if team_file is not None else ()
    if team_names:
        agent.check(loaded.spec)
        strangers = [name for name in chosen_specialists if name not in team_names]
        if strangers:
            raise RunError(f"{team_file} has no specialist {', '.join(strangers)} (it has: {', '.join(team_names)})")
        chosen_specialists = chosen_specialists or team_names
    if getattr(agent, "priced", True) is False:
        err_console.print(f"note: no price is known for model {getattr(agent, 'model', '?')!r}: its cost counts "
                          "as 0 (give one with --prices FILE)")
    if cluster:
        sandbox = cluster_sandbox(cluster, sandbox_kind, loaded, cluster_gpus)
    else:
        sandbox = trial_sandbox(sandbox_kind, loaded)
    reporter = ConsoleReporter(console, trials, loaded.spec.metric.name)
    if anchor_to is not None:
        from harness.anchoring import AnchoringReporter, AnchorOptionError, check_destination

        try:
            destination = check_destination(anchor_to, run_dir)
        except AnchorOptionError as exc:
            raise click.BadParameter(str(exc), param_hint="--anchor-to") from None
        reporter = AnchoringReporter(reporter, destination, anchor_every, anchor_sign)
    console.print(
        f"[bold]harness run[/] recipe={loaded.spec.name} agent={agent.name} sandbox={sandbox.name} "
        f"trials={trials} run={run_dir}" + (f" ({describe_policy(effective)})" if effective is not None else "")
    )
    try:
        if resume is not None:
            the_run = Run.resume(loaded, run_dir, agent=agent, sandbox=sandbox, reporter=reporter,
                                 fidelity=fidelity, gpus=gpu_ids, policy=policy)
        else:
            the_run = Run.create(loaded, run_dir, agent=agent, sandbox=sandbox, reporter=reporter,
                                 seed=seed, fidelity=fidelity, gpus=gpu_ids, policy=policy)
        if anchor_to is not None:
            reporter.lineage = the_run.lineage
        try:
            the_run.configure(specialists=chosen_specialists, max_cost_usd=max_cost, defined=team_names)
            the_run.run(trials, slots)
        finally:
            if anchor_to is not None:
                reporter.write()  # the state the run stopped at
            the_run.close()
    finally:
        reporter.stop()
    from trajectories.lineage import Lineage

    with Lineage.open(run_dir) as lineage:
        records = lineage.records()
        best = lineage.best()
        info = lineage.run_info()
    console.print(summary_table(records, best, loaded.spec.metric.name))
    best_record = next((r for r in records if r.trial.id == best), None)
    best_score = best_record.outcome.score if best_record and best_record.outcome else None
    console.print(f"labels: {label_counts(records)}")
    for line in usage_lines(records):
        console.print(escape(line))
    if len({r.trial.fidelity for r in records}) > 1 or info.fidelity_policy is not None:
        console.print(fidelity_summary(info, records))
    console.print(f"best: {best} {loaded.spec.metric.name}={best_score}"
                  + (f" (at {best_record.trial.fidelity})" if best_record is not None else ""))
    console.print(f"run directory: {run_dir}   audit it with: harness replay {run_dir} --verify")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--verify", is_flag=True, help="Print every integrity problem found (exit 1 when any).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (DESIGN.md contract).")
@click.option("--rerun", "rerun_targets", multiple=True, metavar="T",
              help="Re-execute trial T (an id, `best` or `top:K`; repeatable) with new seeds and check "
                   "its score reproduces within noise; the verdict is appended to refs/heads/replays.")
@click.option("--rerun-seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Seeds each rerun uses (at least the trial's own count).")
@click.option("--sandbox", "sandbox_kind", type=click.Choice(["auto", "local", "docker"]), default="auto",
              envvar="HARNESS_SANDBOX",
              show_default=True, help="Sandbox for --rerun.")
@click.option("--trial", "trial", metavar="ID", help="With --transcript: the trial whose transcript to print.")
@click.option("--transcript", "show_transcript", is_flag=True,
              help="Print the agent transcript stored with --trial's proposal (checked against its digest) "
                   "and exit.")
@click.option("--anchor", "anchors", multiple=True, metavar="FILE_OR_LINE",
              help="An anchor line, or a file of them (harness anchor, run --anchor-to): a tamper finding "
                   "unless the lineage extends each anchored state of this run (repeatable).")
@click.option("--anchor-key", type=click.Path(path_type=Path, dir_okay=False, exists=True), metavar="FILE",
              help="Public key (or allowed-signers file) that must have signed every --anchor.")
def replay(run_dir, verify, as_json, rerun_targets, rerun_seeds, sandbox_kind, trial, show_transcript,
           anchors, anchor_key):
    """Audit RUN_DIR: re-derive what can be re-derived from its lineage; exit 0 only when verified
    (and, with --rerun, every re-executed score reproduced)."""
    from harness.replay import replay as do_replay
    from harness.trial_lines import trial_lines
    from trajectories.lineage import Lineage, bulk_read

    if show_transcript != (trial is not None):
        raise click.UsageError("--trial ID and --transcript go together")
    if show_transcript:
        with Lineage.open(run_dir) as lineage:  # a clear error when RUN_DIR is not a run
            _print_transcript(lineage, trial)
        return
    from trajectories.anchor import anchor_problems, read_anchors

    pinned = [a for given in anchors for a in read_anchors(given)]  # a bad anchor is an error before any work
    Lineage.require_run(run_dir)  # a clear error when RUN_DIR is not a run
    stray = Lineage.stray_refs_of(run_dir)
    anchor_findings: list[str] = []
    if pinned:
        with Lineage.open(run_dir) as lineage:
            run_id = lineage.run_info().run_id
            anchor_findings = anchor_problems(lineage, [a for a in pinned if a.run == run_id] or pinned, anchor_key)
    with bulk_read():  # a whole run in memory: the collector's full passes would scan it again and again
        report = do_replay(run_dir)
    if anchor_findings:
        report = report.model_copy(update={"verified": False, "problems": report.problems + anchor_findings})
    reproduced = True
    if rerun_targets:
        with Lineage.open(run_dir) as lineage:
            info = lineage.run_info()
        verdicts = _rerun(run_dir, info, list(rerun_targets), rerun_seeds, sandbox_kind, quiet=as_json)
        reproduced = all(v.reproduced for v in verdicts)
        if not reproduced:
            report = report.model_copy(update={"problems": report.problems + [
                f"{v.trial}: not reproduced: {v.reason}" for v in verdicts if not v.reproduced]})
    if as_json:
        click.echo(report.model_dump_json())
    else:
        with bulk_read():
            table = trial_lines(f"Run {report.run} ({report.recipe})", report.trials, report.best.id, "score",
                                colour=sys.stdout.isatty())
        click.echo(table)
        if report.verified:
            console.print(f"[bold green]verified[/]: {len(report.trials)} trials, best {report.best.id} "
                          f"score {report.best.score}")
        else:
            console.print(f"[bold red]NOT verified[/]: {len(report.problems)} problem(s)")
            shown = report.problems if verify else report.problems[:5]
            for problem in shown:
                console.print(f"  - {escape(problem)}")
            if not verify and len(report.problems) > 5:
                console.print("  (use --verify to list all)")
        if stray:
            console.print(f"note: {len(stray)} trial ref(s) without a ledger record were set aside by --resume "
                          f"(kept, not part of the lineage): {', '.join(sorted(stray))}")
        with_transcripts = [t.id for t in report.trials if t.has_transcript]
        if with_transcripts:
            listed = ", ".join(with_transcripts[:10]) + (", ..." if len(with_transcripts) > 10 else "")
            console.print(f"transcripts stored with {len(with_transcripts)} proposal(s): {listed} "
                          f"(print one: harness replay {run_dir} --trial ID --transcript)")
    sys.exit(0 if report.verified and reproduced else 1)


def _print_transcript(lineage, tid: str) -> None:
    """Write a trial's stored transcript, byte for byte, to stdout (on a terminal: without its
    control sequences, which could drive the terminal; trajectories/agent_text.py)."""
    ids = [r.trial.id for r in lineage.records()]
    if tid not in ids:
        raise click.ClickException(f"no trial {tid!r} in {lineage.run_dir}" + (f" (trials: {ids[0]}..{ids[-1]})" if ids else ""))
    transcript = lineage.transcript(tid)
    if transcript is None:
        raise click.ClickException(f"{tid}: its proposal has no transcript (agent {lineage.record(tid).trial.proposal.agent})")
    if sys.stdout.isatty():
        from trajectories.agent_text import strip_controls

        sys.stdout.write(strip_controls(transcript.content.decode("utf-8", "replace")))
        sys.stdout.flush()
        return
    sys.stdout.buffer.write(transcript.content)
    sys.stdout.buffer.flush()


def _rerun(run_dir: Path, info, targets: list[str], seeds: int, sandbox_kind: str, quiet: bool):
    from harness.rerun import rerun_trials

    recipe = recipe_of_run(info)

    def show(verdict) -> None:
        if not quiet:
            word = "[green]reproduced[/]" if verdict.reproduced else "[bold red]NOT reproduced[/]"
            console.print(f"rerun {verdict.trial}: {word}: {escape(verdict.reason)}")

    report = rerun_trials(run_dir, recipe, trial_sandbox(sandbox_kind, recipe), targets, seeds, on_verdict=show)
    return report.verdicts


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--sign", "key", type=click.Path(path_type=Path, dir_okay=False, exists=True), metavar="KEY",
              help="Sign the anchor with this SSH private key (git's SSH signing, gpg.format=ssh).")
def anchor(run_dir, key):
    """Print one line that pins RUN_DIR's current state (ledger head, trial count); keep it outside
    the run folder and check it later with `harness replay RUN_DIR --verify --anchor LINE`."""
    from trajectories.anchor import current_anchor, sign_anchor
    from trajectories.lineage import Lineage

    with Lineage.open(run_dir) as lineage:
        pinned = current_anchor(lineage)
    click.echo((sign_anchor(pinned, key) if key is not None else pinned).line())


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.argument("trial")
def show(run_dir, trial):
    """Print one trial: hypothesis, diff and outcome."""
    from trajectories.agent_text import strip_controls
    from trajectories.lineage import Lineage

    with Lineage.open(run_dir) as lineage:
        records = {r.trial.id: r for r in lineage.records()}
    record = records.get(trial)
    if record is None:
        known = list(records)
        raise click.ClickException(
            f"no trial {trial!r} in {run_dir} (trials: {known[0]}..{known[-1]})" if known else f"no trials in {run_dir}"
        )
    t = record.trial
    console.print(f"[bold]{t.id}[/] parent={t.parent or '-'} agent={escape(t.proposal.agent)} "
                  f"specialist={escape(t.proposal.specialist or '-')} fidelity={t.fidelity} seeds={t.seeds}")
    console.print(f"commit {t.commit}")
    seen = t.proposal.based_on
    if seen is not None:  # what the agent could know: later trials were recorded while it wrote this one
        console.print(f"prepared on ledger {seen.ledger_head[:12]}: {seen.trials} trials, {seen.outcomes} outcomes")
    if t.fidelity_move is not None and t.parent in records:
        console.print(f"{t.fidelity_move} of {t.parent}: its code, unchanged, "
                      f"{records[t.parent].trial.fidelity} -> {t.fidelity}")
    console.print(f"\n[bold]hypothesis[/]\n{escape(t.proposal.hypothesis)}")
    if t.transcript is not None:
        console.print(f"transcript: {t.transcript.size:,} bytes ({t.transcript.format}); print it with "
                      f"harness replay {run_dir} --trial {t.id} --transcript")
    if t.proposal.diff:
        console.print("\n[bold]diff[/]")
        from rich.syntax import Syntax

        console.print(Syntax(strip_controls(t.proposal.diff), "diff", theme="ansi_dark", word_wrap=True))
    outcome = record.outcome
    if outcome is None:
        console.print("\n[bold]outcome[/]: not evaluated yet")
        return
    console.print(f"\n[bold]outcome[/]: {outcome.status.value} / {outcome.label.value}  score={outcome.score}")
    if outcome.explanation:
        console.print(escape(outcome.explanation))
    for error in outcome.infra_errors:  # attempts the harness re-ran: not the proposal's fault
        console.print(f"infrastructure error, re-run: {escape(error)}")
    if outcome.metrics:
        console.print("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(outcome.metrics.items())))
    for gate in outcome.gates:
        console.print(f"gate {gate.metric} {gate.op} {gate.threshold}: {gate.value} -> "
                      f"{'pass' if gate.passed else 'MISS'}")
    for phase in outcome.phases:
        console.print(f"{phase.phase} seed={phase.seed}: {phase.wallclock_s:.2f}s exit={phase.exit_code}"
                      f"{' TIMEOUT' if phase.timed_out else ''}{' OOM' if phase.oom else ''}")
    tails = [p for p in outcome.phases if p.log_tail and (p.exit_code != 0 or p.timed_out or p.oom)]
    for phase in tails[-1:]:
        console.print(f"\n[bold]{phase.phase} log tail[/]\n{escape(phase.log_tail)}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Where to write the self-contained HTML report.")
def report(run_dir, html_path):
    """Write one self-contained HTML report of RUN_DIR (works offline)."""
    from harness.replay import audit_problems
    from trajectories.lineage import Lineage, bulk_read
    from trajectories.report import write_report
    from trajectories.verify import verify_lineage

    Lineage.require_run(run_dir)  # a clear error when RUN_DIR is not a run
    with bulk_read():  # a whole run in memory: the collector's full passes would scan it again and again
        verified = verify_lineage(run_dir)  # read once: for the audit and for the report
        problems = audit_problems(verified)  # the replay's verdict, without its table
        write_report(run_dir, html_path, problems=problems, verified=verified)
    state = "verified" if not problems else f"NOT verified ({len(problems)} problems)"
    console.print(f"report: {html_path} ({html_path.stat().st_size:,} bytes; {len(verified.records)} trials, {state})")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--compare", "other", type=click.Path(path_type=Path, file_okay=False),
              help="A second run (e.g. random vs guided) to compare best scores at N trials.")
@click.option("--at", "at_n", type=click.IntRange(min=1), help="N for --compare (default: the shorter run).")
def analyze(run_dir, as_json, other, at_n):
    """Statistics of RUN_DIR: variance over architecture vs hyperparameter knobs, convergence
    power law, search dynamics per agent/specialist, keep and failure rates."""
    from trajectories.analysis import analyze as do_analyze, compare, load_run, render_comparison_text, render_text

    from trajectories.lineage import bulk_read

    if at_n is not None and other is None:
        raise click.UsageError("--at goes with --compare")
    with bulk_read():  # a whole run in memory: the collector's full passes would scan it again and again
        run_data = load_run(run_dir)
        result = do_analyze(run_data.records, run_data.info)
        comparison = None
        if other is not None:
            other_data = load_run(other)
            n = at_n or min(len(run_data.records), len(other_data.records))
            comparison = compare(run_data, other_data, n)
    if as_json:
        data = result.model_dump(mode="json")
        if comparison is not None:
            data["comparison"] = comparison.model_dump(mode="json")
        click.echo(json.dumps(data))
    else:
        # Plain echo: the text holds [brackets] that rich markup would swallow.
        click.echo(render_text(result))
        if comparison is not None:
            click.echo(render_comparison_text(comparison))


@cli.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(["auto-research-recipes", "autoresearch"]))
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="The run directory to create.")
def import_(fmt, path, out):
    """Turn an external trajectory (results.tsv) into a lineage replay, report and analyze accept."""
    from collections import Counter

    from trajectories.importers import ImportFormatError, TrajectoryImportError, import_run
    from trajectories.lineage import Lineage

    try:
        import_run(fmt, path, out)
    except ImportFormatError as exc:  # it names the line; the one error line should name the file too
        if str(path) in str(exc):
            raise
        raise TrajectoryImportError(f"{path}: {exc}") from None
    with Lineage.open(out) as lineage:
        records = lineage.records()
        best = lineage.best()
        info = lineage.run_info()
    labels = Counter(r.outcome.label.value for r in records if r.outcome)
    console.print(f"imported {len(records)} trials into {out}: "
                  + ", ".join(f"{k} {v}" for k, v in labels.most_common()))
    if best:
        best_record = next(r for r in records if r.trial.id == best)
        console.print(f"best: {best} score {best_record.outcome.score if best_record.outcome else None}")
    problems = info.imported.problems if info.imported else []
    if problems:
        console.print(f"{len(problems)} row(s) imported as far as they could be recovered:")
        for problem in problems[:20]:
            console.print(f"  - {escape(problem)}")
        if len(problems) > 20:
            console.print(f"  ... and {len(problems) - 20} more (in run.json: imported.problems)")
    console.print(f"audit it with: harness replay {out} --verify")


@cli.group()
def sandbox():
    """Sandbox images for the Docker sandbox."""


@sandbox.command("bootstrap")
@click.option("--suite", default="bookworm", show_default=True, help="Debian suite of the base image.")
@click.option("--mirror", help="Debian mirror (default: the one apt on this machine uses).")
@click.option("--force", is_flag=True, help="Rebuild even when the base image exists.")
def sandbox_bootstrap(suite, mirror, force):
    """Make the base image offline: debootstrap a Debian rootfs with python3 and `docker import` it."""
    from sandboxes.images import bootstrap_base_image

    image = bootstrap_base_image(suite=suite, mirror=mirror, force=force, say=lambda t: console.print(escape(t)))
    console.print(f"base image: {image}")


@sandbox.command("build")
@click.argument("recipe_name", metavar="RECIPE", default=DEFAULT_RECIPE)
def sandbox_build(recipe_name):
    """Build RECIPE's image FROM the base image (tag = content hash; reused when it exists)."""
    from sandboxes.images import ensure_image

    loaded = load_recipe(recipe_name)
    image = ensure_image(loaded.folder, loaded.spec.sandbox, say=lambda t: console.print(escape(t)))
    console.print(f"image: {image}")


@cli.group()
def recipe():
    """Recipe environments: list them, scaffold a new one, check one before a run."""


@recipe.command("list")
def recipe_list():
    """List the shipped recipes and those installed packages register (entry point group
    `harness.recipes`)."""
    from harness.recipe_loader import RecipeError, recipe_entries

    for entry in recipe_entries():
        origin = "" if entry.origin == "shipped" else "  " + escape(f"[{entry.origin}]")
        if entry.problem is not None:
            console.print(f"[bold]{entry.name}[/]  [red]unusable:[/] {escape(entry.problem)}{origin}")
            continue
        try:
            spec = load_recipe(str(entry.folder)).spec
        except RecipeError as exc:
            console.print(f"[bold]{entry.name}[/]  [red]invalid:[/] {escape(str(exc).splitlines()[0])}{origin}")
            continue
        where = "git" if spec.source.type == "git" else "local"
        gpus = f", {spec.budgets.gpus} GPU" if spec.budgets.gpus else ""
        console.print(f"[bold]{entry.name}[/]  {spec.metric.name} ({spec.metric.direction.value}; {where}{gpus})  "
                      f"{escape(' '.join(spec.description.split())[:80])}{origin}")


@recipe.command("new")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              show_default=True, help="Folder that receives the recipe folder NAME.")
def recipe_new(name, parent):
    """Scaffold a working CPU recipe NAME (spec, starting source, evaluator, README)."""
    from harness.recipe_tools import new_recipe

    folder = new_recipe(name, parent)
    console.print(f"created recipe [bold]{name}[/] in {folder}")
    console.print(f"next: harness recipe check {folder}   then: harness run {folder} --trials 5")


@recipe.command("check")
@click.argument("name")
@click.option("--no-run", is_flag=True, help="Only the static checks: do not run the baseline.")
@click.option("--repeats", type=click.IntRange(min=1), default=2, show_default=True,
              help="Baseline executions (seeds shifted by 1000 each) for the noise estimate.")
@click.option("--sandbox", "sandbox_kind", type=click.Choice(["local", "docker"]), default="local",
              show_default=True, help="Where the baseline runs.")
@click.option("--fidelity", help="Fidelity level of the baseline runs (default: the recipe's).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def recipe_check(name, no_run, repeats, sandbox_kind, fidelity, as_json):
    """Validate recipe NAME, check that its evaluator cannot be reached from the editable
    surface, run its baseline (twice, for a noise estimate) and suggest a noise_margin.
    Exit status 1 when a check fails; what needs a GPU this machine lacks is reported as skipped."""
    from harness.recipe_tools import check_recipe

    style = {"ok": "green", "warn": "yellow", "fail": "bold red", "skipped": "cyan"}

    def show(item) -> None:
        if not as_json:
            console.print(f"[{style[item.status]}]{item.status:<7}[/] [bold]{item.name}[/]: {escape(item.detail)}")

    report = check_recipe(name, run_baseline=not no_run, repeats=repeats, sandbox_kind=sandbox_kind,
                          fidelity=fidelity, on_item=show)
    if as_json:
        click.echo(json.dumps({**report.model_dump(mode="json"), "ok": report.ok}))
    else:
        for what in report.not_run:
            console.print(f"[cyan]not run:[/] {escape(what)}")
        if report.noise is not None:
            console.print(f"suggested [bold]noise_margin = {report.noise.suggested_noise_margin:g}[/] "
                          f"(declared {report.noise.declared_noise_margin:g})")
        if not report.ok:
            console.print("[bold red]not ready[/]: fix the failed checks")
        elif report.not_run:
            console.print("[bold green]ready[/] as far as this machine can tell (see what was not run)")
        else:
            console.print("[bold green]ready[/]")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
