"""What a check cannot resolve: reported as notes, or failed as inconclusive, never a quiet pass."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends import create_backend
from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.outputs.verdicts import unresolved_text
from gradcheck_cli.verdict import CheckOptions, run_checks
from gradcheck_cli.verdict.judge import noise_floor
from gradcheck_cli.verdict.policy import HIDDEN_ERROR_HINT, UNRESOLVED_FRACTION
from gradcheck_cli.verdict.precision import rounding_noise
from tests.helpers import ScaledBackend, builtin_backends, near_convergence, network_output


def test_float32_noise_that_hides_mistakes_is_reported(exercise_problem):
    # 3e-7 from convergence, float32 rounding is tens of percent of the gradient (19-46% for
    # W0, depending on the CPU's BLAS kernel): a float32 check cannot see a factor 1.2 there,
    # and must say so rather than pass quietly. What the report says must follow what was
    # measured on this machine, on either side of the 10% and 50% thresholds.
    p = exercise_problem
    near = make_problem(p.X, network_output(p) + 3e-7, p.weights, p.biases, dtype="float32")
    report = run_checks(near, [create_backend("numpy")])
    noise = rounding_noise(near)
    hidden = {
        name: noise_floor(noise, name) / float(np.abs(ref).max())
        for name, ref in report.reference.items()
    }
    noted = [n for n in report.notes if "check with --dtype float64" in n]
    assert bool(noted) == any(h > HIDDEN_ERROR_HINT for h in hidden.values()), hidden
    assert set(report.unresolved) == {n for n, h in hidden.items() if h >= UNRESOLVED_FRACTION}
    assert max(hidden.values()) > 0.15  # at this distance, on every CPU seen
    for name, fraction in hidden.items():
        if HIDDEN_ERROR_HINT < fraction < UNRESOLVED_FRACTION:
            assert f"{name} {fraction:.0%}" in noted[0]
    plain = run_checks(p.with_dtype("float32"), [create_backend("numpy")])
    assert plain.notes == () and plain.backend("numpy").hints == ()


@pytest.mark.torch
def test_gradients_too_small_for_finite_differences_are_reported(exercise_problem):
    # Weights 1e-4: the gradient of W2 (~1e-11) is far below what central differences
    # resolve (~eps |loss| / h = 1e-10). With a single built-in, finite differences judge,
    # a mistake there could not be seen, and the run cannot pass.
    p = exercise_problem
    tiny = make_problem(p.X, p.T, [w * 1e-4 for w in p.weights], [b * 1e-4 for b in p.biases])
    alone = run_checks(tiny, [create_backend("numpy")])
    assert not alone.ok and alone.unresolved["W2"]["cause"] == "finite differences"
    # With two built-ins, their consensus judges (at rounding level) and the report says
    # where it rests on their agreement alone. Said once for the run, not once per backend.
    pair = run_checks(tiny, [create_backend("numpy"), create_backend("torch-functional")])
    weak = [n for n in pair.notes if "finite differences cannot check the built-ins" in n]
    assert len(weak) == 1 and "W2 (" in weak[0], pair.notes
    assert run_checks(p, [create_backend("numpy")]).notes == ()


def test_a_reference_that_cannot_see_a_factor_2_is_inconclusive_not_a_pass(exercise_problem):
    # float32 with residuals of 1e-7: rounding alone is off by more than the gradient, so a
    # half-MSE gradient would pass. The run must fail as inconclusive and say why.
    problem = near_convergence(exercise_problem.with_dtype("float32"), 1e-7)
    report = run_checks(problem, [create_backend("numpy"), ScaledBackend("W1", 0.5)])
    assert not report.ok
    assert report.unresolved
    assert all(info["cause"] == "float32 rounding" for info in report.unresolved.values())
    assert all(info["hidden"] >= 0.5 for info in report.unresolved.values())
    assert "rerun with --dtype float64" in unresolved_text(report)
    assert report.to_dict()["unresolved"] == report.unresolved
    # The same problem in float64 is fully checked, and the mistake is caught.
    exact = run_checks(
        problem.with_dtype("float64"), [create_backend("numpy"), ScaledBackend("W1", 0.5)]
    )
    assert exact.unresolved == {}
    assert exact.backend("numpy").ok and not exact.backend("scaled").ok


@pytest.mark.parametrize("step", [1e-20, 1e-15, 5e-324, 1e50, 1e300, float("inf"), float("nan")])
def test_a_step_outside_the_sane_range_is_bad_input(exercise_problem, step):
    # Below 1e-12 rounding swamps every difference, above 0.1 truncation and kinks do.
    with pytest.raises(InputError, match=r"fd_step must be between 1e-12 and 0\.1"):
        run_checks(exercise_problem, [create_backend("numpy")], CheckOptions(fd_step=step))


@pytest.mark.parametrize("step", [1e-12, 0.1])
def test_no_step_in_the_range_passes_a_wrong_gradient(exercise_problem, step):
    # At either end of the range, finite differences alone judge a half gradient (one
    # built-in): it fails, or the run is inconclusive; never a pass.
    options = CheckOptions(fd_mode="full", fd_step=step)
    report = run_checks(exercise_problem, [ScaledBackend("W1", 0.5)], options)
    assert not report.ok


@pytest.mark.torch
def test_a_fully_resolved_run_has_no_unresolved_parameters(exercise_problem):
    report = run_checks(exercise_problem, builtin_backends())
    assert report.ok and report.unresolved == {}
