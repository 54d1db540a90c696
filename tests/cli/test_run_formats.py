"""`gradcheck run` outputs: --show, --format github and json, the --summary and --junit files,
and what their reports of a failing run say."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli
from tests.helpers import (
    CASES_PER_BACKEND,
    UNSUMMED_BIAS,
    USER_CORPUS,
    arrays,
    assert_attributes_match_contents,
    junit_counts,
    parse_command,
    parse_junit,
    wrong_numpy,
)

runner = CliRunner()


def test_show_with_json_warns_and_keeps_stdout_json():
    result = runner.invoke(cli.app, ["run", "--json", "-b", "numpy", "--show", "W1"])
    assert result.exit_code == 0
    json.loads(result.stdout)
    assert "--show prints tables" in result.stderr


def test_show_prints_the_parameter_entry_by_entry():
    result = runner.invoke(
        cli.app,
        [
            "run",
            "-b",
            "numpy",
            "--user",
            f"{USER_CORPUS / 'one_unit_wrong.py'}:general",
            "--show",
            "W1",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1
    out = result.stdout
    assert "W1 (6×6) · finite differences" in out
    assert "W1 · one_unit_wrong.py:general · relative error" in out
    assert "[:, 2]" in out and "only W1[:, 2] is wrong" in out


@pytest.mark.torch
def test_show_unknown_parameter_exits_2():
    result = runner.invoke(cli.app, ["run", "--show", "W9"])
    assert result.exit_code == 2
    assert "--show W9: no such parameter; choose from W0, W1, W2, W3, B0, B1, B2, B3" in (
        result.stderr
    )


@pytest.mark.torch
def test_format_github_annotates_a_failing_backend(monkeypatch):
    wrong_numpy(monkeypatch)
    result = runner.invoke(cli.app, ["run", "--format", "github"])
    assert result.exit_code == 1
    assert "1 of 3 backends failed" in result.stdout  # the tables are still there
    commands = [parse_command(line) for line in result.stdout.splitlines() if line[:2] == "::"]
    errors = [c for c in commands if c[0] == "error"]
    assert len(errors) == 1
    _, props, message = errors[0]
    assert props == {"title": "gradcheck: scaled (W2)"}
    assert message.startswith("scaled W2: max rel err 5.000e-01")
    assert commands[-1][0] == "notice" and "1 of 3 backends failed: scaled" in commands[-1][2]


def test_format_github_on_a_passing_run_has_only_a_notice(tmp_path):
    np.savez(tmp_path / "d.npz", **arrays())
    result = runner.invoke(
        cli.app, ["run", "--format", "github", "-b", "numpy", "--data", str(tmp_path / "d.npz")]
    )
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert len(lines) == 1 and lines[0].startswith(
        "::notice title=gradcheck::numpy agrees with finite differences"
    )


def test_format_github_warns_when_the_problem_is_the_bundled_one():
    # A CI job that forgot its input would otherwise pass green on the exercise network.
    result = runner.invoke(cli.app, ["run", "--format", "github", "-b", "numpy"])
    assert result.exit_code == 0
    commands = [parse_command(line) for line in result.stdout.splitlines() if line.startswith("::")]
    assert [level for level, _, _ in commands] == ["warning", "notice"]
    assert "bundled exercise problem" in commands[0][2]
    assert "checking the bundled exercise problem" in result.stderr


def test_format_json_equals_json_flag_and_contradictions_are_errors():
    a = runner.invoke(cli.app, ["run", "--json", "-b", "numpy"])
    b = runner.invoke(cli.app, ["run", "--format", "json", "-b", "numpy"])
    assert a.exit_code == b.exit_code == 0
    ja, jb = json.loads(a.stdout), json.loads(b.stdout)
    ja.pop("timings"), jb.pop("timings")
    assert ja == jb
    bad = runner.invoke(cli.app, ["run", "--json", "--format", "github"])
    assert bad.exit_code == 2
    assert "contradict" in bad.stderr and bad.stdout == ""


def summary_rows(markdown: str) -> list[list[str]]:
    """Rows of the first Markdown table, as lists of cells."""
    rows, inside = [], False
    for line in markdown.splitlines():
        if line.startswith("| backend |"):
            inside = True
        elif inside and not line.startswith("|"):
            break
        if inside:
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


@pytest.mark.torch
def test_summary_is_appended_and_tabulates_every_backend(tmp_path, monkeypatch):
    wrong_numpy(monkeypatch)
    path = tmp_path / "summary.md"
    path.write_text("earlier step\n", encoding="utf-8")
    result = runner.invoke(cli.app, ["run", "--summary", str(path)])
    assert result.exit_code == 1
    text = path.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n### ❌ gradcheck: 1 of 3 backends failed")
    header, rule, *rows = summary_rows(text.split("\n", 1)[1])
    assert header[0] == "backend" and len(rule) == len(header)
    assert all(len(row) == len(header) for row in rows)
    verdicts = {row[0]: row[-1] for row in rows}
    assert verdicts["scaled"] == "❌ failed"
    assert verdicts["torch-functional"] == verdicts["torch-sequential"] == "✅ ok"
    assert "*finite differences*" in verdicts
    assert "- scaled W2: max rel err 5.000e-01" in text


@pytest.mark.torch
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


@pytest.mark.torch
def test_failing_backend_gives_exit_1_and_failures_with_numbers(tmp_path, monkeypatch):
    wrong_numpy(monkeypatch)
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


def _run(tmp_path: Path, *extra: str):
    (tmp_path / "unsummed.py").write_text(UNSUMMED_BIAS)
    user = f"{tmp_path / 'unsummed.py'}:back_propagation"
    return runner.invoke(
        cli.app, ["run", "-b", "numpy", "--user", user, *extra], env={"COLUMNS": "200"}
    )


def test_invalid_return_is_not_called_raised(tmp_path):
    summary, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    result = _run(tmp_path, "--format", "github", "--summary", str(summary), "--junit", str(junit))
    assert result.exit_code == 1, result.output
    row = next(
        line for line in result.stdout.splitlines() if "unsummed.py:back_propagation" in line
    )
    assert "invalid" in row and "raised" not in row
    error = next(line for line in result.stdout.splitlines() if line.startswith("::error"))
    assert "unsummed.py:back_propagation failed: DB[0] has shape (20, 6); expected (6,)" in error
    assert "raised" not in error
    text = summary.read_text()
    assert "| unsummed.py:back_propagation | — | — | — | — | ❌ invalid |" in text
    assert " raised" not in text
    messages = [
        element.get("message", "")
        for element in ET.parse(junit).getroot().iter()
        if element.tag in ("failure", "error")
    ]
    assert messages and all("raised" not in m for m in messages)
    assert any("DB[0] has shape (20, 6)" in m for m in messages)


def test_junit_and_summary_on_the_same_file_is_bad_usage(tmp_path):
    # One file for both would get the summary's Markdown appended to the JUnit XML, which no
    # CI could parse.
    path = tmp_path / "out.xml"
    result = runner.invoke(
        cli.app, ["run", "-b", "numpy", "--junit", str(path), "--summary", str(path)]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {path}: --junit and --summary must be different files"
    assert not path.exists()


def test_directional_junit_does_not_pass_parameters_it_did_not_check(tmp_path):
    # Directional mode localises one entry; the other parameters of a half-MSE backend (all
    # wrong by 0.5) are failed or skipped testcases, never passing ones.
    junit = tmp_path / "junit.xml"
    user = f"{USER_CORPUS / 'half_mse.py'}:general"
    args = ["run", "-b", "numpy", "--user", user, "--fd", "directional", "--junit", str(junit)]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 1, result.output
    cases = {
        (case.get("classname"), case.get("name")): [child.tag for child in case]
        for case in ET.parse(junit).getroot().iter("testcase")
    }
    params = ["W0", "W1", "W2", "W3", "B0", "B1", "B2", "B3"]
    wrong = [cases[("gradcheck.half_mse.py:general", p)] for p in params]
    assert all(tags in (["failure"], ["skipped"]) for tags in wrong), wrong
    assert ["failure"] in wrong
    assert cases[("gradcheck.reference", "finite differences")] == ["failure"]


def test_directional_parameter_tables_show_the_shapes(tmp_path):
    # --fd directional has no per-entry reference to take the shapes from; the tables still
    # show them.
    summary = tmp_path / "summary.md"
    args = ["run", "-b", "numpy", "--fd", "directional", "--summary", str(summary)]
    result = runner.invoke(cli.app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    table = {row[0]: row[1] for row in rows if row and row[0] in ("W0", "W3", "B0")}
    assert table == {"W0": "4×6", "W3": "6×1", "B0": "6"}
    text = summary.read_text()
    assert "| W0 | 4×6 |" in text and "| B3 | 1 |" in text


def test_format_github_puts_a_user_functions_errors_on_its_file_and_line():
    spec = f"{USER_CORPUS / 'half_mse.py'}:general"
    env = {"GITHUB_WORKSPACE": str(USER_CORPUS.parent.parent)}
    result = runner.invoke(
        cli.app, ["run", "--format", "github", "-b", "numpy", "--user", spec], env=env
    )
    assert result.exit_code == 1
    (error,) = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert error.startswith("::error file=tests/user_corpus/half_mse.py,line=28,title=")
