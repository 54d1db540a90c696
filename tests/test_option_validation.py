"""Nonsense numeric options are bad input (exit 2, one line), never a silent pass or a crash."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli, load_problem
from gradcheck_cli.backends import create_backend

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # --fd-step inf made every estimate NaN, and a half-MSE gradient passed (exit 0).
        (["--fd-step", "inf"], "--fd-step must be positive and finite, got inf"),
        (["--fd-step", "nan"], "--fd-step must be positive and finite, got nan"),
        # A negative or NaN tolerance failed every backend (exit 1) or judged nothing.
        (["--rtol", "-1"], "--rtol must be a finite number >= 0, got -1.0"),
        (["--rtol", "nan"], "--rtol must be a finite number >= 0, got nan"),
        (["--rtol", "inf"], "--rtol must be a finite number >= 0, got inf"),
        (["--atol", "-1"], "--atol must be a finite number >= 0, got -1.0"),
        # A negative seed crashed NumPy's generator: "internal error", exit 3.
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
    # (a dead unit); with --atol 0 its relative error was 0/0 = NaN, and the JSON said NaN.
    result = runner.invoke(cli.app, ["run", "-b", "numpy", "--atol", "0", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout, parse_constant=_refuse_constant)
    errors = [p["max_rel_err"] for p in report["backends"][0]["params"]]
    assert all(np.isfinite(e) for e in errors), errors
    assert "RuntimeWarning" not in result.stderr


def _refuse_constant(name: str) -> float:
    raise AssertionError(f"the JSON holds {name}, which strict JSON parsers reject")


def test_atol_help_says_the_default_scales_with_the_gradient():
    # The help said "default: 1e-8 for float64", but the atol in force is 1e-8 x max|ref|.
    result = runner.invoke(cli.app, ["run", "--help"], env={"COLUMNS": "300"})
    assert "1e-8 x max|ref| for float64" in result.stdout
    report = json.loads(runner.invoke(cli.app, ["run", "-b", "numpy", "--json"]).stdout)
    grads = create_backend("numpy").gradients(load_problem())
    largest = max(float(np.abs(g).max()) for g in grads.by_name().values())
    # The reference is finite differences, which agree with backprop to ~1e-7 here.
    assert report["tolerances"]["atol"] == pytest.approx(1e-8 * largest, rel=1e-5)


@pytest.mark.parametrize(
    ("loss", "T", "message"),
    [
        # Each message names the first offending target, as the README promises for inputs.
        ("bce", np.array([[0.5], [1.0], [-0.25], [0.0]]), "T[2, 0] = -0.25; bce targets"),
        ("cross-entropy", np.array([0.0, 2.0, 1.5, 1.0]), "T[2] = 1.5; cross-entropy labels"),
        (
            "cross-entropy",
            np.tile([[0.2, 0.3, 0.5]], (4, 1)) * [[1], [1], [1], [2]],
            "row T[3] sums to 2;",
        ),
        (
            "cross-entropy",
            np.array([[1, 0, 0], [-1, 1, 1], [0, 1, 0], [0, 0, 1]]),
            "row T[1] has a negative entry;",
        ),
    ],
)
def test_bad_targets_name_the_entry(tmp_path, loss, T, message):
    rng = np.random.default_rng(0)
    outputs = 1 if loss == "bce" else 3
    path = tmp_path / "d.npz"
    np.savez(
        path, X=rng.normal(size=(4, 2)), T=T, W0=rng.normal(size=(2, outputs)), B0=np.zeros(outputs)
    )
    result = runner.invoke(cli.app, ["run", "--data", str(path), "--loss", loss])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_overflowing_loss_is_bad_input_not_three_failed_backends(tmp_path):
    # X of 1e200 overflowed the forward pass: every backend "failed" with NaN gradients (exit 1).
    problem = load_problem()
    path = tmp_path / "huge.npz"
    arrays = {"X": problem.X * 1e200, "T": problem.T}
    arrays |= {f"W{i}": w for i, w in enumerate(problem.weights)}
    arrays |= {f"B{i}": b for i, b in enumerate(problem.biases)}
    np.savez(path, **arrays)
    result = runner.invoke(cli.app, ["run", "--data", str(path), "--json"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: {path}: the loss at these parameters is inf in float64 (the forward pass "
        "overflows); rescale X or the parameters"
    )


def test_binary_file_as_utils_has_no_line_none(tmp_path):
    # `--utils d.npz` said "line None: source code string cannot contain null bytes".
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((2, 2)))
    result = runner.invoke(cli.app, ["run", "--utils", str(path)])
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    # The wording of the null-byte SyntaxError differs between Python versions.
    assert message.startswith(f"error: utils file {path}: ") and "null bytes" in message
    assert message.endswith("(not valid Python)") and "None" not in message


def test_weights_saved_in_pytorch_layout_are_called_transposed(tmp_path):
    # net[0].weight.numpy() is (out, in); the message only said "expected (4, ...)".
    problem = load_problem()
    path = tmp_path / "torch_layout.npz"
    arrays = {"X": problem.X, "T": problem.T}
    arrays |= {f"W{i}": w.T for i, w in enumerate(problem.weights)}
    arrays |= {f"B{i}": b for i, b in enumerate(problem.biases)}
    np.savez(path, **arrays)
    result = runner.invoke(cli.app, ["run", "--data", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"error: {path}: W0 is (6, 4) but X has 4 features; expected (4, ...) "
        "(W0 looks transposed: nn.Linear.weight is (out, in); save its .T)"
    )


def test_a_plain_shape_mismatch_does_not_claim_a_transpose(tmp_path):
    problem = load_problem()
    path = tmp_path / "wrong.npz"
    arrays = {"X": problem.X, "T": problem.T, "W0": np.ones((5, 6)), "B0": np.zeros(6)}
    np.savez(path, **arrays)
    result = runner.invoke(cli.app, ["run", "--data", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("expected (4, ...)")
