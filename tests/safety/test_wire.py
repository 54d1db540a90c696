"""The messages to and from the child: numeric arrays round-trip exactly; nothing else travels,
and a reply's declared size is checked before it is read."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck_cli.safety.wire import OverBudget, ProtocolError, read_message, write_message

_DTYPES = st.sampled_from(["<f8", "<f4", ">f8", "<f2", "<i8", "<u1", "|b1"])


@given(
    st.lists(
        hnp.arrays(_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
        max_size=4,
    )
)
def test_arrays_round_trip_exactly(arrays):
    named = {f"a{i}": a for i, a in enumerate(arrays)}
    stream = io.BytesIO()
    write_message(stream, {"kind": "x", "loss": 0.5}, named)
    stream.seek(0)
    header, back = read_message(stream)
    assert header == {"kind": "x", "loss": 0.5}
    assert list(back) == list(named)
    for name, array in named.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        np.testing.assert_array_equal(back[name], array)
        assert back[name].flags.writeable


def test_objects_never_travel_and_sizes_are_checked_first():
    with pytest.raises(ProtocolError, match="dtype object"):
        write_message(io.BytesIO(), {}, {"x": np.array([object()])})
    stream = io.BytesIO()
    write_message(stream, {}, {"big": np.zeros(1000)})
    stream.seek(0)
    with pytest.raises(OverBudget) as refused:
        read_message(stream, max_bytes=7999)
    assert refused.value.nbytes == 8000
    stream.seek(0)
    with pytest.raises(EOFError):
        read_message(io.BytesIO(stream.getvalue()[:100]))
