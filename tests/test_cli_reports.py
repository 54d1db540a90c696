"""Reports of failing runs (table, annotations, summary, JUnit) say exactly what happened."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner

from gradcheck_cli import cli
from tests.helpers import UNSUMMED_BIAS, USER_CORPUS

runner = CliRunner()


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


def test_exercise_form_returning_three_values_says_so(tmp_path):
    # (DW, DB, loss) from the exercise form was read as DW alone: "returned 3 arrays for DW".
    (tmp_path / "three.py").write_text(
        UNSUMMED_BIAS.replace("return DW, DB", "return DW, [b.sum(0) for b in DB], 0.5")
    )
    user = f"{tmp_path / 'three.py'}:back_propagation"
    result = runner.invoke(cli.app, ["run", "-b", "numpy", "--user", user, "--json"])
    assert result.exit_code == 1, result.output
    backend = json.loads(result.stdout)["backends"][1]
    assert backend["error"] == "returned 3 values; expected DW or (DW, DB)"


def test_junit_and_summary_on_the_same_file_is_bad_usage(tmp_path):
    # The summary's Markdown was appended to the JUnit XML, which no CI could parse then.
    path = tmp_path / "out.xml"
    result = runner.invoke(
        cli.app, ["run", "-b", "numpy", "--junit", str(path), "--summary", str(path)]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {path}: --junit and --summary must be different files"
    assert not path.exists()


def test_directional_junit_does_not_pass_parameters_it_did_not_check(tmp_path):
    # Directional mode localises one entry; the other parameters of a half-MSE backend (all
    # wrong by 0.5) used to be passing testcases.
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
    # The shape column was empty with --fd directional (no per-entry reference to take it from).
    summary = tmp_path / "summary.md"
    args = ["run", "-b", "numpy", "--fd", "directional", "--summary", str(summary)]
    result = runner.invoke(cli.app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    table = {row[0]: row[1] for row in rows if row and row[0] in ("W0", "W3", "B0")}
    assert table == {"W0": "4×6", "W3": "6×1", "B0": "6"}
    text = summary.read_text()
    assert "| W0 | 4×6 |" in text and "| B3 | 1 |" in text


def test_error_messages_are_not_read_as_rich_markup(tmp_path):
    # "[tool.gradcheck] must be a table" printed as " must be a table", and a folder named
    # "runs[red]" vanished from a path (and turned the rest of the line red).
    config = tmp_path / "gradcheck.toml"
    config.write_text("[tool]\ngradcheck = 3\n")
    result = runner.invoke(cli.app, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {config}: [tool.gradcheck] must be a table"
    folder = tmp_path / "runs[red]"
    folder.mkdir()
    result = runner.invoke(cli.app, ["run", "--data", str(folder / "d.npz")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: data file {folder / 'd.npz'}: no such file"
