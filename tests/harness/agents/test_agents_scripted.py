"""The scripted agent: a JSONL file proposed in order, resumable, validated up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.agents.base import AgentError
from harness.agents.scripted import ScriptedAgent

DIFF = "diff --git a/config.py b/config.py\n--- a/config.py\n+++ b/config.py\n@@ -1 +1 @@\n-A = 1\n+A = 2\n"


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "proposals.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def entries(n: int) -> list[str]:
    return [json.dumps({"hypothesis": f"idea {i}", "diff": DIFF}) for i in range(n)]


def test_order_fields_and_exhaustion(tmp_path, lineage):
    path = write(
        tmp_path,
        [
            json.dumps({"hypothesis": "first", "diff": DIFF}),
            "",
            "   ",
            json.dumps(
                {"hypothesis": "second", "diff": "", "parent": "t0003", "specialist": "arch",
                 "expected_delta": 1}
            ),
            json.dumps({"hypothesis": "third", "diff": DIFF, "parent": None, "expected_delta": -0.5}),
        ],
    )
    agent = ScriptedAgent(path)
    assert [e.line for e in agent.entries] == [1, 4, 5]
    got = []
    while True:
        p = agent.propose(lineage.ctx())
        if p is None:
            break
        got.append(p)
        lineage.add({}, agent="scripted", knobs={}, label="not_improved", score=0.1, diff=p.diff)
    assert [p.hypothesis for p in got] == ["first", "second", "third"]
    assert all(p.agent == "scripted" for p in got)
    assert got[0].parent is None and got[0].diff == DIFF and got[0].specialist is None
    assert got[1].parent == "t0003" and got[1].specialist == "arch" and got[1].expected_delta == 1.0
    assert got[2].expected_delta == -0.5
    assert agent.propose(lineage.ctx()) is None


def test_resume_position_comes_from_the_records(tmp_path, lineage):
    path = write(tmp_path, entries(4))
    # Trials of other agents do not count; two scripted trials (one failed, one still running) do.
    lineage.add({}, agent="random", label="not_improved", score=0.1)
    lineage.add({}, agent="scripted", knobs={}, label="apply_failed", score=None)
    lineage.add({}, agent="scripted", knobs={}, label=None)
    fresh = ScriptedAgent(path)  # a new agent, as after a restart
    assert fresh.propose(lineage.ctx()).hypothesis == "idea 2"


def test_seed_and_context_do_not_change_the_proposal(tmp_path, lineage):
    path = write(tmp_path, entries(2))
    a = ScriptedAgent(path, seed=1).propose(lineage.ctx(seed=5, specialist="x"))
    b = ScriptedAgent(path, seed=2).propose(lineage.ctx(seed=9))
    assert a == b


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"proposals.jsonl:3: not valid JSON"),
        ('["a list"]', r"proposals.jsonl:3: expected a JSON object, got array"),
        ('"a string"', r"proposals.jsonl:3: expected a JSON object, got string"),
        ('{"diff": ""}', r"proposals.jsonl:3: missing required key 'hypothesis'"),
        ('{"hypothesis": "h"}', r"proposals.jsonl:3: missing required key 'diff'"),
        ('{"hypothesis": 3, "diff": ""}', r"proposals.jsonl:3: 'hypothesis' must be a string, got number"),
        ('{"hypothesis": "  ", "diff": ""}', r"proposals.jsonl:3: 'hypothesis' is empty"),
        ('{"hypothesis": "h", "diff": ["x"]}', r"proposals.jsonl:3: 'diff' must be a string, got array"),
        ('{"hypothesis": "h", "diff": "", "knobs": {}}', r"proposals.jsonl:3: unknown key 'knobs' \(allowed: "),
        ('{"hypothesis": "h", "diff": "", "a": 1, "b": 2}', r"proposals.jsonl:3: unknown keys 'a', 'b'"),
        ('{"hypothesis": "h", "diff": "", "parent": "best"}',
         r"proposals.jsonl:3: 'parent' 'best' is not a trial id"),
        ('{"hypothesis": "h", "diff": "", "parent": 3}', r"proposals.jsonl:3: 'parent' must be a string or null"),
        ('{"hypothesis": "h", "diff": "", "specialist": true}',
         r"proposals.jsonl:3: 'specialist' must be a string or null, got boolean"),
        ('{"hypothesis": "h", "diff": "", "expected_delta": "0.1"}',
         r"proposals.jsonl:3: 'expected_delta' must be a number or null, got string"),
        ('{"hypothesis": "h", "diff": "", "expected_delta": true}',
         r"proposals.jsonl:3: 'expected_delta' must be a number or null, got boolean"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, message):
    path = write(tmp_path, [entries(1)[0], "", line, entries(1)[0]])
    with pytest.raises(AgentError, match=message) as info:
        ScriptedAgent(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(AgentError, match="nope.jsonl: proposals file not found"):
        ScriptedAgent(tmp_path / "nope.jsonl")


def test_no_file_given():
    with pytest.raises(AgentError, match="needs a proposals file"):
        ScriptedAgent(None)


def test_empty_file(tmp_path):
    path = write(tmp_path, ["", "  "])
    with pytest.raises(AgentError, match="holds no proposals"):
        ScriptedAgent(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"hypothesis": "\xff", "diff": ""}\n')
    with pytest.raises(AgentError, match="p.jsonl: proposals file is not UTF-8"):
        ScriptedAgent(path)
