"""The app: a fast --help that does not import torch, the entry point, one-line usage errors,
exit code 3 with --debug for its traceback, the progress bar, and the conventions of a CLI:
-h, -V, --debug after the command, shell completion, plain metavars, unwrapped findings in
pipes, "did you mean" for misspelt names, and a one-line error where torch is missing."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from rich.console import Console
from typer.testing import CliRunner

import gradcheck_cli
from gradcheck_cli import cli
from gradcheck_cli.cli import application
from gradcheck_cli.inputs import loading
from gradcheck_cli.problem import Problem
from tests.helpers import assert_bad_input, wrong_numpy

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


@pytest.mark.parametrize("args", [["-h"], ["run", "-h"], ["inspect", "-h"], ["init", "-h"]])
def test_dash_h_is_help(args):
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ") and "-h, --help" in result.stdout


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_dash_capital_v_is_the_version(flag):
    result = runner.invoke(cli.app, [flag])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"gradcheck {gradcheck_cli.__version__}"


@pytest.mark.parametrize("command", ["run", "inspect"])
def test_debug_is_accepted_after_the_command(monkeypatch, command):
    # The hint says "rerun with --debug": appending it to the command line must work.
    monkeypatch.setattr(loading, "load_problem", _explode)
    result = runner.invoke(cli.app, [command, "--debug"])
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr
    # ... and it does not stick to the next run.
    assert "Traceback" not in runner.invoke(cli.app, [command]).stderr


def test_help_shows_plain_metavars_and_unsplit_choices():
    for command in ("run", "inspect", "init", "backends"):
        out = runner.invoke(cli.app, [command, "--help"], env={"COLUMNS": "60"}).stdout
        assert "<bool>" not in out and "list[" not in out and "<str>" not in out, out
    out = runner.invoke(cli.app, ["run", "--help"], env={"COLUMNS": "60"}).stdout
    for metavar in (
        "--fd <auto|full|sample|directional|off>",
        "--activation <relu|tanh|sigmoid|leaky-relu|identity>",
        "-b, --backend <name>",
        "--user <file:func>",
        "--show <param>",
    ):
        assert metavar in out, metavar


def test_shell_completion_completes_options_and_choices():
    env = {**os.environ, "_GRADCHECK_COMPLETE": "complete_bash"}
    for words, cword, expected in [
        ("gradcheck r", "1", "run"),
        ("gradcheck run --acti", "2", "--activation"),
        ("gradcheck run --activation ta", "3", "tanh"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "gradcheck_cli"],
            env={**env, "COMP_WORDS": words, "COMP_CWORD": cword},
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        assert expected in proc.stdout.split(), (words, proc.stdout)


def test_findings_are_one_line_each_when_piped(monkeypatch):
    # CliRunner's stdout is not a terminal, like a pipe or a CI log: no wrapping at 80 columns.
    wrong_numpy(monkeypatch)
    result = runner.invoke(cli.app, ["run", "-b", "numpy"], env={"COLUMNS": "80"})
    assert result.exit_code == 1
    finding = next(line for line in result.stdout.splitlines() if line.startswith("✗ scaled W2"))
    assert len(finding) > 80 and "rel err" in finding and "factor" in finding


def test_without_torch_the_default_run_says_so_in_one_line():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if PyTorch were not installed\n"
        "from gradcheck_cli.cli import app\n"
        "app(['run'], prog_name='gradcheck')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "needs PyTorch" in lines[-1], lines
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "-b", "numpy", "--show", "w1"], "--show w1: no such parameter (did you mean W1?)"),
        (["run", "-b", "nunpy"], "unknown backend 'nunpy' (did you mean numpy?)"),
    ],
)
def test_misspelt_names_get_a_suggestion(args, message):
    assert_bad_input(args, message)


def test_a_misspelt_user_function_gets_a_suggestion(tmp_path):
    (tmp_path / "mine.py").write_text("def back_propagation(W, B, A, Y, T):\n    pass\n")
    spec = f"{tmp_path / 'mine.py'}:back_propogation"
    stderr = assert_bad_input(["run", "-b", "numpy", "--user", spec], "no function")
    assert stderr.endswith("(did you mean back_propagation?)")
    # No suggestion when nothing is close.
    spec = f"{tmp_path / 'mine.py'}:gradients"
    assert "did you mean" not in assert_bad_input(
        ["run", "-b", "numpy", "--user", spec], "no function"
    )


def test_a_misspelt_config_key_gets_a_suggestion(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.gradcheck]\nrtoll = 1e-6\n")
    monkeypatch.chdir(tmp_path)
    assert_bad_input(["run"], "unknown gradcheck option 'rtoll' (did you mean rtol?)")
