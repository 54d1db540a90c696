"""Layered verdicts in the modes the full-FD fuzz covers least: sampled and directional finite
differences, --fd off, reference fd or backends, a single built-in, float32; the params-form
function's returned values (dtypes, shapes, keys, its loss); degenerate problems.

Each defect found while these were written is kept as an explicit example here.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends import create_backend
from gradcheck_cli.backends.user import UserBackend
from gradcheck_cli.verdict import CheckOptions, Report, run_checks
from tests.layered_helpers import bn_net, careful_user, problem_of

BUILTINS = ("numpy", "torch-functional", "torch-sequential")


def run(problem, fn, backends=BUILTINS, **options) -> Report:  # type: ignore[no-untyped-def]
    chosen = [create_backend(b) for b in backends] + [UserBackend.from_function(fn, "user")]
    return run_checks(problem, chosen, CheckOptions(**options))


def returning(grads, loss=None):  # type: ignore[no-untyped-def]
    """A params-form function returning these gradients (and this loss, when given)."""

    def user(X, T, params):  # type: ignore[no-untyped-def]
        out = {n: g.copy() for n, g in grads.items()}
        return out if loss is None else (loss, out)

    return user


# --- the returned loss


@pytest.mark.parametrize("dtype, off", [("float64", 1e-6), ("float32", 1e-3)])
@pytest.mark.parametrize(
    "backends, options",
    [
        (("numpy",), {"fd_mode": "full"}),
        (("torch-sequential",), {"fd_mode": "sample", "fd_samples": 3}),
        (BUILTINS, {"fd_mode": "full", "reference": "fd"}),
        (BUILTINS, {"fd_mode": "directional", "fd_samples": 3, "reference": "fd"}),
        (BUILTINS, {"fd_mode": "off"}),
    ],
)
def test_a_wrong_loss_fails_whichever_reference_judges(dtype, off, backends, options):
    # Was: against finite differences the loss had the gradients' rtol (1e-5 in float64,
    # 1e-3 in float32), so a loss off by 0.1% passed in float32 (and by 1e-6 in float64),
    # while against the consensus it had to be within 16 ulps. The reference loss is a
    # forward pass, not an estimate: the same rounding-level check holds for both.
    model, X, T = bn_net(0)
    problem = problem_of(model, X, T, "mse", dtype=dtype)
    grads = careful_user(model, problem)
    loss = problem.float64_loss()
    right = run(problem, returning(grads, float(np.dtype(dtype).type(loss))), backends, **options)
    assert right.ok, (right.backend("user").hints, right.unresolved)
    wrong = run(problem, returning(grads, loss * (1 + off)), backends, **options)
    assert not wrong.ok and not wrong.backend("user").ok
    assert any("loss" in h for h in wrong.backend("user").hints)


def test_a_correct_float64_loss_passes_at_a_nearly_converged_point():
    # Was a false alarm: in float64 the loss's allowance was only the spread measured at moved
    # inputs (6e-18 here), not the bound on its rounding; torch's bce loss, summed from terms
    # far larger than the converged loss, differed from NumPy's by 2.6e-16 and failed (against
    # the consensus; against finite differences the gradients' rtol hid it).
    from tests.helpers import fuzz_problem

    problem = fuzz_problem(
        seed=229, activation="relu", loss="bce", dtype="float64", point="converged"
    )
    torch_grads = create_backend("torch-functional").gradients(problem)
    assert torch_grads.loss is not None and torch_grads.loss != problem.float64_loss()

    def user(X, T, W, B):  # type: ignore[no-untyped-def]
        return torch_grads.loss, list(torch_grads.dW), list(torch_grads.dB)

    for options in ({"fd_mode": "full"}, {"fd_mode": "full", "reference": "fd"}):
        report = run(problem, user, **options)
        assert report.ok, [(b.name, b.hints) for b in report.backends]
    wrong = run(problem, lambda X, T, W, B: (torch_grads.loss * (1 + 1e-9), *user(X, T, W, B)[1:]))
    assert not wrong.backend("user").ok

