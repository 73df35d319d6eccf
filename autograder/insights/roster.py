"""The optional class roster: who should have submitted, and how the LMS knows them.

A roster is a UTF-8 CSV file with a header row. It is nbgrader's own student
file (``nbgrader db student import``: ``id`` required, ``first_name``,
``last_name``, ``email``, ``lms_user_id`` optional) with four optional columns
for the LMSs: ``sis_user_id``, ``sis_login_id``, ``section`` (Canvas) and
``username`` (Moodle). ``student_id`` may stand for ``id``, ``name`` or
``student`` for a full name; headers are matched ignoring case, spaces and
hyphens; other columns are ignored. ``id`` is the id the submissions use (the
folder name in nbgrader's ``submitted/<id>/``).

Any problem (no ``id`` column, an empty or repeated id, a row longer than the
header, bytes that are not UTF-8) is an :class:`InsightsError` naming the line.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..names import display
from .errors import InsightsError

#: canonical column -> header spellings accepted (after lower-casing, spaces and hyphens -> "_").
COLUMNS = {
    "id": ("id", "student_id"),
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "name": ("name", "student", "full_name"),
    "email": ("email", "email_address"),
    "lms_user_id": ("lms_user_id",),
    "sis_user_id": ("sis_user_id",),
    "sis_login_id": ("sis_login_id",),
    "section": ("section",),
    "username": ("username",),
}
MAX_ROSTER_BYTES = 10 * 2**20


@dataclass
class RosterEntry:
    """One student of the roster; empty strings where the roster says nothing."""

    student_id: str
    first_name: str = ""
    last_name: str = ""
    name: str = ""
    email: str = ""
    lms_user_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    username: str = ""

    @property
    def sortable_name(self) -> str:
        """"Last, First" as Canvas shows students, else the full name, else the id."""
        if self.last_name and self.first_name:
            return f"{self.last_name}, {self.first_name}"
        return self.name or self.last_name or self.first_name or self.student_id


@dataclass
class Roster:
    """The roster's students in file order, and which columns it has."""

    entries: list = field(default_factory=list)
    columns: set = field(default_factory=set)

    def ids(self) -> list:
        return [e.student_id for e in self.entries]


def _canonical(header: str) -> str | None:
    key = header.strip().lower().replace(" ", "_").replace("-", "_")
    for canonical, spellings in COLUMNS.items():
        if key in spellings:
            return canonical
    return None


def read_roster(path: Path) -> Roster:
    """Parse ``path``; raises InsightsError with the file and line on any problem."""
    path = Path(path)
    where = display(str(path), 300)
    try:
        if path.stat().st_size > MAX_ROSTER_BYTES:
            raise InsightsError(f"roster {where} is larger than {MAX_ROSTER_BYTES // 2**20} MB")
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InsightsError(f"roster {where} not found") from None
    except UnicodeDecodeError as exc:
        raise InsightsError(f"roster {where} is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8") from None
    except OSError as exc:
        raise InsightsError(f"roster {where} could not be read: {exc.strerror}") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InsightsError(f"roster {where} is not a CSV file: {exc}") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InsightsError(f"roster {where} is empty: it needs a header row with an 'id' column")
    header = [_canonical(h) for h in rows[0]]
    if "id" not in header:
        shown = ", ".join(display(h, 40) for h in rows[0][:8])
        raise InsightsError(f"roster {where} has no 'id' column (the student ids of the submissions); "
                            f"its header is: {shown}")
    roster = Roster(columns={c for c in header if c})
    seen: dict = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) > len(header):
            raise InsightsError(f"roster {where} line {line} has {len(row)} cells but the header has "
                                f"{len(header)} (a comma inside an unquoted name?)")
        values = {}
        for column, cell in zip(header, row):
            if column and column not in values:
                values[column] = cell.strip()
        student_id = values.pop("id", "")
        if not student_id:
            raise InsightsError(f"roster {where} line {line} has no id")
        if student_id in seen:
            raise InsightsError(f"roster {where} line {line} repeats id {display(student_id, 60)} "
                                f"(first on line {seen[student_id]})")
        seen[student_id] = line
        roster.entries.append(RosterEntry(student_id=display(student_id), **values))
    if not roster.entries:
        raise InsightsError(f"roster {where} has a header but no students")
    return roster
