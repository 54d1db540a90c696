"""`gradcheck init`: a starter that fails until filled in, and a command printed that works as
printed."""

from __future__ import annotations

import json
import shlex

from typer.testing import CliRunner

from gradcheck_cli import cli

runner = CliRunner()


def test_init_prints_a_command_that_works_for_a_path_with_a_space(tmp_path):
    # `gradcheck init "my backprop.py"` must quote the path it prints: the shell would split
    # an unquoted `--user my backprop.py:...` into two arguments.
    path = tmp_path / "my backprop.py"
    result = runner.invoke(cli.app, ["init", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    command = result.stdout.splitlines()[-1].strip()
    argv = shlex.split(command)
    assert argv[:3] == ["gradcheck", "run", "--user"]
    assert argv[3] == f"{path}:back_propagation"
    assert command in path.read_text()  # the starter's docstring shows the same command
    again = runner.invoke(cli.app, [*argv[1:], "-b", "numpy"])
    assert again.exit_code == 1  # it ran the starter, which raises until filled in
    assert "NotImplementedError: write the backward pass here" in again.stdout


def test_init_writes_a_starter_that_fails_until_filled_in(tmp_path):
    path = tmp_path / "mine.py"
    result = runner.invoke(cli.app, ["init", str(path)])
    assert result.exit_code == 0, result.output
    assert f"gradcheck run --user {path}:back_propagation" in result.stdout
    text = path.read_text()
    assert "def back_propagation(W, B, A, Y, T):" in text
    assert "raise NotImplementedError" in text
    again = runner.invoke(cli.app, ["init", str(path)])
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert runner.invoke(cli.app, ["init", str(path), "--force"]).exit_code == 0
    run = runner.invoke(
        cli.app, ["run", "--json", "-b", "numpy", "--user", f"{path}:back_propagation"]
    )
    assert run.exit_code == 1
    user = json.loads(run.stdout)["backends"][-1]
    assert user["error"] == "NotImplementedError: write the backward pass here"


def test_init_into_a_folder(tmp_path):
    result = runner.invoke(cli.app, ["init", str(tmp_path)])
    assert result.exit_code == 0
    assert (tmp_path / "mybackprop.py").is_file()
