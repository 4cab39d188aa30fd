"""A rich console made on first use, so that importing the CLI does not import rich.

`harness --help` must answer in well under a second; rich (with pygments) is a
large share of that when imported up front, and help text never needs it.
"""

from __future__ import annotations

from typing import Any


class LazyConsole:
    """Stands for `rich.console.Console(**options)`, created at the first attribute access."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


def escape(text: str) -> str:
    """Agent or trial text made safe for the console (terminal control sequences stripped,
    rich markup escaped: `trajectories.agent_text.escape_console`), imported on first use."""
    from trajectories.agent_text import escape_console

    return escape_console(text)
