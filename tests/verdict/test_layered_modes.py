"""Layered verdicts in the modes the full-FD fuzz covers least: sampled and directional finite
differences, --fd off, reference fd or backends, a single built-in, float32; the params-form
function's returned values (dtypes, shapes, keys, its loss); degenerate problems.

Each defect found while these were written is kept as an explicit example here.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gradcheck_cli.backends import create_backend
from gradcheck_cli.backends.user import UserBackend
from gradcheck_cli.verdict import CheckOptions, Report, run_checks
from gradcheck_cli.verdict.policy import KINK_FLIP_FACTOR
from gradcheck_cli.verdict.precision import rounding_noise
from tests.layered_helpers import (
    bn_net,
    careful_user,
    conv_net,
    degenerate,
    problem_of,
    random_model,
)

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


# --- sampled finite differences: the sensitivity stated for the entries left out


def test_the_sensitivity_of_a_sampled_parameter_covers_the_entries_left_out():
    # Was: the stated sensitivity came from the sampled entries alone (1.07e-5 of 4.weight's
    # largest entry), while a mistake of 3e-5 in an entry the sample left out passed (only the
    # tensor's random direction sees it, and it allows atol sqrt(n) + rtol |g|).
    model, X, T = conv_net(0)
    problem = problem_of(model, X, T, "cross-entropy")
    grads = careful_user(model, problem)
    options = {"fd_mode": "sample", "fd_samples": 5, "reference": "fd"}
    base = run(problem, returning(grads), ("numpy",), **options)
    checked = base.to_dict()["finite_difference"]["checked"]
    assert base.ok and checked == 5
    for name, index in (("4.weight", (5, 17)), ("4.weight", (0, 0)), ("0.weight", (1, 0, 1, 1))):
        for size in (3e-5, 1.5e-5):
            wrong = {n: g.copy() for n, g in grads.items()}
            wrong[name][index] += size * float(np.abs(grads[name]).max())
            report = run(problem, returning(wrong), ("numpy",), **options)
            stated = {p.name: p.sensitivity for p in report.backend("user").params}[name]
            assert stated is not None
            assert not report.ok or size <= stated, (name, index, size, stated)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from(["mse", "cross-entropy", "bce"]),
    dtype=st.sampled_from(["float64", "float32"]),
    point=st.sampled_from(["ordinary", "kink"]),
    setup=st.sampled_from(["one built-in", "reference fd"]),
    samples=st.integers(2, 8),
    mistake_seed=st.integers(0, 1000),
)
# Draws that once failed: the sampled entries all zero (dead units), so no sensitivity was
# stated (None) while a mistake in an entry left out passed below the tensor direction's allowance.
@example(
    seed=849753807,
    loss="bce",
    dtype="float64",
    point="ordinary",
    setup="one built-in",
    samples=3,
    mistake_seed=450,
)
@example(
    seed=3759370749,
    loss="bce",
    dtype="float32",
    point="kink",
    setup="reference fd",
    samples=4,
    mistake_seed=736,
)
def test_sampled_checks_pass_correct_gradients_and_miss_nothing_above_what_they_state(
    seed, loss, dtype, point, setup, samples, mistake_seed
):
    _correct_passes_and_one_wrong_entry_fails_above_the_stated_sensitivity(
        "sample", seed, loss, dtype, point, setup, samples, mistake_seed
    )


# --- directional finite differences: a stated sensitivity, and nothing above it passes


def test_a_directional_check_states_the_sensitivity_it_has():
    # Was: no sensitivity at all (None) in directional mode, while one-entry mistakes of 1e-4
    # of a parameter's largest entry passed; now each parameter states what a direction allows.
    model, X, T = conv_net(0)
    problem = problem_of(model, X, T, "cross-entropy")
    grads = careful_user(model, problem)
    options = {"fd_mode": "directional", "fd_samples": 4, "reference": "fd"}
    for name, index in (("0.weight", (1, 0, 1, 1)), ("4.bias", (3,)), ("4.weight", (5, 17))):
        for size in (1e-4, 3e-5):
            wrong = {n: g.copy() for n, g in grads.items()}
            wrong[name][index] += size * float(np.abs(grads[name]).max())
            report = run(problem, returning(wrong), ("numpy",), **options)
            stated = {p.name: p.sensitivity for p in report.backend("user").params}[name]
            assert stated is not None and np.isfinite(stated)
            assert not report.ok or size <= stated, (name, index, size, stated)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from(["mse", "cross-entropy", "bce"]),
    dtype=st.sampled_from(["float64", "float32"]),
    point=st.sampled_from(["ordinary", "kink", "converged"]),
    setup=st.sampled_from(["one built-in", "reference fd"]),
    samples=st.integers(2, 8),
    mistake_seed=st.integers(0, 1000),
)
def test_directional_checks_pass_correct_gradients_and_miss_no_entry_above_what_they_state(
    seed, loss, dtype, point, setup, samples, mistake_seed
):
    _correct_passes_and_one_wrong_entry_fails_above_the_stated_sensitivity(
        "directional", seed, loss, dtype, point, setup, samples, mistake_seed
    )


# --- degenerate problems


@pytest.mark.parametrize(
    "backends, options",
    [
        (("numpy",), {"fd_mode": "directional", "fd_samples": 4}),
        (BUILTINS, {"fd_mode": "directional", "fd_samples": 4, "reference": "fd"}),
        (("numpy",), {"fd_mode": "sample", "fd_samples": 3}),
        (BUILTINS, {"fd_mode": "off"}),
    ],
)
@pytest.mark.parametrize("case", ["loss exactly 0", "cross-entropy with one class"])
def test_a_gradient_zero_everywhere_is_never_a_pass(case, backends, options):
    # Was a false pass in directional mode judged by finite differences: the directional
    # reference has no entries, so "zero everywhere" (an exact minimum, where a wrong backprop
    # returning zeros agrees) was never detected and zeros passed.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    outputs = 2 if case == "loss exactly 0" else 1
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, outputs)
    ).double()
    X = rng.standard_normal((5, 3))
    if case == "loss exactly 0":
        with torch.no_grad():
            T = model(torch.tensor(X)).numpy()
        loss = "mse"
    else:
        T, loss = np.zeros(5, dtype=int), "cross-entropy"
    problem = problem_of(model, X, T, loss)
    zeros = {n: np.zeros_like(p) for n, p in zip(problem.parameter_names, problem.parameters)}
    report = run(problem, returning(zeros), backends, **options)
    assert not report.ok and report.unresolved
    if case == "cross-entropy with one class":  # exactly zero, not rounding noise
        assert {i["cause"] for i in report.unresolved.values()} == {"zero gradient"}


def _correct_passes_and_one_wrong_entry_fails_above_the_stated_sensitivity(
    mode, seed, loss, dtype, point, setup, samples, mistake_seed
):
    """A careful user's gradient passes on a random model; the same with one entry off by
    1e-6..1e-1 of its parameter's largest entry fails unless the report states that it may not
    see a mistake that small (away from kinks, where either side is right)."""
    model, X, T, source = random_model(seed, loss, point)
    problem = replace(problem_of(model, X, T, loss, dtype=dtype), source=source)
    assume(not degenerate(problem))
    backends = ("numpy",) if setup == "one built-in" else BUILTINS
    options = {"fd_mode": mode, "fd_samples": samples, "seed": mistake_seed}
    if setup == "reference fd":
        options["reference"] = "fd"
    correct = careful_user(model, problem)
    report = run(problem, returning(correct), backends, **options)
    assert all(r.ok for r in report.backends), [(r.name, r.error, r.hints) for r in report.backends]
    rng = np.random.default_rng(mistake_seed)
    names = [n for n, g in correct.items() if np.abs(g).max() > 0]
    names = [n for n in names if n not in problem.zero_gradients()]
    assume(names)
    name = names[int(rng.integers(len(names)))]
    size = float(10.0 ** rng.uniform(-6, -1))
    wrong = {n: g.copy() for n, g in correct.items()}
    flat = wrong[name].reshape(-1)
    entry = int(rng.integers(flat.size))
    flat[entry] += size * float(np.abs(correct[name]).max())
    flips = np.broadcast_to(rounding_noise(problem).kink_flips.get(name, 0.0), correct[name].shape)
    assume(KINK_FLIP_FACTOR * float(flips.reshape(-1)[entry]) < size * np.abs(correct[name]).max())
    judged = run(problem, returning(wrong), backends, **options)
    stated = {p.name: p.sensitivity for p in judged.backend("user").params}[name]
    assert not judged.ok or size <= (stated or 0.0), (problem.architecture(), name, size, stated)
