"""What an installed gradcheck carries: one version everywhere, type information, data files."""

from __future__ import annotations

import importlib.metadata
import sys
from importlib import resources
from pathlib import Path

import pytest

import gradcheck_cli

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_the_version_has_one_source():
    try:
        installed = importlib.metadata.version("gradcheck-cli")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("gradcheck-cli is not installed")
    assert installed == gradcheck_cli.__version__
    if PYPROJECT.is_file():  # a checkout or an unpacked sdist: the version is not typed twice
        project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
        assert "version" not in project and "version" in project["dynamic"]


@pytest.mark.parametrize("name", ["py.typed", "data/exercise.npz", "schema/report.schema.json"])
def test_the_package_ships_its_files(name):
    # py.typed: users' type checkers read our annotations instead of treating us as Any.
    assert resources.files("gradcheck_cli").joinpath(name).is_file()
