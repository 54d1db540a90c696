"""The input budget: sizes a file declares are checked before anything is allocated for them."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs.loading import load_problem
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
