"""JUnit XML: parsed back with xml.etree, counted, and its failure messages checked."""

from __future__ import annotations

import re

import pytest

from gradcheck_cli.backends import create_backend
from gradcheck_cli.backends.base import Backend
from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.backends.user import UserBackend
from gradcheck_cli.outputs.github import annotation_lines, verdict
from gradcheck_cli.outputs.junit import to_junit
from gradcheck_cli.problem import Gradients, Problem
from gradcheck_cli.verdict import CheckOptions, run_checks
from tests.helpers import (
    CASES_PER_BACKEND,
    USER_CORPUS,
    RaisingBackend,
    assert_attributes_match_contents,
    junit_counts,
    near_convergence,
    parse_junit,
)


def test_raising_backend_errors_every_testcase_with_the_message(exercise_problem):
    report = run_checks(exercise_problem, [create_backend("numpy"), RaisingBackend()])
    root, suite = parse_junit(to_junit(report))
    assert_attributes_match_contents(root, suite)
    raising = [c for c in suite.iter("testcase") if c.get("classname") == "gradcheck.raising"]
    assert len(raising) == CASES_PER_BACKEND
    for case in raising:
        error = case.find("error")
        assert error is not None
        assert "ZeroDivisionError: boom" in error.get("message")
        assert "Traceback" in (error.text or "")
    assert junit_counts(suite)["failures"] == 0


class WeightsOnlyBackend(Backend):
    """Correct weight gradients, no bias gradients."""

    name = "weights-only"

    def gradients(self, problem: Problem) -> Gradients:
        g = NumpyBackprop().gradients(problem)
        return Gradients(g.loss, g.dW, None)


class WrongLossBackend(Backend):
    """Correct gradients but a loss that is 1% off."""

    name = "wrong-loss"

    def gradients(self, problem: Problem) -> Gradients:
        g = NumpyBackprop().gradients(problem)
        return Gradients(g.loss * 1.01, g.dW, g.dB)


def test_missing_biases_are_skipped_and_a_wrong_loss_fails_the_loss_case(exercise_problem):
    report = run_checks(exercise_problem, [WeightsOnlyBackend(), WrongLossBackend()])
    root, suite = parse_junit(to_junit(report))
    assert_attributes_match_contents(root, suite)
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    for i in range(4):
        assert cases["gradcheck.weights-only", f"B{i}"].find("skipped") is not None
        assert len(cases["gradcheck.weights-only", f"W{i}"]) == 0  # passed
    loss_case = cases["gradcheck.wrong-loss", "loss"]
    failure = loss_case.find("failure")
    assert failure is not None and "differs from the float64 reference" in failure.get("message")
    expected = {"tests": 2 * CASES_PER_BACKEND + 1, "failures": 1, "errors": 0, "skipped": 4}
    assert junit_counts(suite) == expected


@pytest.mark.torch
def test_fd_off_skips_the_finite_difference_case(exercise_problem):
    backends = [create_backend("numpy"), create_backend("torch-functional")]
    report = run_checks(exercise_problem, backends, CheckOptions(fd_mode="off"))
    _, suite = parse_junit(to_junit(report))
    fd = [c for c in suite.iter("testcase") if c.get("name") == "finite differences"]
    assert len(fd) == 1 and fd[0].find("skipped") is not None


class ControlCharBackend(Backend):
    name = "control-chars"

    def gradients(self, problem: Problem) -> Gradients:
        raise ValueError("bad \x1b[31mred\x1b[0m \x00 value")


def test_control_characters_in_messages_still_give_valid_xml(exercise_problem):
    report = run_checks(exercise_problem, [ControlCharBackend()])
    _, suite = parse_junit(to_junit(report))  # ET.fromstring rejects invalid XML
    error = suite.find("testcase/error")
    assert error is not None and "red" in error.get("message")


def test_properties_name_the_problem_and_tolerances(exercise_problem):
    report = run_checks(exercise_problem, [create_backend("numpy")])
    _, suite = parse_junit(to_junit(report))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["problem"].startswith("4-6-6-6-1 relu MLP")
    assert float(props["rtol"]) == report.rtol and float(props["atol"]) == report.atol
    # The suite's time covers loading too, so it is at least the sum of its testcases' times.
    case_total = sum(float(c.get("time")) for c in suite.iter("testcase"))
    assert float(suite.get("time")) >= case_total - 1e-5


def test_a_wrong_user_function_fails_all_its_testcases_with_the_hint(exercise_problem):
    corpus = USER_CORPUS / "half_mse.py"
    user = UserBackend(f"{corpus}:general")  # forgets the 2 of d(Y-T)^2/dY
    report = run_checks(exercise_problem, [create_backend("numpy"), user])
    assert not report.ok
    root, suite = parse_junit(to_junit(report))
    assert_attributes_match_contents(root, suite)
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    user_failed = [c for c in failed if c.get("classname") == f"gradcheck.{user.name}"]
    assert sorted(c.get("name") for c in user_failed) == sorted(exercise_problem.parameter_names)
    for case in user_failed:
        message = case.find("failure").get("message")
        rel = float(re.search(r"max rel err ([0-9.e+-]+)", message).group(1))
        assert abs(rel - 0.5) < 1e-3  # every gradient is exactly half the true one
    # One annotation for the backend, one line per wrong parameter.
    errors = [line for line in annotation_lines(report) if line.startswith("::error")]
    assert len(errors) == 1
    assert errors[0].count("%0A") == len(exercise_problem.parameter_names) - 1


def test_an_inconclusive_run_fails_the_reference_testcase(exercise_problem):
    problem = near_convergence(exercise_problem.with_dtype("float32"), 1e-7)
    report = run_checks(problem, [create_backend("numpy")])
    assert report.backend("numpy").ok and not report.ok
    _, suite = parse_junit(to_junit(report))
    failures = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["finite differences"]
    failure = failures[0].find("failure")
    assert failure is not None and failure.get("type") == "Inconclusive"
    assert "cannot verify" in (failure.get("message") or "")
    assert verdict(report).startswith("inconclusive: cannot verify")
    assert any(line.startswith("::error") for line in annotation_lines(report))


def test_the_layout_fits_the_strict_junit_schemas(exercise_problem):
    # What Jenkins' junit-10.xsd (xunit plugin) and the Apache Ant JUnit.xsd require beyond
    # the common layout; the output was validated against both with xmlschema by hand.
    weights_only = UserBackend(f"{USER_CORPUS / 'correct.py'}:exercise_weights_only")
    backends = [create_backend("numpy"), weights_only, RaisingBackend()]
    root, suite = parse_junit(to_junit(run_checks(exercise_problem, backends)))
    assert root.attrib == {}  # Ant: no attributes; Jenkins: no `skipped` there
    assert suite.get("package") == "gradcheck" and suite.get("id") == "0"
    tags = [child.tag for child in suite]
    assert tags == ["properties", *["testcase"] * (len(tags) - 3), "system-out", "system-err"]
    cases = suite.findall("testcase")
    times = [suite.get("time"), *(case.get("time") for case in cases)]
    assert all(re.fullmatch(r"\d+\.\d{3}", t or "") for t in times), times
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp") or "")
    assert suite.get("hostname")
    marks = [child for case in cases for child in case]
    assert all(len(list(case)) <= 1 for case in cases)
    assert {m.tag for m in marks} == {"skipped", "error"}
    for mark in marks:  # <skipped> takes a message only; failure and error need a type
        assert set(mark.attrib) == ({"message"} if mark.tag == "skipped" else {"message", "type"})
