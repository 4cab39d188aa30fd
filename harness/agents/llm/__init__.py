"""LLM research agents: `anthropic` (Messages API), `openai` (Chat Completions, any compatible
server) and `team` (a team file of both), each proposal a tool-using session.

Modules:

- `view`: the lineage view rendered from the trial records (token-bounded);
- `prompt`: the recipe brief and rules, the parent's files, the `submit_trial` tool schema;
- `knowledge`: the recipe's knowledge files and the run notebook;
- `edits`: parsing the answer, search/replace and unified diffs -> the canonical diff;
- `tools`, `show`: the session tools (list_files, read_file, grep, show_trial, check_edit, note,
  submit_trial) over the parent trial;
- `session`: the provider-neutral session loop and how it ends;
- `transcript`: the audited JSON-lines transcript of a session;
- `agent`: the provider-neutral agent (options, accounting, cache, failure proposals);
- `anthropic_agent`, `openai_agent`: the wire protocols and SDK clients (imported only when
  their agent is made);
- `team`: `--team` files (pydantic models) and the agent that dispatches to each specialist;
- `pricing`, `cache`, `errors`.

Importing this package imports no SDK.
"""

from harness.agents.llm.errors import LLMError, LLMRequestRejected, LLMUnavailable

__all__ = ["LLMError", "LLMRequestRejected", "LLMUnavailable"]

LLM_AGENT_NAMES = frozenset({"anthropic", "openai"})
"""Agent names (in `harness.agents.base.AGENTS`) that take the LLM options: model, base_url, cache_dir, ..."""

__all__ += ["LLM_AGENT_NAMES"]
