"""`gradcheck inspect` shows the problem that `gradcheck run` checks in a configured project."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from gradcheck_cli import cli

runner = CliRunner()


def _project(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"X": rng.normal(size=(7, 3)), "T": rng.integers(0, 2, size=7)}
    arrays |= {"W0": rng.normal(size=(3, 5)), "B0": rng.normal(size=5)}
    arrays |= {"W1": rng.normal(size=(5, 2)), "B1": rng.normal(size=2)}
    np.savez(tmp_path / "problem.npz", **arrays)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.gradcheck]\ndata = "problem.npz"\nactivation = "tanh"\n'
        'loss = "cross-entropy"\nfd = "sample"\nrtol = 1e-6\n'
    )


def test_inspect_uses_the_loading_options_of_tool_gradcheck(tmp_path, monkeypatch):
    # inspect used to show the bundled 4-6-6-6-1 problem while run checked the configured one.
    _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    shown = runner.invoke(cli.app, ["inspect", "--json"])
    assert shown.exit_code == 0, shown.output
    assert f"config: {tmp_path / 'pyproject.toml'}" in shown.stderr
    problem = json.loads(shown.stdout)["problem"]
    checked = json.loads(runner.invoke(cli.app, ["run", "--json"]).stdout)["problem"]
    assert problem["layers"] == checked["layers"] == [3, 5, 2]
    assert problem["activation"] == checked["activation"] == "tanh"
    assert problem["loss"] == checked["loss"] == "cross-entropy"
    # A flag still wins over the file.
    flagged = runner.invoke(cli.app, ["inspect", "--json", "--activation", "sigmoid"])
    assert json.loads(flagged.stdout)["problem"]["activation"] == "sigmoid"


def test_inspect_reports_a_bad_config_like_run(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.gradcheck]\nbogus = 1\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["inspect"])
    assert result.exit_code == 2
    assert "unknown gradcheck option 'bogus'" in result.stderr


def test_an_explicit_pyproject_without_the_table_is_bad_input(tmp_path):
    # --config pointing at a pyproject.toml without [tool.gradcheck] silently ran the defaults.
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.poetry]\nname = "x"\n')
    for command in ("run", "inspect"):
        result = runner.invoke(cli.app, [command, "--config", str(path)])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == f"error: {path}: has no [tool.gradcheck] table"


def test_a_nearby_pyproject_without_the_table_is_still_fine(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.poetry]\nname = "x"\n')
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["inspect", "--json"])
    assert result.exit_code == 0, result.output
    assert "config:" not in result.stderr
