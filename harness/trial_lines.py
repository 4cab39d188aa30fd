"""The trial table of `harness replay` as plain aligned text, fast at 10,000+ trials.

A rich `Table` measures and wraps every cell of every row before printing; at
10,469 trials that took longer than the whole audit. This table has fixed
columns (hypotheses cut to one short line), so it is built in one pass; labels
are coloured only on a terminal. Agent text is hostile: control characters are
dropped before it reaches the terminal.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

HYPOTHESIS_WIDTH = 60
_COLOURS = {"keep": "\x1b[1;32m", "discard": "\x1b[33m", "fail": "\x1b[31m"}
_RESET = "\x1b[0m"


def printable(text: str, width: int) -> str:
    """One line of at most `width` characters, without control characters."""
    line = " ".join("".join(c if unicodedata.category(c)[0] != "C" else " " for c in text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _score(score: float | None) -> str:
    return "-" if score is None else f"{score:.4f}"


def trial_lines(title: str, rows: Iterable, best_id: str | None, score_name: str, colour: bool) -> str:
    """The table (rows are `harness.replay.ReplayTrial`): a title, a header, one line per trial."""
    rows = list(rows)
    levels = len({row.fidelity for row in rows}) > 1
    header = ["trial", "parent", "agent", *(["fidelity"] if levels else []), "label", score_name, "hypothesis"]
    cells = [
        [
            row.id + (" ★" if row.id == best_id else ""),
            row.parent or "-",
            printable(row.agent, 40),
            *([printable(row.fidelity, 20)] if levels else []),
            row.label or "(not evaluated)",
            _score(row.score),
            printable(row.hypothesis, HYPOTHESIS_WIDTH),
        ]
        for row in rows
    ]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(header)]
    label_at, score_at = len(header) - 3, len(header) - 2

    def line(values: list[str], status: str | None = None) -> str:
        parts = []
        for i, (value, width) in enumerate(zip(values, widths)):
            text = value.rjust(width) if i == score_at else value.ljust(width)
            if i == label_at and colour:
                text = f"{_COLOURS.get(status or '', '')}{text}{_RESET}" if status in _COLOURS else text
            parts.append(text)
        return "  ".join(parts).rstrip()

    out = [printable(title, 200), line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(c, row.status) for c, row in zip(cells, rows))
    return "\n".join(out)
