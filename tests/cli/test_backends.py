"""`gradcheck backends`: the available backends."""

from __future__ import annotations

from typer.testing import CliRunner

from gradcheck_cli import cli

runner = CliRunner()


def test_backends_command_lists_all():
    result = runner.invoke(cli.app, ["backends"])
    assert result.exit_code == 0
    for name in ("numpy", "torch-functional", "torch-sequential"):
        assert name in result.output
