"""Rows of an Auto-Research-Recipes blackboard whose columns ran into the hypothesis.

In the released Parameter Golf run (`pg_main`, 46 of 901 rows) a hypothesis
opens a quote that closes only near the end of the line, and the columns after
it are separated by single spaces instead of tabs:

    077  ...  reg  "Raise muon_wd ... shifts." -0.001 harness_abort   15999615   1479.000000 apg-reg-0066   [notes]

The reader keeps such a row as a truncated one (7 of 18 fields) with all of
the text in the hypothesis, so its status is empty although it is still there
to read. `recover_columns` finds it: the first place in the hypothesis where
`<number> <known status>` is followed by space-separated values that fit the
remaining columns (numbers where the header has numbers). The hypothesis keeps
the text before that place; the columns get the values (the last column, the
notes, gets the rest of the line); the text it was read from is kept verbatim
in the record. Where nothing fits, the row keeps its empty status and is
labelled `harness_error` as before, with the reason (see docs/audit.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class Recovered:
    """Columns read back from the text of a hypothesis."""

    hypothesis: str
    """The hypothesis without the columns that followed it."""
    values: dict[str, str]
    """Column -> value, for the columns after the hypothesis (empty ones included)."""
    text: str
    """The text they were read from, verbatim."""


def recover_columns(
    values: dict[str, str],
    text_column: str,
    statuses: frozenset[str],
    validators: dict[str, Callable[[str], bool]],
) -> Recovered | None:
    """The columns after `text_column`, read from its text, when the row lost them (see module)."""
    columns = list(values)
    if text_column not in columns or values.get("status", "").strip():
        return None
    after = columns[columns.index(text_column) + 1 :]
    if len(after) < 2 or after[1] != "status" or any(values[c].strip() for c in after):
        return None
    text = values[text_column]
    pattern = re.compile(rf"(?:^|\s)({NUMBER}) ({'|'.join(map(re.escape, sorted(statuses)))})(?= |$)")
    for match in pattern.finditer(text):
        rest = text[match.end(2) :]
        fields = [match.group(1), match.group(2), *(rest[1:].split(" ") if rest else [])]
        head, last = fields[: len(after) - 1], fields[len(after) - 1 :]
        head += [""] * (len(after) - 1 - len(head))
        got = dict(zip(after, [*head, " ".join(last).strip()]))
        if all(not v or validators.get(c, lambda _: True)(v) for c, v in got.items()):
            return Recovered(hypothesis=text[: match.start(1)].rstrip(), values=got, text=text[match.start(1) :])
    return None
