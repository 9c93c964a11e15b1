"""Guarded file access for nascli's own files and for the files trials control.

Two promises, shared by the store (experiment directories) and the trial channel (trial files):

- **Reading a file a trial controls never blocks and never reads without a bound.** The file is
  opened ``O_NONBLOCK | O_NOFOLLOW``; anything but a regular file (a FIFO, a device such as
  ``/dev/zero``, a directory, a symlink) is refused with ``UnsafeFileError``; at most ``limit``
  bytes are read per call.
- **Writing never goes through a symlink, and what nascli creates is private.** Directories are
  made ``0700`` and files ``0600`` (``$NASCLI_UMASK``, an octal umask such as ``027``, widens
  that; the default is ``077``), through ``O_NOFOLLOW`` / ``dir_fd`` so that a link planted where
  a file or directory should be is refused instead of followed.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "UnsafeFileError",
    "private_umask",
    "dir_mode",
    "file_mode",
    "open_regular",
    "read_bounded",
    "read_tail",
    "make_private_dir",
    "open_private",
    "write_private",
    "path_inside",
]

_DEFAULT_UMASK = 0o077


class UnsafeFileError(OSError):
    """A path is a symlink or not a regular file / directory where one was expected."""


def private_umask() -> int:
    """The umask nascli applies to what it creates: ``$NASCLI_UMASK`` (octal) or ``077``."""
    text = os.environ.get("NASCLI_UMASK", "").strip()
    try:
        value = int(text, 8) if text else _DEFAULT_UMASK
    except ValueError:
        return _DEFAULT_UMASK
    return value & 0o777


def dir_mode() -> int:
    return 0o777 & ~private_umask()


def file_mode() -> int:
    return 0o666 & ~private_umask()


def _open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only fd of ``path`` if it is a regular file (not a link); raises
    ``FileNotFoundError`` when it is missing and ``UnsafeFileError`` when it is something else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(errno.ELOOP, "is a symbolic link", str(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFileError(errno.EINVAL, "is not a regular file", str(path))
    return fd


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading as a binary file, refused (``UnsafeFileError``) unless it is
    a regular file; reads never block."""
    return os.fdopen(_open_regular(path), "rb")


def read_bounded(path: str | os.PathLike[str], offset: int = 0, limit: int = 1 << 20) -> bytes:
    """At most ``limit`` bytes of the regular file ``path`` from ``offset``.

    Raises:
        FileNotFoundError: there is no such file.
        UnsafeFileError: it is a symlink, FIFO, device, directory...
    """
    fd = _open_regular(path)
    try:
        return os.pread(fd, limit, offset)
    finally:
        os.close(fd)


def read_tail(path: str | os.PathLike[str], limit: int = 64 << 10) -> bytes:
    """The last ``limit`` bytes (at most) of the regular file ``path``; raises as
    ``read_bounded``."""
    fd = _open_regular(path)
    try:
        size = os.fstat(fd).st_size
        start = max(0, size - limit)
        return os.pread(fd, limit, start)
    finally:
        os.close(fd)


def make_private_dir(path: str | os.PathLike[str], exist_ok: bool = True) -> Path:
    """Make directory ``path`` (mode ``dir_mode()``; its parent must exist). An existing entry
    is accepted only when it is a real directory, not a link to one.

    Raises:
        UnsafeFileError: ``path`` is a symlink or not a directory.
        FileExistsError: it exists and ``exist_ok`` is false.
    """
    path = Path(path)
    try:
        os.mkdir(path, dir_mode())
        return path
    except FileExistsError:
        if not exist_ok:
            raise
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFileError(errno.ELOOP, "is a symbolic link; refusing to write through it",
                              str(path))  # fmt: skip
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeFileError(errno.ENOTDIR, "is not a directory", str(path))
    return path


def open_private(path: str | os.PathLike[str], append: bool = False) -> int:
    """An fd for writing ``path`` (created ``file_mode()``; truncated unless ``append``), never
    through a symlink (``UnsafeFileError``), never a FIFO or device (opened non-blocking and
    checked)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    flags |= os.O_APPEND if append else 0
    try:
        fd = os.open(path, flags, file_mode())
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(errno.ELOOP, "is a symbolic link; refusing to write through it",
                                  str(path)) from None  # fmt: skip
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFileError(errno.EINVAL, "is not a regular file", str(path))
    os.set_blocking(fd, True)
    if not append:
        os.ftruncate(fd, 0)
    return fd


def write_private(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` to ``path`` as ``open_private`` opens it."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = open_private(path)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)


def path_inside(base: str | os.PathLike[str], relative: str) -> Path | None:
    """``base/relative`` resolved (links followed), or None when it lies outside ``base``
    (``relative`` absolute, or climbing out with ``..`` or a link)."""
    root = Path(base).resolve()
    if os.path.isabs(relative):
        return None
    target = (root / relative).resolve()
    return target if target.is_relative_to(root) else None
