"""A session on a real recipe of dozens of files: nanochat at its pinned commit (the offline
upstream bundle), where a one-shot prompt cannot show the code the model must change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.agents.base import make_agent
from harness.recipe_loader import load_recipe
from llm_helpers import FakeLineage
from llm_server import ToolCall, tool

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from upstream_bundles import bundle_git_env  # noqa: E402

SPEC = load_recipe("nanochat-d12").spec
SOFTCAP = "        softcap = 15 # smoothly cap the logits to the range [-softcap, softcap]\n"


@pytest.fixture(scope="module")
def nanochat_tree(tmp_path_factory) -> dict[str, str]:
    source = SPEC.source
    env = bundle_git_env([source.url])
    checkout = tmp_path_factory.mktemp("nanochat") / "src"
    subprocess.run(["git", "clone", "-q", source.url, str(checkout)], check=True, capture_output=True,
                   env={**os.environ, **env})
    subprocess.run(["git", "-C", str(checkout), "checkout", "-q", source.commit], check=True, capture_output=True)
    files: dict[str, str] = {}
    for name in subprocess.run(["git", "-C", str(checkout), "ls-files"], check=True, capture_output=True,
                               text=True).stdout.split():
        try:
            files[name] = (checkout / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError):
            continue
    return files


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_session_finds_its_way_through_nanochat(provider, server, nanochat_tree):
    lin = FakeLineage(spec=SPEC, files=nanochat_tree, baseline_score=0.12)
    edit = {"hypothesis": "A looser logit soft-cap lets the model express confident predictions",
            "expected_delta": 0.005,
            "edits": [{"file": "nanochat/gpt.py", "search": SOFTCAP, "replace": SOFTCAP.replace("15", "20")}]}
    optimiser = {**edit, "edits": [{"file": "nanochat/optim.py", "search": "import torch", "replace": "import torch "}]}
    server.push(
        ToolCall({"path": "nanochat/"}, name="list_files", usage=(500, 50)),
        ToolCall({"pattern": "softcap|import"}, name="grep", usage=(500, 50)),
        ToolCall({"path": "nanochat/gpt.py"}, name="read_file", usage=(500, 50)),
        ToolCall({"path": "nanochat/gpt.py", "offset": 505, "limit": 10}, name="read_file", usage=(500, 50)),
        tool("check_edit", **optimiser),
        ToolCall(edit),
    )
    base_url = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
    agent = make_agent(provider, base_url=base_url)
    proposal = agent.propose(lin.ctx(specialist="arch"))
    assert server.refused == [] and proposal.failure is None
    assert proposal.diff.startswith("diff --git a/nanochat/gpt.py b/nanochat/gpt.py")
    assert "+        softcap = 20 #" in proposal.diff

    opening = server.requests[0].prompt()
    assert len(nanochat_tree) > 40 and len(opening) < 60_000  # the tree is not pasted into the prompt
    assert "nanochat/gpt.py" in opening and "read them with read_file" in opening

    texts = [server.requests[i].prompt() for i in range(1, 6)]
    listing = texts[0].split("files of trial t0000")[1]
    assert "nanochat/gpt.py  (editable)" in listing and "nanochat/core_eval.py\n" in listing
    assert "[harness: " in texts[1] and "more matching lines not shown" in texts[1]  # grep is capped, and says so
    assert "nanochat/gpt.py:511:         softcap = 15" in texts[1]
    lines = nanochat_tree["nanochat/gpt.py"].count("\n")
    assert f"[harness: lines 1-400 of {lines} of nanochat/gpt.py; read_file with offset=401 for more]" in texts[2]
    assert SOFTCAP.rstrip("\n") in texts[3] and f"lines 505-514 of {lines}" in texts[3]
    assert "outside your specialty 'arch', which may edit only nanochat/gpt.py" in texts[4]
