"""The text form of an architecture (`--layers`), written as `print(model)` shows it.

Layers are separated by commas or newlines; each is written as its torch module is
constructed or printed, e.g.

    Conv2d(1, 4, 3, padding=1), ReLU, MaxPool2d(2), Flatten, Linear(64, 10)

and the whole output of `print(model)` for an `nn.Sequential` is accepted as it is:

    Sequential(
      (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
      (1): ReLU()
      ...
    )

A layer is named by its `(name):` prefix, else by its position (0, 1, ...), as in an
`nn.Sequential`: its parameters are `<name>.weight` and `<name>.bias`. Arguments are Python
literals, read with `ast.literal_eval` (nothing is executed).
"""

from __future__ import annotations

import ast
import re
from typing import Any

from ..errors import InputError
from ..nn.layer_spec import Layer
from ..nn.layers import make_layer

LAYERS_ARGUMENT = "layers"
_NAMED = re.compile(r"^\((?P<name>[^()\s]+)\):\s*(?P<call>.*)$", re.DOTALL)
_WRAPPER = re.compile(r"^Sequential\s*\((?P<inner>.*)\)$", re.DOTALL)
_SHOWN = 120  # characters of a layer's text quoted in a message


def _error(message: str) -> InputError:
    return InputError(f"layers: {message}", arguments=(LAYERS_ARGUMENT,))


def _shown(text: str) -> str:
    """`text` quoted for a message, clipped (a layer's text may be megabytes long)."""
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")


def split_items(text: str) -> list[str]:
    """The layer items of `text`: split at commas and newlines outside brackets."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    quote: str | None = None
    for char in text:
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                raise _error(f"unbalanced ')' in {_shown(text.strip())}")
        elif char in ",\n" and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    if depth != 0 or quote is not None:
        raise _error(f"unbalanced brackets or quotes in {_shown(text.strip())}")
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _callee(node: ast.expr, item: str) -> str:
    """`Conv2d` of `Conv2d`, `nn.Conv2d` or `torch.nn.Conv2d`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    raise _error(f"{_shown(item)} is not a layer such as Linear(64, 10)")


def _literal(node: ast.expr, item: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, RecursionError):
        # Its own text, not ast.unparse: that recurses, and the tree may be thousands deep.
        source = ast.get_source_segment(item, node) or "an argument"
        raise _error(
            f"{_shown(item)}: {_shown(source)} is not a literal value (numbers, True/False, "
            "strings, tuples)"
        ) from None


def _syntax_tree(item: str) -> ast.expr:
    """The expression of `item`; anything that is not one (not Python, nested thousands
    deep) is an InputError."""
    try:
        tree = ast.parse(item, mode="eval").body
    except (SyntaxError, ValueError):
        raise _error(f"{_shown(item)} is not a layer such as Linear(64, 10)") from None
    except (RecursionError, MemoryError):  # the parser's own limits on nesting
        raise _error(f"{_shown(item)} is nested too deeply to be a layer") from None
    return tree


def parse_item(item: str, name: str) -> Layer:
    """One layer from its text, e.g. `Conv2d(1, 4, 3, padding=1)` or `ReLU`."""
    tree = _syntax_tree(item)
    kind = _callee(tree.func if isinstance(tree, ast.Call) else tree, item)
    if kind == "Sequential":
        raise _error(
            "a Sequential inside the architecture: write its layers in line, or give the "
            "model itself (--model)"
        )
    if isinstance(tree, ast.Call):
        args = [_literal(a, item) for a in tree.args]
        if any(k.arg is None for k in tree.keywords):
            raise _error(f"{_shown(item)}: ** arguments are not supported")
        kwargs = {str(k.arg): _literal(k.value, item) for k in tree.keywords}
    else:
        args, kwargs = [], {}
    try:
        return make_layer(kind, *args, name=name, **kwargs)
    except InputError as exc:
        raise _error(f"layer {name}: {exc}") from None


def parse_layers(text: str) -> list[Layer]:
    """The layers of an architecture's text (see the module's docstring)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: bytes of a command line not UTF-8
        raise _error(
            f"not valid text: {text[exc.start]!r} at position {exc.start} (not UTF-8)"
        ) from None
    body = text.strip()
    wrapped = _WRAPPER.match(body)
    if wrapped:
        body = wrapped["inner"]
    items = split_items(body)
    if not items:
        raise _error("no layers given")
    layers, names = [], set()
    for position, item in enumerate(items):
        named = _NAMED.match(item)
        name, call = (named["name"], named["call"].strip()) if named else (str(position), item)
        if name in names:
            raise _error(f"two layers named {name!r}")
        names.add(name)
        layers.append(parse_item(call, name))
    return layers
