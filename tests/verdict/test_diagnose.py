"""diagnose: each classic mistake is recognised against an independent torch reference.

The wrong gradients here are built from torch autograd written in the tests (conftest's
torch_reference and the helpers below), never from the package's own backprop.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.problem import Gradients
from gradcheck_cli.verdict.diagnose import HINT_TOLERANCE_FACTOR, Diagnoser, wrong_entries
from gradcheck_cli.verdict.mistakes import (
    averaged_elements,
    backprop,
    fit_factor,
    name_factor,
    relative_residual,
)
from tests.helpers import random_problem, torch_reference

torch = pytest.importorskip("torch")  # every test compares with torch autograd

RTOL = 1e-5  # the float64 check tolerance the diagnoser is built with
LAYERS = [3, 5, 5, 5, 2]  # two square 5x5 weights: transposes and swaps keep their shape
SAMPLES = 7


@pytest.fixture
def problem():
    return random_problem(LAYERS, samples=SAMPLES, seed=3)


@pytest.fixture
def reference(problem):
    _, dW, dB = torch_reference(problem)
    return {**{f"W{i}": g for i, g in enumerate(dW)}, **{f"B{i}": g for i, g in enumerate(dB)}}


@pytest.fixture
def diagnoser(problem, reference):
    return Diagnoser(problem, reference, rtol=RTOL)


def torch_variant(problem, local):
    """Torch autograd through a ReLU whose backward is replaced: local(z, a) is the factor used."""

    class Act(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            a = torch.relu(z)
            ctx.save_for_backward(z, a)
            return a

        @staticmethod
        def backward(ctx, grad):
            z, a = ctx.saved_tensors
            return grad * local(z, a)

    X = torch.tensor(problem.X)
    T = torch.tensor(problem.T)
    W = [torch.tensor(w, requires_grad=True) for w in problem.weights]
    B = [torch.tensor(b, requires_grad=True) for b in problem.biases]
    A = X
    for i, (w, b) in enumerate(zip(W, B)):
        A = A @ w + b
        if i < len(W) - 1:
            A = Act.apply(A)
    ((A - T) ** 2).mean().backward()
    return {
        **{f"W{i}": w.grad.numpy() for i, w in enumerate(W)},
        **{f"B{i}": b.grad.numpy() for i, b in enumerate(B)},
    }


def per_sample_bias_gradients(problem):
    """dLoss/dZ_i of every layer, (N, out_i): the unsummed bias gradients, by torch."""
    X, T = torch.tensor(problem.X), torch.tensor(problem.T)
    A, Zs = X, []
    for i, (w, b) in enumerate(zip(problem.weights, problem.biases)):
        Z = A @ torch.tensor(w, requires_grad=True) + torch.tensor(b)
        Z.retain_grad()
        Zs.append(Z)
        A = torch.relu(Z) if i < len(problem.weights) - 1 else Z
    ((A - T) ** 2).mean().backward()
    return [z.grad.numpy() for z in Zs]


def test_residual_and_factor_closed_forms():
    g = np.array([2.0, -4.0, 6.0])
    model = np.array([1.0, -2.0, 3.0])
    assert fit_factor(g, model) == pytest.approx(2.0)
    assert relative_residual(g, 2 * model) == 0.0
    assert relative_residual(g, model) == pytest.approx(np.linalg.norm(model) / np.linalg.norm(g))
    assert fit_factor(g, np.zeros(3)) is None
    mask = np.array([True, False, True])
    assert relative_residual(np.array([1.0, 99.0, 1.0]), np.ones(3), mask) == 0.0


def test_averaged_elements_per_loss(problem):
    assert averaged_elements(problem) == SAMPLES * LAYERS[-1]  # mse: mean over all of T
    sse = random_problem(LAYERS, samples=SAMPLES, loss="sse")
    ce = random_problem(LAYERS, samples=SAMPLES, loss="cross-entropy")
    assert averaged_elements(sse) == 1
    assert averaged_elements(ce) == SAMPLES


def test_named_factors(problem):
    n = SAMPLES * LAYERS[-1]
    tol = HINT_TOLERANCE_FACTOR * RTOL
    assert "1/N of the mean is missing" in name_factor(float(n), problem, tol)
    assert "both missing" in name_factor(n / 2, problem, tol)
    assert "a factor 2 is missing" in name_factor(0.5, problem, tol)
    assert "sign is flipped" in name_factor(-1.0, problem, tol)
    assert "sign is flipped and the 1/N" in name_factor(-float(n), problem, tol)
    assert name_factor(3.7, problem, tol) is None
    assert name_factor(n * (1 + 10 * tol), problem, tol) is None  # not close enough to be N


def test_backprop_helper_matches_torch(problem, reference):
    grads = backprop(problem).by_name()
    for name, ref in reference.items():
        np.testing.assert_allclose(grads[name], ref, rtol=1e-12, atol=1e-14)


def test_correct_gradient_gets_no_hint(diagnoser, reference):
    for name, ref in reference.items():
        assert diagnoser.explain(name, ref.copy()) is None
        # Noise at the reference's own accuracy is not a mistake either.
        noisy = ref * (1 + 1e-9 * np.random.default_rng(0).standard_normal(ref.shape))
        assert diagnoser.explain(name, noisy) is None


def test_transposed_square_matrix(diagnoser, reference):
    explanation = diagnoser.explain("W1", reference["W1"].T, np.ones((5, 5), bool))
    assert explanation is not None and explanation.kind == "transposed"
    assert "transposed" in explanation.message and "residual" in explanation.message


@pytest.mark.parametrize(
    "factor, words",
    [
        (14.0, "the 1/N of the mean is missing (N = 14 averaged elements)"),
        (7.0, "the 1/N of the mean (N = 14) and the 2 from the derivative of the square"),
        (0.5, "a factor 2 is missing"),
        (-1.0, "the sign is flipped"),
        (3.7, "off by a constant factor 3.7"),
    ],
)
def test_constant_factor_is_named(diagnoser, reference, factor, words):
    for name in ("W0", "B2"):
        explanation = diagnoser.explain(name, factor * reference[name])
        assert explanation is not None and explanation.kind == "factor", name
        assert words in explanation.message
        assert explanation.factor == pytest.approx(factor)


def test_single_entry_gets_only_named_factors(problem, reference):
    # B2 of a 1-output network would have one entry: any value "is" some factor of it.
    one = random_problem([3, 4, 1], samples=SAMPLES, seed=1)
    _, dW, dB = torch_reference(one)
    ref = {"W0": dW[0], "W1": dW[1], "B0": dB[0], "B1": dB[1]}
    d = Diagnoser(one, ref, rtol=RTOL)
    assert d.explain("B1", 3.7 * ref["B1"], np.ones(1, bool)) is None
    assert "sign is flipped" in d.explain("B1", -ref["B1"]).message


def test_wrong_layer(diagnoser, reference):
    explanation = diagnoser.explain("W1", reference["W2"])
    assert explanation is not None and explanation.kind == "wrong-layer"
    assert "matches the gradient of W2" in explanation.message


def test_missing_activation_derivative(problem, reference, diagnoser):
    no_derivative = torch_variant(problem, lambda z, a: torch.ones_like(z))
    for name in ("W0", "W1", "B0", "B1"):
        explanation = diagnoser.explain(name, no_derivative[name])
        assert explanation is not None and explanation.kind == "activation", name
        assert "activation derivative is missing" in explanation.message
    # The last layer does not see the hidden derivative: nothing to explain there.
    np.testing.assert_allclose(no_derivative["W3"], reference["W3"], rtol=1e-12)


def test_missing_activation_derivative_and_factor(problem, diagnoser):
    no_derivative = torch_variant(problem, lambda z, a: torch.ones_like(z))
    explanation = diagnoser.explain("W0", 14.0 * no_derivative["W0"])
    assert explanation is not None and explanation.kind == "activation"
    assert "1/N of the mean is missing" in explanation.message


def test_all_zeros(diagnoser, reference):
    explanation = diagnoser.explain("W0", np.zeros_like(reference["W0"]))
    assert explanation is not None and explanation.kind == "zeros"
    assert "all entries are zero" in explanation.message


def test_one_column_wrong_is_named(diagnoser, reference):
    g = reference["W1"].copy()
    g[:, 2] *= 3.0
    bad = np.zeros(g.shape, bool)
    bad[:, 2] = True
    explanation = diagnoser.explain("W1", g, bad)
    assert explanation is not None and explanation.kind == "partial"
    assert explanation.message.startswith("only W1[:, 2] is wrong; the other 20 entries match")


def test_a_few_entries_are_named(diagnoser, reference):
    g = reference["W0"].copy()
    g[0, 1] += 1.0
    g[2, 4] -= 1.0
    bad = np.zeros(g.shape, bool)
    bad[0, 1] = bad[2, 4] = True
    explanation = diagnoser.explain("W0", g, bad)
    assert explanation is not None
    assert "only W0[0, 1], W0[2, 4] are wrong" in explanation.message


def test_wrong_entries_rows_columns_and_none():
    usable = np.ones((4, 6), bool)
    bad = np.zeros((4, 6), bool)
    bad[1, :] = True
    assert wrong_entries("W3", bad, usable) == "W3[1, :]"
    bad[:] = False
    bad[:, [0, 4]] = True
    assert wrong_entries("W3", bad, usable) == "W3[:, 0], W3[:, 4]"
    assert wrong_entries("W3", np.ones((4, 6), bool), usable) is None  # everything: no pattern
    scattered = np.random.default_rng(0).random((4, 6)) < 0.4
    assert wrong_entries("W3", scattered, usable) is None


def test_unexplained_mistake_gets_no_hint(diagnoser, reference):
    rng = np.random.default_rng(5)
    for name, ref in reference.items():
        g = ref + rng.standard_normal(ref.shape) * (np.abs(ref).max() + 1e-3)
        assert diagnoser.explain(name, g) is None, name


def test_bias_not_summed(problem, diagnoser):
    per_sample = per_sample_bias_gradients(problem)
    text = diagnoser.explain_shape("DB[1]", "B1", per_sample[1])
    assert text is not None
    assert text.startswith("DB[1] has shape (7, 5): the bias gradient is not summed over the batch")
    assert "residual" in text


def test_transposed_shape_and_wrong_layer_shape(diagnoser, reference):
    assert "transposed" in diagnoser.explain_shape("DW[0]", "W0", reference["W0"].T)
    text = diagnoser.explain_shape("DW[0]", "W0", reference["W2"])
    assert "matches the gradient of W2" in text


def test_rejected_hints_cover_every_array(problem, reference, diagnoser):
    per_sample = per_sample_bias_gradients(problem)
    grads = Gradients(
        None,
        (reference["W0"], reference["W1"], reference["W2"], reference["W3"]),
        tuple(per_sample),
    )
    hints = diagnoser.rejected_hints(grads)
    assert len(hints) == 4
    assert all("not summed over the batch" in h for h in hints)


def test_summary_for_a_common_factor(diagnoser, reference):
    explained = {n: diagnoser.explain(n, 14.0 * r) for n, r in reference.items()}
    assert diagnoser.summary(explained) == [
        "every failing parameter is off by the same factor 14: "
        "the 1/N of the mean is missing (N = 14 averaged elements)"
    ]
    mixed = {**explained, "W1": diagnoser.explain("W1", reference["W1"].T)}
    assert diagnoser.summary(mixed) == []
