"""The study's statistics over a run (`harness analyze RUN [--json]`), on numpy.

- **Variance decomposition** of the score over the recipe's knobs: a one-way
  ANOVA per knob (F, p, eta squared = SS_between / SS_total) over the scored
  trials, and the share of the architecture and hyperparameter classes (the
  knob `kind` in the recipe): the sum of eta squared per class, normalised over
  the classes. One-way eta squared values are not additive when knobs are
  correlated (an agent's choices usually are), so the shares compare the
  classes; they do not partition the variance exactly.
  A trial's knob assignment is its parent's with the proposal's `knobs` on top
  (agents record the full assignment; a trial decided before running keeps its
  parent's); the baseline's comes from `baseline_knobs` when given, else it is
  read off the baseline's children (the knobs their diffs leave alone).
- **Convergence**: best-so-far (the best kept score after n trials, n counting
  the baseline as 1) and a power law fitted to the gap to the final best,
  gap(n) ~ a * n^-b, by least squares on log-log (points with a zero gap, i.e.
  from the last improvement on, are left out): exponent b and R squared.
- **Search dynamics** per agent or specialist: the Shannon entropy (bits) of the
  domains a group works on, overall and over consecutive windows, and the
  pairwise Jensen-Shannon divergence (bits, in [0, 1]) of the groups' domain
  distributions. A trial's domains: the knobs whose assignment lines its diff
  changes (native runs with a knob space), else the files its diff touches, else its specialist; for
  imported runs the source's `domain` column.
- **Rates**: trials per label, keep and failure rates, overall and per group.
- **Comparison** (`compare`): best kept score after N trials of two runs
  (e.g. a guided agent against random).
- **Fidelity** (runs with several levels): how well each level predicts the
  next, as the Spearman rank correlation between the scores of the same code at
  both levels (pairs from promotion and reference edges, chained: an idea's score
  at each level it reached), per pair of adjacent levels and for every other
  pair, with n; and the compute spent per level (cost units, trials, host
  wallclock). The best and the convergence curve count only kept trials at the
  run's level (the baseline's): scores of other levels do not compare.

`analyze` never raises on a strange run: a statistic that cannot be computed
is None with a note saying why.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from harness.types import (
    BASELINE_TRIAL_ID,
    Direction,
    Knob,
    Label,
    RunInfo,
    Status,
    TrialRecord,
    code_origin,
    fidelity_cost,
    trial_number,
)

from ._distributions import f_survival, t_cdf
from .importers.common import source_fields

# ---------------------------------------------------------------------------
# Report models
# ---------------------------------------------------------------------------


class FactorEffect(BaseModel):
    """One-way ANOVA of the score over one factor."""

    factor: str
    kind: str
    """`arch` or `hparam` for a knob; `domain` for the domain factor."""
    n: int
    """Scored trials with a value of the factor."""
    levels: int
    f: float | None
    """F statistic (None with fewer than 2 levels, no residual degrees of freedom, or no within-level variance)."""
    p: float | None
    """P value of F."""
    eta_sq: float | None
    """SS_between / SS_total (None with fewer than 2 levels or a constant score)."""
    level_means: dict[str, float]
    level_counts: dict[str, int]


class VarianceDecomposition(BaseModel):
    n: int
    """Scored trials used."""
    knobs: list[FactorEffect]
    class_eta_sq: dict[str, float]
    """Sum of the knobs' eta squared per class (`arch`, `hparam`)."""
    class_share: dict[str, float]
    """`class_eta_sq` normalised to sum to 1 (empty when nothing is explained)."""
    domain: FactorEffect | None
    """The score over the trials' domains (see the module doc)."""
    note: str = ""


class PowerLawFit(BaseModel):
    points: int
    """(n, gap) points used in the fit."""
    improvements: int
    """Times the best kept score improved (the baseline's first score not counted)."""
    final_best: float | None
    a: float | None
    exponent: float | None
    """b in gap(n) ~ a * n^-b (larger: faster convergence)."""
    r_squared: float | None
    best_so_far: list[float | None]
    """Best kept score after n = 1, 2, ... trials (trial order)."""
    note: str = ""


class WindowEntropy(BaseModel):
    first: str
    last: str
    n: int
    entropy_bits: float


class GroupDynamics(BaseModel):
    group: str
    n: int
    """Trials of the group (the baseline left out)."""
    domains: dict[str, int]
    entropy_bits: float
    windows: list[WindowEntropy]


class Divergence(BaseModel):
    a: str
    b: str
    jsd_bits: float
    """Jensen-Shannon divergence (base 2; 0 = same distribution, 1 = disjoint)."""


class SearchDynamics(BaseModel):
    group_by: str
    """`specialist` when trials name one, else `agent`."""
    domain_source: str
    """Where domains come from: `knobs`, `files`, `specialist` or `import` (mixed runs list several)."""
    overall: GroupDynamics
    groups: list[GroupDynamics]
    divergences: list[Divergence]


class LabelCount(BaseModel):
    label: str
    count: int
    rate: float


class GroupRates(BaseModel):
    group: str
    n: int
    keep: int
    keep_rate: float
    failure_rate: float
    labels: dict[str, int]


class Rates(BaseModel):
    n: int
    """Trials with an outcome, the baseline left out."""
    keep_rate: float | None
    failure_rate: float | None
    labels: list[LabelCount]
    groups: list[GroupRates]


class BestTrial(BaseModel):
    id: str | None
    score: float | None


class LevelCorrelation(BaseModel):
    low: str
    high: str
    adjacent: bool
    """Whether no level lies between the two (by cost)."""
    n: int
    """Ideas scored at both levels."""
    spearman: float | None
    """Rank correlation of their scores (None with fewer than 3 pairs or constant scores)."""
    p: float | None


class LevelCompute(BaseModel):
    level: str
    cost: float | None
    """The level's declared cost (None when the recipe no longer declares it)."""
    trials: int
    """Trials at this level, the baseline included."""
    units: float
    """Their cost in full-trial units (trials decided before running cost nothing)."""
    wallclock_s: float
    """Host-measured seconds of their phases."""


class FidelityAnalysis(BaseModel):
    levels: list[str]
    """Levels with trials, cheapest first."""
    target: str
    """The run's level (the baseline's)."""
    policy: str
    budget: float | None
    spent_units: float
    """Cost of every trial but the baseline."""
    correlations: list[LevelCorrelation]
    compute: list[LevelCompute]


class AnalysisReport(BaseModel):
    run: str
    recipe: str
    metric: str
    direction: str
    imported: str | None
    """Import format, for an imported run."""
    trials: int
    scored: int
    best: BestTrial
    variance: VarianceDecomposition
    convergence: PowerLawFit
    dynamics: SearchDynamics
    rates: Rates
    fidelity: FidelityAnalysis | None = None
    """Per-level statistics, for runs with trials at more than one level."""
    notes: list[str] = []


class RunAtN(BaseModel):
    run: str
    agent: str
    trials: int
    """Trials the run has beyond the baseline."""
    reached: bool
    """Whether the run has N trials beyond the baseline."""
    best_id: str | None
    best_score: float | None
    """Best kept score among t0000..tN."""


class Comparison(BaseModel):
    n: int
    metric: str
    direction: str
    a: RunAtN
    b: RunAtN
    winner: str | None
    """`a`, `b`, `tie`, or None when a side has no score or the runs score different metrics."""
    difference: float | None
    """a's best minus b's best."""
    notes: list[str] = []


@dataclass
class RunData:
    """A loaded run, for `analyze` / `compare`."""

    name: str
    records: list[TrialRecord]
    info: RunInfo


def load_run(run_dir: Path) -> RunData:
    """Records and run info of a run folder (raises `LineageError` when it is not a run)."""
    from .lineage import Lineage

    with Lineage.open(Path(run_dir)) as lineage:
        return RunData(str(run_dir), lineage.records(), lineage.run_info())


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def one_way_anova(groups: dict[str, Sequence[float]]) -> tuple[float | None, float | None, float | None]:
    """(F, p, eta squared) of a one-way ANOVA over `groups` (level -> values)."""
    groups = {k: list(v) for k, v in groups.items() if len(v)}
    k = len(groups)
    values = np.array([x for v in groups.values() for x in v], dtype=float)
    n = len(values)
    if k < 2 or n == 0:
        return None, None, None
    grand = values.mean()
    ss_total = float(((values - grand) ** 2).sum())
    ss_between = float(sum(len(v) * (np.mean(v) - grand) ** 2 for v in groups.values()))
    ss_within = float(sum(((np.asarray(v) - np.mean(v)) ** 2).sum() for v in groups.values()))
    eta = ss_between / ss_total if ss_total > 0 else None
    if n - k <= 0 or ss_within <= 0 or ss_total <= 0:
        return None, None, eta
    f = (ss_between / (k - 1)) / (ss_within / (n - k))
    p = f_survival(k - 1, n - k, f)
    return float(f), p, eta


def entropy_bits(counts: Sequence[int]) -> float:
    arr = np.asarray([c for c in counts if c > 0], dtype=float)
    if arr.size == 0:
        return 0.0
    share = arr / arr.sum()
    return float(-(share * np.log2(share)).sum())


def js_divergence(p: dict[str, int], q: dict[str, int]) -> float:
    """Jensen-Shannon divergence of two count distributions, in bits (0 to 1)."""
    keys = sorted(set(p) | set(q))
    a = np.array([p.get(k, 0) for k in keys], dtype=float)
    b = np.array([q.get(k, 0) for k in keys], dtype=float)
    if a.sum() == 0 or b.sum() == 0:
        return 0.0
    a, b = a / a.sum(), b / b.sum()
    mid = (a + b) / 2
    d = float((_kl_bits(a, mid) + _kl_bits(b, mid)) / 2)
    return 0.0 if math.isnan(d) else min(max(d, 0.0), 1.0)


def _kl_bits(share: np.ndarray, reference: np.ndarray) -> float:
    """Kullback-Leibler divergence in bits (0 log 0 = 0; `reference` > 0 wherever `share` is)."""
    held = share > 0
    return float((share[held] * np.log2(share[held] / reference[held])).sum())


def _line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(slope, intercept, Pearson r) of the least-squares line through (x, y); r is 0 when x or y
    is constant (as `scipy.stats.linregress` gives it)."""
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy, sxy = float((dx * dx).mean()), float((dy * dy).mean()), float((dx * dy).mean())
    slope = sxy / sxx if sxx else math.nan
    r = 0.0 if sxx == 0.0 or syy == 0.0 else min(max(sxy / math.sqrt(sxx * syy), -1.0), 1.0)
    return slope, float(y.mean()) - slope * float(x.mean()), r


def _average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (`scipy.stats.rankdata`'s default)."""
    arr = np.asarray(values, dtype=float)
    order = np.argsort(arr, kind="mergesort")
    ranks = np.empty(len(arr), dtype=float)
    sorted_values = arr[order]
    start = 0
    for end in range(1, len(arr) + 1):
        if end == len(arr) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2  # mean of ranks start+1 .. end
            start = end
    return ranks


def fit_power_law(n: Sequence[float], gap: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """(a, b, R squared) of gap ~ a * n^-b by least squares on log-log; None when
    fewer than 3 positive points or a single n."""
    pts = [(x, y) for x, y in zip(n, gap) if x > 0 and y > 0]
    if len(pts) < 3 or len({x for x, _ in pts}) < 2:
        return None, None, None
    lx = np.log([x for x, _ in pts])
    ly = np.log([y for _, y in pts])
    slope, intercept, r = _line_fit(lx, ly)
    r2 = float(r**2) if not math.isnan(r) else 0.0
    return float(math.exp(intercept)), float(-slope), r2


# ---------------------------------------------------------------------------
# Per-trial derived data
# ---------------------------------------------------------------------------

_DIFF_FILE_RE = re.compile(r"^diff --git a/(\S+) b/", re.MULTILINE)


def _value_key(value: Any) -> str:
    """A knob value as a group key: the string itself, else its JSON text (the common scalars
    spelled here as `json.dumps` spells them: it was a third of `analyze` at 10,000 trials)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return int.__repr__(value)
    if kind is float and value - value == 0.0:  # finite: json.dumps spells NaN and infinity its own way
        return float.__repr__(value)
    return json.dumps(value)


@lru_cache(maxsize=64)
def _knob_lines(knobs: tuple[tuple[str, str], ...]) -> dict[str, re.Pattern[str]]:
    """File -> one regex matching the assignment line of any of its knobs (`Knob.pattern`)."""
    by_file: dict[str, list[str]] = defaultdict(list)
    for name, file in knobs:
        by_file[file].append(name)
    return {
        file: re.compile(r"(?P<name>" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\s*=\s*\S")
        for file, names in by_file.items()
    }


def changed_knobs(diff: str, knobs: Sequence[Knob]) -> list[str]:
    """Knobs whose assignment line a unified diff adds or removes (in the knob's file)."""
    if not diff or not knobs:
        return []
    patterns = _knob_lines(tuple((k.name, k.file) for k in knobs))
    changed: set[str] = set()
    current: re.Pattern[str] | None = None
    for line in diff.split("\n"):
        if line.startswith("diff --git "):
            m = re.match(r"^diff --git a/(\S+) b/(\S+)", line)
            current = patterns.get(m.group(2)) if m else None
        elif current is not None and line[:1] in "+-" and not line.startswith(("+++", "---")):
            m = current.match(line, 1)
            if m:
                changed.add(m.group("name"))
    return sorted(changed)


def derive_baseline_knobs(records: Sequence[TrialRecord], knobs: Sequence[Knob]) -> dict[str, Any]:
    """The baseline's knob assignment, read off its children: a child that ran
    records its full assignment, and the knobs its diff leaves alone keep the
    baseline's value (the most common such value wins)."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    values: dict[str, Any] = {}
    for r in records:
        t = r.trial
        if t.parent != BASELINE_TRIAL_ID or not t.proposal.knobs:
            continue
        if r.outcome is not None and not r.outcome.label.ran:
            continue
        changed = set(changed_knobs(t.proposal.diff, knobs))
        for name, value in t.proposal.knobs.items():
            if name not in changed:
                key = _value_key(value)
                votes[name][key] += 1
                values[key + "\0" + name] = value
    return {name: values[c.most_common(1)[0][0] + "\0" + name] for name, c in votes.items()}


def effective_knobs(records: Sequence[TrialRecord], baseline_knobs: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each trial's knob assignment: its parent's, updated with its proposal's
    knobs when it ran (a trial decided before running keeps its parent's)."""
    out: dict[str, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: trial_number(r.trial.id)):
        t = record.trial
        if t.id == BASELINE_TRIAL_ID or t.parent is None:
            out[t.id] = dict(baseline_knobs or {})
            continue
        assignment = dict(out.get(t.parent, {}))
        outcome = record.outcome
        if outcome is None or outcome.label.ran:
            assignment.update(t.proposal.knobs)
        out[t.id] = assignment
    return out


def trial_domains(record: TrialRecord, knobs: Sequence[Knob], imported: bool) -> tuple[list[str], str]:
    """(domains, where they came from) of one trial (see the module doc)."""
    t = record.trial
    if imported:
        domain = source_fields(record.outcome).get("domain") or t.proposal.specialist
        return ([domain] if domain else ["(none)"]), "import"
    changed = changed_knobs(t.proposal.diff, knobs)
    if changed:
        return changed, "knobs"
    files = sorted(set(_DIFF_FILE_RE.findall(t.proposal.diff)))
    if files:
        return files, "files"
    if t.proposal.specialist:
        return [t.proposal.specialist], "specialist"
    return ["(none)"], "none"


def _windows(items: list[tuple[str, list[str]]], count: int) -> list[WindowEntropy]:
    if not items:
        return []
    count = max(1, min(count, len(items)))
    edges = np.linspace(0, len(items), count + 1).round().astype(int)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        chunk = items[lo:hi]
        if not chunk:
            continue
        c = Counter(d for _, ds in chunk for d in ds)
        out.append(WindowEntropy(first=chunk[0][0], last=chunk[-1][0], n=len(chunk), entropy_bits=entropy_bits(list(c.values()))))
    return out


def _group_dynamics(name: str, items: list[tuple[str, list[str]]], windows: int) -> GroupDynamics:
    c = Counter(d for _, ds in items for d in ds)
    return GroupDynamics(
        group=name,
        n=len(items),
        domains=dict(c.most_common()),
        entropy_bits=entropy_bits(list(c.values())),
        windows=_windows(items, windows),
    )


# ---------------------------------------------------------------------------
# analyze / compare
# ---------------------------------------------------------------------------


def _better(direction: Direction, a: float, b: float) -> bool:
    return a < b if direction is Direction.minimize else a > b


def target_level(records: Sequence[TrialRecord]) -> str | None:
    """The run's level: the baseline's (None without a baseline)."""
    return next((r.trial.fidelity for r in records if r.trial.id == BASELINE_TRIAL_ID), None)


def best_so_far(records: Sequence[TrialRecord], direction: Direction) -> list[tuple[str, float | None]]:
    """(trial id, best kept score after it) in trial order, over kept trials at the
    run's level (the baseline's)."""
    out: list[tuple[str, float | None]] = []
    best: float | None = None
    level = target_level(records)
    for record in sorted(records, key=lambda r: trial_number(r.trial.id)):
        o = record.outcome
        at_level = level is None or record.trial.fidelity == level
        if at_level and o is not None and o.label is Label.keep and o.score is not None:
            if best is None or _better(direction, o.score, best):
                best = o.score
        out.append((record.trial.id, best))
    return out


def analyze(
    records: Sequence[TrialRecord],
    info: RunInfo,
    *,
    baseline_knobs: dict[str, Any] | None = None,
    windows: int = 5,
) -> AnalysisReport:
    """The statistics of one run (see the module doc)."""
    records = sorted(records, key=lambda r: trial_number(r.trial.id))
    spec = info.recipe
    direction = spec.metric.direction
    imported = info.imported is not None
    notes: list[str] = []
    derived = baseline_knobs is None
    if derived:
        baseline_knobs = derive_baseline_knobs(records, spec.knobs)
    knobs = effective_knobs(records, baseline_knobs)
    scored = [r for r in records if r.outcome is not None and r.outcome.score is not None]
    scored_all = len(scored)
    by_level = Counter(r.trial.fidelity for r in scored)
    if len(by_level) > 1:  # scores of different fidelity levels do not compare: one level only
        level = by_level.most_common(1)[0][0]
        scored = [r for r in scored if r.trial.fidelity == level]
        notes.append(f"the variance decomposition uses the {len(scored)} scored trials at {level}, "
                     "the level with the most (scores of different levels do not compare)")

    # Variance decomposition.
    effects: list[FactorEffect] = []
    scored_assignments = [(knobs.get(r.trial.id, {}), float(r.outcome.score)) for r in scored]  # type: ignore[union-attr]
    for knob in spec.knobs:
        name = knob.name
        levels: dict[str, list[float]] = defaultdict(list)
        for assignment, score in scored_assignments:
            if name in assignment:
                levels[_value_key(assignment[name])].append(score)
        effects.append(_effect(name, knob.kind, levels))
    class_eta: dict[str, float] = {}
    for e in effects:
        class_eta[e.kind] = class_eta.get(e.kind, 0.0) + (e.eta_sq or 0.0)
    total = sum(class_eta.values())
    share = {k: v / total for k, v in class_eta.items()} if total > 0 else {}
    domain_levels: dict[str, list[float]] = defaultdict(list)
    domain_items: dict[str, tuple[list[str], str]] = {}
    for r in records:
        if r.trial.id == BASELINE_TRIAL_ID:
            continue
        domain_items[r.trial.id] = trial_domains(r, spec.knobs, imported)
    for r in scored:
        if r.trial.id in domain_items:
            domain_levels["+".join(domain_items[r.trial.id][0])].append(float(r.outcome.score))  # type: ignore[union-attr]
    domain_effect = _effect("domain", "domain", domain_levels) if domain_levels else None
    if not spec.knobs:
        vnote = "the recipe declares no knobs" + (" (an imported run carries no code)" if imported else "")
    elif not any(e.n for e in effects):
        vnote = "no scored trial carries a knob assignment"
    else:
        vnote = "one-way eta squared per knob; class shares compare classes (correlated knobs overlap)"
    if derived and spec.knobs:
        unknown = [k.name for k in spec.knobs if k.name not in (baseline_knobs or {})]
        if unknown:
            notes.append(f"the baseline's value of {', '.join(unknown)} could not be read off its children")
    variance = VarianceDecomposition(
        n=len(scored), knobs=effects, class_eta_sq=class_eta, class_share=share, domain=domain_effect, note=vnote
    )

    # Convergence.
    curve = best_so_far(records, direction)
    values = [b for _, b in curve]
    final = next((b for b in reversed(values) if b is not None), None)
    improvements = sum(1 for prev, cur in zip(values, values[1:]) if cur is not None and prev is not None and cur != prev)
    if final is None:
        conv = PowerLawFit(points=0, improvements=0, final_best=None, a=None, exponent=None, r_squared=None,
                           best_so_far=values, note="no kept trial has a score")
    else:
        xs = [float(i + 1) for i, b in enumerate(values) if b is not None]
        gaps = [abs(b - final) for b in values if b is not None]
        a, b, r2 = fit_power_law(xs, gaps)
        points = sum(1 for g in gaps if g > 0)
        note = "" if a is not None else f"too few points before the last improvement to fit ({points} with a gap > 0; 3 needed)"
        conv = PowerLawFit(points=points, improvements=improvements, final_best=final, a=a, exponent=b, r_squared=r2,
                           best_so_far=values, note=note)

    # Search dynamics.
    trials = [r for r in records if r.trial.id != BASELINE_TRIAL_ID]
    has_specialist = any(r.trial.proposal.specialist for r in trials)
    group_by = "specialist" if has_specialist else "agent"

    def group_of(r: TrialRecord) -> str:
        p = r.trial.proposal
        return (p.specialist or "(none)") if has_specialist else p.agent

    per_group: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    all_items: list[tuple[str, list[str]]] = []
    sources: Counter[str] = Counter()
    for r in trials:
        ds, src = domain_items[r.trial.id]
        sources[src] += 1
        per_group[group_of(r)].append((r.trial.id, ds))
        all_items.append((r.trial.id, ds))
    groups = [_group_dynamics(g, items, windows) for g, items in sorted(per_group.items())]
    divergences = [
        Divergence(a=ga.group, b=gb.group, jsd_bits=js_divergence(ga.domains, gb.domains))
        for i, ga in enumerate(groups)
        for gb in groups[i + 1 :]
    ]
    dynamics = SearchDynamics(
        group_by=group_by,
        domain_source="+".join(s for s, _ in sources.most_common()) or "none",
        overall=_group_dynamics("(all)", all_items, windows),
        groups=groups,
        divergences=divergences,
    )

    # Rates.
    done = [r for r in trials if r.outcome is not None]
    label_counts = Counter(r.outcome.label.value for r in done)  # type: ignore[union-attr]
    n = len(done)
    rates = Rates(
        n=n,
        keep_rate=(label_counts.get("keep", 0) / n) if n else None,
        failure_rate=(sum(1 for r in done if r.outcome.status is Status.fail) / n) if n else None,  # type: ignore[union-attr]
        labels=[LabelCount(label=k, count=v, rate=v / n) for k, v in label_counts.most_common()],
        groups=[_group_rates(g, members) for g, members in sorted(_grouped(done, group_of).items())],
    )
    if len(done) < len(trials):
        notes.append(f"{len(trials) - len(done)} trial(s) have no outcome yet")

    best_id, best_score = None, None
    level = target_level(records)
    for r in records:
        o = r.outcome
        if o is not None and o.label is Label.keep and (level is None or r.trial.fidelity == level):
            if best_id is None or (o.score is not None and (best_score is None or not _better(direction, best_score, o.score))):
                best_id, best_score = r.trial.id, o.score
    return AnalysisReport(
        run=info.run_id,
        recipe=spec.name,
        metric=spec.metric.name,
        direction=direction.value,
        imported=info.imported.format if info.imported else None,
        trials=len(records),
        scored=scored_all,
        best=BestTrial(id=best_id, score=best_score),
        variance=variance,
        convergence=conv,
        dynamics=dynamics,
        rates=rates,
        fidelity=fidelity_analysis(records, info),
        notes=notes,
    )


def _grouped(records: Sequence[TrialRecord], group_of: Callable[[TrialRecord], str]) -> dict[str, list[TrialRecord]]:
    """Records by group, each group in the records' order."""
    groups: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in records:
        groups[group_of(r)].append(r)
    return groups


def fidelity_analysis(records: Sequence[TrialRecord], info: RunInfo) -> FidelityAnalysis | None:
    """How well each level predicts the next, and the compute spent per level (None
    when every trial ran at one level)."""
    spec = info.recipe
    if len({r.trial.fidelity for r in records}) < 2:
        return None
    declared = spec.fidelity_order()
    present = {r.trial.fidelity for r in records}
    levels = [name for name in declared if name in present] + sorted(present - set(declared))
    scores: dict[str, dict[str, float]] = defaultdict(dict)  # idea -> level -> first score there
    origin = code_origin(list(records))
    compute: dict[str, list[float]] = {name: [0, 0.0, 0.0] for name in levels}
    for r in sorted(records, key=lambda r: trial_number(r.trial.id)):
        o = r.outcome
        if o is not None and o.score is not None and math.isfinite(o.score) and o.status is not Status.fail:
            scores[origin[r.trial.id]].setdefault(r.trial.fidelity, float(o.score))
        entry = compute[r.trial.fidelity]
        entry[0] += 1
        entry[1] += fidelity_cost(spec, r)
        entry[2] += sum(p.wallclock_s for p in o.phases) if o is not None else 0.0
    correlations = []
    for i, low in enumerate(levels):
        for j in range(i + 1, len(levels)):
            high = levels[j]
            pairs = [(s[low], s[high]) for s in scores.values() if low in s and high in s]
            rho, p = _spearman(pairs)
            correlations.append(
                LevelCorrelation(low=low, high=high, adjacent=j == i + 1, n=len(pairs), spearman=rho, p=p)
            )
    policy = info.fidelity_policy
    target = target_level(records) or spec.default_fidelity
    return FidelityAnalysis(
        levels=levels,
        target=target,
        policy=policy.name if policy else "fixed",
        budget=policy.budget if policy else None,
        spent_units=sum(fidelity_cost(spec, r) for r in records if r.trial.id != BASELINE_TRIAL_ID),
        correlations=correlations,
        compute=[
            LevelCompute(
                level=name,
                cost=spec.fidelities[name].cost if name in spec.fidelities else None,
                trials=int(compute[name][0]),
                units=compute[name][1],
                wallclock_s=compute[name][2],
            )
            for name in levels
        ],
    )


def _spearman(pairs: list[tuple[float, float]]) -> tuple[float | None, float | None]:
    if len(pairs) < 3 or len({a for a, _ in pairs}) < 2 or len({b for _, b in pairs}) < 2:
        return None, None
    _slope, _intercept, rho = _line_fit(_average_ranks([a for a, _ in pairs]), _average_ranks([b for _, b in pairs]))
    dof = len(pairs) - 2
    if abs(rho) >= 1.0:
        p = 0.0
    else:  # two-sided, from Student's t with n - 2 degrees of freedom (as scipy.stats.spearmanr)
        t = rho * math.sqrt(dof / ((rho + 1.0) * (1.0 - rho)))
        p = 2 * t_cdf(dof, -abs(t))
    return (None if math.isnan(rho) else rho), (None if math.isnan(p) else p)


def _effect(name: str, kind: str, levels: dict[str, list[float]]) -> FactorEffect:
    f, p, eta = one_way_anova(levels)
    return FactorEffect(
        factor=name,
        kind=kind,
        n=sum(len(v) for v in levels.values()),
        levels=len(levels),
        f=f,
        p=p,
        eta_sq=eta,
        level_means={k: float(np.mean(v)) for k, v in sorted(levels.items())},
        level_counts={k: len(v) for k, v in sorted(levels.items())},
    )


def _group_rates(group: str, done: list[TrialRecord]) -> GroupRates:
    n = len(done)
    labels = Counter(r.outcome.label.value for r in done)  # type: ignore[union-attr]
    keep = labels.get("keep", 0)
    fails = sum(1 for r in done if r.outcome.status is Status.fail)  # type: ignore[union-attr]
    return GroupRates(group=group, n=n, keep=keep, keep_rate=keep / n if n else 0.0,
                      failure_rate=fails / n if n else 0.0, labels=dict(labels.most_common()))


def compare(a: RunData, b: RunData, n: int) -> Comparison:
    """Best kept score of two runs after N trials beyond the baseline (t0000..tN)."""
    notes: list[str] = []
    metric = a.info.recipe.metric
    if b.info.recipe.metric.name != metric.name or b.info.recipe.metric.direction != metric.direction:
        notes.append(
            f"the runs score different metrics ({metric.name} {metric.direction.value} vs "
            f"{b.info.recipe.metric.name} {b.info.recipe.metric.direction.value}); compared as {metric.name}"
        )
    if a.info.recipe.name != b.info.recipe.name:
        notes.append(f"different recipes: {a.info.recipe.name} vs {b.info.recipe.name}")
    sides = [_at_n(run, n, metric.direction) for run in (a, b)]
    for side in sides:
        if not side.reached:
            notes.append(f"{side.run} has only {side.trials} trials (< {n}); its best is over all of them")
    sa, sb = sides[0].best_score, sides[1].best_score
    same_metric = b.info.recipe.metric.name == metric.name and b.info.recipe.metric.direction == metric.direction
    if sa is None or sb is None or not same_metric:
        winner, diff = None, None
    else:
        diff = sa - sb
        winner = "tie" if sa == sb else ("a" if _better(metric.direction, sa, sb) else "b")
    return Comparison(n=n, metric=metric.name, direction=metric.direction.value, a=sides[0], b=sides[1],
                      winner=winner, difference=diff, notes=notes)


def _at_n(run: RunData, n: int, direction: Direction) -> RunAtN:
    records = [r for r in run.records if trial_number(r.trial.id) <= n]
    curve = best_so_far(records, direction)
    best = curve[-1][1] if curve else None
    best_id = None
    if best is not None:
        best_id = next(
            r.trial.id for r in sorted(records, key=lambda r: trial_number(r.trial.id))
            if r.outcome is not None and r.outcome.label is Label.keep and r.outcome.score == best
        )
    total = max(0, len(run.records) - 1)
    return RunAtN(run=run.name, agent=run.info.agent, trials=total, reached=total >= n, best_id=best_id, best_score=best)


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------


def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "-" if x is None else format(x, spec)


def render_text(report: AnalysisReport) -> str:
    """The report for a terminal."""
    r = report
    lines = [
        f"run {r.run}  recipe {r.recipe}  score {r.metric} ({r.direction})"
        + (f"  imported from {r.imported}" if r.imported else ""),
        f"trials {r.trials}  scored {r.scored}  best {r.best.id or '-'} {_fmt(r.best.score)}",
        "",
        f"Variance of the score over the knobs ({r.variance.n} scored trials; {r.variance.note})",
    ]
    if r.variance.knobs:
        lines.append(f"  {'knob':<18} {'kind':<7} {'n':>5} {'levels':>6} {'F':>9} {'p':>9} {'eta2':>7}")
        for e in sorted(r.variance.knobs, key=lambda e: -(e.eta_sq or 0)):
            lines.append(
                f"  {e.factor:<18} {e.kind:<7} {e.n:>5} {e.levels:>6} {_fmt(e.f):>9} {_fmt(e.p, '.3g'):>9} {_fmt(e.eta_sq, '.3f'):>7}"
            )
        if r.variance.class_share:
            lines.append(
                "  class share of explained variance: "
                + ", ".join(f"{k} {v:.0%} (sum eta2 {r.variance.class_eta_sq[k]:.3f})" for k, v in sorted(r.variance.class_share.items()))
            )
    d = r.variance.domain
    if d is not None:
        lines.append(f"  by domain: {d.levels} levels, n {d.n}, F {_fmt(d.f)}, p {_fmt(d.p, '.3g')}, eta2 {_fmt(d.eta_sq, '.3f')}")
    c = r.convergence
    lines += [
        "",
        f"Convergence: {c.improvements} improvements, final best {_fmt(c.final_best)}",
        (f"  gap to final best ~ {c.a:.4g} * n^-{c.exponent:.3f}  (R^2 {c.r_squared:.3f}, {c.points} points)"
         if c.a is not None and c.exponent is not None and c.r_squared is not None else f"  power law: {c.note}"),
        "",
        f"Search dynamics by {r.dynamics.group_by} (domains from {r.dynamics.domain_source})",
    ]
    for g in [r.dynamics.overall, *r.dynamics.groups]:
        top = ", ".join(f"{k} {v}" for k, v in list(g.domains.items())[:5])
        wins = " ".join(f"{w.entropy_bits:.2f}" for w in g.windows)
        lines.append(f"  {g.group:<16} n {g.n:>5}  entropy {g.entropy_bits:.2f} bits  windows [{wins}]  top: {top}")
    for dv in r.dynamics.divergences:
        lines.append(f"  JSD {dv.a} vs {dv.b}: {dv.jsd_bits:.3f} bits")
    rt = r.rates
    lines += ["", f"Rates over {rt.n} trials: keep {_fmt(rt.keep_rate, '.1%')}, failure {_fmt(rt.failure_rate, '.1%')}"]
    lines.append("  " + ", ".join(f"{lc.label} {lc.count} ({lc.rate:.0%})" for lc in rt.labels))
    for g in rt.groups:
        lines.append(f"  {g.group:<16} n {g.n:>5}  keep {g.keep_rate:.0%}  fail {g.failure_rate:.0%}  " + ", ".join(f"{k} {v}" for k, v in g.labels.items()))
    if r.fidelity is not None:
        lines += [""] + _fidelity_text(r.fidelity)
    for note in r.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def _fidelity_text(f: FidelityAnalysis) -> list[str]:
    budget = f" of --budget {f.budget:g}" if f.budget is not None else ""
    lines = [
        f"Fidelity ({f.policy} policy; run level {f.target}): {f.spent_units:.4g} units spent{budget} (baseline not counted)",
        f"  {'level':<12} {'cost':>6} {'trials':>7} {'units':>8} {'wallclock s':>12}   (the baseline counts in its level)",
    ]
    for c in f.compute:
        lines.append(f"  {c.level:<12} {_fmt(c.cost):>6} {c.trials:>7} {c.units:>8.4g} {c.wallclock_s:>12.1f}")
    lines.append("  How well a level predicts another (Spearman rank correlation of the same code's scores):")
    for c in f.correlations:
        tag = "" if c.adjacent else "  (not adjacent)"
        lines.append(f"  {c.low:>12} -> {c.high:<12} n {c.n:>4}  rho {_fmt(c.spearman, '.3f'):>6}  p {_fmt(c.p, '.3g')}{tag}")
    return lines


def render_comparison_text(c: Comparison) -> str:
    lines = [f"Best {c.metric} ({c.direction}) after {c.n} trials:"]
    for tag, side in (("a", c.a), ("b", c.b)):
        lines.append(f"  {tag}: {side.run} ({side.agent}, {side.trials} trials): {_fmt(side.best_score)} ({side.best_id or '-'})")
    if c.winner is not None:
        who = {"a": c.a.run, "b": c.b.run}.get(c.winner, "neither (tie)")
        lines.append(f"  better: {c.winner} = {who}" if c.winner != "tie" else "  better: neither (tie)")
        if c.difference is not None:
            lines[-1] += f" (a - b = {c.difference:+.4g})"
    for note in c.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


__all__ = [
    "AnalysisReport",
    "Comparison",
    "RunData",
    "analyze",
    "best_so_far",
    "compare",
    "effective_knobs",
    "fidelity_analysis",
    "fit_power_law",
    "js_divergence",
    "load_run",
    "one_way_anova",
    "render_comparison_text",
    "render_text",
]
