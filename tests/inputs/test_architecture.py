"""The --layers text against malformed and hostile input: whatever the text, parsing it (and
building a problem from it) either succeeds or is an InputError, never another exception.

Torch-free: the architecture's text and the layered problem are NumPy only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs import make_layered_problem
from gradcheck_cli.inputs.architecture import parse_layers
from gradcheck_cli.nn.layers import LAYER_KINDS, parameter_shapes
from gradcheck_cli.nn.network import qualified

KINDS = [*LAYER_KINDS, "Sequential", "Dropout", "Conv1d", "linear", "Lineär", "nn.Linear"]
OPTIONS = sorted({a.name for k in LAYER_KINDS.values() for a in k.arguments})
OPTIONS += ["kernal_size", "stirde", "in_feature", "p", "normalized_shapes"]

numbers = st.one_of(
    st.integers(-3, 6),
    st.sampled_from([0, 10**100, -(10**100), 2**63, 2**63 - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
literals = st.recursive(
    st.one_of(
        numbers,
        st.none(),
        st.sampled_from(["'none'", "'tanh'", "'zeros'", "'same'", "''"]).map(eval),
        st.text(max_size=4),
    ),
    lambda inner: st.one_of(
        st.tuples(inner),
        st.tuples(inner, inner),
        st.tuples(inner, inner, inner),
        st.lists(inner, max_size=3),
    ),
    max_leaves=6,
)


@st.composite
def layer_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(KINDS))
    if draw(st.booleans()):
        return kind
    args = [repr(v) for v in draw(st.lists(literals, max_size=4))]
    keys = draw(st.lists(st.sampled_from(OPTIONS), max_size=3))
    args += [f"{k}={draw(literals)!r}" for k in keys]
    text = f"{kind}({', '.join(args)})"
    name = draw(st.sampled_from(["", "(0): ", "(conv): ", "(a.b): ", "(1): ", "(名): "]))
    return name + text


junk = st.text(
    alphabet=st.sampled_from(list("()[]{},:=.'\"\n -+*0123456789abcLinearReLUConv2d\\\x00é\ud800")),
    max_size=40,
)
architectures = st.one_of(
    st.lists(layer_texts(), min_size=1, max_size=4).map(", ".join),
    st.lists(layer_texts(), min_size=1, max_size=4).map(
        lambda items: "Sequential(\n" + "\n".join(f"  {item}" for item in items) + "\n)"
    ),
    junk,
    st.lists(st.one_of(layer_texts(), junk), max_size=4).map("\n".join),
)


@settings(max_examples=300, deadline=None)
@given(architectures)
def test_any_text_parses_or_is_an_input_error(text):
    try:
        layers = parse_layers(text)
    except InputError as exc:
        message = str(exc)
        assert message.startswith("layers: ") and len(message) < 2000, message
        return
    assert layers and all(layer.text() for layer in layers)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # The parser's own limits, not a RecursionError or MemoryError
        ("Linear(" + "+".join(["1"] * 700) + ", 3)", "is not a literal value"),  # unparse recursed
        # (Python 3.10's parser reads some of them and they are refused as what they are.)
        ("Linear(" + "+".join(["1"] * 100_000) + ", 3)", ("nested too deeply", "not a literal")),
        ("Linear(" + "-" * 100_000 + "1, 3)", ("nested too deeply", "not a literal")),
        ("Linear(x" + ".x" * 100_000 + ", 3)", ("nested too deeply", "not a literal")),
        ("Linear" + "()" * 100_000, ("nested too deeply", "is not a layer")),
        # Numbers too large to be a size, or to be written in a message
        ("Linear(4, 0x" + "F" * 5000 + ")", "out_features must be below 2**63"),
        ("Linear(-0x" + "F" * 5000 + ", 3)", "got a value too large to write"),
        ("Flatten(end_dim=-(2**64))", "not a literal value"),
        ("Flatten(end_dim=-18446744073709551616)", "must be between -2**63 and 2**63"),
        ("LeakyReLU(" + "9" * 400 + ")", "negative_slope must be finite"),
        ("BatchNorm1d(3, eps=" + "9" * 400 + ")", "eps must be finite"),
        # A command line's bytes that are not UTF-8 come as lone surrogates
        ("(\udcff): Linear(4, 3)", "not valid text: '\\udcff' at position 1"),
        ("Linear(4, 3)\ud800", "not valid text"),
        ("Linear(4,\x00 3)", "is not a layer"),
    ],
)
def test_hostile_texts_are_one_line_input_errors(text, message):
    with pytest.raises(InputError) as caught:
        parse_layers(text)
    messages = (message,) if isinstance(message, str) else message
    assert any(m in str(caught.value) for m in messages), str(caught.value)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400


def test_a_long_item_is_clipped_in_the_message():
    with pytest.raises(InputError) as caught:
        parse_layers("Linear(" + "1 " * 100_000 + ")")
    assert len(str(caught.value)) < 400


# ---------------------------------------------------------------------------------------------
# Through make_layered_problem: random small networks, X of random shapes, parameters of the
# declared shapes (or slightly off)

small_layers = st.one_of(
    st.builds(
        lambda i, o, b: f"Linear({i}, {o}, bias={b})",
        st.integers(1, 4),
        st.integers(1, 4),
        st.booleans(),
    ),
    st.builds(
        lambda i, o, k, s, p: f"Conv2d({i}, {o}, {k}, stride={s}, padding={p})",
        st.integers(1, 3),
        st.integers(1, 3),
        st.sampled_from(["1", "2", "3", "(1, 2)", "(3, 1)"]),
        st.integers(1, 3),
        st.integers(0, 3),
    ),
    st.builds(
        lambda kind, k, s, p: f"{kind}({k}, stride={s}, padding={p})",
        st.sampled_from(["MaxPool2d", "AvgPool2d"]),
        st.sampled_from(["1", "2", "3", "(1, 2)"]),
        st.sampled_from(["None", "1", "2", "(2, 1)"]),
        st.integers(0, 2),
    ),
    st.builds(lambda f, a: f"BatchNorm{f}({a})", st.sampled_from(["1d", "2d"]), st.integers(1, 4)),
    st.builds(lambda s: f"LayerNorm({s})", st.sampled_from(["1", "2", "4", "(2, 2)", "(1, 2, 2)"])),
    st.builds(
        lambda s, e: f"Flatten({s}, {e})", st.integers(-4, 3), st.sampled_from([-1, -2, 1, 2, 3])
    ),
    st.sampled_from(["ReLU", "Tanh", "GELU('tanh')", "ELU(0.5)", "LeakyReLU(0.1)", "Identity"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(small_layers, min_size=1, max_size=5),
    st.lists(st.integers(1, 5), min_size=1, max_size=4),
    st.integers(0, 2),
    st.sampled_from(["mse", "cross-entropy", "bce"]),
    st.data(),
)
def test_random_networks_build_or_are_input_errors(items, shape, off, loss, data):
    rng = np.random.default_rng(0)
    layers = parse_layers(", ".join(items))
    params = {}
    for layer in layers:
        for local, wanted in parameter_shapes(layer).items():
            if off and data.draw(st.booleans()):  # a shape that does not fit
                wanted = (*wanted[:-1], wanted[-1] + off) if off == 1 else wanted[::-1]
            params[qualified(layer, local)] = rng.standard_normal(wanted)
    X = rng.standard_normal(tuple(shape))
    outputs = data.draw(st.integers(1, 4))
    T = rng.integers(0, outputs, shape[0]) if loss == "cross-entropy" else rng.random((shape[0], 2))
    try:
        problem = make_layered_problem(X, T, layers, params, loss=loss, max_input_mb=1)
    except InputError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    assert math.prod(problem.X.shape) == math.prod(shape)
