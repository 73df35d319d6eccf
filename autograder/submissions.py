"""Finding submissions on disk.

Two layouts are accepted:

* nbgrader's: ``ROOT/<student>/<assignment>/<notebook>.ipynb`` (ROOT is the
  ``submitted`` folder or its parent; the folder given is followed if it is a
  link, nothing inside it is);
* a flat folder of files: ``<student>_<assignment>.ipynb`` or
  ``<student>.ipynb`` (then the assignment comes from the notebook's nbgrader
  grade_ids or, failing that, from ``--assignment``).

Names are data. Every entry found (except hidden ones, whose names start
with ``.``, and those of another assignment than ``--assignment``) becomes a
:class:`Submission` or a problem row ``(student, assignment, message)``;
nothing is dropped silently:

* a file that is not a notebook is still a submission, graded as invalid;
* a symbolic link (a file or a student's folder), a FIFO, a device or a
  socket is refused before anything opens it, with a problem row;
* a student id that is not valid UTF-8, holds control or invisible
  characters, or does not start with a letter or digit (``=HYPERLINK(...)``)
  is a problem row telling the lecturer to rename the file;
* two or more files that claim the same student and assignment (``alice.ipynb``
  guessed as 04 and ``alice_04-scaling.ipynb``; two notebooks in one nbgrader
  folder) are all kept and graded, each marked with the others in
  ``conflict``, so the lecturer decides; they get distinct
  :attr:`Submission.slug` values for the journal and output paths.

Every string in a problem row is displayable (:func:`autograder.names.display`).
Only a file whose name does not say its assignment is read (at most
:data:`MAX_PEEK_BYTES`, never following a link), so discovering thousands of
files costs one directory listing.
"""
from __future__ import annotations

import json
import os
import stat
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from .names import display, slug
from .safe_files import UnsafeFile, is_plain_dir, kind_of, read_regular_file

MAX_PEEK_BYTES = 20 * 2**20
MAX_STUDENT_CHARS = 100
MAX_STUDENT_BYTES = 128
#: punctuation a student id may hold after its first character.
STUDENT_PUNCTUATION = "._-@+"
#: the notebook taken from an nbgrader folder when there are several.
PREFERRED_NOTEBOOK = "exercises.ipynb"
RENAME_HINT = ("the grader accepts student ids made of letters, digits and the characters . _ - @ + "
               "(starting with a letter or digit)")


@dataclass(frozen=True)
class Submission:
    """One file to grade. ``relpath`` is its path relative to the submissions
    folder (raw, as the file system gave it; empty means ``path.name``);
    ``conflict`` holds the displayed names of the other files that claim the
    same student and assignment (empty when there are none)."""

    student: str
    assignment: str
    path: Path
    conflict: tuple = ()
    relpath: str = ""

    @property
    def key(self) -> str:
        """assignment/student: the same for every file of a conflict."""
        return f"{self.assignment}/{self.student}"

    @property
    def file(self) -> str:
        """The file's name relative to the submissions folder (raw)."""
        return self.relpath or self.path.name

    @property
    def slug(self) -> str:
        """A file-system-safe id, unique within a class and assignment, for the
        journal and the output paths: the student id itself when no other
        file claims this student and assignment (so paths do not change), else
        ``<student>~<slug of the file name>`` (``~`` never occurs in a student id)."""
        if not self.conflict:
            return self.student
        return f"{self.student}~{slug(self.file)}"


class DiscoveryError(ValueError):
    """The submissions folder cannot be read at all."""


# -- names -------------------------------------------------------------------------


def student_id_problem(student: str) -> str | None:
    """Why ``student`` cannot be a student id, or None when it can."""
    if not student:
        return "is empty"
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in student):
        return "is not valid UTF-8 (the bytes that are not are shown as \\xNN)"
    if any(not ch.isprintable() for ch in student):
        return "holds control or invisible characters"
    if len(student) > MAX_STUDENT_CHARS or len(student.encode("utf-8")) > MAX_STUDENT_BYTES:
        return f"is longer than {MAX_STUDENT_CHARS} characters"
    if not student[0].isalnum():
        return "does not start with a letter or digit"
    for ch in student[1:]:
        if not (ch.isalnum() or ch in STUDENT_PUNCTUATION or unicodedata.category(ch) in ("Mn", "Mc")):
            return "has characters the grader does not accept"
    return None


def _bad_name_message(entry_name: str, student: str, reason: str, what: str = "file") -> str:
    return (f"{display(entry_name)}: the student id \"{display(student)}\" {reason}; {RENAME_HINT}. "
            f"Rename the {what} and grade again.")


def _split_name(filename: str, known: dict) -> tuple[str, str | None]:
    stem = filename[:-len(".ipynb")] if filename.endswith(".ipynb") else filename.rsplit(".", 1)[0] or filename
    for assignment in sorted(known, key=len, reverse=True):
        if stem.endswith("_" + assignment) and len(stem) > len(assignment) + 1:
            return stem[: -len(assignment) - 1], assignment
    return stem, None


# -- reading what a file name does not say -----------------------------------------------


def _grade_ids(path: Path) -> set:
    """nbgrader grade_ids in a notebook file, or an empty set if it cannot be
    read (a link, a special file, too large, not JSON...)."""
    try:
        nb = json.loads(read_regular_file(path, MAX_PEEK_BYTES).decode("utf-8-sig"))
    except (UnsafeFile, ValueError, RecursionError, MemoryError):
        return set()
    cells = nb.get("cells") if isinstance(nb, dict) else None
    ids = set()
    for cell in cells if isinstance(cells, list) else ():
        md = cell.get("metadata") if isinstance(cell, dict) else None
        nbg = md.get("nbgrader") if isinstance(md, dict) else None
        gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
        if isinstance(gid, str):
            ids.add(gid)
    return ids


def _guess_assignment(path: Path, known: dict) -> str | None:
    """The assignment whose grade_ids the notebook shares most, if any."""
    ids = _grade_ids(path)
    best = max(sorted(known), key=lambda a: len(ids & known[a]), default=None)
    return best if best is not None and ids & known[best] else None


# -- discovery ------------------------------------------------------------------------


class _Found:
    """What discovery collects: submissions and problem rows."""

    def __init__(self):
        self.subs: list[Submission] = []
        self.problems: list[tuple] = []
        #: displayed names of files that are not submissions (no .ipynb, no assignment in the name)
        self.ignored: list[str] = []

    def problem(self, student: str, assignment: str, message: str) -> None:
        self.problems.append((display(student), display(assignment), message))


def _entries(folder: Path) -> list:
    """(name, st_mode of the entry itself) of ``folder``, sorted by name, hidden
    entries left out. Links are not followed; d_type avoids a stat per entry."""
    out = []
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_symlink():
                    mode = stat.S_IFLNK
                elif entry.is_dir(follow_symlinks=False):
                    mode = stat.S_IFDIR
                elif entry.is_file(follow_symlinks=False):
                    mode = stat.S_IFREG
                else:
                    mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                mode = 0
            out.append((entry.name, mode))
    return sorted(out)


def _refusal(name: str, mode: int, root: Path) -> str:
    """Why a non-regular entry is refused (the grader never opens it)."""
    shown = display(name)
    if stat.S_ISLNK(mode):
        points_to_dir = os.path.isdir(root / name)  # stat only: nothing is opened
        what = "the student's folder" if points_to_dir else "the notebook file"
        return f"{shown} is a symbolic link; the grader does not follow links: submit {what} itself"
    if mode == 0:
        return f"{shown} could not be examined (it vanished or is not accessible)"
    return f"{shown} is not a regular file but {kind_of(mode)}; submit the notebook file itself"


def discover(root, known: dict, only: str | None = None, ignored: list | None = None) -> tuple[list, list]:
    """Submissions under ``root``.

    ``known`` maps assignment ids to their grade_ids (to recognise files);
    ``only`` restricts to one assignment. Returns ``(submissions, problems)``
    where problems are (student, assignment, message) rows, every string
    displayable, for entries that cannot be graded. Submissions come sorted by
    (student, assignment, file); those in a conflict carry ``conflict``.
    Files that are not notebooks and whose names name no assignment
    (``README.txt``) are not students: their displayed names are appended to
    ``ignored``. Raises DiscoveryError when nothing at all was found or the
    folder is one level too deep, saying which layout is expected.
    """
    root = Path(root)
    if not root.is_dir():
        raise DiscoveryError(f"submissions folder not found: {display(str(root), 500)}")
    if is_plain_dir(root / "submitted"):  # a link named "submitted" is refused like any other link
        root = root / "submitted"
    try:
        entries = _entries(root)
    except OSError as exc:
        raise DiscoveryError(f"cannot read the submissions folder {display(str(root), 500)}: "
                             f"{exc.strerror or exc}") from None
    _refuse_wrong_level(root, entries, known)
    found = _Found()
    wanted = [only] if only else sorted(known)
    for name, mode in entries:
        if stat.S_ISDIR(mode):
            _student_folder(root, name, known, wanted, only, found)
        else:
            _flat_entry(root, name, mode, known, only, found)
    if not found.subs and not found.problems:
        raise DiscoveryError(
            f"no submissions found in {display(str(root), 500)}"
            + (f" (only {', '.join(found.ignored[:5])}, which are not notebooks)" if found.ignored else "")
            + f". {EXPECTED_LAYOUT}")
    if ignored is not None:
        ignored.extend(found.ignored)
    return _mark_conflicts(found.subs), found.problems


EXPECTED_LAYOUT = ("Expected nbgrader's layout SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb (SUBMISSIONS "
                   "may be the 'submitted' folder or its parent) or a flat folder of <student>_<assignment>.ipynb "
                   "or <student>.ipynb files.")


def _refuse_wrong_level(root: Path, entries: list, known: dict) -> None:
    """A folder one level too deep (one student's folder, or one assignment's
    folder) would otherwise be read as students named after assignments."""
    dirs = [n for n, m in entries if stat.S_ISDIR(m)]
    if dirs and all(n in known for n in dirs):
        raise DiscoveryError(
            f"{display(str(root), 500)} holds assignment folders ({', '.join(sorted(dirs)[:3])}), so it looks like "
            f"ONE student's folder; point at the folder that holds the student folders. {EXPECTED_LAYOUT}")


def _flat_entry(root: Path, name: str, mode: int, known: dict, only: str | None, found: _Found) -> None:
    """``<student>_<assignment>.ipynb`` or ``<student>.ipynb`` (or a link or special file so named)."""
    student, assignment = _split_name(name, known)
    regular = stat.S_ISREG(mode)
    if assignment is None and regular and not name.endswith(".ipynb"):
        found.ignored.append(display(name))  # README.txt, grades.csv: not a student
        return
    if only and assignment is not None and assignment != only:
        return  # the file's name says another assignment: --assignment filters it out
    if assignment is None and regular:
        # The notebook's own grade_ids say which assignment it is; with
        # --assignment another one, it is kept so that grading reports it as
        # the wrong assignment instead of dropping it.
        assignment = _guess_assignment(root / name, known)
    assignment = only or assignment
    if not regular:
        if stat.S_ISLNK(mode) and os.path.isdir(root / name):
            student = name  # a linked student folder: the folder's name is the student
        found.problem(student, assignment or "unknown", _refusal(name, mode, root))
        return
    if assignment is None:
        found.problem(student, "unknown", f"{display(name)}: cannot tell which assignment this is; "
                      "name it <student>_<assignment>.ipynb or pass --assignment")
        return
    bad = student_id_problem(student)
    if bad:
        found.problem(student, assignment, _bad_name_message(name, student, bad))
        return
    found.subs.append(Submission(unicodedata.normalize("NFC", student), assignment, root / name, relpath=name))


def _student_folder(root: Path, student: str, known: dict, wanted: list, only: str | None,
                    found: _Found) -> None:
    """nbgrader layout: ``<student>/<assignment>/<notebook>.ipynb``."""
    folder = root / student
    try:
        children = dict(_entries(folder))
    except OSError as exc:
        found.problem(student, only or "unknown",
                      f"{display(student)}/ could not be read: {display(exc.strerror or exc)}")
        return
    if not any(a in children for a in known):
        found.problem(student, only or "unknown",
                      f"{display(student)}/ is a folder without an assignment folder; expected "
                      f"{display(student)}/<assignment>/<notebook>.ipynb with <assignment> one of "
                      f"{', '.join(sorted(known))}")
        return
    bad = student_id_problem(student)
    for assignment in wanted:
        if assignment not in children:
            continue
        mode = children[assignment]
        where = f"{student}/{assignment}"
        if bad:
            found.problem(student, assignment, _bad_name_message(where, student, bad, "folder"))
        elif not stat.S_ISDIR(mode):
            found.problem(student, assignment, _refusal(where, mode, root))
        else:
            _assignment_folder(root, student, assignment, found)


def _assignment_folder(root: Path, student: str, assignment: str, found: _Found) -> None:
    folder = root / student / assignment
    try:
        children = _entries(folder)
    except OSError as exc:
        found.problem(student, assignment, f"{display(student)}/{display(assignment)}/ could not be read: "
                      f"{display(exc.strerror or exc)}")
        return
    modes = dict(children)
    if PREFERRED_NOTEBOOK in modes:
        notebooks = [(PREFERRED_NOTEBOOK, modes[PREFERRED_NOTEBOOK])]
    else:
        notebooks = [(n, m) for n, m in children if n.endswith(".ipynb")]
    if not notebooks:
        found.problem(student, assignment, "the submission folder holds no .ipynb file")
        return
    student_id = unicodedata.normalize("NFC", student)
    for name, mode in notebooks:
        rel = f"{student}/{assignment}/{name}"
        if stat.S_ISREG(mode):
            found.subs.append(Submission(student_id, assignment, folder / name, relpath=rel))
        else:
            found.problem(student, assignment, _refusal(rel, mode, root))


def _mark_conflicts(subs: list) -> list:
    """Keep every file; mark those that claim the same (student, assignment)."""
    groups = defaultdict(list)
    for sub in subs:
        groups[(sub.student, sub.assignment)].append(sub)
    out = []
    for sub in subs:
        group = groups[(sub.student, sub.assignment)]
        if len(group) > 1:
            sub = replace(sub, conflict=tuple(display(o.file) for o in group if o is not sub))
        out.append(sub)
    return sorted(out, key=lambda s: (s.student, s.assignment, s.file))
