"""The finite-difference error estimates hold: every judged estimate lies within its stated
error of the exact gradient (torch autograd, float64), at ordinary points, next to kinks and
nearly converged, where the rounding of the loss, not the loss itself, sets the error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcheck_cli.fd import finite_differences
from gradcheck_cli.nn import ACTIVATIONS, LOSSES
from gradcheck_cli.verdict.judge import noise_floor
from gradcheck_cli.verdict.precision import rounding_noise
from tests.helpers import fuzz_problem, torch_by_name

pytestmark = pytest.mark.torch  # the built-ins and the careful user's gradient use torch


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    activation=st.sampled_from(list(ACTIVATIONS)),
    loss=st.sampled_from(list(LOSSES)),
    point=st.sampled_from(["ordinary", "kink", "converged"]),
)
def test_every_judged_estimate_is_within_its_error_of_the_exact_gradient(
    seed, activation, loss, point
):
    problem = fuzz_problem(seed, activation, loss, "float64", point)
    exact = torch_by_name(problem)
    fd = finite_differences(problem)
    # The exact gradient is itself computed in float64: allow its own rounding.
    noise = rounding_noise(problem)
    for name, truth in exact.items():
        judged = fd.checked[name] & ~fd.unresolved[name]
        # A unit exactly at its kink has no single derivative: the estimate takes one side.
        if point == "kink" and np.any(fd.kinks[name]):
            judged &= ~fd.kinks[name]
        miss = np.abs(fd.estimates[name] - truth)[judged]
        allowed = fd.error[name][judged] + noise_floor(noise, name)
        assert np.all(miss <= allowed), (name, problem.describe())
