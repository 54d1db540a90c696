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
    zero = problem.zero_by_structure()
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
