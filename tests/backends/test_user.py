"""The user backend on the corpus of wrong backprop functions (tests/user_corpus/).

Every classic mistake is there in both call forms; each must fail with the expected hint,
while the built-in backends keep passing. A correct function passes with no hint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gradcheck_cli
from gradcheck_cli.backends import create_backend
from gradcheck_cli.backends.user import (
    EXERCISE_FORM,
    GENERAL_FORM,
    UserBackend,
    call_form,
    parse_user_spec,
)
from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs.loading import load_problem
from gradcheck_cli.problem import Problem
from gradcheck_cli.verdict import run_checks
from tests.helpers import USER_CORPUS, random_problem

# Frames of the package itself (a checkout's folder may be called gradcheck_cli-0.1.0 too).
PACKAGE_DIR = str(Path(gradcheck_cli.__file__).parent)
FORMS = ("exercise", "general")
ALL_W = ("W0", "W1", "W2", "W3")
ALL_B = ("B0", "B1", "B2", "B3")

# file -> ({failing parameter: words its hint must contain}, words a backend-level hint contains)
PARAM_MISTAKES: dict[str, tuple[dict[str, str], str | None]] = {
    "missing_mean.py": (
        dict.fromkeys(
            ALL_W + ALL_B, "off by a constant factor 20: the 1/N of the mean is missing (N = 20"
        ),
        "every failing parameter is off by the same factor 20",
    ),
    "half_mse.py": (
        dict.fromkeys(ALL_W + ALL_B, "off by a constant factor 0.5: a factor 2 is missing"),
        "every failing parameter is off by the same factor 0.5",
    ),
    "no_mean_no_two.py": (
        dict.fromkeys(
            ALL_W + ALL_B,
            "off by a constant factor 10: the 1/N of the mean (N = 20) and the 2 from the "
            "derivative of the square are both missing",
        ),
        "same factor 10",
    ),
    "sign_flipped.py": (
        dict.fromkeys(ALL_W + ALL_B, "off by a constant factor -1: the sign is flipped"),
        "same factor -1",
    ),
    "transposed_square.py": ({"W1": "transposed: it matches the reference's transpose"}, None),
    "swapped_layers.py": (
        {
            "W1": "it matches the gradient of W2: gradients of the wrong layer",
            "W2": "it matches the gradient of W1",
            "B1": "it matches the gradient of B2",
            "B2": "it matches the gradient of B1",
        },
        None,
    ),
    "missing_relu_derivative.py": (
        dict.fromkeys(
            ("W0", "W1", "W2", "B0", "B1", "B2"),
            "the activation derivative is missing: it matches backprop without the factor relu'(z)",
        ),
        None,
    ),
    "first_layer_zeros.py": (
        dict.fromkeys(("W0", "B0"), "all entries are zero but the reference is not"),
        None,
    ),
    "one_unit_wrong.py": ({"W1": "only W1[:, 2] is wrong; the other 31 entries match"}, None),
}

# Mistakes that make the returned arrays the wrong shape: a failed backend, explained in hints.
SHAPE_MISTAKES: dict[str, tuple[str, list[str]]] = {
    "bias_not_summed.py": (
        "DB[0] has shape (20, 6); expected (6,)",
        [
            f"DB[{i}] has shape (20, {w}): the bias gradient is not summed over the batch; "
            "its sum over the 20 samples matches the reference"
            for i, w in enumerate((6, 6, 6, 1))
        ],
    ),
    "transposed_shape.py": (
        "DW[0] has shape (6, 4); expected (4, 6)",
        [
            "DW[0] has shape (6, 4); transposed: it matches the reference's transpose",
            "W1: transposed: it matches the reference's transpose",
            "W2: transposed: it matches the reference's transpose",
            "DW[3] has shape (1, 6); transposed: it matches the reference's transpose",
        ],
    ),
    "reversed_order.py": (
        "DW[0] has shape (6, 1); expected (4, 6)",
        [
            "DW[0] has shape (6, 1); it matches the gradient of W3",
            "W1: it matches the gradient of W2",
            "W2: it matches the gradient of W1",
            "DW[3] has shape (4, 6); it matches the gradient of W0",
            "DB[0] has shape (1,); it matches the gradient of B3",
            "B1: it matches the gradient of B2",
            "B2: it matches the gradient of B1",
            "DB[3] has shape (6,); it matches the gradient of B0",
        ],
    ),
}


def check(problem: Problem, spec: str, first: bool = False):
    """Run numpy + the user's function; return (report, user result)."""
    user = UserBackend(spec)
    backends = [user, create_backend("numpy")] if first else [create_backend("numpy"), user]
    report = run_checks(problem, backends)
    return report, report.backend(user.name)


@pytest.fixture(scope="module")
def exercise():
    return load_problem()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", sorted(PARAM_MISTAKES))
def test_corpus_mistake_fails_with_its_hint(exercise, name, form):
    expected, backend_hint = PARAM_MISTAKES[name]
    report, user = check(exercise, f"{USER_CORPUS / name}:{form}")
    assert not report.ok and not user.ok and user.error is None
    assert report.backend("numpy").ok  # the other backends are unaffected
    failing = {p.name: p.hint for p in user.params if not p.ok}
    assert set(failing) == set(expected)
    for pname, words in expected.items():
        assert failing[pname] is not None and words in failing[pname], (pname, failing[pname])
        assert "(residual " in failing[pname]
    if backend_hint is not None:
        assert any(backend_hint in h for h in user.hints), user.hints


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", sorted(SHAPE_MISTAKES))
def test_corpus_shape_mistake_is_a_failed_backend_with_hints(exercise, name, form):
    error, hints = SHAPE_MISTAKES[name]
    report, user = check(exercise, f"{USER_CORPUS / name}:{form}")
    assert not report.ok and report.backend("numpy").ok
    assert user.error == error
    assert len(user.hints) == len(hints)
    for got, words in zip(user.hints, hints):
        assert got.startswith(words) and "(residual " in got, got


@pytest.mark.parametrize(
    "function", ["exercise", "general", "exercise_weights_only", "general_without_loss"]
)
def test_correct_functions_pass_without_hints(exercise, function):
    report, user = check(exercise, f"{USER_CORPUS / 'correct.py'}:{function}")
    assert report.ok and user.ok
    assert all(p.hint is None for p in user.params)
    if function == "exercise_weights_only":
        assert user.hints == ("biases were not returned; only the weights were checked",)
        assert [p.name for p in user.params] == list(ALL_W)
    else:
        assert user.hints == ()
    if function == "general":
        assert user.loss == pytest.approx(report.finite_difference.loss, rel=1e-12)


@pytest.mark.parametrize("form", FORMS)
def test_mutating_inputs_cannot_corrupt_other_backends(exercise, form):
    X, W0 = exercise.X.copy(), exercise.weights[0].copy()
    report, user = check(exercise, f"{USER_CORPUS / 'mutates_inputs.py'}:{form}", first=True)
    assert report.ok and user.ok
    np.testing.assert_array_equal(exercise.X, X)
    np.testing.assert_array_equal(exercise.weights[0], W0)


def test_sheet_part1_code_is_a_failing_backend_not_a_crash(exercise):
    report, user = check(exercise, f"{USER_CORPUS / 'sheet_part1.py'}:back_propagation")
    assert not report.ok and report.backend("numpy").ok
    assert user.error == "ValueError: shapes (20,1) and (20,6) not aligned: 1 (dim 1) != 20 (dim 0)"
    assert user.traceback is not None
    assert "sheet_part1.py" in user.traceback and "in back_propagation" in user.traceback
    assert PACKAGE_DIR not in user.traceback  # only the user's frames


@pytest.mark.parametrize(
    "function, error",
    [
        ("wrong_count", "returned 3 arrays for DW; expected 4"),
        ("not_numeric", "DW[0] is not numeric (got dtype <U4)"),
        ("non_finite", "DW[2][1, 3] is nan; expected finite"),
        ("single_array", "returned a ndarray value; expected (DW, DB) or (loss, DW, DB)"),
        ("too_many_values", "returned 4 values; expected (DW, DB) or (loss, DW, DB)"),
        ("raises", "NameError: name 'undefined_name' is not defined"),
    ],
)
def test_unusable_results_are_precise_failures(exercise, function, error):
    report, user = check(exercise, f"{USER_CORPUS / 'bad_returns.py'}:{function}")
    assert user.error == error
    assert not report.ok and report.backend("numpy").ok


def test_raising_function_keeps_only_user_frames(exercise):
    _, user = check(exercise, f"{USER_CORPUS / 'bad_returns.py'}:raises")
    trace = user.traceback
    assert trace.startswith("Traceback (most recent call last):")
    assert "in raises" in trace and "in helper" in trace
    assert PACKAGE_DIR not in trace
    assert trace.rstrip().endswith("NameError: name 'undefined_name' is not defined")


@pytest.mark.parametrize("form", FORMS)
def test_tanh_derivative_at_the_output(form):
    problem = random_problem([4, 6, 6, 6, 1], samples=20, seed=2, activation="tanh")
    report, user = check(problem, f"{USER_CORPUS / 'tanh_derivative_at_output.py'}:{form}")
    assert not user.ok and report.backend("numpy").ok
    hints = {p.name: p.hint for p in user.params if not p.ok}
    assert set(hints) == {"W0", "W1", "W2", "B0", "B1", "B2"}
    for hint in hints.values():
        assert hint.startswith("the tanh derivative is evaluated at the activation's output A")
    report, user = check(
        problem, f"{USER_CORPUS / 'tanh_derivative_at_output.py'}:correct_exercise"
    )
    assert report.ok


def test_float32_problem_passes_float32_arrays(tmp_path):
    path = tmp_path / "record.py"
    path.write_text(
        "import numpy as np\n"
        "seen = []\n"
        "def f(X, T, W, B):\n"
        "    seen.extend(a.dtype for a in [X, T, *W, *B])\n"
        "    A = [X]\n"
        "    for i in range(len(W) - 1):\n"
        "        A.append(np.maximum(0, A[-1] @ W[i] + B[i]))\n"
        "    Y = A[-1] @ W[-1] + B[-1]\n"
        "    d = 2 * (Y - T) / Y.size\n"
        "    DW, DB = [None] * len(W), [None] * len(W)\n"
        "    for i in reversed(range(len(W))):\n"
        "        DW[i], DB[i] = A[i].T @ d, d.sum(axis=0)\n"
        "        if i:\n"
        "            d = (d @ W[i].T) * (A[i] > 0)\n"
        "    return DW, DB\n"
    )
    user = UserBackend(f"{path}:f")
    problem = load_problem(dtype="float32")
    report = run_checks(problem, [create_backend("numpy"), user])
    assert report.ok
    grads = report.backend(user.name).gradients
    assert grads is not None and grads.dW[0].dtype == np.float32


def test_import_error_is_a_backend_failure(tmp_path, exercise):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\nx = 1 / 0\ndef f(X, T, W, B):\n    return W, B\n")
    report, user = check(exercise, f"{path}:f")
    assert user.error == "importing broken.py raised ZeroDivisionError: division by zero"
    assert "broken.py" in user.traceback and PACKAGE_DIR not in user.traceback
    assert report.backend("numpy").ok


def test_file_may_import_its_neighbours(tmp_path, exercise):
    (tmp_path / "helpers_for_h3.py").write_text(
        "def scale():\n    return 2.0\n"  # a helper module next to the user's file
    )
    path = tmp_path / "uses_helper.py"
    path.write_text(
        "from helpers_for_h3 import scale\n"
        f"exec(open({str(USER_CORPUS / 'correct.py')!r}).read())\n"
        "def g(X, T, W, B):\n"
        "    DW, DB = general(X, T, W, B)[1:]\n"
        "    return [scale() * d for d in DW], [scale() * d for d in DB]\n"
    )
    _, user = check(exercise, f"{path}:g")
    assert user.error is None
    assert all("an extra factor 2" in p.hint for p in user.params)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nofile.py:f", "user function nofile.py: no such file"),
        ("mine.py", "expected FILE:FUNC"),
        ("mine.py:1abc", "is not a Python function name"),
    ],
)
def test_bad_specs_are_input_errors(spec, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        UserBackend(spec)


def test_missing_function_and_bad_signature_are_input_errors():
    with pytest.raises(InputError, match="no function 'nope' in that file"):
        UserBackend(f"{USER_CORPUS / 'correct.py'}:nope")
    with pytest.raises(InputError, match=r"takes \(a, b, c\); expected f\(W, B, A, Y, T\)"):
        UserBackend(f"{USER_CORPUS / 'bad_returns.py'}:odd_signature")


def test_call_form_detection():
    def ex(W, B, A, Y, T): ...
    def gen(X, T, W, B): ...
    def by_count5(w, b, acts, out, targets): ...
    def by_count4(x, t, w, b): ...
    def with_default(x, t, w, b, verbose=False): ...

    assert call_form(ex, "ex") == EXERCISE_FORM
    assert call_form(gen, "gen") == GENERAL_FORM
    assert call_form(by_count5, "f") == EXERCISE_FORM
    assert call_form(by_count4, "f") == GENERAL_FORM
    assert call_form(with_default, "f") == GENERAL_FORM
    spec = parse_user_spec("C:/work/mine.py:back_propagation")
    assert spec.path == Path("C:/work/mine.py") and spec.function == "back_propagation"
    assert spec.label == "mine.py:back_propagation"
