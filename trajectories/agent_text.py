"""Text a trial or an agent wrote, made safe to show: in HTML and on a terminal.

Hypotheses, diffs, explanations (which quote log tails), log tails and imported
notes are written by whoever proposed or ran the trial. Shown as they are,
they could inject markup into the HTML report, or drive the auditor's
terminal: clear the screen, rewrite earlier lines (carriage returns, cursor
moves) so a failure reads like a success, set the window title, plant
hyperlinks (OSC 8), or reorder what is read with bidirectional overrides.

`escape_html` and `json_for_html` are what the report puts agent text
through; `strip_controls` (and `escape_console`, the same plus rich's markup
escape) is what every console printer does (harness/console.py, harness/cli.py).
The records keep the text as it was written: this changes only what is shown.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

# ESC-introduced sequences: CSI (ESC [ ... final), OSC / DCS / SOS / PM / APC strings (up to BEL
# or ESC \), and two-character escapes (ESC + one byte); C1 equivalents (\x9b CSI, \x9d OSC, ...).
_ESCAPE_SEQUENCES = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?            # CSI ... final byte
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])       # OSC, DCS, SOS, PM, APC ...
      [^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)         #   ... up to their terminator (else: below)
  | \x1b[ -/]*[0-~]?                              # any other escape
    """,
    re.VERBOSE,
)
# Every other C0/C1 control but tab and newline, DEL, and the bidirectional overrides and isolates.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: str) -> str:
    """`text` without terminal control sequences or control characters (tab and newline kept)."""
    return _CONTROLS.sub("", _ESCAPE_SEQUENCES.sub("", text))


def escape_console(text: str) -> str:
    """`text` ready for a rich console: control sequences stripped, rich markup escaped."""
    from rich.markup import escape as escape_markup  # on first use: plain-text printers need no rich

    return escape_markup(strip_controls(text))


def escape_html(text: str) -> str:
    """`text` as HTML character data or a quoted attribute value."""
    return html.escape(text, quote=True)


def json_for_html(data: Any) -> str:
    """JSON safe inside a `<script>` element: `<`, `>`, `&` and the JS line
    separators escaped, so no text in it can close the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
