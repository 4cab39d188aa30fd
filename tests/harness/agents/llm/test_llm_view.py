"""The lineage view: what it shows about earlier trials, and that it stays within its token budget."""

from __future__ import annotations

from harness.agents.llm.view import ViewOptions, estimate_tokens, redact_foreign_frames, render_view
from harness.types import PhaseUsage
from llm_helpers import FakeLineage

CRASH_TAIL = """epoch 1/8 loss 0.6931
Traceback (most recent call last):
  File "/work/trial/train.py", line 41, in main
    loss = loss_fn(model(xt[idx]), yt[idx], cfg["LOSS"])
  File "/work/trial/model.py", line 77, in forward
    h = self.rnn(x)
RuntimeError: input.size(-1) must be equal to input_size. Expected 64, got 512
"""

CONFIG_DIFF = (
    "diff --git a/config.py b/config.py\n--- a/config.py\n+++ b/config.py\n@@ -8,3 +8,3 @@\n"
    ' # Architecture axis.\n-ENCODER = "meanpool"  # temporal encoder\n+ENCODER = "gru"  # temporal encoder\n'
    ' HEAD = "linear"\n'
)


def failed_arch_lineage() -> FakeLineage:
    lin = FakeLineage()
    lin.add(hypothesis="A GRU encoder sees the order of frames", specialist="arch", label="crash",
            explanation="train phase (seed 0) exited with code 1", diff=CONFIG_DIFF, expected_delta=0.05,
            phases=[PhaseUsage(phase="train", seed=0, wallclock_s=3.2, exit_code=1, log_tail=CRASH_TAIL)])
    lin.add(hypothesis="Raise the learning rate to 0.01", specialist="opt", label="keep", score=0.76)
    lin.add(hypothesis="An MLP head", specialist="arch", label="not_improved", score=0.75, parent="t0002",
            explanation="ap 0.7500 does not beat parent t0002 (0.7600) by more than 0.025",
            phases=[PhaseUsage(phase="train", seed=0, wallclock_s=12.5, exit_code=0)])
    return lin


def test_view_of_a_specialist_shows_its_earlier_failure_with_label_explanation_and_log_tail():
    lin = failed_arch_lineage()
    view = render_view(lin.ctx(specialist="arch"), 4000)
    own = view.split("## Recent trials of your specialty (arch)")[1].split("## Recent trials of the other")[0]
    assert "### t0001 <- t0000 [arch]: FAIL crash" in own
    assert "hypothesis: A GRU encoder sees the order of frames" in own
    assert "evaluator: train phase (seed 0) exited with code 1" in own
    assert "log tail (train, seed 0, exit 1):" in own
    assert "RuntimeError: input.size(-1) must be equal to input_size. Expected 64, got 512" in own
    assert '  config.py: + ENCODER = "gru"  # temporal encoder' in own
    assert "(expected +0.0500)" in own
    # the later arch trial, with score, delta against its parent and the keep rule's reading of it
    assert "### t0003 <- t0002 [arch]: DISCARD not_improved ap=0.7500 (-0.0100 vs t0002, within noise)" in own
    assert "train wallclock: 12.5 s of 60 s budget" in own
    # the opt specialist's keep is listed with the others, and leads the leaderboard
    other = view.split("## Recent trials of the other specialists")[1]
    assert "### t0002 <- t0000 [opt]: KEEP keep ap=0.7600 (+0.0600 vs t0000, better)" in other
    board = view.split("## Leaderboard")[1].split("##")[0]
    assert board.index("t0002 ap=0.7600") < board.index("t0000 ap=0.7000")
    assert "Current best: t0002 ap=0.7600" in view
    assert "Labels so far: " in view and "crash 1" in view


def test_view_without_a_specialist_has_one_section_and_shows_running_trials():
    lin = failed_arch_lineage()
    lin.add(hypothesis="Still running", specialist=None, label=None, parent="t0002")
    view = render_view(lin.ctx(), 4000)
    assert "## Recent trials, oldest first" in view
    assert "other specialists" not in view
    assert "### t0004 <- t0002: RUNNING (outcome not known yet)" in view
    for tid in ("t0001", "t0002", "t0003"):
        assert f"### {tid}" in view


def test_eval_log_tails_hide_evaluator_source_lines():
    tail = (
        "Traceback (most recent call last):\n"
        '  File "/run/.harness/evaluator/predict.py", line 30, in <module>\n'
        "    main()\n"
        '  File "/run/.harness/evaluator/predict.py", line 24, in main\n'
        "    from infer import predict  # noqa: E402  (the trial's code)\n"
        '  File "/run/ws/infer.py", line 3, in <module>\n'
        "    import numpyy\n"
        "ModuleNotFoundError: No module named 'numpyy'\n"
    )
    lin = FakeLineage()
    lin.add(hypothesis="Break inference", label="metric_missing", explanation="no predictions",
            phases=[PhaseUsage(phase="train", seed=0, wallclock_s=5, exit_code=0, log_tail="ok"),
                    PhaseUsage(phase="eval", seed=0, wallclock_s=1, exit_code=1, log_tail=tail)])
    view = render_view(lin.ctx(), 4000, own_files={"config.py", "model.py", "train.py", "infer.py"})
    assert "log tail (eval, seed 0, exit 1):" in view
    assert "from infer import predict" not in view
    assert "    main()" not in view
    assert "import numpyy" in view and "No module named 'numpyy'" in view
    assert 'File "/run/.harness/evaluator/predict.py", line 24, in main' in view
    assert "[source hidden: not a file of the trial]" in view
    assert redact_foreign_frames("plain\nlines", set()) == "plain\nlines"


def big_lineage(n: int) -> FakeLineage:
    lin = FakeLineage()
    for i in range(1, n + 1):
        specialist = "arch" if i % 2 else "opt"
        label = "keep" if i % 10 == 0 else "not_improved"
        score = 0.70 + i * 0.001
        lin.add(hypothesis=f"idea number {i}: " + "because reasons " * 20, specialist=specialist, label=label,
                score=score, explanation="does not beat the best by the margin " * 5,
                diff=CONFIG_DIFF, phases=[PhaseUsage(phase="train", seed=0, wallclock_s=10, exit_code=0)])
    return lin


def test_view_fits_the_budget_dropping_the_oldest_first():
    lin = big_lineage(80)
    for budget in (800, 1500, 3000):
        view = render_view(lin.ctx(specialist="arch"), budget)
        assert estimate_tokens(view) <= budget, (budget, estimate_tokens(view))
        assert "## Leaderboard: kept trials, best first" in view
        assert "Current best: t0080" in view
        assert "### t0079 " in view  # the newest arch trial
        assert "### t0001 " not in view  # the oldest arch trial
        assert "trials not shown to fit the budget, the oldest first" in view
    small = render_view(lin.ctx(specialist="arch"), 800)
    large = render_view(lin.ctx(specialist="arch"), 3000)
    assert small.count("### ") < large.count("### ")
    # Shown trials of a section are the most recent ones, contiguous in time.
    own = large.split("your specialty (arch)")[1].split("## Recent trials of the other")[0]
    ids = [int(line.split()[1][1:]) for line in own.splitlines() if line.startswith("### ")]
    assert ids == sorted(ids) and ids == list(range(ids[0], 80, 2))


def test_the_most_recent_failure_stays_even_when_newer_trials_fill_the_budget():
    lin = FakeLineage()
    lin.add(hypothesis="Doomed", specialist="arch", label="budget_overrun", explanation="train ran past 60 s",
            phases=[PhaseUsage(phase="train", seed=0, wallclock_s=60.5, exit_code=None, timed_out=True,
                               log_tail="epoch 3/24 loss 0.41")])
    for i in range(40):
        lin.add(hypothesis=f"later idea {i} " + "words " * 40, specialist="arch", label="not_improved", score=0.69,
                explanation="not better " * 20)
    view = render_view(lin.ctx(specialist="arch"), 700)
    assert estimate_tokens(view) <= 700
    assert "### t0001 <- t0000 [arch]: FAIL budget_overrun" in view
    assert "evaluator: train ran past 60 s" in view
    assert "### t0041 " in view


def test_options_cap_the_leaderboard():
    lin = big_lineage(60)
    view = render_view(lin.ctx(), None, options=ViewOptions(token_budget=20000, leaderboard_size=3))
    board = view.split("## Leaderboard: kept trials, best first")[1].split("## Recent")[0]
    assert [line.split()[1] for line in board.strip().splitlines()] == ["t0060", "t0050", "t0040"]
