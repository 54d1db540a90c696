"""`gradcheck inspect`: the loaded problem described, no gradients; the same loading options,
configuration and bad-input messages as `gradcheck run`."""

from __future__ import annotations

import json
import math
import typing

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli import verdict as checks
from gradcheck_cli.cli import inspect_command, run_command
from gradcheck_cli.inputs.loading import InputWarning, load_problem
from tests.bad_inputs import BAD_INPUTS, bad_input_params
from tests.helpers import (
    arrays,
    assert_bad_input,
    assert_same_arrays,
    data_of,
    sequential_for,
    torch_reference,
)

runner = CliRunner()

# The loss of a forward pass in float64 against torch autograd's: summation order only.
LOSS_RTOL = 1e-12


@pytest.mark.torch
def test_inspect_bundled_problem_table():
    result = runner.invoke(cli.app, ["inspect"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "4-6-6-6-1 relu MLP" in out and "20 samples" in out and "121 parameters" in out
    assert "source: bundled exercise problem" in out
    for name in ("X", "T", "W0", "W3", "B0", "B3", "20×4", "4×6", "hidden layer"):
        assert name in out
    expected_loss = torch_reference(load_problem())[0]
    assert f"loss at these parameters: {expected_loss:.7g}" in out


def test_inspect_json_statistics_match_hand_computed_values(tmp_path):
    X = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    T = np.array([[1.0], [-1.0], [3.0]])
    W = [np.array([[1.0, -1.0], [2.0, -2.0]]), np.array([[1.0], [1.0]])]
    B = [np.array([0.5, -0.5]), np.array([0.0])]
    np.savez(tmp_path / "p.npz", X=X, T=T, W0=W[0], W1=W[1], B0=B[0], B1=B[1])
    result = runner.invoke(cli.app, ["inspect", "--json", "--data", str(tmp_path / "p.npz")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    stats = {a["name"]: a for a in report["arrays"]}
    assert [a["name"] for a in report["arrays"]] == ["X", "T", "W0", "W1", "B0", "B1"]
    assert stats["X"] == {
        "name": "X",
        "shape": [3, 2],
        "min": 0.0,
        "max": 5.0,
        "mean": 2.5,
        "std": pytest.approx(math.sqrt(35 / 12)),
    }
    assert stats["T"]["mean"] == 1.0 and stats["T"]["std"] == pytest.approx(math.sqrt(8 / 3))
    assert report["problem"]["layers"] == [2, 2, 1]
    assert report["problem"]["parameters"] == 9
    # Hidden pre-activations by hand: X @ W0 + B0 = [[2.5, -2.5], [8.5, -8.5], [14.5, -14.5]].
    # Unit 2 is never positive (dead under relu); the closest value to the kink is 2.5.
    assert report["hidden_layers"] == [
        {"name": "layer 1", "units": 2, "dead_units": 1, "min_abs_preactivation": 2.5}
    ]
    # Output = relu(Z0) @ W1 + B1 = [2.5, 8.5, 14.5]; mse against T.
    assert report["loss_value"] == pytest.approx(((1.5**2) + (9.5**2) + (11.5**2)) / 3)


@pytest.mark.torch
@pytest.mark.parametrize("activation, loss", [("tanh", "sse"), ("sigmoid", "bce")])
def test_inspect_loss_matches_torch_autograd(tmp_path, activation, loss):
    named = arrays(5)
    if loss == "bce":
        named["T"] = np.random.default_rng(1).uniform(0, 1, named["T"].shape)
    np.savez(tmp_path / "p.npz", **named)
    problem = load_problem(tmp_path / "p.npz", activation=activation, loss=loss)
    args = ["inspect", "--json", "--data", str(tmp_path / "p.npz"), "--activation", activation]
    result = runner.invoke(cli.app, [*args, "--loss", loss])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["problem"]["activation"] == activation and report["problem"]["loss"] == loss
    assert report["loss_value"] == pytest.approx(torch_reference(problem)[0], rel=LOSS_RTOL)


@pytest.mark.torch
def test_inspect_takes_the_same_loading_options_as_run(tmp_path):
    import torch

    named = arrays(6)
    np.savez(tmp_path / "d.npz", **data_of(named))
    torch.save(sequential_for(named).state_dict(), tmp_path / "m.pt")
    result = runner.invoke(
        cli.app,
        ["inspect", "--data", str(tmp_path / "d.npz"), "--params", str(tmp_path / "m.pt")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "3-4-2 relu MLP" in result.stdout and "m.pt" in result.stdout
    hints = {
        name: typing.get_type_hints(command, include_extras=True)
        for name, command in (
            ("run", run_command.run),
            ("inspect", inspect_command.inspect_command),
        )
    }
    for option in ("data", "params", "utils", "activation", "negative_slope", "loss", "dtype"):
        assert hints["run"][option] == hints["inspect"][option], option


def test_inspect_with_utils(tmp_path):
    (tmp_path / "utils.py").write_text(
        "import numpy as np\n"
        "def getdata():\n    return np.ones((3, 2)), np.zeros((3, 1))\n"
        "def getparams():\n"
        "    return [np.ones((2, 5)), np.ones((5, 1))], [np.zeros(5), np.zeros(1)]\n"
    )
    result = runner.invoke(cli.app, ["inspect", "--json", "--utils", str(tmp_path / "utils.py")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["problem"]["layers"] == [2, 5, 1]
    assert report["source"].endswith("utils.py")
    # relu(ones @ ones) = 2 per hidden unit, output 5 * 2 = 10, T = 0: mse = 100.
    assert report["loss_value"] == 100.0


def test_inspect_computes_no_gradients(monkeypatch):
    def refuse(*args: object, **kwargs: object) -> typing.NoReturn:
        raise AssertionError("inspect must not compute gradients")

    monkeypatch.setattr(checks, "run_checks", refuse)
    monkeypatch.setattr(run_command, "create_backend", refuse)
    result = runner.invoke(cli.app, ["inspect", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["problem"]["layers"] == [4, 6, 6, 6, 1]


def _project(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"X": rng.normal(size=(7, 3)), "T": rng.integers(0, 2, size=7)}
    arrays |= {"W0": rng.normal(size=(3, 5)), "B0": rng.normal(size=5)}
    arrays |= {"W1": rng.normal(size=(5, 2)), "B1": rng.normal(size=2)}
    np.savez(tmp_path / "problem.npz", **arrays)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.gradcheck]\ndata = "problem.npz"\nactivation = "tanh"\n'
        'loss = "cross-entropy"\nfd = "sample"\nrtol = 1e-6\n'
    )


@pytest.mark.torch
def test_inspect_uses_the_loading_options_of_tool_gradcheck(tmp_path, monkeypatch):
    # inspect shows the problem that run checks: the configured one, not the bundled 4-6-6-6-1.
    _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    shown = runner.invoke(cli.app, ["inspect", "--json"])
    assert shown.exit_code == 0, shown.output
    assert f"config: {tmp_path / 'pyproject.toml'}" in shown.stderr
    problem = json.loads(shown.stdout)["problem"]
    checked = json.loads(runner.invoke(cli.app, ["run", "--json"]).stdout)["problem"]
    assert problem["layers"] == checked["layers"] == [3, 5, 2]
    assert problem["activation"] == checked["activation"] == "tanh"
    assert problem["loss"] == checked["loss"] == "cross-entropy"
    # A flag still wins over the file.
    flagged = runner.invoke(cli.app, ["inspect", "--json", "--activation", "sigmoid"])
    assert json.loads(flagged.stdout)["problem"]["activation"] == "sigmoid"


def test_inspect_reports_a_bad_config_like_run(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.gradcheck]\nbogus = 1\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["inspect"])
    assert result.exit_code == 2
    assert "unknown gradcheck option 'bogus'" in result.stderr


@pytest.mark.parametrize("name, build, message", bad_input_params(BAD_INPUTS[:5]))
def test_inspect_reports_bad_input_the_same_way(tmp_path, name, build, message):
    args, _ = build(tmp_path)
    assert_bad_input(["inspect", *args[1:]], message)


def test_extra_keys_warn_but_load(tmp_path):
    named = arrays()
    np.savez(tmp_path / "all.npz", notes=np.zeros(2), W01=np.zeros((3, 4)), **named)
    with pytest.warns(InputWarning, match="ignoring extra keys W01, notes"):
        problem = load_problem(tmp_path / "all.npz")
    assert_same_arrays(problem, named)
    result = runner.invoke(cli.app, ["inspect", "--data", str(tmp_path / "all.npz")])
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "notes" in result.stderr
