"""Layered inputs: the text architecture (as print(model) shows it), a live nn.Sequential,
--model FILE:FUNC, state_dict files, and one-line errors for everything that does not fit."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs import load_layered_problem, make_layered_problem
from gradcheck_cli.inputs.architecture import parse_layers
from gradcheck_cli.inputs.models import layers_of_model
from tests.layered_helpers import bn_net, conv_net, every_layer_net

torch = pytest.importorskip("torch")  # every test compares with torch autograd
nn = torch.nn

CONV_TEXT = "Conv2d(1,4,3,padding=1), ReLU, MaxPool2d(2), Flatten, Linear(64,10)"


def test_the_issue_syntax_parses():
    layers = parse_layers(CONV_TEXT)
    assert [layer.kind for layer in layers] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert [layer.name for layer in layers] == ["0", "1", "2", "3", "4"]
    assert layers[0].opts["padding"] == (1, 1) and layers[2].opts["stride"] is None


@pytest.mark.parametrize("net", [conv_net, bn_net, every_layer_net])
def test_print_model_output_parses_to_the_models_own_layers(net):
    model, _, _ = net(0)
    assert parse_layers(str(model)) == layers_of_model(model)[0]
    # and the layers' own text, joined, parses back to them
    text = ", ".join(layer.text() for layer in layers_of_model(model)[0])
    assert parse_layers(text) == layers_of_model(model)[0]


def test_named_layers_and_newlines_and_module_prefixes():
    text = "(conv): nn.Conv2d(1, 2, 3)\n(act): torch.nn.ReLU()\n(out): Flatten()"
    assert [layer.name for layer in parse_layers(text)] == ["conv", "act", "out"]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "Conv2d(1,4,3), Dropout(0.5)",
            r"layers: layer 1: unsupported layer 'Dropout'; supported: Linear",
        ),
        ("Linear(3, 2", "unbalanced"),
        ("Linear(3, n)", "'n' is not a literal value"),
        ("Conv2d(1, 4, 3, dilation=2)", "dilation=2 is not supported"),
        ("", "no layers given"),
        ("(0): ReLU\n(0): Tanh", "two layers named '0'"),
        ("Linear(2, 2), Sequential(ReLU())", "a Sequential inside"),
        ("3 + 4", "is not a layer"),
    ],
)
def test_bad_architectures_are_one_line_input_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_layers(text)


def test_a_model_with_an_unsupported_module_names_it():
    model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.1))
    with pytest.raises(InputError, match=r"module 1: unsupported layer 'Dropout'; supported:"):
        layers_of_model(model)
    with pytest.raises(InputError, match=r"must be a torch nn\.Sequential"):
        layers_of_model(nn.Linear(3, 2))


def test_nested_sequentials_keep_their_state_dict_names():
    model = nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), nn.Linear(4, 2))
    layers, params = layers_of_model(model)
    assert [layer.name for layer in layers] == ["0.0", "0.1", "1"]
    assert list(params) == list(model.state_dict())


def test_a_module_used_twice_is_two_layers_and_shared_weights_are_refused():
    act = nn.ReLU()
    layers, _ = layers_of_model(nn.Sequential(nn.Linear(3, 4), act, nn.Linear(4, 4), act))
    assert [(layer.kind, layer.name) for layer in layers][2:] == [("Linear", "2"), ("ReLU", "3")]
    shared = nn.Linear(3, 3)
    with pytest.raises(InputError, match=r"module 2 is module 0 again \(shared weights\)"):
        layers_of_model(nn.Sequential(shared, nn.ReLU(), shared))


def test_make_layered_problem_checks_names_shapes_and_targets():
    model, X, T = conv_net(0)
    layers, params = layers_of_model(model)
    problem = make_layered_problem(X, T, layers, params, loss="cross-entropy")
    assert problem.parameter_count == 690
    assert problem.parameter_names == ["0.weight", "0.bias", "4.weight", "4.bias"]
    with pytest.raises(InputError, match=r"4\.bias missing"):
        make_layered_problem(X, T, layers, {k: v for k, v in params.items() if k != "4.bias"})
    with pytest.raises(InputError, match=r"0.weight has shape \(4, 9\); layer 0 Conv2d"):
        make_layered_problem(X, T, layers, params | {"0.weight": np.ones((4, 9))})
    with pytest.raises(InputError, match=r"3\.weight not a parameter of these layers"):
        make_layered_problem(X, T, layers, params | {"3.weight": np.ones(3)})
    with pytest.raises(InputError, match=r"takes 1 input channels but gets shape \(2, 8, 8\)"):
        make_layered_problem(np.ones((8, 2, 8, 8)), T, layers, params)
    with pytest.raises(InputError, match="is not a class label"):
        make_layered_problem(X, T + 12, layers, params, loss="cross-entropy")
    with pytest.raises(InputError, match="output has shape"):
        make_layered_problem(X, T, layers[:2], params)


def test_batch_norm_buffers_are_ignored_and_a_batch_of_one_is_refused():
    model, X, T = bn_net(0)
    layers, _ = layers_of_model(model)
    state = {k: v.double().numpy() for k, v in model.state_dict().items()}
    assert "1.running_mean" in state
    problem = make_layered_problem(X, T, layers, state)
    assert "1.running_mean" not in problem.params
    with pytest.raises(InputError, match="more than one value per channel"):
        make_layered_problem(X[:1], T[:1], layers, state)


def test_load_from_files_and_from_a_model_function(tmp_path):
    model, X, T = conv_net(0)
    np.savez(tmp_path / "d.npz", X=X, T=T)
    torch.save(model.state_dict(), tmp_path / "p.pt")
    by_text = load_layered_problem(
        tmp_path / "d.npz", tmp_path / "p.pt", layers=CONV_TEXT, loss="cross-entropy"
    )
    (tmp_path / "m.py").write_text(
        "import torch\nfrom torch import nn\n"
        "def make():\n    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),"
        " nn.Flatten(), nn.Linear(64, 10))\n"
        "def broken():\n    raise RuntimeError('no')\n"
    )
    by_model = load_layered_problem(
        tmp_path / "d.npz", model=f"{tmp_path / 'm.py'}:make", loss="cross-entropy"
    )
    for name in by_text.parameter_names:
        assert np.array_equal(by_text.params[name], by_model.params[name])
    with pytest.raises(InputError, match=r"raised RuntimeError: no \(m.py, line"):
        load_layered_problem(tmp_path / "d.npz", model=f"{tmp_path / 'm.py'}:broken")
    with pytest.raises(InputError, match="defines no function nothing"):
        load_layered_problem(tmp_path / "d.npz", model=f"{tmp_path / 'm.py'}:nothing")
    with pytest.raises(InputError, match="one of them"):
        load_layered_problem(tmp_path / "d.npz", layers=CONV_TEXT, model="m.py:make")


def test_a_live_model_with_hooks_is_refused():
    # A hook changes what the model computes; the check computes the plain layers.
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model[1].register_forward_hook(lambda module, inputs, output: 2 * output)
    with pytest.raises(InputError, match="module 1 has a forward hook"):
        layers_of_model(model)
    model = nn.Sequential(nn.Linear(3, 2))
    model.register_forward_pre_hook(lambda module, inputs: inputs)
    model.register_forward_hook(lambda module, inputs, output: output)
    with pytest.raises(InputError, match=r"has a forward pre hook and a forward hook.*remove them"):
        layers_of_model(model)
