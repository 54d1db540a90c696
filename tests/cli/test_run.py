"""`gradcheck run`: the table and the JSON report, the backends chosen, exit codes, and the
options of the check itself."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli, load_problem
from gradcheck_cli.backends import create_backend
from tests.helpers import random_problem, wrong_numpy

STEP_RANGE = "1e-12 and 0.1"
STEP_WHY = "(a base step: each entry moves by it x max(1, |theta|))"

runner = CliRunner()


@pytest.mark.torch
def test_run_prints_table_and_exits_0():
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 0, result.output
    for name in ("numpy", "torch-functional", "torch-sequential", "finite diff", "dE/dW0[0,0]"):
        assert name in result.output
    assert "all 3 backends agree" in result.output


@pytest.mark.torch
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


@pytest.mark.torch
def test_backend_subset():
    result = runner.invoke(cli.app, ["run", "--json", "-b", "numpy", "-b", "torch-sequential"])
    assert [b["name"] for b in json.loads(result.stdout)["backends"]] == [
        "numpy",
        "torch-sequential",
    ]


@pytest.mark.torch
def test_wrong_backend_exits_1(monkeypatch):
    wrong_numpy(monkeypatch)
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 1
    assert "1 of 3 backends failed" in result.output
    assert "W2" in result.output


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


@pytest.mark.torch
def test_cli_activation_loss_and_dtype(tmp_path):
    problem = random_problem([3, 4, 3], samples=6, seed=8, loss="cross-entropy")
    path = tmp_path / "ce.npz"
    arrays = {"X": problem.X, "T": problem.T}
    arrays.update({f"W{i}": w for i, w in enumerate(problem.weights)})
    arrays.update({f"B{i}": b for i, b in enumerate(problem.biases)})
    np.savez(path, **arrays)
    args = ["run", "--json", "--data", str(path), "--activation", "tanh", "--loss", "cross-entropy"]
    result = runner.invoke(cli.app, [*args, "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["problem"]["activation"] == "tanh"
    assert report["problem"]["loss"] == "cross-entropy"
    assert report["problem"]["dtype"] == "float32"
    assert report["tolerances"]["rtol"] == 1e-3
    assert 0 < report["tolerances"]["atol"] < 1e-5  # 1e-5 x the largest gradient entry (< 1)


def test_cli_unknown_activation_is_usage_error():
    result = runner.invoke(cli.app, ["run", "--activation", "gelu"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.torch
def test_cli_directional_json_says_which_mode_ran():
    result = runner.invoke(cli.app, ["run", "--fd", "directional", "--fd-samples", "5", "--json"])
    assert result.exit_code == 0, result.output
    fd = json.loads(result.stdout)["finite_difference"]
    assert (fd["mode"], fd["directions"], fd["order"]) == ("directional", 5, 2)
    assert fd["checked"] == 5  # directional mode counts directions, not entries
    for key in ("kinks", "kink_entries", "max_error_estimate", "checked", "failed", "ok"):
        assert key in fd


@pytest.mark.torch
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fd-order", "3"], "--fd-order must be one of 2, 4"),
        (["--fd", "sample", "--fd-samples", "0"], "--fd-samples must be at least 1"),
        (["--fd-step", "-1"], "--fd-step must be between 1e-12 and 0.1"),
    ],
)
def test_cli_bad_fd_options_exit_2(args, message):
    result = runner.invoke(cli.app, ["run", *args])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # --fd-step inf would make every estimate NaN, and let a half-MSE gradient pass (exit 0).
        (["--fd-step", "inf"], f"--fd-step must be between 1e-12 and 0.1 {STEP_WHY}, got inf"),
        (["--fd-step", "nan"], f"--fd-step must be between 1e-12 and 0.1 {STEP_WHY}, got nan"),
        # A step outside the range gives no estimate at all: bad input, not a verdict.
        *(
            (
                ["--fd-step", given],
                f"--fd-step must be between 1e-12 and 0.1 {STEP_WHY}, got {shown}",
            )
            for given, shown in (
                ("1e-20", "1e-20"),
                ("1e-18", "1e-18"),
                ("5e-324", "4.94066e-324"),
                ("1e50", "1e+50"),
                ("1e300", "1e+300"),
            )
        ),
        # A negative or NaN tolerance would fail every backend (exit 1) or judge nothing.
        (["--rtol", "-1"], "--rtol must be a finite number >= 0, got -1.0"),
        (["--rtol", "nan"], "--rtol must be a finite number >= 0, got nan"),
        (["--rtol", "inf"], "--rtol must be a finite number >= 0, got inf"),
        (["--atol", "-1"], "--atol must be a finite number >= 0, got -1.0"),
        # NumPy's generator refuses a negative seed: bad input, not an internal error (exit 3).
        (["--fd", "sample", "--seed", "-5"], "--seed must be >= 0, got -5"),
        (["--fd", "directional", "--seed", "-1"], "--seed must be >= 0, got -1"),
        (
            ["--activation", "leaky-relu", "--negative-slope", "nan"],
            "--negative-slope must be a finite number, got nan",
        ),
    ],
)
def test_bad_numeric_option_exits_2_with_one_line(args, message):
    result = runner.invoke(cli.app, ["run", "-b", "numpy", *args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: {message}"


def test_atol_zero_gives_finite_errors_and_strict_json():
    # W1[4, 2] of the bundled problem is exactly 0 in every backend and in the reference
    # (a dead unit); with --atol 0 its relative error is 0/0, which must be finite: NaN is not
    # strict JSON.
    result = runner.invoke(cli.app, ["run", "-b", "numpy", "--atol", "0", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout, parse_constant=_refuse_constant)
    errors = [p["max_rel_err"] for p in report["backends"][0]["params"]]
    assert all(np.isfinite(e) for e in errors), errors
    assert "RuntimeWarning" not in result.stderr


def _refuse_constant(name: str) -> float:
    raise AssertionError(f"the JSON holds {name}, which strict JSON parsers reject")


def test_atol_help_says_the_default_scales_with_the_gradient():
    # The atol in force is 1e-8 x max|ref|, not a fixed 1e-8, and the help says so.
    result = runner.invoke(cli.app, ["run", "--help"])
    assert "1e-8 x max|ref| for float64" in " ".join(result.stdout.split())  # help is wrapped
    report = json.loads(runner.invoke(cli.app, ["run", "-b", "numpy", "--json"]).stdout)
    grads = create_backend("numpy").gradients(load_problem())
    largest = max(float(np.abs(g).max()) for g in grads.by_name().values())
    # The reference is finite differences, which agree with backprop to ~1e-7 here.
    assert report["tolerances"]["atol"] == pytest.approx(1e-8 * largest, rel=1e-5)
