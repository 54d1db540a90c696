"""The app: a fast --help that does not import torch, the entry point, one-line usage errors,
exit code 3 with --debug for its traceback, and the progress bar."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.console import Console
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.cli import application
from gradcheck_cli.inputs import loading
from gradcheck_cli.problem import Problem

runner = CliRunner()


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from gradcheck_cli.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "run" in proc.stdout


def test_entry_point_help_smoke():
    proc = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "gradcheck" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--activation", "Relu"], "Invalid value for '--activation'"),
        (["run", "--dat", "x.npz"], "No such option: --dat"),
        (["run", "extra"], "unexpected extra argument"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args, message):
    # Through the real entry point (CliRunner bypasses the app's __call__).
    proc = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", *args], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def _explode(*args: object, **kwargs: object) -> Problem:
    raise RuntimeError("boom in the loader")


def test_internal_error_is_one_line_with_a_debug_hint(monkeypatch):
    monkeypatch.setattr(loading, "load_problem", _explode)
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 3
    assert "internal error: RuntimeError: boom in the loader (rerun with --debug" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setattr(loading, "load_problem", _explode)
    result = runner.invoke(cli.app, ["--debug", "inspect"])
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr
    assert "_explode" in result.stderr and "RuntimeError: boom in the loader" in result.stderr


def test_debug_keeps_bad_input_to_one_line(tmp_path):
    result = runner.invoke(cli.app, ["--debug", "run", "--data", str(tmp_path / "nope.npz")])
    assert result.exit_code == 2
    assert "nope.npz: no such file" in result.stderr
    assert "Traceback" not in result.output


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
