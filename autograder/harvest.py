"""Taking each recording out of the sandbox's reach as its hidden test ends.

The kernel writes ``<grade_id>.json`` and ``.npz`` into ``.recordings/`` in
its work folder. The grader drives execution cell by cell; after every cell it
looks at that folder from the host:

* after the grade cell ``test_F`` (restored from the gradebook, so trusted) it
  copies ``F``'s two files into a host folder the sandbox cannot see, reading
  the bytes as they are at that moment (a handle the kernel kept open cannot
  change the copy), and deletes them from the work folder;
* anything else found there (a file written by an ordinary cell, a second
  recording of ``F`` written later, a recording of another function, a link, a
  FIFO, a replaced folder) is tampering: it is deleted, never scored, and
  reported so the submission is flagged.

So a cell that runs after ``test_F`` cannot change what ``test_F`` recorded.
What runs *inside* ``test_F`` (a patched recorder) can still write anything;
the checks make such a forgery worth nothing unless its outputs are correct.
"""
from __future__ import annotations

import itertools
import logging
import os
import stat
from pathlib import Path

from .recording import MAX_RECORDING_BYTES
from .safe_files import UnsafeFile, read_regular_file

log = logging.getLogger(__name__)


class RecordingHarvester:
    """Moves recordings from ``record_dir`` (kernel-writable) to ``safe_dir``
    (host only) cell by cell, and lists every piece of tampering it saw."""

    def __init__(self, record_dir: Path, safe_dir: Path):
        self.record_dir = Path(record_dir)
        self.safe_dir = Path(safe_dir)
        self.safe_dir.mkdir(parents=True, exist_ok=True)
        self.harvested: set[str] = set()
        self.tampering: list[str] = []
        self._reported: set[str] = set()
        #: grade_id -> why its recording could not be taken (scored as not run).
        self.refused: dict[str, str] = {}

    def after_cell(self, cell_label: str, records: str | None) -> None:
        """Called when a cell has finished. ``records`` is the grade_id the
        cell's hidden test records (None for any other cell)."""
        try:
            self._sweep(cell_label, records)
        except OSError:
            log.warning("could not inspect %s", self.record_dir, exc_info=True)

    def finish(self) -> None:
        """After the kernel is gone: whatever is left was written late."""
        self.after_cell("after the last cell", None)

    def _note(self, what: str) -> None:
        if len(self.tampering) < 20 and what not in self.tampering:
            self.tampering.append(what)

    def _sweep(self, cell_label: str, records: str | None) -> None:
        try:
            st = os.stat(self.record_dir, follow_symlinks=False)
        except FileNotFoundError:
            if records:
                self._note(f"the recordings folder was removed before {cell_label}")
            return
        if not stat.S_ISDIR(st.st_mode):
            self._note(f"the recordings folder was replaced by something else ({cell_label})")
            return
        fd = os.open(self.record_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            with os.scandir(fd) as it:
                names = sorted(e.name for e in itertools.islice(it, 1000))  # bounded, however many files
            taken = set()
            if records and records not in self.harvested:
                taken = {n for n in names if n.startswith(records + ".")}
                if taken:
                    self._take(fd, records, sorted(taken))
            for name in names:
                if name in taken:
                    self._delete(fd, name)
                    continue
                if name not in self._reported:
                    self._reported.add(name)
                    self._note(f"{name!r} was written to the grader's recordings outside its hidden test "
                               f"(found after {cell_label}); it was ignored")
                self._delete(fd, name)
        finally:
            os.close(fd)

    def _take(self, fd: int, grade_id: str, names: list[str]) -> None:
        """Copy the files of ``grade_id``'s recording (``<grade_id>.json``,
        ``.npz``) to the safe folder; the caller deletes them afterwards."""
        self.harvested.add(grade_id)  # one chance: a later copy is tampering
        for name in names[:4]:
            try:
                data = read_regular_file(name, MAX_RECORDING_BYTES, dir_fd=fd)
            except UnsafeFile as exc:
                if exc.kind == "too_large":
                    self.refused[grade_id] = "the recording is larger than the grader accepts"
                else:  # a link or a FIFO where the recorder writes a file
                    self.refused[grade_id] = "the recording was not a regular file"
                    self._note(f"the recording of {grade_id} was replaced: {exc.message}")
                return
            (self.safe_dir / name).write_bytes(data)

    @staticmethod
    def _delete(fd: int, name: str) -> None:
        """Unlink a file (or link, FIFO) in the verified folder ``fd``. A folder
        is left alone: it goes with the work folder once the kernel is dead,
        when nothing can swap a link in under the walk."""
        try:
            os.unlink(name, dir_fd=fd)
        except OSError:
            pass
