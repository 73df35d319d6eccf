"""Reading student-controlled files without following links or blocking.

A collection made with git or tar keeps symbolic links (one to ``/dev/zero``
reads forever) and may hold FIFOs (opening one for reading waits for a
writer) or device nodes. :func:`read_regular_file` refuses all of them before
reading a byte: the name is looked at with ``lstat`` first, then opened with
``O_NOFOLLOW | O_NONBLOCK`` (so a file swapped for a link or a FIFO in between
is refused too, without blocking) and checked again with ``fstat``; at most
``max_bytes + 1`` bytes are read. Every refusal is an :class:`UnsafeFile` with
a message a lecturer can act on.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .names import display

_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
_CHUNK = 1 << 20


class UnsafeFile(Exception):
    """A file the grader will not read. ``kind`` is one of ``"link"``,
    ``"special"``, ``"directory"``, ``"too_large"``, ``"missing"``,
    ``"unreadable"``; ``size`` is the file's size when known; ``target`` is a
    link's target (as ``os.readlink`` gives it) for ``"link"``."""

    def __init__(self, message: str, kind: str = "unreadable", size: int | None = None,
                 target: str | bytes | None = None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.size = size
        self.target = target


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ("a FIFO", "a folder"...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _name(path) -> str:
    return display(os.path.basename(os.fsdecode(path)) or os.fsdecode(path))


def link_message(path) -> str:
    return f"{_name(path)} is a symbolic link; submit the notebook file itself"


def special_message(path, mode: int) -> str:
    return f"{_name(path)} is not a regular file but {kind_of(mode)}; submit the notebook file itself"


def size_message(path, size: int, max_bytes: int) -> str:
    return (f"{_name(path)} is {size / 2**20:.1f} MB; the limit is {_mb(max_bytes)} MB. Clear the outputs "
            "(Kernel > Restart & Clear Output) and submit again.")


def _mb(n: int) -> str:
    return f"{n / 2**20:g}"


def _link_target(path, dir_fd: int | None):
    try:
        return os.readlink(path, dir_fd=dir_fd)
    except OSError:
        return None


def _refuse_mode(path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = None
        raise UnsafeFile(link_message(path), "link", target=target)
    if stat.S_ISDIR(mode):
        raise UnsafeFile(f"{_name(path)} is a folder, not a notebook file", "directory")
    raise UnsafeFile(special_message(path, mode), "special")


def _os_error(path, exc: OSError) -> UnsafeFile:
    if exc.errno == errno.ENOENT:
        return UnsafeFile(f"{_name(path)} does not exist (any more)", "missing")
    reason = exc.strerror or type(exc).__name__
    return UnsafeFile(f"{_name(path)} could not be read: {reason}", "unreadable")


def read_regular_file(path, max_bytes: int, dir_fd: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``.

    Never follows a symbolic link in the last component, never opens a FIFO,
    device or socket knowingly and never blocks on one swapped in (the open is
    non-blocking and ``fstat`` is checked before any read), never reads more
    than ``max_bytes + 1`` bytes. Raises :class:`UnsafeFile` otherwise.
    ``dir_fd``: ``path`` is a name relative to that open folder.
    """
    try:
        st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        raise _os_error(path, exc) from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeFile(link_message(path), "link", target=_link_target(path, dir_fd))
    _refuse_mode(path, st.st_mode)
    if st.st_size > max_bytes:
        raise UnsafeFile(size_message(path, st.st_size, max_bytes), "too_large", size=st.st_size)
    try:
        fd = os.open(path, _OPEN_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):  # swapped for a link after the lstat
            raise UnsafeFile(link_message(path), "link") from None
        if exc.errno == errno.ENXIO:  # a socket (or a device without its driver)
            raise UnsafeFile(f"{_name(path)} is not a regular file; submit the notebook file itself",
                             "special") from None
        raise _os_error(path, exc) from None
    try:
        st = os.fstat(fd)
        _refuse_mode(path, st.st_mode)
        chunks, total = [], 0
        while total <= max_bytes:
            block = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
    except OSError as exc:
        raise _os_error(path, exc) from None
    finally:
        os.close(fd)
    if total > max_bytes:  # grew after the size check
        size = max(total, st.st_size)
        raise UnsafeFile(size_message(path, size, max_bytes), "too_large", size=size)
    return b"".join(chunks)


def lstat_mode(path) -> int | None:
    """``st_mode`` of ``path`` itself (links not followed), None if it cannot be seen."""
    try:
        return os.lstat(path).st_mode
    except OSError:
        return None


def is_plain_dir(path) -> bool:
    """True when ``path`` is a real folder: not a symbolic link to one."""
    mode = lstat_mode(path)
    return mode is not None and stat.S_ISDIR(mode)


def is_plain_file(path) -> bool:
    """True when ``path`` is a regular file: not a link, FIFO, device or socket."""
    mode = lstat_mode(path)
    return mode is not None and stat.S_ISREG(mode)


def write_atomic(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename:
    a reader (or a run killed midway) sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
