"""`gradcheck init`: the command it prints must work as printed."""

from __future__ import annotations

import shlex

from typer.testing import CliRunner

from gradcheck_cli import cli

runner = CliRunner()


def test_init_prints_a_command_that_works_for_a_path_with_a_space(tmp_path):
    # `gradcheck init "my backprop.py"` printed `--user my backprop.py:...`, which the shell
    # splits into two arguments.
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
