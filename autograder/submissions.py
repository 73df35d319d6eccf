"""Finding submissions on disk.

Two layouts are accepted:

* nbgrader's: ``ROOT/<student>/<assignment>/<notebook>.ipynb`` (ROOT is the
  ``submitted`` folder or its parent);
* a flat folder of files: ``<student>_<assignment>.ipynb`` or
  ``<student>.ipynb`` (then the assignment comes from ``--assignment`` or,
  failing that, from the notebook's nbgrader grade_ids).

Every file found becomes a :class:`Submission`, even one that is not a
notebook: it is graded as invalid with a report row, never skipped silently.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")
MAX_PEEK_BYTES = 20 * 2**20


@dataclass(frozen=True)
class Submission:
    student: str
    assignment: str
    path: Path

    @property
    def key(self) -> str:
        return f"{self.assignment}/{self.student}"


class DiscoveryError(ValueError):
    """The submissions folder cannot be read at all."""


def _grade_ids(path: Path) -> set:
    """nbgrader grade_ids in a notebook file, or an empty set if unreadable."""
    try:
        if path.stat().st_size > MAX_PEEK_BYTES:
            return set()
        nb = json.loads(path.read_text(encoding="utf-8"))
        return {c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                for c in nb.get("cells", []) if isinstance(c, dict)} - {None}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


def _guess_assignment(path: Path, known: dict) -> str | None:
    """The assignment whose grade_ids the notebook shares most, if any."""
    ids = _grade_ids(path)
    best = max(known, key=lambda a: len(ids & known[a]), default=None)
    return best if best is not None and ids & known[best] else None


def _pick_notebook(folder: Path) -> Path | None:
    preferred = folder / "exercises.ipynb"
    if preferred.is_file():
        return preferred
    notebooks = sorted(folder.glob("*.ipynb"))
    return notebooks[0] if notebooks else None


def discover(root, known: dict, only: str | None = None) -> tuple[list, list]:
    """Submissions under ``root``.

    ``known`` maps assignment ids to their grade_ids (to recognise files);
    ``only`` restricts to one assignment. Returns ``(submissions, problems)``
    where problems are (student, assignment, message) rows for files that
    could not be attributed.
    """
    root = Path(root)
    if not root.is_dir():
        raise DiscoveryError(f"submissions folder not found: {root}")
    if (root / "submitted").is_dir():
        root = root / "submitted"
    subs, problems = [], []
    wanted = [only] if only else sorted(known)
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():  # nbgrader layout: <student>/<assignment>/
            for assignment in wanted:
                folder = entry / assignment
                if folder.is_dir():
                    nb = _pick_notebook(folder)
                    if nb is None:
                        problems.append((entry.name, assignment, "the submission folder holds no .ipynb file"))
                    else:
                        subs.append(Submission(entry.name, assignment, nb))
            continue
        student, assignment = _split_name(entry.name, known)
        if assignment is None:
            # The notebook's own grade_ids win over --assignment: a 05 notebook
            # named alice.ipynb must not be graded as 04.
            assignment = _guess_assignment(entry, known) or only
        if assignment is None:
            problems.append((student, "unknown", f"{entry.name}: cannot tell which assignment this is; "
                             "name it <student>_<assignment>.ipynb or pass --assignment"))
            continue
        if only and assignment != only:
            continue
        subs.append(Submission(student, assignment, entry))
    valid = []
    for sub in subs:
        if _STUDENT_ID.match(sub.student):
            valid.append(sub)
        else:
            problems.append((sub.student[:100], sub.assignment,
                             f"{sub.path.name}: student id {sub.student[:100]!r} has characters the grader does not accept"))
    return _dedupe(valid, problems), problems


def _split_name(filename: str, known: dict) -> tuple[str, str | None]:
    stem = filename[:-len(".ipynb")] if filename.endswith(".ipynb") else filename.rsplit(".", 1)[0] or filename
    for assignment in sorted(known, key=len, reverse=True):
        if stem.endswith("_" + assignment) and len(stem) > len(assignment) + 1:
            return stem[: -len(assignment) - 1], assignment
    return stem, None


def _dedupe(subs: list, problems: list) -> list:
    seen, out = {}, []
    for sub in subs:
        if sub.key in seen:
            problems.append((sub.student, sub.assignment,
                             f"two submissions for the same assignment: {seen[sub.key].name} and {sub.path.name}; "
                             f"graded {seen[sub.key].name}"))
            continue
        seen[sub.key] = sub.path
        out.append(sub)
    return out
