"""[tool.gradcheck] configuration: find it, read it, check it against a command's options.

A key of the table is the long name of any option of the command it configures
(`fd-step` or `fd_step` for `--fd-step`). The options are found by introspecting
the command function's signature, so an option added to the command later is
configurable without touching this module. The result maps parameter names to
plain values (str, float, bool, lists) that the CLI hands to its parser as
defaults, so command-line flags still win.
"""

from __future__ import annotations

import difflib
import enum
import inspect
import os
import re
import stat
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, did_you_mean
from ..safety.budget import MAX_CONFIG_BYTES, size_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on the Python 3.10 CI job
    import tomli as tomllib

PYPROJECT = "pyproject.toml"
TABLE = ("tool", "gradcheck")
# Options that make no sense inside a configuration file.
NOT_CONFIGURABLE = frozenset({"config", "help", "debug"})
SUPPORTED_TYPES = (bool, int, float, str, Path, enum.Enum)
# "path/to/file.py:function", the form of --user.
_FILE_FUNC = re.compile(r"^(?P<file>.+\.py):(?P<func>[A-Za-z_][A-Za-z0-9_.]*)$")


@dataclass(frozen=True)
class OptionSpec:
    """One option of a command, as far as configuration needs to know it."""

    name: str  # the Python parameter name, e.g. "as_json"
    flag: str  # the long option, e.g. "--json"
    type: type  # the element type: bool, int, float, str, Path or an Enum subclass
    multiple: bool = False  # a repeatable option (list[...] annotation)


@dataclass(frozen=True)
class Config:
    """A configuration file and its values, keyed by parameter name, ready to be defaults."""

    path: Path
    values: dict[str, Any]


def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.gradcheck] table, in `start` or above it.

    As ruff looks for [tool.ruff]: a pyproject.toml without the table (a sub-package's,
    say) does not end the search. One with a near miss of the table's name is an error.
    """
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / PYPROJECT
        if candidate.is_file() and read_table(candidate) is not None:
            return candidate
    return None


def _misspelt_table(document: dict[str, Any]) -> str | None:
    """The name of a table that looks meant as [tool.gradcheck] ([tool.gradchek],
    [tool.grad-check], [gradcheck]), or None."""
    if isinstance(document.get(TABLE[1]), dict):
        return TABLE[1]
    tools = document.get(TABLE[0])
    for name in tools if isinstance(tools, dict) else ():
        folded = re.sub(r"[-_. ]", "", name.lower())
        close = difflib.SequenceMatcher(None, folded, TABLE[1]).ratio() >= 0.8
        if name != TABLE[1] and (folded == TABLE[1] or close):
            return f"{TABLE[0]}.{name}"
    return None


def read_table(path: Path) -> dict[str, Any] | None:
    """The [tool.gradcheck] table of a TOML file, or None when it has none.

    A file that is not a pyproject.toml (say, gradcheck.toml) may instead hold
    the keys at its top level.
    """
    try:
        _check_config_file(path)
        with path.open("rb") as f:
            document = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a TOML file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read config: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a TOML file (not UTF-8 text)") from None
    except RecursionError:
        raise InputError(f"{path}: invalid TOML: nested too deeply") from None
    table: Any = document
    for key in TABLE:
        table = table.get(key) if isinstance(table, dict) else None
    if table is None and path.name == PYPROJECT:
        misspelt = _misspelt_table(document)
        if misspelt is not None:
            # Silently running on the defaults instead would pass a CI job that checks nothing.
            raise InputError(
                f"{path}: [{misspelt}] looks like a misspelling of [tool.gradcheck], which "
                "gradcheck would not read; rename it"
            )
        return None
    if table is None:
        return document  # gradcheck.toml and the like: the keys at the top level
    if not isinstance(table, dict):
        raise InputError(f"{path}: [tool.gradcheck] must be a table")
    return table


def _check_config_file(path: Path) -> None:
    """A config is a small regular file: /dev/zero or a FIFO would never end, a huge file
    would fill memory."""
    info = os.stat(path)  # FileNotFoundError: said by the caller
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(path)
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: is not a regular file (a device, FIFO or socket)")
    if info.st_size > MAX_CONFIG_BYTES:
        raise InputError(
            f"{path}: is {size_text(info.st_size)}; a configuration file is at most "
            f"{size_text(MAX_CONFIG_BYTES)}"
        )


def _unwrap(annotation: Any) -> tuple[type, bool]:
    """(element type, repeatable) of `float`, `Path | None`, `list[str] | None`, ..."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    if origin in (list, tuple, set):
        (inner, *_) = typing.get_args(annotation) or (str,)
        element, _ = _unwrap(inner)
        return element, True
    if isinstance(annotation, type):
        return annotation, False
    return str, False


def _without_implicit_optional(hint: Any) -> Any:
    """`Annotated[X | None, ...]` where Python 3.10 hands back `Optional[Annotated[...]]`.

    Before 3.11, get_type_hints wraps the hint of a parameter that defaults to None in
    Optional, outside the Annotated, which would hide the typer.Option metadata.
    """
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and typing.get_origin(inner[0]) is typing.Annotated:
            return inner[0]  # its own type already says `| None` where None is allowed
    return hint


def option_specs(command: Callable[..., Any]) -> dict[str, OptionSpec]:
    """The options of a typer command function, keyed by normalised long name (`fd-step`)."""
    hints = typing.get_type_hints(command, include_extras=True)
    specs: dict[str, OptionSpec] = {}
    parameters = inspect.signature(command).parameters
    for name in parameters:
        hint = hints.get(name)
        if hint is None:
            continue
        base: Any = _without_implicit_optional(hint)
        metadata: tuple[Any, ...] = ()
        if typing.get_origin(base) is typing.Annotated:
            base, *rest = typing.get_args(base)
            metadata = tuple(rest)
        element, multiple = _unwrap(base)
        if not issubclass(element, SUPPORTED_TYPES):
            continue  # the typer context and the like: not an option a file can set
        decls = [d for meta in metadata for d in _declarations(meta, annotated=True)]
        decls += _declarations(parameters[name].default, annotated=False)
        longs = [d for d in decls if d.startswith("--")]
        flag = longs[0].split("/")[0] if longs else "--" + name.replace("_", "-")
        key = _normalise(flag[2:])
        if key in NOT_CONFIGURABLE:
            continue
        specs[key] = OptionSpec(name=name, flag=flag, type=element, multiple=multiple)
    return specs


def _declarations(info: object, *, annotated: bool) -> list[str]:
    """The option names a typer.Option(...) declares (duck-typed: the core never imports typer)."""
    decls = [d for d in getattr(info, "param_decls", None) or () if isinstance(d, str)]
    # Inside Annotated, typer.Option("--json") stores its first name as `default`; as a
    # parameter's default, the first argument of typer.Option is the default value.
    first = getattr(info, "default", None)
    if annotated and isinstance(first, str) and first.startswith("-"):
        decls.insert(0, first)
    return decls


def _normalise(key: str) -> str:
    return key.strip().lower().replace("_", "-")


def _type_name(kind: type) -> str:
    if issubclass(kind, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in kind)
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        Path: "a path (string)",
    }.get(kind, "a string")


def _convert(value: Any, spec: OptionSpec, base: Path) -> Any:
    """One TOML value as the plain value the option accepts; ValueError when it does not fit."""
    kind = spec.type
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif issubclass(kind, enum.Enum):
        if isinstance(value, str) and value in {str(m.value) for m in kind}:
            return value
    elif issubclass(kind, Path):
        if isinstance(value, str) and value:
            path = Path(value).expanduser()
            # Paths in a config file are relative to the file, not to wherever gradcheck runs.
            return str(path if path.is_absolute() else base / path)
    elif isinstance(value, str):
        match = _FILE_FUNC.match(value)
        if match and not Path(match["file"]).expanduser().is_absolute():
            # A FILE:FUNC spec (--user) names a file too: relative to the config as well.
            return f"{base / Path(match['file']).expanduser()}:{match['func']}"
        return value
    raise ValueError(_type_name(kind))


def resolve_config(
    table: Mapping[str, Any], specs: Mapping[str, OptionSpec], path: Path
) -> dict[str, Any]:
    """Check every key and value of a [tool.gradcheck] table; return {parameter name: value}."""
    values: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for key, value in table.items():
        spec = specs.get(_normalise(key))
        if spec is None:
            known = ", ".join(sorted(specs))
            hint = did_you_mean(_normalise(key), specs)
            raise InputError(f"{path}: unknown gradcheck option {key!r}{hint}; known: {known}")
        if spec.name in seen:
            raise InputError(f"{path}: {key!r} and {seen[spec.name]!r} set the same option")
        seen[spec.name] = key
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not spec.multiple:
            raise InputError(f"{path}: {key} must be a single value, not a list")
        try:
            converted = [_convert(item, spec, path.parent) for item in items]
        except ValueError as exc:
            raise InputError(
                f"{path}: {key} must be {exc}{' (or a list of them)' if spec.multiple else ''}, "
                f"got {value!r}"
            ) from None
        for item in items:
            _check_inside_project(item, spec, key, path)
        values[spec.name] = converted if spec.multiple else converted[0]
    return values


def _check_inside_project(value: Any, spec: OptionSpec, key: str, config: Path) -> None:
    """A path from a config file must stay in the config's own folder tree (after symbolic
    links): a repository's config must not run code or write files outside the repository."""
    match = _FILE_FUNC.match(value) if isinstance(value, str) else None
    if issubclass(spec.type, Path) and isinstance(value, str):
        named = value
    elif spec.type is str and match is not None:
        named = match["file"]
    else:
        return
    project = config.parent.resolve()
    target = (project / Path(named).expanduser()).resolve()
    if target != project and project not in target.parents:
        raise InputError(
            f"{config}: {key} = {value!r} points outside the project folder {project}; a "
            "configuration file may only name files in its own folder tree (give such a path "
            "on the command line instead)"
        )


def load_config(
    explicit: Path | None, specs: Mapping[str, OptionSpec], cwd: Path | None = None
) -> Config | None:
    """The config of --config FILE, else of the nearest pyproject.toml with the table, or None."""
    path = explicit if explicit is not None else find_config(cwd or Path.cwd())
    if path is None:
        return None
    table = read_table(path)
    if table is None and explicit is not None:
        # Asked for by name: running on the defaults instead would hide the mistake.
        raise InputError(f"{path}: has no [tool.gradcheck] table")
    if table is None:
        return None
    return Config(path=path, values=resolve_config(table, specs, path.resolve()))
