"""GitHub Actions output: workflow-command escaping, annotations and the Markdown step summary."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gradcheck_cli.backends import create_backend
from gradcheck_cli.outputs.github import (
    annotation_lines,
    escape_data,
    escape_property,
    step_summary,
    workflow_command,
)
from gradcheck_cli.verdict import run_checks
from tests.helpers import RaisingBackend, parse_command


def test_escaping_follows_the_actions_toolkit():
    assert escape_data("100%\r\nnext") == "100%25%0D%0Anext"
    assert escape_data("a:b,c") == "a:b,c"  # only properties escape : and ,
    assert escape_property("gradcheck: numpy, W0 %") == "gradcheck%3A numpy%2C W0 %25"
    assert workflow_command("error", "x", title="") == "::error::x"


@given(st.text(), st.text(min_size=1))
def test_workflow_command_round_trips_and_stays_on_one_line(message, title):
    line = workflow_command("error", message, title=title)
    assert "\n" not in line and "\r" not in line
    level, props, data = parse_command(line)
    assert (level, props, data) == ("error", {"title": title}, message)


def test_raising_backend_annotation_carries_the_traceback(exercise_problem):
    report = run_checks(exercise_problem, [create_backend("numpy"), RaisingBackend()])
    lines = annotation_lines(report)
    assert all("\n" not in line for line in lines)
    level, props, message = parse_command(next(x for x in lines if x.startswith("::error")))
    assert (level, props["title"]) == ("error", "gradcheck: raising")
    assert message.splitlines()[0] == "raising raised: ZeroDivisionError: boom"
    assert "Traceback (most recent call last)" in message


def test_summary_marks_a_raising_backend_and_escapes_pipes(exercise_problem):
    class PipeBackend(RaisingBackend):
        name = "a|b"

    report = run_checks(exercise_problem, [create_backend("numpy"), PipeBackend()])
    lines = step_summary(report).splitlines()
    assert "| a\\|b | — | — | — | — | ❌ raised |" in lines
    assert "- a|b raised: ZeroDivisionError: boom".replace("|", "\\|") in lines
