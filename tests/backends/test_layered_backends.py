"""The three built-in backends on layered problems, against torch autograd on the model
itself (built in the test, not from the package's tables), in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends import backend_names, create_backend
from tests.layered_helpers import bn_net, conv_net, every_layer_net, problem_of, torch_gradients


@pytest.mark.parametrize("backend", backend_names())
@pytest.mark.parametrize(
    "net, loss", [(conv_net, "cross-entropy"), (bn_net, "mse"), (every_layer_net, "mse")]
)
def test_every_builtin_matches_torch_autograd_on_the_model(backend, net, loss):
    model, X, T = net(5)
    problem = problem_of(model, X, T, loss)
    grads = create_backend(backend).gradients(problem)
    ref_loss, ref = torch_gradients(model, X, T, loss)
    assert grads.loss == pytest.approx(ref_loss, rel=1e-13)
    named = grads.by_name()
    assert list(named) == list(ref) == problem.parameter_names
    zero = problem.zero_gradients()
    for name, g in named.items():
        scale = 1.0 if name in zero else np.abs(ref[name]).max()
        assert g.shape == ref[name].shape
        assert np.abs(g - ref[name]).max() <= 1e-12 * scale, (backend, name)
    assert grads.first_entry() == named[problem.parameter_names[0]].reshape(-1)[0]


@pytest.mark.parametrize("backend", backend_names())
def test_float32_backends_return_float32_close_to_float64(backend):
    model, X, T = conv_net(1)
    problem = problem_of(model, X, T, "cross-entropy", dtype="float32")
    grads = create_backend(backend).gradients(problem).by_name()
    _, ref = torch_gradients(model, X, T, "cross-entropy")
    for name, g in grads.items():
        assert g.dtype == np.float32
        assert np.abs(g - ref[name]).max() <= 1e-5 * np.abs(ref[name]).max()


@pytest.mark.parametrize("name", ["torch-functional", "torch-sequential"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_matches_cpu_on_layered_problems_when_a_gpu_is_present(name, dtype):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    for net, loss in ((conv_net, "cross-entropy"), (bn_net, "mse"), (every_layer_net, "mse")):
        model, X, T = net(6)
        problem = problem_of(model, X, T, loss, dtype=dtype)
        cpu = create_backend(name).gradients(problem).by_name()
        gpu = create_backend(name, device="cuda").gradients(problem).by_name()
        # float32 on the GPU is IEEE float32 (no TF32 convolutions): float32 rounding apart.
        rtol = 1e-10 if dtype == "float64" else 1e-4
        for key, g in cpu.items():
            assert gpu[key].dtype == g.dtype
            scale = np.abs(g).max() if key not in problem.zero_gradients() else 1e-6
            assert np.abs(gpu[key] - g).max() <= rtol * scale, (name, key)


def test_a_float32_gpu_run_of_the_conv_network_passes_when_a_gpu_is_present():
    import torch

    from gradcheck_cli.verdict import run_checks

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    model, X, T = conv_net(0)
    problem = problem_of(model, X, T, "cross-entropy", dtype="float32")
    backends = [create_backend("numpy")] + [
        create_backend(n, device="cuda") for n in ("torch-functional", "torch-sequential")
    ]
    report = run_checks(problem, backends)
    assert report.ok, (report.notes, [(b.name, b.hints) for b in report.backends])
