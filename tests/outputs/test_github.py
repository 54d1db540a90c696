"""GitHub Actions output: workflow-command escaping, annotations and the Markdown step summary."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gradcheck_cli.backends import create_backend
from gradcheck_cli.outputs.github import (
    annotation_lines,
    escape_data,
    escape_property,
    source_locations,
    step_summary,
    workflow_command,
)
from gradcheck_cli.verdict import run_checks
from tests.helpers import USER_CORPUS, RaisingBackend, parse_command


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


def _user_run(exercise_problem, spec: str):
    from gradcheck_cli.backends.user import UserBackend

    user = UserBackend(spec)
    report = run_checks(exercise_problem, [create_backend("numpy"), user])
    return report, source_locations([user])


def test_a_wrong_user_function_is_annotated_at_its_def(exercise_problem):
    # file= and line= (relative to the repository) put the annotation on a pull request's diff.
    report, locations = _user_run(exercise_problem, f"{USER_CORPUS / 'half_mse.py'}:general")
    root = USER_CORPUS.parent.parent
    errors = [parse_command(x) for x in annotation_lines(report, locations, root) if "::error" in x]
    assert len(errors) == 1
    _, props, _ = errors[0]
    assert props["file"] == "tests/user_corpus/half_mse.py"
    assert props["line"] == "28"  # def general(X, T, W, B):


def test_a_raising_user_function_is_annotated_where_it_raised(exercise_problem):
    report, locations = _user_run(exercise_problem, f"{USER_CORPUS / 'bad_returns.py'}:raises")
    root = USER_CORPUS.parent.parent
    (line,) = [x for x in annotation_lines(report, locations, root) if x.startswith("::error")]
    _, props, message = parse_command(line)
    source = (USER_CORPUS / "bad_returns.py").read_text().splitlines()
    assert props["file"] == "tests/user_corpus/bad_returns.py"
    assert "undefined_name" in source[int(props["line"]) - 1]  # in helper(), called by raises()
    assert "NameError" in message


def test_no_location_outside_the_repository(exercise_problem, tmp_path):
    report, locations = _user_run(exercise_problem, f"{USER_CORPUS / 'half_mse.py'}:general")
    lines = annotation_lines(report, locations, root=tmp_path)
    assert not any("file=" in x for x in lines)
    assert any(x.startswith("::error title=gradcheck%3A half_mse.py") for x in lines)
