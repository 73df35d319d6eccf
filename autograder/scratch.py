"""Scratch folders on the host: made for a run, measured while a kernel
writes into them, and removed afterwards whatever a student did to them.

A student's kernel owns its work folder, so the tree in it is hostile: links
to anywhere, FIFOs, folders without permissions, folders nested thousands deep
(deeper than PATH_MAX, made relative to an open folder handle). Everything
here works relative to open folder descriptors, never follows a link, never
recurses in Python (``os.walk`` and ``shutil.rmtree`` raise RecursionError on
such a tree in Python 3.11) and never raises past its caller.

:class:`RunScratch` holds one folder per grading run, under the system's
temporary folder with a short name (a kernel's Unix socket paths live in it).
A small reaper process removes it if the grading process is killed before it
can clean up itself, so nothing is left on the host after any run.
"""
from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: deeper than this a work folder is treated as hostile (see tree_usage).
MAX_DEPTH = 64
#: prefix of every run's scratch folder (tests look for leftovers by it).
SCRATCH_PREFIX = "dropout-grade-"


def _open_dir(name: str, dir_fd: int | None = None) -> int:
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _make_accessible(name: str, dir_fd: int) -> None:
    """Give a folder back rwx for its owner (a student may have set 000)."""
    try:
        os.chmod(name, 0o700, dir_fd=dir_fd)
    except OSError:
        pass


def _clear_entries(fd: int) -> str | None:
    """Remove every non-folder and every empty folder in the open folder ``fd``;
    return the name of one folder that still has content (or None)."""
    with os.scandir(fd) as entries:
        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_dir in names:
        try:
            if not is_dir:
                os.unlink(name, dir_fd=fd)
                continue
            _make_accessible(name, fd)
            os.rmdir(name, dir_fd=fd)
        except FileNotFoundError:
            continue
        except OSError:
            if is_dir:
                return name
    return None


def remove_tree(path) -> bool:
    """Remove ``path`` and everything below it; True when it is gone.

    Iterative and descriptor-relative: one folder is open at a time, the walk
    goes down into a folder that still has content and back up through
    ``..``. Only called once no process can write into the tree any more (the
    sandbox's processes are dead), so ``..`` is the folder we came from."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    try:
        top = _open_dir(parent)
    except OSError:
        return not os.path.lexists(path)
    try:
        try:
            st = os.stat(name, dir_fd=top, follow_symlinks=False)
        except FileNotFoundError:
            return True
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=top)
            return True
        _make_accessible(name, top)
        names = [name]
        cur = _open_dir(name, top)
        while True:
            child = _clear_entries(cur)
            if child is not None:
                nxt = _open_dir(child, cur)
                os.close(cur)
                cur, names = nxt, names + [child]
                continue
            up = os.open("..", _DIR_FLAGS & ~os.O_NOFOLLOW, dir_fd=cur)
            os.close(cur)
            done = names.pop()
            if not names:
                os.close(up)
                os.rmdir(done, dir_fd=top)
                return True
            os.rmdir(done, dir_fd=up)
            cur = up
    except OSError:
        log.warning("could not remove %s completely", path, exc_info=True)
        return not os.path.lexists(path)
    finally:
        os.close(top)


def tree_usage(root, max_entries: int, max_depth: int = MAX_DEPTH) -> tuple[int, int, bool]:
    """(bytes, entries, too_deep) below ``root`` while a kernel may still be
    writing in it: files and folders both count as entries; counting stops
    once ``max_entries`` is passed; a folder nested deeper than ``max_depth``
    sets ``too_deep`` (no notebook needs that; a hostile one hides files there).
    Descriptor-relative (depth is not limited by PATH_MAX) with at most
    ``max_depth`` folders open at once."""
    total = entries = 0
    try:
        stack = [(_open_dir(os.fspath(root)), 0)]
    except OSError:
        return 0, 0, False
    too_deep = False
    try:
        while stack and entries <= max_entries:
            fd, depth = stack.pop()
            try:
                with os.scandir(fd) as it:
                    found = list(it)
                for entry in found:
                    entries += 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if depth + 1 > max_depth:
                                too_deep = True
                                continue
                            stack.append((_open_dir(entry.name, fd), depth + 1))
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
            except OSError:
                pass
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    return total, entries, too_deep


# --------------------------------------------------------------------------- a run's folder

_REAPER = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.stdin.buffer.read()          # returns when the grading process exits, however it ends
sys.path.insert(0, sys.argv[2])
from autograder.scratch import remove_tree
root = sys.argv[1]
for _ in range(50):              # the sandboxes die with their workers within a moment
    if remove_tree(root):
        break
    time.sleep(0.2)
"""


class RunScratch:
    """The host folder of one grading run: ``<tmp>/dropout-grade-XXXX/``, one
    short sub-folder per submission. ``close()`` removes it; if this process is
    killed first, the reaper (a detached child waiting for our end of a pipe
    to close) removes it."""

    def __init__(self, reaper: bool = True):
        self.root = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
        self._count = 0
        self._reaper = None
        if reaper:
            try:
                self._reaper = subprocess.Popen(
                    [sys.executable, "-I", "-c", _REAPER, str(self.root), str(Path(__file__).resolve().parents[1])],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True)
            except OSError:
                log.warning("could not start the scratch reaper; a killed run may leave %s", self.root)

    def new_folder(self) -> Path:
        """A fresh, empty folder for one submission (short name: socket paths)."""
        self._count += 1
        folder = self.root / f"s{self._count}"
        folder.mkdir(mode=0o700)
        return folder

    def close(self) -> None:
        remove_tree(self.root)
        if self._reaper is not None:
            try:
                self._reaper.stdin.close()
                self._reaper.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._reaper = None

    def __enter__(self) -> "RunScratch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
