"""What a session knows beyond the code: the recipe's knowledge files and the run notebook.

- Knowledge files (`knowledge/*.md` in the recipe folder: what is known to work,
  rules, lessons) go verbatim into the system prompt, after the rules, so they
  are part of the cached prefix every session of the run shares.
- The run notebook is derived from the lineage: the `note`s of every recorded
  proposal (`Proposal.notes`), shown in the opening message of later sessions,
  newest kept when it is long.
"""

from __future__ import annotations

from harness.agents.base import AgentContext


def knowledge_section(knowledge: dict[str, str]) -> list[str]:
    """The recipe's knowledge files, verbatim, one section each."""
    parts: list[str] = []
    for name, text in knowledge.items():
        parts += ["", f"## Recipe knowledge: knowledge/{name}", text.strip()]
    return parts


NOTEBOOK_CHARS = 8000
"""Characters of the run notebook the opening message shows at most (the newest notes)."""


def notebook_section(ctx: AgentContext) -> list[str]:
    """The run notebook: notes of earlier sessions, newest last, within `NOTEBOOK_CHARS`."""
    notes = ctx.notebook()
    if not notes:
        return []
    rows: list[str] = []
    used = 0
    for tid, specialist, text in reversed(notes):
        row = f"- {tid}{f' [{specialist}]' if specialist else ''}: {text}"
        if used + len(row) > NOTEBOOK_CHARS and rows:
            break
        rows.append(row)
        used += len(row)
    left = len(notes) - len(rows)
    head = ["", "# Run notebook (notes of earlier sessions, oldest first)"]
    if left:
        head.append(f"({left} older notes left out)")
    return head + list(reversed(rows))
