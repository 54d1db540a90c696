"""The layer table: every kind's NumPy forward and backward against torch autograd (the
independent reference), float32 staying float32, options validated, unknown kinds refused,
and every torch backend family having an entry for every layer kind."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.errors import InputError
from gradcheck_cli.nn import network
from gradcheck_cli.nn.layers import LAYER_KINDS, layer_kind, make_layer
from tests.layered_helpers import (
    bn_net,
    conv_net,
    every_layer_net,
    problem_of,
    torch_gradients,
)

torch = pytest.importorskip("torch")  # every test compares with torch autograd
nn = torch.nn
torch_functional = pytest.importorskip("gradcheck_cli.backends.torch_functional")
torch_sequential = pytest.importorskip("gradcheck_cli.backends.torch_sequential")


@pytest.mark.parametrize(
    "net, loss",
    [
        (conv_net, "cross-entropy"),
        (bn_net, "mse"),
        (every_layer_net, "mse"),
        (every_layer_net, "sse"),
    ],
)
def test_numpy_backprop_matches_torch_autograd(net, loss):
    model, X, T = net(3)
    problem = problem_of(model, X, T, loss)
    value, grads = network.gradients(problem.layers, problem.params, problem.X, problem.T, loss)
    ref_loss, ref = torch_gradients(model, X, T, loss)
    assert value == pytest.approx(ref_loss, rel=1e-13)
    zero = set(problem.zero_gradients())
    for name, g in grads.items():
        scale = np.abs(ref[name]).max() if name not in zero else 1.0
        assert np.abs(g - ref[name]).max() <= 1e-12 * scale, name


def test_float32_stays_float32():
    model, X, T = every_layer_net(1)
    problem = problem_of(model, X, T, "mse")
    params = {n: p.astype(np.float32) for n, p in problem.params.items()}
    _, grads = network.gradients(problem.layers, params, X.astype(np.float32), T, "mse")
    assert all(g.dtype == np.float32 for g in grads.values())


def test_imposed_patterns_reproduce_the_forward():
    model, X, T = conv_net(2)
    problem = problem_of(model, X, T, "cross-entropy")
    outputs, caches = network.forward(problem.layers, problem.params, problem.X)
    patterns = network.kink_patterns(caches)
    again, _ = network.forward(problem.layers, problem.params, problem.X, patterns=patterns)
    assert np.array_equal(outputs[-1], again[-1])
    assert [p is not None for p in patterns] == [False, True, True, False, False]


def test_every_torch_family_has_every_layer_kind():
    assert list(torch_functional.LAYERS) == list(LAYER_KINDS)
    assert list(torch_sequential.LAYER_MODULES) == list(LAYER_KINDS)


def test_an_unknown_layer_kind_names_it_and_lists_the_supported_ones():
    with pytest.raises(InputError, match=r"unsupported layer 'Dropout'; supported: Linear, Conv2d"):
        layer_kind("Dropout")


@pytest.mark.parametrize(
    "kind, args, kwargs, message",
    [
        ("Conv2d", (1, 4, 3), {"dilation": 2}, r"dilation=2 is not supported \(only 1\)"),
        ("Conv2d", (1, 4, 3), {"groups": 2}, "groups=2 is not supported"),
        ("Conv2d", (1, 4), {}, "kernel_size missing"),
        ("Conv2d", (1, 4, 3), {"padding": "same"}, "padding must be a whole number"),
        ("Linear", (3, 2), {"bias": 1}, "bias must be True or False"),
        ("MaxPool2d", (2,), {"ceil_mode": True}, "ceil_mode=True is not supported"),
        ("Linear", (3,), {"out": 2}, "unknown option 'out'"),
        ("ReLU", (), {"inplace": True}, None),
        ("BatchNorm1d", (4,), {"momentum": 0.3, "track_running_stats": False}, None),
    ],
)
def test_options_are_validated(kind, args, kwargs, message):
    if message is None:
        assert make_layer(kind, *args, **kwargs).kind == kind
        return
    with pytest.raises(InputError, match=message):
        make_layer(kind, *args, **kwargs)


def test_a_layer_is_written_as_one_would_write_it():
    assert make_layer("Conv2d", 1, 4, (3, 3), padding=(1, 1)).text() == "Conv2d(1, 4, 3, padding=1)"
    assert make_layer("MaxPool2d", 2).text() == "MaxPool2d(2)"
    assert make_layer("Linear", 64, 10, bias=False).text() == "Linear(64, 10, bias=False)"
    assert make_layer("ReLU").text() == "ReLU()"


def test_shapes_name_the_layer_that_cannot_take_its_input():
    layers = [make_layer("Conv2d", 1, 4, 3, name="0"), make_layer("Linear", 10, 2, name="1")]
    with pytest.raises(InputError, match=r"layer 1 Linear\(10, 2\): takes 10 input features"):
        network.output_shapes(layers, (1, 8, 8))
    assert network.output_shapes(layers[:1], (1, 8, 8)) == [(4, 6, 6)]


def test_batch_norm_statistics_are_per_copy():
    # Two copies stacked with batch=N: each normalised with its own statistics.
    layer = make_layer("BatchNorm1d", 3, name="0")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)), 10 + 3 * rng.standard_normal((5, 3))
    params = {"0.weight": np.ones(3), "0.bias": np.zeros(3)}
    both, _ = network.forward([layer], params, np.concatenate([a, b]), batch=5)
    alone = [network.forward([layer], params, x)[0][0] for x in (a, b)]
    assert np.allclose(both[0], np.concatenate(alone))
    expected = nn.functional.batch_norm(torch.tensor(b), None, None, training=True).numpy()
    assert np.allclose(alone[1], expected)


@pytest.mark.parametrize("seed", range(60))
def test_gradients_zero_gradients_are_zero(seed):
    # Whatever the model, what zero_gradients names is zero in torch autograd's gradient
    # (to rounding), at random data: it is never a parameter that matters.
    from tests.layered_helpers import random_model

    model, X, T, _ = random_model(seed, "mse", "ordinary")
    problem = problem_of(model, X, T, "mse")
    _, grads = torch_gradients(model, X, T, "mse")
    scale = max(float(np.abs(g).max()) for g in grads.values())
    for name in problem.zero_gradients():
        assert np.abs(grads[name]).max() <= 1e-12 * scale, (problem.architecture(), name)


def test_what_a_batch_norm_cancels():
    def zero(*layers):  # type: ignore[no-untyped-def]
        named = [make_layer(k, *a, name=str(i), **kw) for i, (k, a, kw) in enumerate(layers)]
        return network.zero_gradients(named, (1, 6, 6))

    conv, bn = ("Conv2d", (1, 2, 3), {}), ("BatchNorm2d", (2,), {})
    assert zero(conv, bn) == ["0.bias"]
    assert zero(("Conv2d", (1, 2, 1), {}), bn) == ["0.bias"]  # its eps keeps the scale's
    assert zero(conv, ("ReLU", (), {}), bn) == []
    assert zero(conv, ("MaxPool2d", (2,), {}), bn) == ["0.bias"]
    assert zero(
        ("Conv2d", (1, 2, 3), {"padding": 1}), ("Conv2d", (2, 2, 3), {"padding": 1}), bn
    ) == ["1.bias"]
    flat = ("Flatten", (), {})
    assert zero(conv, flat, ("Linear", (32, 3), {}), ("BatchNorm1d", (3,), {})) == [
        "0.bias",
        "2.bias",
    ]
