"""LLM research agents: `anthropic` (Messages API) and `openai` (Chat Completions, any compatible server).

Modules:

- `view`: the lineage view rendered from the trial records (token-bounded);
- `prompt`: the recipe brief and rules, the parent's files, the `submit_trial` tool schema;
- `edits`: parsing the answer, search/replace and unified diffs -> the canonical diff;
- `agent`: the provider-neutral agent (repair loop, accounting, cache, failure proposals);
- `anthropic_agent`, `openai_agent`: the SDK clients (imported only when their agent is made);
- `pricing`, `cache`, `errors`.

Importing this package imports no SDK.
"""

from harness.agents.llm.errors import LLMError, LLMRequestRejected, LLMUnavailable

__all__ = ["LLMError", "LLMRequestRejected", "LLMUnavailable"]

LLM_AGENT_NAMES = frozenset({"anthropic", "openai"})
"""Agent names (in `harness.agents.base.AGENTS`) that take the LLM options: model, base_url, cache_dir, ..."""

__all__ += ["LLM_AGENT_NAMES"]
