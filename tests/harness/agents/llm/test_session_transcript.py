"""A session's proposal carries its transcript in the form the lineage stores (jsonl bytes)."""

from __future__ import annotations

import json

import pytest

from harness.agents.base import make_agent
from llm_server import ToolCall, tool

GOOD = {
    "hypothesis": "V-JEPA features carry motion",
    "expected_delta": 0.03,
    "edits": [{"file": "config.py", "search": 'BACKBONE = "resnet18"', "replace": 'BACKBONE = "vjepa_l"'}],
}


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_session_proposal_carries_a_jsonl_transcript(provider, server, lineage):
    server.push(tool("list_files"), ToolCall(GOOD))
    base_url = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
    proposal = make_agent(provider, proposals_file=None, seed=0, base_url=base_url).propose(lineage.ctx())
    assert proposal.failure is None
    assert proposal.transcript is not None and proposal.transcript.format == "jsonl"
    events = [json.loads(line) for line in proposal.transcript.content.decode().splitlines()]
    assert len(events) >= 2
    assert proposal.transcript.digest().size == len(proposal.transcript.content)
