"""Grades as Canvas and Moodle import them, mapped through an optional roster.

Scores come from the nbgrader gradebook (automatic points plus any manual
grade an instructor gave in formgrader), out of the gradebook's points
possible (written answers included). A submission the gradebook does not
hold (conflicting files, a file the grader could not attribute) is left
blank and listed. Every text cell (names, ids, files) goes through
:func:`autograder.names.csv_safe` (no formulas); files are UTF-8.

**Canvas** (``canvas_grades.csv``). Instructure's guide "How do I import
grades in the Gradebook?" (community.canvaslms.com, Instructor Guide, ta-p/807),
as summarised by Ohio State's "Import CSV File for Carmen Grades"
(teaching.resources.osu.edu) and Materia's issue ucfopen/Materia#1071, lists
the columns Student (name), ID (Canvas user id), SIS User ID and SIS Login ID
(when the institution has an SIS), Section, then one column per assignment,
an existing one matched by name (or "Name (id)") and a new one created
otherwise. PrairieLearn's maintainers tested the import (PrairieLearn#4547):
Student, SIS Login ID and Section suffice, and a column whose header equals an
assignment's name maps to it without the id. Canvas's own export, the layout
its import reads back, names students "Last, First" and holds the points
possible in its second row, "Points Possible" in the Student column
(nemogb-r's "Detailed Canvas Export Info"; unc-csxl/csxl.unc.edu#624).
So: ``Student, ID, SIS User ID, SIS Login ID, Section, <assignment>...``, a
"Points Possible" row, then one row per student. ID is the roster's
``lms_user_id``; SIS Login ID is the roster's ``sis_login_id``, else the
student id the submissions use (nbgrader ids are usually the login).

**Moodle** (``moodle_grades.csv``). MoodleDocs "Grade import"
(docs.moodle.org/311/en/Grade_import): a CSV import maps one column to the
user ("Map from" a column, "Map to" email address, ID number, ...) and each
other column to a grade item (an existing one or a new one). Moodle's importer
(moodle/moodle ``grade/import/csv/classes/load_data.php``,
``map_user_data_with_value``) identifies users by ``userid``,
``useridnumber``, ``useremail`` or ``username``; a user it cannot find aborts
the whole import (``check_user_exists`` -> ``cleanup_import``); a grade of
``-`` or an empty cell means "no grade" (``update_grade_item``); grades above
100 are refused unless the site allows unlimited grades
(``insert_grade_record``). So: ``Email address`` (when the roster has emails)
and ``Username`` (the roster's ``username``, else the student id), then one
column per assignment in points; a missing entry is ``-``; and no student the
roster does not list is ever written, since one unknown user would abort the
import.

**Roster mapping.** Without a roster every student with a submission gets a
row. With one, rows follow the roster: a roster student without a
submission gets an explicit missing entry (blank in Canvas, ``-`` in Moodle,
or 0 in both with ``missing="zero"``); a submission whose student is not in
the roster is never dropped: it goes to ``lms_unrostered.csv`` (and the
report), not into the import files.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..names import csv_safe
from ..safe_files import write_atomic
from .roster import Roster, RosterEntry
from .sources import ClassData

CANVAS_FILE, MOODLE_FILE, UNROSTERED_FILE = "canvas_grades.csv", "moodle_grades.csv", "lms_unrostered.csv"
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "Points Possible"
MOODLE_MISSING = "-"
MISSING_CHOICES = ("blank", "zero")


def _points(value: float) -> str:
    return f"{round(float(value), 2):g}"


def _csv(rows: list) -> str:
    """CSV text of ``rows`` (text cells already passed through :func:`_text`)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def _text(values: list) -> list:
    """Names, ids and files as formula-safe cells (grades are ours: numbers, "-" or empty)."""
    return [csv_safe(v) for v in values]


def grade_table(data: ClassData) -> tuple[dict, list]:
    """(``{(student, assignment): score}`` of every submission the gradebook
    holds, ``[{"student", "assignment", "why"}]`` of those left blank)."""
    scores, blank = {}, []
    pairs: dict = {}
    for sub in data.submissions:
        pairs.setdefault((sub.student, sub.assignment), []).append(sub)
    for (student, assignment), subs in sorted(pairs.items()):
        if len(subs) > 1 or subs[0].conflict:
            blank.append({"student": student, "assignment": assignment,
                          "why": "conflicting files: keep one and grade again"})
        elif subs[0].gradebook is None:
            blank.append({"student": student, "assignment": assignment,
                          "why": f"not in the gradebook (status {subs[0].status})"})
        else:
            scores[(student, assignment)] = subs[0].gradebook.score
    return scores, blank


def _people(data: ClassData, roster: Roster | None) -> list:
    """The rows of the import files: roster entries, or one per submitting student."""
    if roster is not None:
        return list(roster.entries)
    return [RosterEntry(student_id=s) for s in sorted({sub.student for sub in data.submissions})]


def _cell(scores: dict, blank_pairs: set, student: str, assignment: str, missing: str, missing_mark: str):
    if (student, assignment) in scores:
        return _points(scores[(student, assignment)])
    if (student, assignment) in blank_pairs:
        return ""  # listed in the report: a decision for the lecturer, not a missing submission
    return "0" if missing == "zero" else missing_mark


def canvas_csv(data: ClassData, roster: Roster | None, scores: dict, blank_pairs: set, missing: str) -> str:
    """The Canvas gradebook import file (see the module docstring)."""
    assignments = data.assignments
    has = roster.columns if roster is not None else set()
    rows = [CANVAS_COLUMNS + _text(assignments),
            [POINTS_POSSIBLE, "", "", "", ""] + [_points(data.points_possible[a]) for a in assignments]]
    for person in _people(data, roster):
        login = person.sis_login_id if "sis_login_id" in has else person.student_id
        rows.append(_text([person.sortable_name, person.lms_user_id, person.sis_user_id, login, person.section])
                    + [_cell(scores, blank_pairs, person.student_id, a, missing, "") for a in assignments])
    return _csv(rows)


def moodle_csv(data: ClassData, roster: Roster | None, scores: dict, blank_pairs: set, missing: str) -> str:
    """The Moodle grade import file (see the module docstring)."""
    assignments = data.assignments
    with_email = roster is not None and "email" in roster.columns
    has_username = roster is not None and "username" in roster.columns
    rows = [(["Email address"] if with_email else []) + ["Username"] + _text(assignments)]
    for person in _people(data, roster):
        username = person.username if has_username and person.username else person.student_id
        rows.append(_text(([person.email] if with_email else []) + [username])
                    + [_cell(scores, blank_pairs, person.student_id, a, missing, MOODLE_MISSING) for a in assignments])
    return _csv(rows)


def unrostered_csv(data: ClassData, roster: Roster, scores: dict) -> tuple[str, int]:
    """Submissions whose student the roster does not list: (CSV text, how many)."""
    rostered = set(roster.ids())
    rows = [["student_id", "assignment", "score", "points_possible", "status", "file"]]
    for sub in data.submissions:
        if sub.student not in rostered:
            score = scores.get((sub.student, sub.assignment))
            rows.append(_text([sub.student, sub.assignment]) + ["" if score is None else _points(score),
                         _points(data.points_possible[sub.assignment])] + _text([sub.status, sub.file]))
    return _csv(rows), len(rows) - 1


def write_exports(data: ClassData, roster: Roster | None, out: Path, missing: str = "blank") -> dict:
    """Write the import files into ``out``; returns what the report says about them:
    ``files`` (name -> what it is), ``points_possible``, ``pending_written``
    (submissions whose written answers still await a grade), ``not_exported``."""
    if missing not in MISSING_CHOICES:
        raise ValueError(f"missing must be one of {MISSING_CHOICES}, got {missing!r}")
    out = Path(out)
    scores, blank = grade_table(data)
    blank_pairs = {(b["student"], b["assignment"]) for b in blank}
    write_atomic(out / CANVAS_FILE, canvas_csv(data, roster, scores, blank_pairs, missing))
    write_atomic(out / MOODLE_FILE, moodle_csv(data, roster, scores, blank_pairs, missing))
    who = "the roster's students" if roster is not None else "every student with a submission"
    files = {CANVAS_FILE: f"Canvas gradebook import: {who}, points possible in the second row",
             MOODLE_FILE: f"Moodle grade import: {who}; map the "
                          f"{'Email address or Username' if roster is not None and 'email' in roster.columns else 'Username'}"
                          " column to the user"}
    if roster is not None:
        text, n = unrostered_csv(data, roster, scores)
        write_atomic(out / UNROSTERED_FILE, text)
        files[UNROSTERED_FILE] = f"{n} submission{'s' if n != 1 else ''} of students not in the roster"
    else:
        (out / UNROSTERED_FILE).unlink(missing_ok=True)  # a roster from an earlier call no longer applies
    pending = sum(1 for s in data.submissions if s.gradebook is not None and s.gradebook.needs_manual_grade)
    return {"files": files, "missing_as": missing,
            "points_possible": {a: data.points_possible[a] for a in data.assignments},
            "pending_written": pending, "not_exported": blank}
