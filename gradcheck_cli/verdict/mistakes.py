"""Models of the classic backprop mistakes: named factors and wrong-derivative variants.

Each model is what a wrong function would return on this problem (the gradient scaled by a
factor with a known cause, backprop with a wrong activation derivative, ...). The Diagnoser
(diagnose.py) fits them to a gradient that disagrees with the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from .. import nn
from ..problem import AnyProblem, Gradients, Problem

_TINY = 1e-300


def relative_residual(g: np.ndarray, model: np.ndarray, mask: np.ndarray | None = None) -> float:
    """||g - model|| / max(||model||, ||g||) over the entries in `mask` (all when None)."""
    g = np.asarray(g, dtype=np.float64)
    model = np.asarray(model, dtype=np.float64)
    if mask is not None:
        g, model = g[mask], model[mask]
    scale = max(float(np.linalg.norm(model)), float(np.linalg.norm(g)), _TINY)
    return float(np.linalg.norm(g - model)) / scale


def fit_factor(g: np.ndarray, model: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    """The least-squares c with g ≈ c * model, or None when the model is zero there."""
    g = np.asarray(g, dtype=np.float64)
    model = np.asarray(model, dtype=np.float64)
    if mask is not None:
        g, model = g[mask], model[mask]
    denominator = float(np.dot(model.ravel(), model.ravel()))
    if denominator <= _TINY:
        return None
    return float(np.dot(g.ravel(), model.ravel())) / denominator


def averaged_elements(problem: AnyProblem) -> int:
    """How many elements the loss averages over (the N of its 1/N); 1 for a summed loss."""
    return nn.loss(problem.loss).averaged_elements(problem.T, problem.samples)


def named_factors(problem: AnyProblem) -> list[tuple[float, str]]:
    """Factors with a known cause, most specific first: (value, what it means)."""
    n = averaged_elements(problem)
    squared = nn.loss(problem.loss).squared
    base: list[tuple[float, str]] = []
    if n > 1:
        base.append((float(n), f"the 1/N of the mean is missing (N = {n} averaged elements)"))
        if squared:
            base.append(
                (
                    n / 2.0,
                    f"the 1/N of the mean (N = {n}) and the 2 from the derivative of the square "
                    "are both missing",
                )
            )
        base.append((1.0 / n, f"divided by N = {n} once too often"))
    if squared:
        base.append(
            (
                0.5,
                "a factor 2 is missing: the 2 from the derivative of the square, "
                "or the half-MSE convention ½(Y−T)²",
            )
        )
    base.append((2.0, "an extra factor 2"))
    factors: list[tuple[float, str]] = [(-1.0, "the sign is flipped (e.g. T - Y instead of Y - T)")]
    factors.extend(base)
    factors.extend((-value, f"the sign is flipped and {text}") for value, text in base)
    unique: list[tuple[float, str]] = []
    for value, text in factors:
        if value != 1.0 and all(not np.isclose(value, v) for v, _ in unique):
            unique.append((value, text))
    return unique


def name_factor(c: float, problem: AnyProblem, tolerance: float) -> str | None:
    """What a factor means when it is one of `named_factors`, within `tolerance` (relative)."""
    for value, text in named_factors(problem):
        if abs(c - value) <= tolerance * abs(value):
            return text
    return None


# local(layer, Zs, As) -> the factor that multiplies dLoss/dA_layer to give dLoss/dZ_(layer-1).
LocalDerivative = Callable[[int, Sequence[np.ndarray], Sequence[np.ndarray]], np.ndarray]


def backprop(problem: Problem, local: LocalDerivative | None = None) -> Gradients:
    """Float64 backprop through the problem's forward pass with a replaceable activation derivative.

    With `local` None it is the correct derivative; the variants model common mistakes.
    """
    act, slope = nn.activation(problem.activation), problem.negative_slope
    Zs, As = nn.forward(problem.X, problem.weights, problem.biases, problem.activation, slope)

    def factor(i: int) -> np.ndarray:
        if local is None:
            return act.derivative(Zs[i - 1], As[i], slope)
        return local(i, Zs, As)

    dW, dB = nn.backward(As, Zs[-1], problem.T, problem.weights, problem.loss, factor)
    return Gradients(loss=None, dW=tuple(dW), dB=tuple(dB))


def activation_variants(problem: Problem) -> dict[str, Gradients]:
    """Gradients a function with a wrong activation derivative would return, keyed by the hint."""
    # Variants that coincide with the true gradient (e.g. every one of them for identity)
    # are dropped where they are used: they explain nothing.
    name = problem.activation
    act, slope = nn.activation(name), problem.negative_slope
    variants: dict[str, Gradients] = {
        f"the activation derivative is missing: it matches backprop without the factor "
        f"{name}'(z)": backprop(problem, lambda i, Zs, As: np.ones_like(Zs[i - 1])),
    }
    linear = replace(problem, activation="identity")
    variants[f"it matches the gradient of the same network without its {name} activation"] = (
        backprop(linear)
    )
    if act.output_formula is not None:
        # act'(A) instead of act'(Z): the derivative applied to the activation's output.
        def at_output(i: int, Zs: Sequence[np.ndarray], As: Sequence[np.ndarray]) -> np.ndarray:
            return act.derivative(As[i], act(As[i], slope), slope)

        def formula_on_z(i: int, Zs: Sequence[np.ndarray], As: Sequence[np.ndarray]) -> np.ndarray:
            return act.from_output(Zs[i - 1], slope)

        variants[
            f"the {name} derivative is evaluated at the activation's output A instead of at z"
        ] = backprop(problem, at_output)
        formula = act.output_formula.format(x="z")
        variants[f"the {name} derivative is computed as {formula} from z instead of from A"] = (
            backprop(problem, formula_on_z)
        )

    def layer_input(i: int, Zs: Sequence[np.ndarray], As: Sequence[np.ndarray]) -> np.ndarray:
        # The derivative taken from A[i-1] (the layer's input) instead of A[i] (its output).
        if As[i - 1].shape == As[i].shape:
            return act.from_output(As[i - 1], slope)
        return act.derivative(Zs[i - 1], As[i], slope)

    shifted = backprop(problem, layer_input)
    variants["the activation derivative of the wrong layer is used (of A[i] instead of A[i+1])"] = (
        shifted
    )
    return variants
