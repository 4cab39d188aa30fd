"""`trajectories.analysis`: the statistics against hand-computed values."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from scipy import stats

from harness.types import (
    BASELINE_TRIAL_ID,
    Budgets,
    Direction,
    EvaluatorSpec,
    Knob,
    Label,
    MetricSpec,
    Outcome,
    Phases,
    Proposal,
    RecipeSpec,
    RunInfo,
    Trial,
    TrialRecord,
    trial_id,
)
from trajectories.analysis import (
    RunData,
    analyze,
    changed_knobs,
    compare,
    derive_baseline_knobs,
    fit_power_law,
    js_divergence,
    load_run,
    one_way_anova,
    render_comparison_text,
    render_text,
)

sys.path.insert(0, str(Path(__file__).parent))

SHA = "0" * 40


def recipe(direction: Direction = Direction.maximize) -> RecipeSpec:
    return RecipeSpec(
        name="toy",
        description="toy",
        editable=["config.py"],
        phases=Phases(train="true", eval="true"),
        evaluator=EvaluatorSpec(prepare="p.py:p", score="s.py:s"),
        metric=MetricSpec(name="acc", direction=direction),
        budgets=Budgets(train_wallclock_s=60, eval_wallclock_s=60),
        knobs=[
            Knob(name="A", file="config.py", kind="arch", choices=["a", "b"]),
            Knob(name="B", file="config.py", kind="hparam", choices=["x", "y"]),
        ],
    )


def info_for(spec: RecipeSpec, run_id: str = "toy-run", agent: str = "random") -> RunInfo:
    return RunInfo(run_id=run_id, recipe=spec, recipe_dir="", baseline_commit=SHA, evaluator_digest="e",
                   agent=agent, seed=0, created="2026-01-01T00:00:00Z", harness_version="0")


def record(n: int, label: Label, score: float | None, *, parent: str | None = None, knobs: dict | None = None,
           diff: str = "", specialist: str | None = None, agent: str = "random", run_id: str = "toy-run") -> TrialRecord:
    tid = trial_id(n)
    parent = None if n == 0 else (parent or BASELINE_TRIAL_ID)
    proposal = Proposal(hypothesis=f"h{n}", diff=diff, parent=parent, agent=agent, specialist=specialist, knobs=knobs or {})
    trial = Trial(id=tid, run_id=run_id, parent=parent, proposal=proposal, fidelity="full", seeds=[0], commit=SHA)
    outcome = Outcome(label=label, score=score, metrics={"acc": score} if score is not None else {},
                      started="", finished="")
    return TrialRecord(trial=trial, outcome=outcome)


def knob_diff(changes: dict[str, tuple[str, str]]) -> str:
    body = "".join(f"@@ -1,1 +1,1 @@\n-{k} = {old!r}\n+{k} = {new!r}\n" for k, (old, new) in changes.items())
    return "diff --git a/config.py b/config.py\n--- a/config.py\n+++ b/config.py\n" + body


# The hand-worked table: 8 scored trials, knob A (arch) and knob B (hparam).
#   score  1  2  3  4  5  6  7  8      grand mean 4.5, SS_total = 42
#   A      a  a  a  a  b  b  b  b      means 2.5 / 6.5: SS_between = 4*2^2 + 4*2^2 = 32, SS_within = 10
#   B      x  y  x  y  x  y  x  y      means 4 / 5:     SS_between = 4*0.5^2 * 2 = 2,  SS_within = 40
#   F_A = (32/1) / (10/6) = 19.2, eta2_A = 32/42;  F_B = (2/1) / (40/6) = 0.3, eta2_B = 2/42
#   class shares: arch 32/34, hparam 2/34
TABLE = [(1, "a", "x"), (2, "a", "y"), (3, "a", "x"), (4, "a", "y"), (5, "b", "x"), (6, "b", "y"), (7, "b", "x"), (8, "b", "y")]


def table_run() -> tuple[RunInfo, list[TrialRecord]]:
    spec = recipe()
    records = [record(0, Label.keep, 1.0)]
    for n, (score, a, b) in enumerate(TABLE[1:], start=1):
        label = Label.keep if score == n + 1 else Label.not_improved
        records.append(record(n, label, float(score), parent=trial_id(n - 1), knobs={"A": a, "B": b},
                              diff=knob_diff({"A": ("a", a)}) if n % 2 else knob_diff({"B": ("x", b)})))
    return info_for(spec), records


def test_anova_matches_the_hand_computation() -> None:
    info, records = table_run()
    report = analyze(records, info, baseline_knobs={"A": "a", "B": "x"})
    effects = {e.factor: e for e in report.variance.knobs}
    a, b = effects["A"], effects["B"]
    assert (a.n, a.levels, b.n, b.levels) == (8, 2, 8, 2)
    assert a.f == pytest.approx(19.2) and a.eta_sq == pytest.approx(32 / 42)
    assert b.f == pytest.approx(0.3) and b.eta_sq == pytest.approx(2 / 42)
    assert a.level_means == {"a": 2.5, "b": 6.5} and b.level_means == {"x": 4.0, "y": 5.0}
    # With two levels the F test is the pooled two-sample t test (F = t^2).
    t, p = stats.ttest_ind([1, 2, 3, 4], [5, 6, 7, 8])
    assert a.f == pytest.approx(t**2) and a.p == pytest.approx(p)
    assert b.p == pytest.approx(stats.ttest_ind([1, 3, 5, 7], [2, 4, 6, 8])[1])
    assert report.variance.class_eta_sq == pytest.approx({"arch": 32 / 42, "hparam": 2 / 42})
    assert report.variance.class_share == pytest.approx({"arch": 32 / 34, "hparam": 2 / 34})


def test_baseline_knobs_are_read_off_its_children() -> None:
    info, records = table_run()
    # t0001 is a child of t0000 changing A only, so the baseline's B is t0001's B.
    assert derive_baseline_knobs([records[0], records[1]], info.recipe.knobs) == {"B": "y"}
    assert changed_knobs(records[1].trial.proposal.diff, info.recipe.knobs) == ["A"]
    assert changed_knobs("diff --git a/other.py b/other.py\n-A = 1\n+A = 2\n", info.recipe.knobs) == []


def test_one_way_anova_edge_cases() -> None:
    assert one_way_anova({"a": [1.0, 2.0]}) == (None, None, None)  # one level
    f, p, eta = one_way_anova({"a": [1.0], "b": [2.0]})  # no residual degrees of freedom
    assert f is None and p is None and eta == pytest.approx(1.0)
    assert one_way_anova({"a": [1.0, 1.0], "b": [1.0]}) == (None, None, None)  # constant score
    f, p, eta = one_way_anova({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0], "c": [9.0, 8.0, 7.0]})
    ref = stats.f_oneway([1, 2, 3], [4, 5], [9, 8, 7])
    assert f == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)


def test_power_law_fit_recovers_exponent() -> None:
    # Best so far (maximize) approaches 10 with gap(n) = 2 * n^-1.5 for n = 1..9, then reaches it.
    spec = recipe()
    scores = [10 - 2 * n**-1.5 for n in range(1, 10)] + [10.0]
    records = [record(i, Label.keep, s, parent=trial_id(i - 1) if i else None) for i, s in enumerate(scores)]
    conv = analyze(records, info_for(spec)).convergence
    assert conv.points == 9 and conv.improvements == 9 and conv.final_best == 10.0
    assert conv.exponent == pytest.approx(1.5) and conv.a == pytest.approx(2.0) and conv.r_squared == pytest.approx(1.0)
    assert fit_power_law([1, 2], [1, 0.5]) == (None, None, None)  # too few points


def test_convergence_follows_the_direction() -> None:
    spec = recipe(Direction.minimize)
    scores = [30.0, 31.0, 28.0, 29.0, 27.0]
    labels = [Label.keep, Label.not_improved, Label.keep, Label.not_improved, Label.keep]
    records = [record(i, lab, s) for i, (lab, s) in enumerate(zip(labels, scores))]
    report = analyze(records, info_for(spec))
    assert report.convergence.best_so_far == [30.0, 30.0, 28.0, 28.0, 27.0]
    assert report.best.id == "t0004" and report.best.score == 27.0


def test_entropy_and_jensen_shannon_by_hand() -> None:
    spec = recipe()
    recs = [record(0, Label.keep, 1.0)]
    # Specialist X changes A, B, A, B (entropy 1 bit); Y changes A four times (0 bits).
    plan = [("X", "A"), ("Y", "A"), ("X", "B"), ("Y", "A"), ("X", "A"), ("Y", "A"), ("X", "B"), ("Y", "A")]
    for n, (who, knob) in enumerate(plan, start=1):
        recs.append(record(n, Label.not_improved, 0.5, specialist=who, diff=knob_diff({knob: ("a", "b")})))
    dyn = analyze(recs, info_for(spec)).dynamics
    assert dyn.group_by == "specialist" and dyn.domain_source == "knobs"
    groups = {g.group: g for g in dyn.groups}
    assert groups["X"].entropy_bits == pytest.approx(1.0) and groups["Y"].entropy_bits == 0.0
    assert groups["X"].domains == {"A": 2, "B": 2}
    # P = (1/2, 1/2), Q = (1, 0), M = (3/4, 1/4):
    # JSD = 1/2 [1/2 log2(2/3) + 1/2 log2(2)] + 1/2 log2(4/3) = 0.311278
    expected = 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)) + 0.5 * math.log2(1 / 0.75)
    assert dyn.divergences[0].jsd_bits == pytest.approx(expected) == pytest.approx(0.3112781)
    assert js_divergence({"a": 3}, {"b": 1}) == pytest.approx(1.0)
    # Overall: A 6, B 2 -> H = -(3/4 log2 3/4 + 1/4 log2 1/4) = 0.811278
    assert dyn.overall.entropy_bits == pytest.approx(0.8112781)
    # Windows of the overall sequence (5 windows over 8 trials).
    assert sum(w.n for w in dyn.overall.windows) == 8


def test_rates_per_label_and_group() -> None:
    spec = recipe()
    recs = [record(0, Label.keep, 1.0)]
    plan = [("X", Label.keep, 2.0), ("X", Label.crash, None), ("Y", Label.not_improved, 0.5), ("Y", Label.crash, None)]
    for n, (who, label, score) in enumerate(plan, start=1):
        recs.append(record(n, label, score, specialist=who))
    rates = analyze(recs, info_for(spec)).rates
    assert rates.n == 4 and rates.keep_rate == 0.25 and rates.failure_rate == 0.5
    assert {lc.label: lc.count for lc in rates.labels} == {"keep": 1, "crash": 2, "not_improved": 1}
    groups = {g.group: g for g in rates.groups}
    assert (groups["X"].keep_rate, groups["X"].failure_rate) == (0.5, 0.5)
    assert (groups["Y"].keep_rate, groups["Y"].failure_rate) == (0.0, 0.5)


def test_compare_best_at_n() -> None:
    spec = recipe()
    guided = [record(0, Label.keep, 0.5, run_id="g")] + [
        record(n, Label.keep, 0.5 + n / 10, run_id="g", agent="bayes") for n in range(1, 6)
    ]
    rand = [record(0, Label.keep, 0.5, run_id="r")] + [
        record(n, Label.keep if n == 4 else Label.not_improved, 0.6 if n == 4 else 0.4, run_id="r") for n in range(1, 4)
    ]
    a = RunData("guided", guided, info_for(spec, "g", "bayes"))
    b = RunData("random", rand, info_for(spec, "r", "random"))
    c = compare(a, b, 3)
    assert (c.a.best_score, c.a.best_id, c.b.best_score, c.b.best_id) == (0.8, "t0003", 0.5, "t0000")
    assert c.winner == "a" and c.difference == pytest.approx(0.3) and c.b.reached and not c.notes
    c = compare(b, a, 4)
    assert (c.a.best_score, c.b.best_score, c.b.best_id) == (0.5, 0.9, "t0004")
    assert c.winner == "b" and not c.a.reached and any("only 3 trials" in n for n in c.notes)
    assert "better: b = guided" in render_comparison_text(c)


def test_strange_runs_do_not_raise() -> None:
    spec = recipe()
    pending = TrialRecord(trial=record(0, Label.keep, 1.0).trial)
    for records in ([], [pending], [record(0, Label.crash, None)]):
        report = analyze(records, info_for(spec))
        json.dumps(report.model_dump(mode="json"), allow_nan=False)
        render_text(report)


def test_imported_run_uses_the_domain_column(tmp_path: Path) -> None:
    from test_import import SAMPLE

    from trajectories.importers import import_run

    import_run("auto-research-recipes", SAMPLE, tmp_path / "cifar")
    run = load_run(tmp_path / "cifar")
    report = analyze(run.records, run.info)
    assert report.imported == "auto-research-recipes"
    assert report.best.id == "t0070" and report.best.score == 25.1464
    assert report.dynamics.domain_source == "import" and report.dynamics.group_by == "specialist"
    assert {g.group: g.n for g in report.dynamics.groups} == {"arch": 20, "aug": 18, "loss": 20, "opt": 21, "reg": 18}
    assert report.convergence.improvements == 4 and report.convergence.exponent is not None
    assert report.rates.n == 97 and {lc.label: lc.count for lc in report.rates.labels}["gate_miss"] == 81
    text = render_text(report)
    assert "imported from auto-research-recipes" in text and "gap to final best" in text
    json.dumps(report.model_dump(mode="json"), allow_nan=False)


def test_synthetic_native_run_reports_shares() -> None:
    from test_report_synthetic import synthetic_run

    info, records = synthetic_run(400, seed=1)
    report = analyze(records, info)
    assert set(report.variance.class_share) == {"arch", "hparam"}
    assert sum(report.variance.class_share.values()) == pytest.approx(1.0)
    assert report.convergence.exponent is not None and report.dynamics.domain_source.startswith("knobs")
    assert not report.notes  # every baseline knob value was read off its children


def test_knob_values_are_grouped_by_their_json_text() -> None:
    from trajectories.analysis import _value_key

    values = [0, -7, 10**20, 0.0, -0.0, 1e-05, 0.1, 1e16, 3.0, math.nan, math.inf, -math.inf, True, False, None,
              [1, 2.5], {"a": 1}]
    assert [_value_key(v) for v in values] == [json.dumps(v) for v in values]
    assert _value_key("lr") == "lr"


def test_statistics_agree_with_scipy_stats() -> None:
    """The closed forms (the F and t tails of trajectories/_distributions.py) give scipy.stats's
    figures on seeded random data, ties and constant columns included."""
    import random

    from scipy.spatial.distance import jensenshannon

    from trajectories.analysis import _spearman, entropy_bits

    rng = random.Random(7)
    for _ in range(40):
        groups = {f"g{i}": [rng.gauss(i * 0.3, 1.0) for _ in range(rng.randint(2, 9))] for i in range(rng.randint(2, 5))}
        f, p, _eta = one_way_anova(groups)
        ref = stats.f_oneway(*groups.values())
        assert f == pytest.approx(ref.statistic, rel=1e-9) and p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-300)
        counts = [rng.randint(0, 9) for _ in range(6)]
        if sum(counts):
            assert entropy_bits(counts) == pytest.approx(stats.entropy([c for c in counts if c], base=2), abs=1e-12)
        other = {str(i): rng.randint(0, 5) for i in range(6)}
        mine = {str(i): c for i, c in enumerate(counts)}
        if sum(counts) and sum(other.values()):
            keys = sorted(set(mine) | set(other))
            want = jensenshannon([mine.get(k, 0) for k in keys], [other.get(k, 0) for k in keys], base=2) ** 2
            assert js_divergence(mine, other) == pytest.approx(want, abs=1e-12)
        xs = [float(rng.randint(1, 200)) for _ in range(12)]
        gaps = [rng.uniform(0.01, 2.0) for _ in xs]
        a, b, r2 = fit_power_law(xs, gaps)
        fit = stats.linregress([math.log(x) for x in xs], [math.log(g) for g in gaps])
        assert b == pytest.approx(-fit.slope, rel=1e-9) and a == pytest.approx(math.exp(fit.intercept), rel=1e-9)
        assert r2 == pytest.approx(fit.rvalue**2, rel=1e-9, abs=1e-15)
        pairs = [(float(rng.randint(0, 6)), rng.choice([0.1, 0.2, rng.random()])) for _ in range(rng.randint(3, 15))]
        if len({x for x, _ in pairs}) > 1 and len({y for _, y in pairs}) > 1:
            rho, p = _spearman(pairs)
            ref = stats.spearmanr([x for x, _ in pairs], [y for _, y in pairs])
            assert rho == pytest.approx(ref.statistic, abs=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)
