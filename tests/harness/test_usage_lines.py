"""The model-usage lines of the run summary: totals with cache reads/writes, one line per specialist."""

from __future__ import annotations

from harness.console import usage_lines
from harness.types import Proposal, Trial, TrialRecord, Usage


def record(n: int, specialist: str | None, agent: str, model: str | None, usage: Usage) -> TrialRecord:
    proposal = Proposal(hypothesis="h", diff="", agent=agent, specialist=specialist, model=model, usage=usage)
    return TrialRecord(trial=Trial(id=f"t{n:04d}", run_id="r", parent="t0000", proposal=proposal, fidelity="full",
                                   seeds=[0], commit="0" * 40))


def test_totals_and_one_line_per_specialist_with_cache_tokens():
    records = [
        record(0, None, "baseline", None, Usage()),
        record(1, "arch", "anthropic", "claude-sonnet-4-5",
               Usage(input_tokens=10_000, output_tokens=900, cost_usd=0.02, cache_read_tokens=6000,
                     cache_write_tokens=2000)),
        record(2, "opt", "openai", "gpt-5-mini",
               Usage(input_tokens=8000, output_tokens=500, cost_usd=0.003, cache_read_tokens=5000)),
        record(3, "arch", "anthropic", "claude-sonnet-4-5",
               Usage(input_tokens=4000, output_tokens=100, cost_usd=0.01, cache_read_tokens=3000)),
    ]
    assert usage_lines(records) == [
        "model usage: 22,000 input (14,000 cache read, 2,000 cache write) + 1,500 output tokens, $0.0330",
        "  arch: anthropic claude-sonnet-4-5, 2 proposals, 14,000 input (9,000 cache read, 2,000 cache write) "
        "+ 1,000 output tokens, $0.0300",
        "  opt: openai gpt-5-mini, 1 proposals, 8,000 input (5,000 cache read) + 500 output tokens, $0.0030",
    ]


def test_one_model_gives_one_line_and_no_model_none():
    one = [record(1, None, "openai", "gpt-5", Usage(input_tokens=100, output_tokens=10, cost_usd=0.001))]
    assert usage_lines(one) == ["model usage: 100 input + 10 output tokens, $0.0010"]
    assert usage_lines([record(1, None, "random", None, Usage())]) == []
