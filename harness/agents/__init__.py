"""Agents: write proposals (hypothesis + diff) from the lineage. Never import `evaluators`.

Agent modules are imported lazily by `make_agent`; only the interface lives here.
"""

from harness.agents.base import AGENTS, Agent, AgentContext, AgentError, make_agent, proposal_seed

__all__ = ["AGENTS", "Agent", "AgentContext", "AgentError", "make_agent", "proposal_seed"]
