"""The command line: table, JSON, exit codes, and a fast --help that does not import torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.backends import create_backend
from gradcheck_cli.cli import run_command
from tests.helpers import ScaledBackend

runner = CliRunner()


def test_run_prints_table_and_exits_0():
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 0, result.output
    for name in ("numpy", "torch-functional", "torch-sequential", "finite diff", "dE/dW0[0,0]"):
        assert name in result.output
    assert "all 3 backends agree" in result.output


def test_run_json_is_the_only_stdout():
    result = runner.invoke(cli.app, ["run", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [b["name"] for b in report["backends"]] == [
        "numpy",
        "torch-functional",
        "torch-sequential",
    ]
    assert report["finite_difference"]["checked"] == report["problem"]["parameters"] == 121


def test_backend_subset():
    result = runner.invoke(cli.app, ["run", "--json", "-b", "numpy", "-b", "torch-sequential"])
    assert [b["name"] for b in json.loads(result.stdout)["backends"]] == [
        "numpy",
        "torch-sequential",
    ]


def test_wrong_backend_exits_1(monkeypatch):
    def fake_create(name, **options):
        return ScaledBackend("W2", 0.5) if name == "numpy" else create_backend(name, **options)

    monkeypatch.setattr(run_command, "create_backend", fake_create)
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 1
    assert "1 of 3 backends failed" in result.output
    assert "W2" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--backend", "jax"], "unknown backend 'jax'"),
        (["run", "--data", "missing.npz"], "missing.npz: no such file"),
        (["run", "--fd", "off", "-b", "numpy"], "nothing to compare"),
        (["run", "--fd-step", "-1"], "must be positive"),
        (["run", "-b", "numpy", "-b", "numpy"], "backend given twice"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_bad_params_file_names_the_shape(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "p.npz"
    np.savez(
        path,
        W0=rng.standard_normal((4, 6)),
        B0=np.zeros(6),
        W1=rng.standard_normal((5, 1)),
        B1=np.zeros(1),
    )
    result = runner.invoke(cli.app, ["run", "--params", str(path)])
    assert result.exit_code == 2
    assert "W1 is (5, 1) but W0 outputs 6 features" in result.stderr


def test_data_and_params_files(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", X=rng.standard_normal((5, 3)), T=rng.standard_normal((5, 2)))
    np.savez(
        tmp_path / "p.npz",
        W0=rng.standard_normal((3, 4)),
        B0=np.ones(4),
        W1=rng.standard_normal((4, 2)),
        B1=np.ones(2),
    )
    result = runner.invoke(
        cli.app,
        ["run", "--json", "--data", str(tmp_path / "d.npz"), "--params", str(tmp_path / "p.npz")],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["problem"]["layers"] == [3, 4, 2]


def test_backends_command_lists_all():
    result = runner.invoke(cli.app, ["backends"])
    assert result.exit_code == 0
    for name in ("numpy", "torch-functional", "torch-sequential"):
        assert name in result.output


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


def test_show_with_json_warns_and_keeps_stdout_json():
    result = runner.invoke(cli.app, ["run", "--json", "-b", "numpy", "--show", "W1"])
    assert result.exit_code == 0
    json.loads(result.stdout)
    assert "--show prints tables" in result.stderr


def test_a_reader_that_leaves_early_does_not_change_the_exit_code():
    # `gradcheck run --format github | head -1` in a CI step: the verdict must stay 0.
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradcheck_cli", "run", "-b", "numpy", "--format", "github"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader is gone before the rest is written
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
