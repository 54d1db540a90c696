"""Defusing workflow commands in text gradcheck prints but did not write."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gradcheck_cli.safety.text import defuse_commands, encodable, is_command_line

# How a CI runner splits output into lines and what it obeys, written independently.
_RUNNER_LINES = re.compile(r"\r\n|\r|\n")
_OBEYED = re.compile(r"^\s*(::|##\[)")


def test_command_lines_are_prefixed_and_others_kept():
    text = "ok\n  ::error::x\r##[group]y\nnot :: this\n"
    assert defuse_commands(text) == "ok\n>   ::error::x\r> ##[group]y\nnot :: this\n"
    assert is_command_line("\x1b[31m::warning::colour first")
    assert defuse_commands("plain text") == "plain text"


@given(st.text(alphabet=st.sampled_from([":", "#", "[", " ", "\t", "\n", "\r", "a", "\u2028"])))
def test_no_runner_line_of_defused_text_is_a_command(text):
    for line in _RUNNER_LINES.split(defuse_commands(text)):
        assert not _OBEYED.match(line), repr(line)


def test_encodable_replaces_what_the_console_cannot_show():
    assert encodable("✓ ok", "cp1252") == "? ok"
    assert encodable("plain", "ascii") == "plain"
