"""Diagnosis on layered networks: the issue's student mistakes fail exactly where they should
with the right hint, and each layer mistake model is recognised in gradients made wrong by
torch autograd itself (a custom backward), independently of the package's models."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import gradcheck_cli
from tests.layered_helpers import bn_net, conv_net, problem_of, student, torch_gradients

torch = pytest.importorskip("torch")  # every test compares with torch autograd
nn = torch.nn

FACTOR_8 = "off by a constant factor 8: the 1/N of the mean is missing (N = 8 averaged elements)"


def _conv_problem():  # type: ignore[no-untyped-def]
    model, X, T = conv_net(0)
    return problem_of(model, X, T, "cross-entropy")


def _failed(report: gradcheck_cli.Report, name: str) -> dict[str, str | None]:
    return {p.name: p.hint for p in report.backend(name).params if not p.ok}


def test_flipped_kernel_only_the_kernel_fails():
    report = gradcheck_cli.check(student("flipped_kernel"), problem=_conv_problem())
    failed = _failed(report, "flipped_kernel")
    assert list(failed) == ["0.weight"]
    assert failed["0.weight"].startswith(
        "the kernel gradient of layer 0 Conv2d(1, 4, 3, padding=1) is flipped in both spatial axes"
    )


def test_max_pool_routing_to_every_position_fails_the_convolution():
    report = gradcheck_cli.check(student("pool_to_every_position"), problem=_conv_problem())
    failed = _failed(report, "pool_to_every_position")
    assert list(failed) == ["0.weight", "0.bias"]
    for hint in failed.values():
        assert "MaxPool2d(2) routes the gradient to every position of its window" in hint


def test_missing_batch_mean_every_parameter_fails_with_a_factor_8_hint():
    report = gradcheck_cli.check(student("no_batch_mean"), problem=_conv_problem())
    failed = _failed(report, "no_batch_mean")
    assert list(failed) == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert all(hint.startswith(FACTOR_8) for hint in failed.values())
    assert report.backend("no_batch_mean").hints[0].startswith("every failing parameter is off")


class _Constant(torch.autograd.Function):
    """Identity forward; backward: what `wrong` makes of the incoming gradient."""

    @staticmethod
    def forward(ctx, x, wrong):  # type: ignore[no-untyped-def]
        ctx.wrong = wrong
        ctx.save_for_backward(x)
        return x.clone()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        return ctx.wrong(ctx.saved_tensors[0], grad), None


def _wrong_gradients(model, X, T, loss, forward):  # type: ignore[no-untyped-def]
    net = copy.deepcopy(model).double().train()
    Y = forward(net, torch.tensor(X, dtype=torch.float64))
    value = (
        nn.functional.cross_entropy(Y, torch.tensor(T))
        if loss == "cross-entropy"
        else nn.functional.mse_loss(Y, torch.tensor(T))
    )
    value.backward()
    return {n: p.grad.numpy().copy() for n, p in net.named_parameters()}


def _as_user(grads):  # type: ignore[no-untyped-def]
    def wrong(X, T, params):  # type: ignore[no-untyped-def]
        return grads

    return wrong


def test_batch_norm_without_its_batch_statistics_terms():
    model, X, T = bn_net(1)

    def forward(net, x):  # type: ignore[no-untyped-def]
        z = net[0](x)
        mean, var = z.mean(0).detach(), z.var(0, unbiased=False).detach()
        z = (z - mean) / torch.sqrt(var + net[1].eps) * net[1].weight + net[1].bias
        return net[3](net[2](z))

    report = gradcheck_cli.check(
        _as_user(_wrong_gradients(model, X, T, "mse", forward)),
        problem=problem_of(model, X, T, "mse"),
    )
    failed = _failed(report, "wrong")
    assert set(failed) == {"0.weight", "0.bias"}
    assert (
        "layer 1 BatchNorm1d(6) is differentiated without the terms of its batch"
        in failed["0.weight"]
    )


@pytest.mark.parametrize("mistake", ["first", "spread"])
def test_max_pool_routing_to_the_wrong_position(mistake):
    model, X, T = conv_net(2)

    def wrong_route(x, grad):  # type: ignore[no-untyped-def]
        dx = torch.zeros_like(x)
        if mistake == "first":
            dx[:, :, ::2, ::2] = grad
        else:
            dx = grad.repeat_interleave(2, 2).repeat_interleave(2, 3) / 4
        return dx

    class Pool(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(x)
            return nn.functional.max_pool2d(x, 2)

        @staticmethod
        def backward(ctx, grad):  # type: ignore[no-untyped-def]
            return wrong_route(ctx.saved_tensors[0], grad)

    def forward(net, x):  # type: ignore[no-untyped-def]
        return net[4](net[3](Pool.apply(net[1](net[0](x)))))

    grads = _wrong_gradients(model, X, T, "cross-entropy", forward)
    problem = problem_of(model, X, T, "cross-entropy")
    failed = _failed(gradcheck_cli.check(_as_user(grads), problem=problem), "wrong")
    assert list(failed) == ["0.weight", "0.bias"]
    words = "to the first position" if mistake == "first" else "spreads the gradient evenly"
    assert all(words in hint for hint in failed.values()), failed


def test_relu_derivative_missing():
    model, X, T = conv_net(3)

    def forward(net, x):  # type: ignore[no-untyped-def]
        z = net[0](x)
        a = _Constant.apply(torch.relu(z.detach()) + (z - z.detach()), lambda x, g: g)
        return net[4](net[3](net[2](a)))

    grads = _wrong_gradients(model, X, T, "cross-entropy", forward)
    problem = problem_of(model, X, T, "cross-entropy")
    failed = _failed(gradcheck_cli.check(_as_user(grads), problem=problem), "wrong")
    assert list(failed) == ["0.weight", "0.bias"]
    assert all("the ReLU derivative is missing" in hint for hint in failed.values())


def test_a_transposed_linear_gradient_of_the_wrong_shape_is_named():
    model, X, T = conv_net(0)
    _, grads = torch_gradients(model, X, T, "cross-entropy")
    grads["4.weight"] = grads["4.weight"].T.copy()
    report = gradcheck_cli.check(_as_user(grads), problem=problem_of(model, X, T, "cross-entropy"))
    row = report.backend("wrong")
    assert row.error == "4.weight has shape (64, 10); expected (10, 64)"
    assert any("transposed" in hint for hint in row.hints)


def test_unflipped_kernel_in_the_input_gradient_of_a_second_convolution():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(12, 2)
    )
    rng = np.random.default_rng(4)
    X, T = rng.standard_normal((5, 1, 6, 6)), rng.standard_normal((5, 2))

    class Conv(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, b):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(x, w)
            return nn.functional.conv2d(x, w, b)

        @staticmethod
        def backward(ctx, grad):  # type: ignore[no-untyped-def]
            x, w = ctx.saved_tensors
            dx = torch.nn.grad.conv2d_input(x.shape, w.flip(2, 3), grad)
            dw = torch.nn.grad.conv2d_weight(x, w.shape, grad)
            return dx, dw, grad.sum((0, 2, 3))

    def forward(net, x):  # type: ignore[no-untyped-def]
        z = Conv.apply(net[1](net[0](x)), net[2].weight, net[2].bias)
        return net[4](net[3](z))

    grads = _wrong_gradients(model, X, T, "mse", forward)
    problem = problem_of(model, X, T, "mse")
    failed = _failed(gradcheck_cli.check(_as_user(grads), problem=problem), "wrong")
    assert list(failed) == ["0.weight", "0.bias"]
    assert all("input gradient through layer 2 Conv2d(2, 3, 3)" in h for h in failed.values())
