"""Output files of `run` (--junit, --summary): checked before the run, written atomically.

Before any gradient is computed, each output path must be a regular file or absent, in an
existing directory, not an input of the run (--junit d.npz would replace the data), and
writable: its temporary file is created then. After the run, a --junit file is written to that
temporary file and renamed over the path (a symbolic link there is replaced, never followed
into the file it points at); a --summary is appended, as GitHub expects, through a descriptor
opened before the run that refuses symbolic links. A write that fails is one line on stderr
and a non-zero exit; the report on stdout is printed regardless.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass
class Artifact:
    """One output file, prepared: a temporary file to rename, or a descriptor to append to."""

    flag: str
    path: Path
    append: bool
    temp: str | None = None
    fd: int | None = None
    mode: int = 0o644
    done: bool = field(default=False)

    def write(self, text: str) -> str | None:
        """Write `text`; the one-line reason when that failed, else None."""
        data = text.encode("utf-8")
        try:
            if self.fd is not None:
                _write_all(self.fd, data)
                os.close(self.fd)
                self.fd = None
            else:
                assert self.temp is not None
                with open(self.temp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(self.temp, self.mode)
                os.replace(self.temp, self.path)
                self.temp = None
        except OSError as exc:
            self.discard()
            return f"{self.flag} {self.path}: cannot write: {exc.strerror or exc}"
        self.done = True
        return None

    def discard(self) -> None:
        """Remove the temporary file and close the descriptor (the run stopped, or failed)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if self.temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.temp)
            self.temp = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _same_file(path: Path, inputs: Iterable[Path]) -> Path | None:
    """The input that `path` is (the same path, or the same file through a link), if any."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return None
    for candidate in inputs:
        try:
            if candidate.resolve() == resolved or (
                path.exists() and candidate.exists() and os.path.samefile(path, candidate)
            ):
                return candidate
        except (OSError, RuntimeError):
            continue
    return None


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def prepare(flag: str, path: Path, *, append: bool, inputs: Iterable[Path]) -> Artifact:
    """Check that `path` can take this output and reserve it; InputError (exit 2) if not."""
    if str(path) in ("", "."):
        raise InputError(f"{flag} needs a file name, got {str(path)!r}")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{flag} {path}: directory {parent} does not exist")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot be used ({exc.strerror or exc})") from None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{flag} {path}: is a directory, expected a file name")
        if stat.S_ISLNK(info.st_mode) and append:
            raise InputError(
                f"{flag} {path}: is a symbolic link; gradcheck appends only to a plain file"
            )
        if not stat.S_ISLNK(info.st_mode) and not stat.S_ISREG(info.st_mode):
            raise InputError(
                f"{flag} {path}: is not a regular file (a device, FIFO or socket); give a file name"
            )
    same = _same_file(path, inputs)
    if same is not None:
        raise InputError(f"{flag} {path}: is an input of this run ({same}); refusing to replace it")
    artifact = Artifact(flag, path, append)
    try:
        if append and info is not None:
            artifact.fd = os.open(path, os.O_WRONLY | os.O_APPEND | _NOFOLLOW)
            if not stat.S_ISREG(os.fstat(artifact.fd).st_mode):
                artifact.discard()
                raise InputError(f"{flag} {path}: is not a regular file")
        else:
            fd, artifact.temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
            os.close(fd)
            artifact.mode = (
                stat.S_IMODE(info.st_mode)
                if info is not None and stat.S_ISREG(info.st_mode)
                else _umask_mode()
            )
    except OSError as exc:
        artifact.discard()
        raise InputError(f"{flag} {path}: cannot write: {exc.strerror or exc}") from None
    return artifact


def prepare_all(
    outputs: Iterable[tuple[str, Path | None, bool]], inputs: Iterable[Path]
) -> list[Artifact]:
    """Prepare every given output (flag, path, append); two outputs may not share a file."""
    inputs = list(inputs)
    given = [(flag, path, append) for flag, path, append in outputs if path is not None]
    resolved = [p.resolve() for _, p, _ in given]
    if len(set(resolved)) < len(resolved):
        raise InputError(f"{resolved[0]}: --junit and --summary must be different files")
    prepared: list[Artifact] = []
    try:
        for flag, path, append in given:
            prepared.append(prepare(flag, path, append=append, inputs=inputs))
    except BaseException:
        for artifact in prepared:
            artifact.discard()
        raise
    return prepared
