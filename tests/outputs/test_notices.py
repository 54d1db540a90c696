"""The warning that a report is about the bundled exercise problem, in every format's header."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from gradcheck_cli.backends import create_backend
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.outputs.github import annotation_lines, step_summary
from gradcheck_cli.outputs.junit import to_junit
from gradcheck_cli.outputs.notebook import to_html
from gradcheck_cli.outputs.text import print_report
from gradcheck_cli.verdict import run_checks
from tests.helpers import arrays, parse_command, parse_junit

WARNING = "the bundled exercise problem was checked, not a network of yours"


def _report(problem):
    return run_checks(problem, [create_backend("numpy")])


def _text(report) -> str:
    buffer = io.StringIO()
    print_report(report, Console(file=buffer, width=200))
    return buffer.getvalue()


def _every_format(report) -> dict[str, str]:
    _, suite = parse_junit(to_junit(report))
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    return {
        "text": _text(report).splitlines()[0],
        "notebook": to_html(report),
        "json": str(report.to_dict()["problem"]),
        "junit": properties.get("warning", ""),
        "github": parse_command(annotation_lines(report)[0])[2],
        "summary": step_summary(report).split("|")[0],
    }


@pytest.fixture
def own_problem():
    named = arrays()  # a 3-4-2 network: two layers
    W, B = [named["W0"], named["W1"]], [named["B0"], named["B1"]]
    return make_problem(named["X"], named["T"], W, B)


def test_every_format_says_when_the_problem_is_the_bundled_one(exercise_problem):
    report = _report(exercise_problem)
    assert report.to_dict()["problem"]["bundled"] is True
    for name, text in _every_format(report).items():
        if name == "json":
            assert "'source': 'bundled exercise problem'" in text
        else:
            assert WARNING in text, name


def test_no_warning_for_a_problem_of_ones_own(own_problem):
    report = _report(own_problem)
    assert report.to_dict()["problem"]["bundled"] is False
    for name, text in _every_format(report).items():
        assert WARNING not in text, name
    assert not any(line.startswith("::warning") for line in annotation_lines(report))
