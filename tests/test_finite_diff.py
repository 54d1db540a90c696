"""Finite differences: closed forms, the unbatched loop, torch autograd, kinks, modes."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.cli import application

# --- batched, kink-aware, error-estimated finite differences (issue #4) ---------------


runner = CliRunner()


def test_cli_directional_json_says_which_mode_ran():
    result = runner.invoke(cli.app, ["run", "--fd", "directional", "--fd-samples", "5", "--json"])
    assert result.exit_code == 0, result.output
    fd = json.loads(result.stdout)["finite_difference"]
    assert (fd["mode"], fd["directions"], fd["order"]) == ("directional", 5, 2)
    assert fd["checked"] == 5  # directional mode counts directions, not entries
    for key in ("kinks", "kink_entries", "max_error_estimate", "checked", "failed", "ok"):
        assert key in fd


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fd-order", "3"], "--fd-order must be one of 2, 4"),
        (["--fd", "sample", "--fd-samples", "0"], "--fd-samples must be at least 1"),
        (["--fd-step", "-1"], "--fd-step must be positive"),
    ],
)
def test_cli_bad_fd_options_exit_2(args, message):
    result = runner.invoke(cli.app, ["run", *args])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_progress_bar_appears_on_stderr_only_after_the_delay(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(application, "stderr", Console(file=buffer, force_terminal=True, width=100))
    with application.fd_progress(enabled=True) as update:
        assert update is not None
        update(1, 10)  # well within PROGRESS_DELAY_S: no bar yet
    assert buffer.getvalue() == ""
    monkeypatch.setattr(application, "PROGRESS_DELAY_S", 0.0)
    with application.fd_progress(enabled=True) as update:
        assert update is not None
        update(5, 10)
        update(10, 10)
    assert "finite differences" in buffer.getvalue()
    with application.fd_progress(enabled=False) as update:
        assert update is None
