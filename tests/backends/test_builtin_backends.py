"""Each built-in backend against an independent torch autograd reference: on random MLPs, and
with every activation and loss in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck_cli.backends import backend_names, create_backend
from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs.loading import make_problem
from tests.helpers import (
    ACTIVATION_LOSS_LAYERS,
    ACTIVATION_LOSS_PAIRS,
    random_problem,
    torch_reference,
)

# Two float64 implementations of the same sums differ only by rounding.
FLOAT64_AGREEMENT_RTOL = 1e-10
FLOAT64_AGREEMENT_ATOL = 1e-12
# A float32 backprop of a 3-layer net carries ~1e-6 relative rounding error per entry,
# more where terms cancel; measured worst case here ~1e-4 of the largest entry.
FLOAT32_AGREEMENT_RTOL = 1e-3
FLOAT32_AGREEMENT_ATOL = 1e-5

architectures = st.lists(st.integers(1, 7), min_size=2, max_size=6)

# Every test compares with the independent torch autograd reference.
pytestmark = pytest.mark.torch


@pytest.mark.parametrize("name", backend_names())
@settings(max_examples=15, deadline=None)
@given(layers=architectures, samples=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_backend_matches_torch_reference(name, layers, samples, seed):
    problem = random_problem(layers, samples, seed)
    loss, dW, dB = torch_reference(problem)
    grads = create_backend(name).gradients(problem)
    assert grads.loss == pytest.approx(loss, rel=FLOAT64_AGREEMENT_RTOL)
    assert len(grads.dW) == len(dW) and grads.dB is not None and len(grads.dB) == len(dB)
    for got, want in zip([*grads.dW, *grads.dB], [*dW, *dB]):
        assert got.shape == want.shape
        np.testing.assert_allclose(
            got, want, rtol=FLOAT64_AGREEMENT_RTOL, atol=FLOAT64_AGREEMENT_ATOL
        )


@pytest.mark.parametrize("name", backend_names())
def test_backend_on_exercise_problem(name, exercise_problem):
    _, dW, dB = torch_reference(exercise_problem)
    grads = create_backend(name).gradients(exercise_problem)
    np.testing.assert_allclose(grads.dW[0], dW[0], rtol=FLOAT64_AGREEMENT_RTOL)
    np.testing.assert_allclose(grads.dB[-1], dB[-1], rtol=FLOAT64_AGREEMENT_RTOL)
    # Every layer gets its gradient, the last one included (the sheet's Part 3 forgot layers).
    for g in [*grads.dW, *grads.dB]:
        assert np.abs(g).max() > 0


@pytest.mark.parametrize("name", backend_names())
def test_float32_backend_computes_in_float32(name, exercise_problem):
    grads = create_backend(name).gradients(exercise_problem.with_dtype("float32"))
    assert all(g.dtype == np.float32 for g in grads.dW)
    _, dW, _ = torch_reference(exercise_problem)
    np.testing.assert_allclose(grads.dW[0], dW[0], rtol=1e-4, atol=1e-6)


def test_unknown_backend_is_input_error():
    with pytest.raises(InputError, match="unknown backend 'jax'"):
        create_backend("jax")


@pytest.mark.parametrize("name", ["torch-functional", "torch-sequential"])
def test_cuda_without_gpu_is_input_error(name, exercise_problem):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(InputError, match="no CUDA GPU"):
        create_backend(name, device="cuda").gradients(exercise_problem)


def test_unknown_device_is_input_error(exercise_problem):
    with pytest.raises(InputError, match="unknown device 'tpu'; choose cpu, cuda or cuda:N"):
        create_backend("torch-functional", device="tpu").gradients(exercise_problem)


@pytest.mark.parametrize("name", ["torch-functional", "torch-sequential"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_matches_cpu_when_a_gpu_is_present(name, dtype, exercise_problem):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    problem = exercise_problem.with_dtype(dtype)
    cpu = create_backend(name).gradients(problem)
    gpu = create_backend(name, device="cuda").gradients(problem)
    rtol = 1e-10 if dtype == "float64" else 1e-4
    for a, b in zip([*cpu.dW, *(cpu.dB or ())], [*gpu.dW, *(gpu.dB or ())]):
        assert b.dtype == a.dtype
        np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("activation, loss", ACTIVATION_LOSS_PAIRS)
def test_backends_match_torch_reference_float64(activation, loss):
    problem = random_problem(
        ACTIVATION_LOSS_LAYERS, samples=8, seed=11, activation=activation, loss=loss
    )
    want_loss, dW, dB = torch_reference(problem)
    for name in backend_names():
        grads = create_backend(name).gradients(problem)
        assert grads.loss == pytest.approx(want_loss, rel=FLOAT64_AGREEMENT_RTOL), name
        assert grads.dB is not None
        for got, want in zip([*grads.dW, *grads.dB], [*dW, *dB]):
            np.testing.assert_allclose(
                got, want, rtol=FLOAT64_AGREEMENT_RTOL, atol=FLOAT64_AGREEMENT_ATOL, err_msg=name
            )


@pytest.mark.parametrize("activation, loss", ACTIVATION_LOSS_PAIRS)
def test_float32_backends_compute_in_float32(activation, loss):
    problem = random_problem(
        ACTIVATION_LOSS_LAYERS, samples=8, seed=3, activation=activation, loss=loss
    )
    _, dW, dB = torch_reference(problem)  # float64 reference
    for name in backend_names():
        grads = create_backend(name).gradients(problem.with_dtype("float32"))
        assert grads.dB is not None
        for got, want in zip([*grads.dW, *grads.dB], [*dW, *dB]):
            assert got.dtype == np.float32, name
            np.testing.assert_allclose(
                got, want, rtol=FLOAT32_AGREEMENT_RTOL, atol=FLOAT32_AGREEMENT_ATOL, err_msg=name
            )


def test_leaky_relu_slope_is_used_by_every_backend():
    base = random_problem(ACTIVATION_LOSS_LAYERS, samples=8, seed=2, activation="leaky-relu")
    problem = make_problem(
        base.X, base.T, base.weights, base.biases, activation="leaky-relu", negative_slope=0.3
    )
    _, dW, _ = torch_reference(problem)
    _, dW_default, _ = torch_reference(base)
    assert not np.allclose(dW[0], dW_default[0])  # the slope matters on this problem
    for name in backend_names():
        np.testing.assert_allclose(create_backend(name).gradients(problem).dW[0], dW[0], rtol=1e-10)


def test_cross_entropy_accepts_class_probabilities():
    rng = np.random.default_rng(4)
    base = random_problem(ACTIVATION_LOSS_LAYERS, samples=6, seed=4, loss="cross-entropy")
    probabilities = rng.dirichlet(np.ones(3), size=6)
    problem = make_problem(base.X, probabilities, base.weights, base.biases, loss="cross-entropy")
    _, dW, _ = torch_reference(problem)
    for name in backend_names():
        np.testing.assert_allclose(create_backend(name).gradients(problem).dW[1], dW[1], rtol=1e-10)
