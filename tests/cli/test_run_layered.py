"""`gradcheck run` and `inspect` on layered problems: --model FILE:FUNC, --params with
--layers (also from [tool.gradcheck]), params-form --user functions, state_dict names in
JSON and JUnit, and unsupported modules as exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli
from tests.helpers import assert_bad_input, parse_junit
from tests.layered_helpers import STUDENT, conv_net

torch = pytest.importorskip("torch")  # the models and state dicts are written by torch

runner = CliRunner()
CONV_TEXT = "Conv2d(1,4,3,padding=1), ReLU, MaxPool2d(2), Flatten, Linear(64,10)"
MODEL_FILE = """\
import torch
from torch import nn


def make():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)
    )


def with_dropout():
    return nn.Sequential(nn.Linear(64, 10), nn.Dropout(0.5))
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    model, X, T = conv_net(0)
    np.savez(tmp_path / "d.npz", X=X, T=T)
    torch.save(model.state_dict(), tmp_path / "p.pt")
    (tmp_path / "model.py").write_text(MODEL_FILE)
    return {
        "data": str(tmp_path / "d.npz"),
        "params": str(tmp_path / "p.pt"),
        "model": f"{tmp_path / 'model.py'}:make",
        "dropout": f"{tmp_path / 'model.py'}:with_dropout",
        "dir": str(tmp_path),
    }


def by_model(files: dict[str, str]) -> list[str]:
    """The loading options of the conv network through --model."""
    return ["--data", files["data"], "--model", files["model"], "--loss", "cross-entropy"]


def by_layers(files: dict[str, str]) -> list[str]:
    """The loading options of the conv network through --params and --layers."""
    return ["--data", files["data"], "--params", files["params"], "--layers", CONV_TEXT]


def _json(args: list[str], code: int = 0) -> dict:
    result = runner.invoke(cli.app, ["run", "--json", *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_model_all_three_builtins_agree_with_finite_differences_on_690_entries(files):
    report = _json(by_model(files))
    assert report["ok"] and report["finite_difference"]["checked"] == 690
    assert report["finite_difference"]["failed"] == 0
    assert [b["name"] for b in report["backends"]] == [
        "numpy",
        "torch-functional",
        "torch-sequential",
    ]
    names = [p["name"] for p in report["backends"][0]["params"]]
    assert names == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert report["problem"]["layers"][0] == "Conv2d(1, 4, 3, padding=1)"


def test_params_with_layers_the_same_problem(files):
    text = _json([*by_layers(files), "--loss", "cross-entropy"])
    model = _json(by_model(files))
    assert text["backends"][0]["loss"] == model["backends"][0]["loss"]


def test_activation_with_a_layered_network_is_bad_input(files):
    # Ignoring it would check another network than the one the user means.
    for loading in (by_model(files), by_layers(files)):
        assert_bad_input(
            ["run", *loading, "--activation", "tanh"],
            "--activation applies to MLP problems; a --layers or --model network names its own",
        )


def test_layers_and_model_together_are_bad_input_in_flags(files):
    assert_bad_input(
        ["run", *by_model(files), "--layers", CONV_TEXT],
        "give the architecture as --layers or as --model (one of them)",
    )


def test_layers_from_the_config_file(files):
    Path(files["dir"], "pyproject.toml").write_text(
        "[tool.gradcheck]\n"
        f'data = "d.npz"\nparams = "p.pt"\nloss = "cross-entropy"\nlayers = """{CONV_TEXT}"""\n'
    )
    result = runner.invoke(cli.app, ["run", "--json", "--config", f"{files['dir']}/pyproject.toml"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["problem"]["parameters"] == 690


def test_a_students_params_function_passes_and_its_mistake_fails(files, tmp_path):
    base = by_model(files)
    report = _json([*base, "--user", f"{STUDENT}:correct"])
    assert report["backends"][-1]["name"] == "conv_net.py:correct"
    junit = tmp_path / "j.xml"
    result = runner.invoke(
        cli.app, ["run", *base, "--user", f"{STUDENT}:flipped_kernel", "--junit", str(junit)]
    )
    assert result.exit_code == 1
    _, suite = parse_junit(junit.read_text())
    failed = [
        case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None
    ]
    assert failed == ["0.weight"]


def test_inspect_shows_layers_shapes_and_parameter_counts(files):
    result = runner.invoke(cli.app, ["inspect", "--json", *by_model(files)])
    assert result.exit_code == 0, result.output
    layers = json.loads(result.stdout)["layers"]
    assert [(l["name"], l["output_shape"], l["parameters"]) for l in layers] == [
        ("0", [4, 8, 8], 40),
        ("1", [4, 8, 8], 0),
        ("2", [4, 4, 4], 0),
        ("3", [64], 0),
        ("4", [10], 650),
    ]
    text = runner.invoke(cli.app, ["inspect", *by_model(files)], env={"COLUMNS": "120"})
    assert "Conv2d(1, 4, 3, padding=1)" in text.stdout and "4×4×4" in text.stdout


def test_show_a_convolution_kernel(files):
    result = runner.invoke(cli.app, ["run", "--show", "0.weight", *by_model(files)])
    assert result.exit_code == 0, result.output
    assert "0.weight (4×1×3×3)" in result.stdout


def test_an_unsupported_module_is_exit_2_naming_it_and_the_supported_ones(files):
    stderr = assert_bad_input(
        ["run", "--data", files["data"], "--model", files["dropout"]],
        "--model: module 1: unsupported layer 'Dropout'; supported: Linear, Conv2d",
    )
    assert "ELU" in stderr
    assert_bad_input(
        [
            "run",
            "--data",
            files["data"],
            "--params",
            files["params"],
            "--layers",
            "Linear, Softmax",
        ],
        "--layers: layer 0: Linear: in_features missing",
    )
    assert_bad_input(
        [
            "run",
            "--data",
            files["data"],
            "--params",
            files["params"],
            "--layers",
            "Conv3d(1, 2, 3)",
        ],
        "unsupported layer 'Conv3d'",
    )
    assert_bad_input(
        ["run", "--data", files["data"], "--params", files["params"]],
        "--layers gives the architecture",
    )
    assert_bad_input(
        ["run", "--data", files["data"], "--model", files["model"], "--layers", CONV_TEXT],
        "one of them",
    )
