"""Bayesian optimisation (optuna TPE) over the categorical knob space.

The study is rebuilt from the lineage on every call, so the agent stores
nothing: each past trial with a knob assignment and an outcome becomes a
completed optuna trial. Scored trials contribute their score; failed ones a
penalty below (or, when minimising, above) every score seen, so TPE learns to
avoid them. Trials without an outcome yet are left out.

With several fidelity levels, only trials at the level this proposal runs at
are observed (under halving the lowest, where every idea has a score; under
fixed the run's level): scores of different levels are not on one scale. A
promotion or reference run observes its parent's knob settings.
"""

from __future__ import annotations

import random
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution

from harness.agents.base import AgentContext, AgentError
from harness.agents.knobs import (
    config_key,
    editable_knobs,
    full_assignment,
    is_knob_value,
    knob_diff,
    knob_hypothesis,
    knobs_for,
    known_configs,
    read_knobs,
    same_value,
    value_key,
)
from harness.types import BASELINE_TRIAL_ID, Direction, Knob, Proposal, Status, code_origin

N_STARTUP_TRIALS = 5
"""Observations below which TPE samples at random."""
ASKS = 10
"""Suggestions drawn before settling for one equal to the parent's or already tried."""
FIXED_PENALTY = {Direction.maximize: -1.0, Direction.minimize: 1.0}
"""Value of failed trials while no trial has a score."""

_WARNING_FILTERS = threading.Lock()
"""`warnings.catch_warnings` swaps process-wide state: proposals prepared in several
threads (`--proposers`) take turns in it, or one could restore another's filters."""

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass(frozen=True)
class Observation:
    """One past trial as the optimiser sees it."""

    trial_id: str
    params: dict[str, Any]
    value: float
    failed: bool


def penalty(scores: list[float], direction: Direction) -> float:
    """Value given to failed trials: worse than every score seen by a margin."""
    if not scores:
        return FIXED_PENALTY[direction]
    lo, hi = min(scores), max(scores)
    spread = hi - lo
    margin = 0.1 * spread if spread > 0 else 0.1 * max(abs(lo), 1.0)
    return lo - margin if direction is Direction.maximize else hi + margin


class BayesAgent:
    """Proposes the knob settings optuna's TPE sampler suggests, as a diff from the current best."""

    name = "bayes"

    def __init__(self, *, seed: int = 0, n_startup_trials: int = N_STARTUP_TRIALS) -> None:
        self.seed = seed
        self.n_startup_trials = n_startup_trials

    # -- building the study -------------------------------------------------

    def space(self, ctx: AgentContext) -> tuple[list[Knob], str | None]:
        """Knobs searched (those of the specialist, if it owns some, present in the best's files)."""
        knobs, specialist = knobs_for(ctx.spec, ctx.specialist)
        present = {k.name for k in editable_knobs(ctx.spec, ctx.reader(ctx.best))}
        return [k for k in knobs if k.name in present], specialist

    def observations(self, ctx: AgentContext, knobs: list[Knob]) -> list[Observation]:
        """Past trials with a knob assignment covering `knobs` and an outcome, in lineage order."""
        names = [k.name for k in knobs]
        raw: list[tuple[str, dict[str, Any], float | None]] = []
        origin = code_origin(ctx.records)
        level = ctx.level()
        for rec in ctx.records:
            if rec.outcome is None or rec.trial.fidelity != level:
                continue
            source = ctx.record(origin[rec.trial.id]) or rec  # a promotion runs its origin's code
            config: dict[str, Any] = dict(source.trial.proposal.knobs)
            if not config and source.trial.id == BASELINE_TRIAL_ID:
                config = read_knobs(ctx.spec, ctx.reader(BASELINE_TRIAL_ID))
            if not config or not all(is_knob_value(config.get(n)) for n in names):
                continue
            failed = rec.outcome.status is Status.fail or rec.outcome.score is None
            raw.append((rec.trial.id, {n: config[n] for n in names}, None if failed else rec.outcome.score))
        scores = [v for _, _, v in raw if v is not None]
        bad = penalty(scores, ctx.spec.metric.direction)
        return [
            Observation(tid, params, bad if v is None else float(v), v is None) for tid, params, v in raw
        ]

    def distributions(
        self, knobs: list[Knob], extra: list[dict[str, Any]]
    ) -> dict[str, CategoricalDistribution]:
        """One categorical distribution per knob: its choices plus any other value seen in `extra`."""
        out = {}
        for knob in knobs:
            choices: list[Any] = []
            seen: set = set()
            for value in [*knob.choices, *(p[knob.name] for p in extra)]:
                key = value_key(value)
                if key not in seen:
                    seen.add(key)
                    choices.append(value)
            out[knob.name] = CategoricalDistribution(choices)
        return out

    def build_study(
        self, ctx: AgentContext, knobs: list[Knob] | None = None
    ) -> tuple[optuna.Study, dict[str, CategoricalDistribution], list[Observation]]:
        """An in-memory study holding the lineage's observations, with its sampler seeded from ctx.seed."""
        if knobs is None:
            knobs, _ = self.space(ctx)
        obs = self.observations(ctx, knobs)
        dists = self.distributions(knobs, [o.params for o in obs])
        sampler = optuna.samplers.TPESampler(
            seed=ctx.seed % 2**32,
            n_startup_trials=self.n_startup_trials,
            multivariate=True,
            constant_liar=False,
        )
        with _WARNING_FILTERS, warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(direction=ctx.spec.metric.direction.value, sampler=sampler)
            for o in obs:
                study.add_trial(
                    optuna.trial.create_trial(params=o.params, distributions=dists, value=o.value)
                )
        return study, dists, obs

    # -- proposing ------------------------------------------------------------

    def propose(self, ctx: AgentContext) -> Proposal | None:
        spec = ctx.spec
        if not spec.knobs:
            raise AgentError(f"recipe {spec.name!r} has no knobs; the bayes agent needs some")
        knobs, specialist = self.space(ctx)
        if not knobs:
            raise AgentError(f"recipe {spec.name!r}: no knob line found in trial {ctx.best} to edit")
        parent_text = ctx.reader(ctx.best)
        current = read_knobs(spec, parent_text)
        study, dists, obs = self.build_study(ctx, knobs)
        tried = known_configs(ctx)

        # Several draws from the same posterior (no constant liar, so pending asks do not
        # push later draws away): the first that changes the parent and was not tried yet,
        # else the first that changes the parent, else a random one-knob perturbation.
        fallback: dict[str, Any] | None = None
        changes: dict[str, Any] | None = None
        with _WARNING_FILTERS, warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for _ in range(ASKS):
                params = study.ask(dists).params
                diff = {n: params[n] for n in dists if not same_value(params[n], current[n])}
                if not diff:
                    continue
                if fallback is None:
                    fallback = diff
                if config_key(full_assignment(current, diff)) not in tried:
                    changes = diff
                    break
        if changes is None:
            changes = fallback or {}
        perturbed = False
        if not changes:
            changes = self._perturb(random.Random(ctx.seed), knobs, current)
            perturbed = True

        n_failed = sum(o.failed for o in obs)
        how = (
            "Random perturbation (TPE kept suggesting the parent's settings)"
            if perturbed
            else f"TPE suggestion from {len(obs)} observed trials ({n_failed} failed)"
        )
        return Proposal(
            agent=self.name,
            parent=ctx.best,
            knobs=full_assignment(current, changes),
            hypothesis=f"{how}: {knob_hypothesis(changes, current)}",
            diff=knob_diff(spec, parent_text, changes),
            specialist=specialist,
        )

    @staticmethod
    def _perturb(rng: random.Random, knobs: list[Knob], current: dict[str, Any]) -> dict[str, Any]:
        options = [k for k in knobs if any(not same_value(c, current[k.name]) for c in k.choices)]
        if not options:
            raise AgentError("no knob has a choice other than its current value")
        knob = rng.choice(options)
        return {knob.name: rng.choice([c for c in knob.choices if not same_value(c, current[knob.name])])}
