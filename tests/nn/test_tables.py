"""Every backend family has an entry for every activation and loss (no silent fallback)."""

from __future__ import annotations

import pytest

from gradcheck_cli import nn
from gradcheck_cli.errors import InputError

# The torch backends' tables: without torch there are none to compare.
torch_functional = pytest.importorskip("gradcheck_cli.backends.torch_functional")
torch_sequential = pytest.importorskip("gradcheck_cli.backends.torch_sequential")
lookup = pytest.importorskip("gradcheck_cli.backends._torch_common").lookup


def test_torch_tables_cover_exactly_the_numpy_tables():
    assert list(torch_functional.ACTIVATIONS) == list(nn.ACTIVATIONS)
    assert list(torch_sequential.ACTIVATION_MODULES) == list(nn.ACTIVATIONS)
    assert list(torch_functional.LOSSES) == list(nn.LOSSES)
    assert list(torch_sequential.LOSS_MODULES) == list(nn.LOSSES)


def test_a_torch_table_refuses_an_unknown_name():
    with pytest.raises(InputError, match="unknown activation 'swish'"):
        lookup(torch_functional.ACTIVATIONS, "swish", "activation")
