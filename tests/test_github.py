"""GitHub Actions output: workflow-command escaping, annotations and the Markdown step summary."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gradcheck_cli import cli
from tests.helpers import parse_command, wrong_numpy

runner = CliRunner()


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


def test_format_github_on_a_passing_run_has_only_a_notice():
    result = runner.invoke(cli.app, ["run", "--format", "github", "-b", "numpy"])
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert len(lines) == 1 and lines[0].startswith(
        "::notice title=gradcheck::numpy agrees with finite differences"
    )


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
