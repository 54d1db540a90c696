"""Each built-in backend against an independent torch autograd reference, on random MLPs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck_cli.backends import backend_names, create_backend
from gradcheck_cli.errors import InputError
from tests.helpers import random_problem, torch_reference

# Two float64 implementations of the same sums differ only by rounding.
FLOAT64_AGREEMENT_RTOL = 1e-10
FLOAT64_AGREEMENT_ATOL = 1e-12

architectures = st.lists(st.integers(1, 7), min_size=2, max_size=6)


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
