"""The input budget: sizes a file declares are checked before anything is allocated for them."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs import make_layered_problem
from gradcheck_cli.inputs.architecture import parse_layers
from gradcheck_cli.inputs.loading import load_problem, make_problem
from gradcheck_cli.inputs.torch_files import read_state_dict, scan_file
from gradcheck_cli.safety.budget import MB, budget_bytes, size_text
from tests.helpers import arrays, params_of


def test_budget_and_sizes_in_words():
    assert budget_bytes(1) == MB and budget_bytes(0.5) == MB // 2
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InputError, match="max_input_mb must be a positive number"):
            budget_bytes(bad)
    assert size_text(3.7 * (1 << 30)) == "3.7 GB" and size_text(512) == "512 bytes"


def test_npz_within_and_over_the_budget(tmp_path):
    np.savez(tmp_path / "d.npz", **arrays())
    assert load_problem(tmp_path / "d.npz").layers == [3, 4, 2]
    total = sum(a.nbytes for a in arrays().values())
    with pytest.raises(
        InputError, match=r"d\.npz: its arrays declare .* more than the input budget"
    ):
        load_problem(tmp_path / "d.npz", max_input_mb=(total - 1) / MB)


def test_state_dicts_of_tensors_or_parameters_are_scanned_and_load(tmp_path):
    torch = pytest.importorskip("torch")  # the files are written by torch.save
    nn = torch.nn
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    torch.save(dict(model.named_parameters()), tmp_path / "params.pt")  # nn.Parameter values
    torch.save(model.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("sd.pt", "params.pt", "legacy.pt"):
        scan = scan_file(tmp_path / name, "params file", 1 << 30)
        assert scan.complete and not scan.foreign, (name, scan.globals)
        assert sorted(t.numel for t in scan.tensors) == [2, 4, 8, 12], name
        weights, _ = read_state_dict(tmp_path / name)
        assert [w.shape for w in weights] == [(3, 4), (4, 2)]
    # One float stored, a million entries once expanded: refused before it is converted.
    big = {"0.weight": torch.zeros(1).expand(1000, 1000), "0.bias": torch.zeros(1000)}
    for legacy in (False, True):
        torch.save(big, tmp_path / "big.pt", _use_new_zipfile_serialization=not legacy)
        with pytest.raises(
            InputError,
            match=r"big\.pt: its tensors as float64 \(the largest 1000x1000\) come to 7\.6",
        ):
            read_state_dict(tmp_path / "big.pt", max_bytes=MB)


def test_csv_rows_times_columns_count(tmp_path):
    rows = "".join("1,2,3,0.5,0.5\n" for _ in range(100))
    (tmp_path / "d.csv").write_text("a,b,c,T0,T1\n" + rows)
    np.savez(tmp_path / "p.npz", **params_of(arrays()))
    assert load_problem(tmp_path / "d.csv", tmp_path / "p.npz").samples == 100
    with pytest.raises(InputError, match=r"100 rows of 5 columns as float64 come to 3\.91 kB"):
        load_problem(tmp_path / "d.csv", tmp_path / "p.npz", max_input_mb=3000 / MB)


def test_the_forward_pass_of_an_mlp_is_within_the_budget():
    # 1,000 samples through 1,000 hidden units: Z and A hold 2 x 1000 x 1000 float64 = 15.3 MB
    # (plus the output's 2 x 1000), while the arrays themselves are 24 kB.
    X, T = np.ones((1000, 1)), np.ones((1000, 1))
    W, B = [np.ones((1, 1000)), np.ones((1000, 1))], [np.zeros(1000), np.zeros(1)]
    needed = 8 * 1000 * (2 * 1000 + 2 * 1) / MB
    assert make_problem(X, T, W, B, max_input_mb=needed * 1.01).layers == [1, 1000, 1]
    with pytest.raises(
        InputError,
        match=r"forward pass over its 1,000 samples \(the largest output: W0's Z and A, "
        r"2,000 values per sample\) holds 15\.3 MB, more than the input budget",
    ):
        make_problem(X, T, W, B, max_input_mb=needed * 0.99)


def test_the_forward_pass_of_a_layered_network_is_within_the_budget():
    # A 1x1 convolution padded by 2 turns a 1x1 image into 5x5: what the padding adds counts.
    layers = parse_layers("Conv2d(1,1,1,padding=2), Flatten, Linear(25,2)")
    params = {"0.weight": np.ones((1, 1, 1, 1)), "0.bias": np.zeros(1)}
    params |= {"2.weight": np.ones((2, 25)), "2.bias": np.zeros(2)}
    X, T = np.ones((1000, 1, 1, 1)), np.zeros(1000, dtype=int)
    kwargs = {"loss": "cross-entropy"}
    small = make_layered_problem(X, T, layers, params, max_input_mb=1, **kwargs)
    assert small.parameter_count == 54
    with pytest.raises(
        InputError, match=r"the largest output: layer 0 Conv2d\(1, 1, 1, padding=2\), 50 values"
    ):
        make_layered_problem(X, T, layers, params, max_input_mb=0.1, **kwargs)
