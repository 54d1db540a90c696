"""JUnit XML: parsed back with xml.etree, counted, and its failure messages checked."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.backends import create_backend
from gradcheck_cli.cli import run_command
from tests.helpers import (
    CASES_PER_BACKEND,
    ScaledBackend,
    assert_attributes_match_contents,
    junit_counts,
    parse_junit,
)

runner = CliRunner()


def test_passing_run_writes_junit_with_no_failures(tmp_path):
    path = tmp_path / "out" / "gradcheck.xml"
    path.parent.mkdir()
    result = runner.invoke(cli.app, ["run", "--junit", str(path)])
    assert result.exit_code == 0, result.output
    root, suite = parse_junit(path.read_text(encoding="utf-8"))
    assert_attributes_match_contents(root, suite)
    assert junit_counts(suite) == {
        "tests": 3 * CASES_PER_BACKEND + 1,
        "failures": 0,
        "errors": 0,
        "skipped": 0,
    }
    names = {(c.get("classname"), c.get("name")) for c in suite.iter("testcase")}
    assert ("gradcheck.numpy", "W0") in names
    assert ("gradcheck.torch-sequential", "B3") in names
    assert ("gradcheck.reference", "finite differences") in names
    assert all(float(c.get("time")) >= 0 for c in suite.iter("testcase"))


def test_failing_backend_gives_exit_1_and_failures_with_numbers(tmp_path, monkeypatch):
    def fake_create(name, **options):
        return ScaledBackend("W2", 0.5) if name == "numpy" else create_backend(name, **options)

    monkeypatch.setattr(run_command, "create_backend", fake_create)
    path = tmp_path / "gradcheck.xml"
    result = runner.invoke(cli.app, ["run", "--junit", str(path)])
    assert result.exit_code == 1
    root, suite = parse_junit(path.read_text(encoding="utf-8"))
    assert_attributes_match_contents(root, suite)
    # The W2 testcase of the wrong backend, and the finite-difference summary.
    assert junit_counts(suite)["failures"] == 2
    assert junit_counts(suite)["errors"] == 0
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert {(c.get("classname"), c.get("name")) for c in failed} == {
        ("gradcheck.scaled", "W2"),
        ("gradcheck.reference", "finite differences"),
    }
    message = failed[0].find("failure").get("message")
    assert "W2" in message and "finite differences" in message
    # Halving a gradient makes |g/2 - g| / max(|g/2|, |g|) = 1/2 on every entry far from 0.
    rel = float(re.search(r"max rel err ([0-9.e+-]+)", message).group(1))
    assert abs(rel - 0.5) < 1e-3
