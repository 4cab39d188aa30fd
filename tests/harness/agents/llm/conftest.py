"""Fixtures for the LLM agent tests (helpers live in llm_helpers.py, the fake server in tests/fakes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "fakes"))

from llm_helpers import FakeLineage  # noqa: E402
from llm_server import FakeLLMServer  # noqa: E402


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def lineage() -> FakeLineage:
    return FakeLineage()


@pytest.fixture(autouse=True)
def no_real_keys(monkeypatch):
    """Tests never see a real key (and never reach a real API)."""
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL",
                 "OPENAI_BASE_URL", "ANTHROPIC_PROFILE", "ANTHROPIC_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)
