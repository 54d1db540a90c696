"""gradcheck_cli.check(): functions, FILE:FUNC specs and arrays in, backends by name, a Report."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_cli
from gradcheck_cli.errors import InputError
from gradcheck_cli.fd import FULL_MODE_MAX_PARAMETERS
from tests.helpers import USER_CORPUS, forgot_the_mean, my_backprop, random_problem, torch_reference


@pytest.mark.torch
def test_check_a_correct_function_object():
    report = gradcheck_cli.check(my_backprop)
    assert report.ok
    assert [b.name for b in report.backends][-1] == "my_backprop"
    assert report.backend("my_backprop").kind == "user"
    assert report.to_dict()["backends"][-1]["ok"] is True


def test_check_a_wrong_function_names_the_mistake():
    report = gradcheck_cli.check(forgot_the_mean, backends=["numpy"])
    assert not report.ok
    user = report.backend("forgot_the_mean")
    assert all("1/N of the mean is missing (N = 20" in p.hint for p in user.params)
    assert repr(report) == (
        "<Report FAILED: numpy=ok, forgot_the_mean=FAIL; reference finite differences>"
    )


@pytest.mark.torch
def test_arrays_as_data_and_params_match_torch():
    problem = random_problem([3, 4, 2], samples=5, seed=4)
    report = gradcheck_cli.check(
        my_backprop,
        data=(problem.X, problem.T),
        params=(list(problem.weights), list(problem.biases)),
        backends=[],
    )
    assert report.ok
    _, dW, _ = torch_reference(problem)
    grads = report.backend("my_backprop").gradients
    np.testing.assert_allclose(grads.dW[0], dW[0], rtol=1e-12)


def test_file_spec_and_duplicate_names():
    report = gradcheck_cli.check(
        f"{USER_CORPUS / 'correct.py'}:general", my_backprop, my_backprop, backends=["numpy"]
    )
    assert [b.name for b in report.backends] == [
        "numpy",
        "correct.py:general",
        "my_backprop",
        "my_backprop#2",
    ]
    assert report.ok


@pytest.mark.torch
def test_bad_arguments_are_input_errors():
    problem = random_problem([3, 4, 2])
    with pytest.raises(InputError, match="both as arrays, or both as file paths"):
        gradcheck_cli.check(my_backprop, data=(problem.X, problem.T))
    with pytest.raises(InputError, match="either problem= or data"):
        gradcheck_cli.check(my_backprop, problem=problem, data="d.npz")
    with pytest.raises(InputError, match="expected a function or 'FILE:FUNC'"):
        gradcheck_cli.check(42)


def test_check_accepts_one_backend_name_as_a_string():
    # backends="numpy" is one backend, not a string read letter by letter ("unknown backend 'n'").
    report = gradcheck_cli.check(f"{USER_CORPUS / 'correct.py'}:exercise", backends="numpy")
    assert [b.name for b in report.backends] == ["numpy", "correct.py:exercise"]
    assert report.ok


def test_check_samples_finite_differences_on_a_large_network_like_the_cli():
    # check() chooses the finite-difference mode as `gradcheck run` does (fd auto): on a big
    # model a notebook samples entries rather than running every one.
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(4, 300)), rng.normal(size=(4, 1))
    W = [rng.normal(size=(300, 200)) / 17, rng.normal(size=(200, 1)) / 14]
    B = [np.zeros(200), np.zeros(1)]
    report = gradcheck_cli.check(data=(X, T), params=(W, B), backends=["numpy"])
    assert report.problem.parameter_count > FULL_MODE_MAX_PARAMETERS
    assert report.finite_difference is not None
    assert report.finite_difference.mode == "sample"
    assert report.ok


def test_the_finite_difference_options_of_the_command_line():
    sampled = gradcheck_cli.check(backends=["numpy"], fd="sample", fd_samples=7, seed=3)
    assert sampled.ok and sampled.finite_difference.mode == "sample"
    assert sampled.finite_difference.checked >= 7  # at least one entry of every tensor
    other_seed = gradcheck_cli.check(backends=["numpy"], fd="sample", fd_samples=7, seed=4)
    assert not all(
        np.array_equal(np.isnan(a), np.isnan(b))
        for a, b in zip(
            sampled.finite_difference.estimates.values(),
            other_seed.finite_difference.estimates.values(),
        )
    )
    directional = gradcheck_cli.check(backends=["numpy"], fd="directional", fd_samples=5)
    assert directional.finite_difference.checked == 5
    richardson = gradcheck_cli.check(backends=["numpy"], fd="full", fd_order=4, fd_step=1e-3)
    assert richardson.ok and richardson.finite_difference.step == 1e-3
    with pytest.raises(InputError, match="fd_order must be one of 2, 4"):
        gradcheck_cli.check(backends=["numpy"], fd_order=3)
