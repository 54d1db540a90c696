"""Two tiers: finite differences validate the built-ins, whose float64 consensus then judges
everyone else at rounding level; no path to a pass without a validated reference."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends import create_backend
from gradcheck_cli.backends.base import Backend
from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.problem import Gradients, Problem
from gradcheck_cli.verdict import CheckOptions, run_checks
from tests.helpers import EntryOff, ScaledBackend, builtin_backends, network_output

pytestmark = pytest.mark.torch  # the built-ins and the careful user's gradient use torch


class UserScaled(ScaledBackend):
    """A user's function (not a built-in) with one parameter scaled."""

    kind = "user"
    name = "user"


class UserEntryOff(EntryOff):
    """A user's function with one entry off by a relative amount."""

    kind = "user"


def test_the_consensus_judges_users_far_more_finely_than_finite_differences(exercise_problem):
    # One entry off by 1e-8 (W1's largest entry is ~0.05): below what finite differences
    # resolve (their tolerance is 1e-5 of the entry), far above rounding (1e-9 of W1's).
    wrong = UserEntryOff("W1", (2, 3), 1e-8)
    report = run_checks(exercise_problem, [*builtin_backends(), wrong])
    result = report.backend("entry-off")
    assert result.reference == "consensus" and not result.ok
    assert [(p.name, p.worst_index) for p in result.params if not p.ok] == [("W1", (2, 3))]
    assert result.sensitivity is not None and result.sensitivity < 1e-8
    by_fd = run_checks(exercise_problem, [*builtin_backends(), wrong], CheckOptions(reference="fd"))
    assert by_fd.backend("entry-off").reference == "finite differences"
    assert by_fd.backend("entry-off").ok  # what finite differences alone cannot see
    assert by_fd.backend("entry-off").sensitivity > 1e-6


def test_built_ins_are_judged_by_finite_differences_and_form_the_consensus(exercise_problem):
    report = run_checks(exercise_problem, builtin_backends())
    assert report.ok
    assert {r.reference for r in report.backends} == {"finite differences"}
    assert report.validation is not None and report.validation.ok
    assert report.validation.members == ("numpy", "torch-functional", "torch-sequential")
    assert report.validation.agreement < 1e-12


def test_a_built_in_that_disagrees_with_finite_differences_puts_the_reference_in_doubt(
    exercise_problem,
):
    # A "built-in" off by 1%: it is left out of the consensus, and the run fails even though
    # the user's function agrees with the remaining two.
    broken = ScaledBackend("W2", 1.01)
    broken.name = "broken"
    report = run_checks(
        exercise_problem,
        [*builtin_backends()[:2], broken, UserScaled("W0", 1.0)],
    )
    assert not report.ok
    assert report.validation is not None and not report.validation.ok
    assert report.validation.members == ("numpy", "torch-functional")
    assert any(
        "built-in broken disagrees with finite differences on W2" in p
        for p in report.validation.problems
    )
    assert report.backend("user").ok  # judged by the consensus of the two that passed
    assert any("reference is in doubt" in n for n in report.notes)


def test_a_float32_run_is_judged_against_the_float64_consensus(exercise_problem):
    problem = exercise_problem.with_dtype("float32")
    report = run_checks(problem, [*builtin_backends(), UserScaled("W1", 1.001)])
    assert {r.name: r.reference for r in report.backends} == {
        "numpy": "consensus",
        "torch-functional": "consensus",
        "torch-sequential": "consensus",
        "user": "consensus",
    }
    assert all(report.backend(n).ok for n in ("numpy", "torch-functional", "torch-sequential"))
    assert not report.backend("user").ok  # 0.1% is far above float32 rounding here


def test_reference_options(exercise_problem):
    with pytest.raises(InputError, match="reference backends needs at least two built-in"):
        run_checks(
            exercise_problem,
            [create_backend("numpy"), UserScaled("W0", 1.0)],
            CheckOptions(reference="backends"),
        )
    with pytest.raises(InputError, match="unknown reference 'magic'"):
        run_checks(exercise_problem, builtin_backends(), CheckOptions(reference="magic"))
    with pytest.raises(InputError, match="reference fd needs finite differences"):
        run_checks(
            exercise_problem, builtin_backends(), CheckOptions(reference="fd", fd_mode="off")
        )
    # One built-in: finite differences judge the user, as with --reference fd.
    single = run_checks(exercise_problem, [create_backend("numpy"), UserScaled("W0", 1.0)])
    assert single.backend("user").reference == "finite differences"
    assert single.validation is None


def test_without_finite_differences_two_built_ins_validate_by_agreement(exercise_problem):
    options = CheckOptions(fd_mode="off")
    pair = run_checks(exercise_problem, [*builtin_backends()[:2], UserScaled("W3", 0.5)], options)
    assert pair.validation is not None and pair.validation.by == "agreement"
    assert not pair.ok and not pair.backend("user").ok
    # One built-in and a user: nothing validates the median; never a pass.
    alone = run_checks(exercise_problem, [create_backend("numpy"), UserScaled("W3", 1.0)], options)
    assert not alone.ok
    assert {info["cause"] for info in alone.unresolved.values()} == {"no validated reference"}


def test_a_loss_of_exactly_zero_is_inconclusive_never_a_pass(exercise_problem):
    # T is the network's exact output: every gradient is zero (or rounding, in a backend that
    # sums in another order), so a wrong backprop (a factor 2, a missing derivative) returns
    # zeros as well. Nothing can be verified, and the run says so.
    p = exercise_problem
    exact = make_problem(p.X, network_output(p), p.weights, p.biases)
    assert exact.float64_loss() == 0.0
    for backends in (builtin_backends(), [*builtin_backends(), UserScaled("W1", 2.0)]):
        report = run_checks(exact, backends)
        assert not report.ok
        assert all(r.ok for r in report.backends)  # nobody is blamed: all return zeros
        causes = {info["cause"] for info in report.unresolved.values()}
        assert causes and causes <= {"zero gradient", "float64 rounding"}


class DeadColumnsTwice(Backend):
    """W0 doubled (a user's mistake), on a network whose sampled W0 entries are all zero."""

    name = "doubled"
    kind = "user"

    def gradients(self, problem: Problem) -> Gradients:
        g = NumpyBackprop().gradients(problem)
        return Gradients(g.loss, (g.dW[0] * 2.0, *g.dW[1:]), g.dB)


def test_sampled_finite_differences_see_a_whole_tensor_mistake_outside_the_sample():
    # Most units of layer 0 are dead, so most entries of dW0 are exactly zero; a sample of
    # one W0 entry lands on a dead one. Doubling W0 shows only where the sample is not: the
    # random direction over the whole tensor must catch it, with finite differences judging.
    rng = np.random.default_rng(3)
    X = rng.standard_normal((8, 6))
    W0 = rng.standard_normal((6, 10))
    B0 = np.full(10, -50.0)
    B0[[2, 7]] = 0.5  # two live units
    W1 = rng.standard_normal((10, 1))
    problem = make_problem(X, rng.standard_normal((8, 1)), [W0, W1], [B0, np.zeros(1)])
    options = CheckOptions(fd_mode="sample", fd_samples=4, seed=0, reference="fd")
    report = run_checks(problem, [create_backend("numpy"), DeadColumnsTwice()], options)
    fd = report.finite_difference
    assert fd is not None and fd.mode == "sample"
    sampled = problem.parameter_names  # the sampled W0 entry is a dead one (zero gradient)
    assert "W0" in sampled
    assert report.backend("numpy").ok
    doubled = report.backend("doubled")
    assert not doubled.ok
    assert [p.name for p in doubled.params if not p.ok] == ["W0"]
    assert any("a random direction over all of W0" in h for h in doubled.hints)
