"""Agent and trial text shown safely: no markup in HTML, no control sequences on a terminal."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from trajectories.agent_text import escape_console, escape_html, json_for_html, strip_controls

HOSTILE = {
    "clear screen, cursor home": ("ok\x1b[2J\x1b[Hdone", "okdone"),
    "colours": ("\x1b[1;31mred\x1b[0m", "red"),
    "window title (BEL)": ("\x1b]0;pwned\x07after", "after"),
    "hyperlink (ST)": ("\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\", "click"),
    "C1 CSI": ("a\x9b31mb", "ab"),
    "carriage return rewrites the line": ("FAILED\rkeep  ", "FAILEDkeep  "),
    "backspaces": ("crash\x08\x08\x08\x08\x08keep!", "crashkeep!"),
    "bidi override": ("score \u202e0.1\u202c", "score 0.1"),
    "NUL and DEL": ("a\x00b\x7fc", "abc"),
    "DCS string": ("x\x1bPq#0;2;0;0;0\x1b\\y", "xy"),
    "two-byte escape (reset)": ("a\x1bcb", "ab"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_control_sequences_are_stripped(case: str) -> None:
    text, shown = HOSTILE[case]
    assert strip_controls(text) == shown


def test_plain_text_tabs_newlines_and_unicode_stay() -> None:
    text = "Use a GRU\tover 24 frames:\n  AP 0.91 → 0.93 (ünïcode, 中文, emoji 🙂)"
    assert strip_controls(text) == text


def test_an_unterminated_string_sequence_hides_nothing_after_it() -> None:
    assert strip_controls("\x1b]0;the rest of the hypothesis") == "0;the rest of the hypothesis"


def test_the_console_shows_no_escape_and_no_markup() -> None:
    buf = io.StringIO()
    Console(file=buf, width=200, force_terminal=False).print(
        escape_console("[bold red]keep[/] \x1b]0;t\x07\x1b[2Jhyp"), highlight=False)
    assert buf.getvalue() == "[bold red]keep[/] hyp\n"


def test_html_escapes_markup_and_quotes() -> None:
    assert escape_html('<img src=x onerror="a()">&') == "&lt;img src=x onerror=&quot;a()&quot;&gt;&amp;"


def test_json_in_a_script_element_cannot_close_it() -> None:
    hostile = {"h": "</script><script>alert(1)</script><!-- \u2028"}
    text = json_for_html(hostile)
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text) == hostile
