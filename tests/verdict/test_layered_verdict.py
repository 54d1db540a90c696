"""The verdict on layered problems through the Python API: the issue's networks, the three
built-ins validated by finite differences, a user's params-form function judged by their
consensus, float32, and the structural zero of a bias before a batch norm."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_cli
from gradcheck_cli.errors import InputError
from tests.layered_helpers import (
    bn_net,
    conv_net,
    every_layer_net,
    problem_of,
    student,
    torch_gradients,
)

BUILTINS = ["numpy", "torch-functional", "torch-sequential"]


def test_the_conv_network_all_three_builtins_agree_with_finite_differences_on_690_entries():
    model, X, T = conv_net(0)
    report = gradcheck_cli.check(model=model, data=(X, T), loss="cross-entropy", fd="full")
    assert report.ok, report.notes
    fd = report.finite_difference
    assert fd is not None and fd.checked == 690 and fd.failed == 0 and fd.mode == "full"
    assert [b.name for b in report.backends] == BUILTINS
    assert all(b.ok and b.reference == "finite differences" for b in report.backends)
    names = [p["name"] for p in report.to_dict()["backends"][0]["params"]]
    assert names == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert report.to_dict()["problem"]["parameters"] == 690


def test_the_batch_norm_network_all_three_builtins_agree_with_finite_differences():
    model, X, T = bn_net(0)
    report = gradcheck_cli.check(model=model, data=(X, T), loss="mse", fd="full")
    assert report.ok, (report.notes, report.unresolved)
    assert report.finite_difference is not None and report.finite_difference.failed == 0
    assert any("0.bias is exactly zero" in note for note in report.notes)


def test_a_students_numpy_backprop_passes_when_right():
    model, X, T = conv_net(0)
    problem = problem_of(model, X, T, "cross-entropy")
    report = gradcheck_cli.check(student(), problem=problem)
    assert report.ok
    row = report.backend("correct")
    assert row.kind == "user" and row.reference == "consensus"
    assert row.sensitivity is not None and row.sensitivity < 1e-7


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_layer_kind_passes_and_a_wrong_entry_fails(dtype):
    model, X, T = every_layer_net(2)
    problem = problem_of(model, X, T, "mse", dtype=dtype)
    _, exact = torch_gradients(model, X, T, "mse")

    def right(X, T, params):  # type: ignore[no-untyped-def]
        return {n: g.astype(dtype) for n, g in exact.items()}

    def wrong(X, T, params):  # type: ignore[no-untyped-def]
        out = right(X, T, params)
        out["10.weight"] = out["10.weight"].copy()
        out["10.weight"][1, 3] += 0.01 * np.abs(out["10.weight"]).max()
        return out

    report = gradcheck_cli.check(right, wrong, problem=problem)
    assert report.backend("right").ok, report.notes
    failed = [p.name for p in report.backend("wrong").params if not p.ok]
    assert failed == ["10.weight"]


def test_a_params_function_must_return_every_name():
    model, X, T = conv_net(0)

    def partial(X, T, params):  # type: ignore[no-untyped-def]
        return {"0.weight": np.zeros((4, 1, 3, 3))}

    report = gradcheck_cli.check(partial, model=model, data=(X, T), loss="cross-entropy")
    assert not report.ok
    assert "returned no gradient for 0.bias, 4.weight, 4.bias" in report.backend("partial").error


def test_an_mlp_form_function_on_a_layered_problem_is_bad_input():
    model, X, T = conv_net(0)

    def mlp(X, T, W, B):  # type: ignore[no-untyped-def]
        return W, B

    with pytest.raises(InputError, match=r"a layered problem calls f\(X, T, params\)"):
        gradcheck_cli.check(mlp, model=model, data=(X, T), loss="cross-entropy")


def test_layers_as_text_with_a_state_dict():
    model, X, T = conv_net(0)
    text = "Conv2d(1,4,3,padding=1), ReLU, MaxPool2d(2), Flatten, Linear(64,10)"
    report = gradcheck_cli.check(
        layers=text, params=model.state_dict(), data=(X, T), loss="cross-entropy"
    )
    assert report.ok and report.problem.parameter_count == 690
