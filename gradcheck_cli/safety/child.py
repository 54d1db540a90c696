"""The child process that runs a user's code: a --user function or a --utils file.

Started by `safety.process`, either forked from the fork server (`zygote`, a Python that has
imported NumPy and nothing of the user's) or as a script (`python child.py`). Either way it
imports only the standard library, NumPy and its two siblings (`wire`, `values`), never the
gradcheck package. It talks to its parent over its original stdin and stdout, which it keeps as
private descriptors; file descriptors 1 and 2 (and anything the user's code or its subprocesses
print) go to the capture file the parent gave as stderr. What the user's code returns is turned
into plain arrays here, in the child.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


def _load_sibling(name: str) -> types.ModuleType:
    """A module of this folder, loaded by path under a private name (no package import)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_gradcheck_safety_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


if __package__:
    from . import values, wire
else:  # run as a script: there is no package to import from
    values = _load_sibling("values")
    wire = _load_sibling("wire")

Arrays = dict[str, Any]


# --- running the user's file


def _load(path: Path, name: str) -> types.ModuleType:
    """Execute the user's file as a module; what it raises propagates."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))  # any suffix, not only .py
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling inside the file look themselves up here
    loader.exec_module(module)
    return module


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # the user replaced or closed it: nothing left to flush
            pass


def serve_function(init: dict[str, Any], reply: Callable[..., None], requests: IO[bytes]) -> None:
    """Import the user's file, say whether the function is there, then answer calls."""
    path, name = Path(init["path"]), str(init["function"])
    try:
        module = _load(path, f"_gradcheck_user_{path.stem}")
    except BaseException as exc:  # the user's code raising is a finding, whatever it raises
        _flush()
        reply(
            {
                "kind": "import_error",
                "message": f"importing {path.name} raised {values.exception_line(exc)}",
                "traceback": values.user_frames_only(exc, path),
            }
        )
        return
    _flush()
    fn = getattr(module, name, None)
    if fn is None:
        reply({"kind": "no_function"})
        return
    if not callable(fn):
        reply({"kind": "not_callable"})
        return
    reply({"kind": "ready", "parameters": values.signature_of(fn)})
    while True:
        try:
            header, arrays = wire.read_message(requests)
        except EOFError:
            return
        args = [_argument(item, arrays) for item in header["args"]]
        try:
            result = fn(*args)
            if header["form"] == "params":
                loss, named = values.named_gradients_of(result)
            else:
                loss, DW, DB = values.gradients_of(result, header["form"], int(header["depth"]))
        except values.Unusable as exc:
            _flush()
            reply({"kind": "invalid", "message": str(exc)})
            continue
        except BaseException as exc:  # SystemExit, KeyboardInterrupt and their kin included
            _flush()
            reply(
                {
                    "kind": "raised",
                    "message": values.exception_line(exc),
                    "traceback": values.user_frames_only(exc, path),
                }
            )
            continue
        _flush()
        if header["form"] == "params":
            keys = list(named)
            out = {f"G{i}": named[k] for i, k in enumerate(keys)}
            reply({"kind": "gradients", "loss": loss, "names": keys}, out)
            continue
        out = {f"DW{i}": a for i, a in enumerate(DW)}
        out.update({f"DB{i}": a for i, a in enumerate(DB or ())})
        reply({"kind": "gradients", "loss": loss, "has_db": DB is not None}, out)


def _argument(item: Any, arrays: dict[str, Any]) -> Any:
    """One call argument from its layout: an array's name, a list of names, or a dict
    {"names": [...], "keys": [...]} (the params form's parameters by name)."""
    if isinstance(item, list):
        return [arrays[n] for n in item]
    if isinstance(item, dict):
        return {key: arrays[n] for key, n in zip(item["keys"], item["names"])}
    return arrays[item]


def _call_pair(module: types.ModuleType, function: str, names: tuple[str, str], path: Path) -> Any:
    expected = f"{function}() -> ({', '.join(names)})"
    func = getattr(module, function, None)
    if not callable(func):
        raise values.Unusable(
            f"utils file {path}: defines no function {function}(); expected {expected}"
        )
    try:
        result = func()
    except BaseException as exc:
        raise values.Unusable(
            f"utils file {path}: {function}() raised {values.describe_at(exc, path)}"
        ) from None
    if not isinstance(result, (tuple, list)):
        raise values.Unusable(
            f"utils file {path}: {function}() returned one {type(result).__name__}; "
            f"expected a pair ({', '.join(names)})"
        )
    if len(result) != 2:
        raise values.Unusable(
            f"utils file {path}: {function}() returned {len(result)} values; "
            f"expected 2: ({', '.join(names)})"
        )
    return result[0], result[1]


def _as_list(value: object, name: str, path: Path) -> list[object]:
    """W or B as a list of per-layer arrays (a 1-D object array of arrays is accepted too)."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 1:
        return list(value)
    if not isinstance(value, (list, tuple)):
        raise values.Unusable(
            f"utils file {path}: getparams() returned {name} as a {type(value).__name__}; "
            f"expected a list of arrays [{name}0, {name}1, ...]"
        )
    return list(value)


def _utils_arrays(path: Path, source: str) -> tuple[dict[str, Any], Arrays]:
    try:
        module = _load(path, f"gradcheck_utils_{path.stem}")
    except SyntaxError as exc:
        # A binary file (e.g. an .npz given as --utils) is a SyntaxError without a line.
        where = f"line {exc.lineno}: " if exc.lineno is not None else ""
        message = f"{where}{values.one_line(exc.msg)} (not valid Python)"
        raise values.Unusable(f"utils file {path}: {message}") from None
    except UnicodeDecodeError:
        raise values.Unusable(
            f"utils file {path}: not a Python source file (not UTF-8 text)"
        ) from None
    except BaseException as exc:  # the user's code failed while being run
        raise values.Unusable(
            f"utils file {path}: raised {values.describe_at(exc, path)} while being run"
        ) from None
    X, T = _call_pair(module, "getdata", ("X", "T"), path)
    W, B = _call_pair(module, "getparams", ("W", "B"), path)
    weights, biases = _as_list(W, "W", path), _as_list(B, "B", path)
    arrays = {"X": values.plain_array("X", X, source), "T": values.plain_array("T", T, source)}
    arrays.update({f"W{i}": values.plain_array(f"W{i}", w, source) for i, w in enumerate(weights)})
    arrays.update({f"B{i}": values.plain_array(f"B{i}", b, source) for i, b in enumerate(biases)})
    return {"kind": "utils", "weights": len(weights), "biases": len(biases)}, arrays


def serve_utils(init: dict[str, Any], reply: Callable[..., None]) -> None:
    """Run a utils file and send back getdata()'s (X, T) and getparams()'s (W, B) as arrays."""
    try:
        header, arrays = _utils_arrays(Path(init["path"]), str(init["source"]))
    except values.Unusable as exc:
        _flush()
        reply({"kind": "input_error", "message": str(exc)})
        return
    except BaseException as exc:  # e.g. a user object whose __len__ raises
        _flush()
        message = f"utils file {init['path']}: {values.exception_line(exc)}"
        reply({"kind": "input_error", "message": message})
        return
    _flush()
    reply(header, arrays)


def _plain(value: Any) -> Any:
    """A module attribute as JSON can carry it (tuples as lists), or None if it cannot."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, (bool, int, float)) for v in value):
        return list(value)
    return None


_MAX_WHOLE = 2**63  # an option beyond it is no size (and JSON could not even write some)


def _children(model: Any) -> list[tuple[str, Any]]:
    """A Sequential's children in order, a module that appears twice both times (torch's
    named_children() gives it once, which would drop the second ReLU of `a, a`)."""
    modules = getattr(model, "_modules", None)
    if isinstance(modules, dict):
        return [(str(k), v) for k, v in modules.items() if v is not None]
    return list(model.named_children())


_HOOKS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks")


def _hooks(module: Any) -> list[str]:
    """The kinds of hook registered on a module (a forward hook may change its output, which
    the NumPy and functional backends, computing the plain layers, cannot reproduce)."""
    return [h.strip("_").replace("_", " ")[:-1] for h in _HOOKS if getattr(module, h, None)]


def _refuse_hooks(module: Any, where: str) -> None:
    hooks = _hooks(module)
    if hooks:
        raise values.Unusable(
            f"{where} has a {' and a '.join(hooks)}, which the check cannot reproduce; "
            f"remove {'it' if len(hooks) == 1 else 'them'} (the plain layers are what is checked)"
        )


def _describe(
    model: Any, prefix: str, names: list[str], out: list[dict[str, Any]], seen: dict[int, str]
) -> None:
    """Every leaf module of an nn.Sequential (nested ones in line): its class name, its
    name and the attributes of these names. A module with parameters that appears twice
    (shared weights) is Unusable: each layer is checked with its own parameters."""
    for name, module in _children(model):
        full = f"{prefix}{name}"
        _refuse_hooks(module, f"module {full}")
        if id(module) in seen and any(True for _ in module.parameters()):
            raise values.Unusable(
                f"module {full} is module {seen[id(module)]} again (shared weights); give "
                "each layer its own module"
            )
        seen.setdefault(id(module), full)
        if type(module).__name__ == "Sequential" and hasattr(module, "named_children"):
            _describe(module, f"{full}.", names, out, seen)
            continue
        attributes = {}
        for attribute in names:
            if hasattr(module, attribute):
                value = getattr(module, attribute)
                if attribute == "bias" and not isinstance(value, bool):
                    value = value is not None  # a Parameter, or None without a bias
                plain = _plain(value)
                numbers = plain if isinstance(plain, list) else [plain]
                if any(isinstance(v, int) and abs(v) >= _MAX_WHOLE for v in numbers):
                    raise values.Unusable(
                        f"module {full}: {attribute} is a whole number too large for any size "
                        "(at least 2**63)"
                    )
                if plain is not None:
                    attributes[attribute] = plain
        out.append({"kind": type(module).__name__, "name": full, "attributes": attributes})


def serve_model(init: dict[str, Any], reply: Callable[..., None]) -> None:
    """Run a --model file's function and send back its nn.Sequential as plain data: each
    module's class, name and option attributes, and the parameters as arrays."""
    path, function = Path(init["path"]), str(init["function"])
    try:
        module = _load(path, f"gradcheck_model_{path.stem}")
        make = getattr(module, function, None)
        if not callable(make):
            raise values.Unusable(f"model file {path}: defines no function {function}()")
        model = make()
        if type(model).__name__ != "Sequential" or not hasattr(model, "named_children"):
            raise values.Unusable(
                f"model file {path}: {function}() returned a {type(model).__name__}; expected "
                "a torch nn.Sequential (its layers are checked in order)"
            )
        layers: list[dict[str, Any]] = []
        try:
            _refuse_hooks(model, "the nn.Sequential")
            _describe(model, "", [str(n) for n in init["attributes"]], layers, {})
        except values.Unusable as exc:
            raise values.Unusable(f"model file {path}: {function}(): {exc}") from None
        params = {}
        for name, tensor in model.named_parameters():
            if tensor.is_complex():
                raise values.Unusable(
                    f"model file {path}: {name} is complex ({tensor.dtype}); expected real numbers"
                )
            params[name] = tensor.detach().cpu().double().numpy().copy()
    except values.Unusable as exc:
        _flush()
        reply({"kind": "input_error", "message": str(exc)})
        return
    except SyntaxError as exc:
        where = f"line {exc.lineno}: " if exc.lineno is not None else ""
        _flush()
        message = f"model file {path}: {where}{values.one_line(exc.msg)} (not valid Python)"
        reply({"kind": "input_error", "message": message})
        return
    except BaseException as exc:  # the user's code failed
        _flush()
        reply(
            {
                "kind": "input_error",
                "message": f"model file {path}: raised {values.describe_at(exc, path)}",
            }
        )
        return
    _flush()
    names = list(params)
    reply(
        {"kind": "model", "layers": layers, "names": names},
        {f"P{i}": params[n] for i, n in enumerate(names)},
    )


def _watch_gradcheck(requests: int) -> None:
    """Exit when gradcheck is gone (killed): a hung user function must not outlive it. Its end
    of the request pipe closes then (poll says POLLHUP); elsewhere, watch the parent's pid."""
    import select

    if hasattr(select, "poll"):
        watch = select.poll()
        watch.register(requests, 0)  # no events asked: only hang-up and errors are reported
        while not watch.poll():
            pass
        os._exit(70)
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(70)


def main() -> None:
    """Keep the protocol's pipes private, point fds 0/1 away from them, then serve one task."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # the user's prints, and their subprocesses', go to the capture file
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)
    threading.Thread(target=_watch_gradcheck, args=(requests.fileno(),), daemon=True).start()
    lock = threading.Lock()

    def reply(header: dict[str, Any], arrays: Arrays | None = None) -> None:
        """Send one message to gradcheck (a user's thread may be printing meanwhile)."""
        with lock:
            wire.write_message(replies, header, arrays)

    try:
        init, _ = wire.read_message(requests)
    except EOFError:
        os._exit(0)
    if "cwd" in init:  # gradcheck's, now (a forked child has the fork server's)
        os.chdir(init["cwd"])
        os.environ.clear()
        os.environ.update(init["env"])
    # The user's folder first on sys.path, as when the file is run from there.
    sys.path.insert(0, str(Path(init["path"]).resolve().parent))
    try:
        if init["task"] == "function":
            serve_function(init, reply, requests)
        elif init["task"] == "model":
            serve_model(init, reply)
        else:
            serve_utils(init, reply)
    except (BrokenPipeError, EOFError):
        pass
    _flush()
    # Without waiting for the user's threads or atexit handlers: the parent has its answer.
    os._exit(0)


def _report_exits(server: Any) -> None:
    """Tell gradcheck 'E <pid> <exit code>' for every child that has ended (and reap it)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        server.sendall(f"E {pid} {os.waitstatus_to_exitcode(status)}\n".encode())


def zygote() -> None:
    """The fork server: NumPy imported, no user code ever run; forks one child per request.

    A request is one byte with three descriptors (the child's stdin, stdout and stderr) on the
    Unix socket that is this process's stdin; the answer is 'P <pid>'. It ends when gradcheck
    closes the socket.
    """
    import select
    import socket

    server = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    while True:
        readable, _, _ = select.select([server], [], [], 0.05)
        _report_exits(server)
        if not readable:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(server, 16, 3)
        except OSError:
            os._exit(0)
        if not message:
            os._exit(0)  # gradcheck has ended
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            server.sendall(b"P -1\n")
            continue
        pid = os.fork()
        if pid == 0:
            server.close()
            os.setsid()  # its own process group, which gradcheck kills as a whole
            for target, fd in zip((0, 1, 2), fds):
                os.dup2(fd, target)
            for fd in fds:
                os.close(fd)
            np.random.seed()  # its own random state, as a new process would have
            main()
        for fd in fds:
            os.close(fd)
        server.sendall(f"P {pid}\n".encode())


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if sys.argv[1:] == ["--zygote"]:
        zygote()
    else:
        main()
