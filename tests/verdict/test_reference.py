"""The reference: finite differences, or with --fd off the consensus of the built-in backends."""

from __future__ import annotations

import pytest

from gradcheck_cli.backends import create_backend
from gradcheck_cli.errors import InputError
from gradcheck_cli.verdict import CheckOptions, run_checks
from tests.helpers import ScaledBackend


@pytest.mark.torch
def test_fd_off_uses_consensus_and_outvotes_one_wrong_backend(exercise_problem):
    report = run_checks(
        exercise_problem,
        [create_backend("numpy"), create_backend("torch-functional"), ScaledBackend("W0", -1.0)],
        CheckOptions(fd_mode="off"),
    )
    assert report.finite_difference is None
    assert report.reference_name.startswith("consensus of")
    assert report.backend("numpy").ok and report.backend("torch-functional").ok
    assert not report.backend("scaled").ok
    assert report.to_dict()["finite_difference"] == {"mode": "off"}


def test_fd_off_with_one_backend_is_a_usage_error(exercise_problem):
    with pytest.raises(InputError, match="nothing to compare"):
        run_checks(exercise_problem, [create_backend("numpy")], CheckOptions(fd_mode="off"))
