"""The file readers: state_dict layouts, utils.py values and imports, CSV labels."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from gradcheck_cli.inputs.loading import load_problem
from tests.helpers import arrays, assert_same_arrays, data_of, params_of, sequential_for


@pytest.mark.torch
def test_state_dict_layers_follow_numeric_module_order(tmp_path):
    import torch

    # 6 Linear + 5 ReLU: module indices 0..10, so "10.weight" sorts before "2.weight" as text.
    rng = np.random.default_rng(2)
    widths = [3, 5, 4, 6, 3, 5, 2]
    named = {"X": rng.standard_normal((4, 3)), "T": rng.standard_normal((4, 2))}
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        named[f"W{i}"], named[f"B{i}"] = rng.standard_normal((a, b)), rng.standard_normal(b)
    net = sequential_for(named)
    assert "10.weight" in net.state_dict()
    torch.save(net.state_dict(), tmp_path / "deep.pt")
    np.savez(tmp_path / "d.npz", **data_of(named))
    problem = load_problem(tmp_path / "d.npz", tmp_path / "deep.pt")
    assert problem.layers == widths
    assert_same_arrays(problem, named)


@pytest.mark.torch
def test_state_dict_float32_widens_exactly_and_prefix_is_accepted(tmp_path):
    import torch
    from torch import nn

    named = arrays(3)

    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = sequential_for(named, dtype=torch.float32)

    state = Wrapper().state_dict()
    assert "net.0.weight" in state
    torch.save(state, tmp_path / "wrapped.pt")
    np.savez(tmp_path / "d.npz", **data_of(named))
    problem = load_problem(tmp_path / "d.npz", tmp_path / "wrapped.pt")
    assert np.array_equal(problem.weights[0], state["net.0.weight"].numpy().astype(np.float64).T)
    assert np.array_equal(problem.biases[1], state["net.2.bias"].numpy().astype(np.float64))


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")  # torch.load of a quantized one
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("quantized", r"0\.weight is quantized \(torch\.qint8\); save it dequantized"),
        ("sparse", r"0\.weight is a torch\.sparse_coo tensor; save it dense"),
        ("meta", r"0\.weight is a meta tensor, which holds no values"),
    ],
)
def test_state_dict_tensors_without_plain_values_are_input_errors(tmp_path, kind, message):
    # They were exit 3 (RuntimeError, TypeError, NotImplementedError from .numpy()), both for a
    # layered network's state_dict and for an MLP's.
    import warnings

    import torch

    from gradcheck_cli.errors import InputError
    from gradcheck_cli.inputs.torch_files import read_named_state_dict

    weight = torch.ones(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors and their storage are deprecated
        odd = {
            "quantized": lambda: torch.quantize_per_tensor(weight, 0.1, 0, torch.qint8),
            "sparse": weight.to_sparse,
            "meta": lambda: torch.empty(2, 3, device="meta"),
        }[kind]()
        torch.save({"0.weight": odd, "0.bias": torch.zeros(2)}, tmp_path / "p.pt")
    with pytest.raises(InputError, match=message):
        read_named_state_dict(tmp_path / "p.pt")
    np.savez(tmp_path / "d.npz", X=np.ones((4, 3)), T=np.ones((4, 2)))
    with pytest.raises(InputError, match=message):
        load_problem(tmp_path / "d.npz", tmp_path / "p.pt")


def test_utils_values_are_kept_exactly(tmp_path):
    third = 1.0 / 3.0  # not representable in float32: a float32 detour would change it
    (tmp_path / "exact.py").write_text(
        textwrap.dedent(
            f"""
            import numpy as np
            def getdata():
                X = [[{third!r}, 0.1, 2.0]] * 2      # plain Python lists
                T = np.array([[0.7], [{third!r}]])
                return X, T
            def getparams():
                W = [np.full((3, 2), {third!r}), np.float32([[0.5], [0.25]])]
                B = [[0.1, 0.2], [{third!r}]]
                return W, B
            """
        )
    )
    problem = load_problem(utils=tmp_path / "exact.py")
    assert problem.X[0, 0] == third and problem.X[1, 1] == 0.1
    assert problem.T[1, 0] == third
    assert problem.weights[0][2, 1] == third
    assert problem.biases[1][0] == third and problem.biases[0][0] == 0.1
    assert problem.weights[1][1, 0] == 0.25


@pytest.mark.torch
def test_utils_may_return_torch_parameters_and_import_siblings(tmp_path):
    (tmp_path / "helper_gc.py").write_text("SCALE = 2.0\n")
    (tmp_path / "u.py").write_text(
        textwrap.dedent(
            """
            import torch
            from helper_gc import SCALE
            def getdata():
                return torch.ones(3, 2, dtype=torch.float64) * SCALE, torch.zeros(3, 1)
            def getparams():
                W = [torch.nn.Parameter(torch.full((2, 1), 0.5, dtype=torch.float64))]
                return W, [torch.nn.Parameter(torch.zeros(1))]
            """
        )
    )
    path_before = list(sys.path)
    problem = load_problem(utils=tmp_path / "u.py")
    assert sys.path == path_before  # the user's folder is on sys.path only while it runs
    assert np.array_equal(problem.X, np.full((3, 2), 2.0))
    assert problem.layers == [2, 1]
    assert problem.weights[0][0, 0] == 0.5


def test_single_t_column_csv_gives_labels_for_cross_entropy(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 3))
    labels = np.array([0, 1, 1, 0, 1, 0])
    (tmp_path / "d.csv").write_text(
        "a,b,c,T\n"
        + "".join(",".join(repr(float(v)) for v in x) + f",{t}\n" for x, t in zip(X, labels))
    )
    np.savez(tmp_path / "p.npz", **params_of(arrays()))
    problem = load_problem(tmp_path / "d.csv", tmp_path / "p.npz", loss="cross-entropy")
    assert np.array_equal(problem.X, X)
    assert np.array_equal(problem.T, labels)
