"""Reading grading runs: ``report.json`` and the nbgrader gradebook of each.

A *run* is an output folder of ``python -m autograder grade`` (its
``report.json``, and its gradebook at ``RUN/gradebook.db`` unless a URL is
given). Several runs (one per week, say) are read in the order given; when two
runs hold the same (student, assignment), the later run's files replace the
earlier ones (listed in :attr:`ClassData.replaced`).

Everything read here was written by the grader, but names and messages in it
came from students: they are kept as the grader displayed them (printable,
no escape codes) and are escaped again wherever they are shown.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..names import display
from .errors import InsightsError

#: the submission status of a notebook that ran to its end; anything else
#: (invalid, wrong_assignment, timeout, kernel_died, error, grader_error) could not be graded.
GRADED_STATUS = "ok"


@dataclass
class Check:
    """One sub-check of a graded function, as report.json lists it."""

    name: str
    passed: bool
    central: bool
    gated: bool  # withheld because a central check failed: a consequence, not a mistake of its own
    message: str


@dataclass
class FunctionResult:
    """One graded function of one submission: points, status and sub-checks."""

    grade_id: str
    score: float
    max_score: float
    status: str  # full | partial | zero | not_run | not_graded
    messages: list
    checks: list  # of Check; empty in report.json files written before sub-checks were listed


@dataclass
class GradebookEntry:
    """What the nbgrader gradebook holds for one submission: its total
    (automatic scores plus any manual score an instructor gave), the
    assignment's points possible, and whether written answers still await a grade."""

    score: float
    max_score: float
    needs_manual_grade: bool


@dataclass
class Submission:
    """One submitted file of one student for one assignment."""

    student: str
    assignment: str
    file: str
    status: str
    score: float  # automatic points
    max_score: float  # automatic points possible
    written_points: float  # points of written answers that only an instructor can give
    messages: list
    flags: list
    conflict: list  # other files claiming the same student and assignment
    seconds: float | None  # grading time in its worker; None when not recorded
    functions: list  # of FunctionResult
    run: int  # index into ClassData.runs
    gradebook: GradebookEntry | None = None

    @property
    def graded(self) -> bool:
        """The notebook ran to its end and no other file claims the same student and assignment."""
        return self.status == GRADED_STATUS and not self.conflict


@dataclass
class RunInfo:
    """One grading run that was read."""

    folder: Path
    gradebook: str  # the URL read, or "" when the run has no gradebook entries to read
    wall_seconds: float | None  # the run's wall-clock time, when report.json recorded it
    jobs: int | None
    submissions: int


@dataclass
class ClassData:
    """Every submission of every run (later runs replacing earlier ones),
    with per-assignment points: ``auto_points`` (what the grader scores) and
    ``points_possible`` (the gradebook's total, written answers included)."""

    submissions: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    auto_points: dict = field(default_factory=dict)
    points_possible: dict = field(default_factory=dict)
    replaced: list = field(default_factory=list)  # (student, assignment, earlier folder, later folder)

    @property
    def assignments(self) -> list:
        return sorted({s.assignment for s in self.submissions})


# -- report.json -------------------------------------------------------------------

def _number(value, what: str, where: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InsightsError(f"{where}: {what} is not a number ({display(repr(value), 60)}); "
                            "is this a report.json written by `python -m autograder grade`?")
    return float(value)


def _text(value) -> str:
    return display("" if value is None else value, None, multiline=True)


def _texts(value) -> list:
    return [_text(v) for v in value] if isinstance(value, list) else []


def _non_negative(value) -> float | None:
    """A finite number >= 0 (seconds, points), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def read_report(path: Path) -> dict:
    """report.json as a dict with a ``rows`` list; InsightsError otherwise."""
    if not path.is_file():
        raise InsightsError(f"no report.json in {path.parent}: grade first "
                            "(python -m autograder grade SUBMISSIONS --out FOLDER), or point at a grading folder")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InsightsError(f"{path} could not be read as JSON ({type(exc).__name__}): "
                            "grade again to rewrite it") from None
    if not isinstance(report, dict) or not isinstance(report.get("rows"), list) \
            or not all(isinstance(r, dict) for r in report["rows"]):
        raise InsightsError(f"{path} has no list of result rows: is it a report.json written by "
                            "`python -m autograder grade`?")
    return report


def _function(row: dict, where: Path) -> FunctionResult:
    checks = [Check(_text(c.get("name")), bool(c.get("passed")), bool(c.get("central")), bool(c.get("gated")),
                    _text(c.get("message"))) for c in row.get("checks") or [] if isinstance(c, dict)]
    return FunctionResult(_text(row.get("grade_id")), _number(row.get("score"), "a score", where),
                          _number(row.get("max_score"), "a max_score", where), _text(row.get("status")),
                          _texts(row.get("messages")), checks)


def submissions_of(report: dict, where: Path, run: int) -> list:
    """The report's submissions, each with its functions; from the
    ``submissions`` list when there is one, else from the rows alone (a
    report.json written before that list existed: no grading times)."""
    functions: dict = {}
    first_row: dict = {}
    for row in report["rows"]:
        key = (_text(row.get("student")), _text(row.get("assignment")), _text(row.get("file")))
        functions.setdefault(key, []).append(_function(row, where))
        first_row.setdefault(key, row)
    listed = report.get("submissions")
    subs = []
    if isinstance(listed, list) and all(isinstance(s, dict) for s in listed):
        for entry in listed:
            key = (_text(entry.get("student")), _text(entry.get("assignment")), _text(entry.get("file")))
            fns = functions.pop(key, [])
            subs.append(Submission(
                student=key[0], assignment=key[1], file=key[2], status=_text(entry.get("status")),
                score=_number(entry.get("score"), "a score", where),
                max_score=_number(entry.get("max_score"), "a max_score", where),
                written_points=_non_negative(entry.get("written_points")) or 0.0,
                messages=_texts(entry.get("messages")), flags=_texts(entry.get("flags")),
                conflict=_texts(entry.get("conflict")), seconds=_non_negative(entry.get("seconds")),
                functions=fns, run=run))
    for key, fns in functions.items():  # rows without a submission entry
        row = first_row[key]
        subs.append(Submission(
            student=key[0], assignment=key[1], file=key[2], status=_text(row.get("submission_status")),
            score=round(sum(f.score for f in fns), 2), max_score=round(sum(f.max_score for f in fns), 2),
            written_points=0.0, messages=[], flags=_texts(row.get("flags")), conflict=_texts(row.get("conflict")),
            seconds=None, functions=fns, run=run))
    return subs


# -- the gradebook -------------------------------------------------------------------

def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL, None for any other database."""
    prefix = "sqlite:///"
    return Path(url[len(prefix):]) if url.startswith(prefix) else None


def read_gradebook(url: str, assignments: list) -> tuple[dict, dict]:
    """(``{(student, assignment): GradebookEntry}``, ``{assignment: points possible}``)
    for ``assignments``, students' ids displayed as report.json shows them."""
    path = sqlite_path(url)
    if path is not None:
        if not path.is_file():
            raise InsightsError(f"no gradebook at {path}: give the --db URL the grading run used")
        if path.stat().st_size == 0:
            raise InsightsError(f"the gradebook {path} is empty: grade again, or give the --db URL the grading run used")
    from nbgrader.api import Gradebook, MissingEntry

    from ..nbgrader_setup import speed_up_gradebook

    speed_up_gradebook()
    entries, points = {}, {}
    try:
        with Gradebook(url) as gb:
            for assignment in assignments:
                try:
                    points[assignment] = float(gb.find_assignment(assignment).max_score)
                except MissingEntry:
                    continue
                for sub in gb.assignment_submissions(assignment):
                    entries[(display(sub.student_id), assignment)] = GradebookEntry(
                        float(sub.score), float(sub.max_score), bool(sub.needs_manual_grade))
    except InsightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - any database problem is one line for the lecturer
        raise InsightsError(f"the gradebook {display(url, 300)} could not be read: "
                            f"{type(exc).__name__}: {display(str(exc), 300)}") from None
    return entries, points


# -- several runs ----------------------------------------------------------------------

def load_runs(folders: list, db_url: str | None = None) -> ClassData:
    """Read every run in ``folders`` (order matters: later replaces earlier).
    ``db_url`` is the gradebook of every run (one shared database); without
    it each run's own ``RUN/gradebook.db`` is read."""
    data = ClassData()
    by_key: dict = {}
    for index, folder in enumerate(folders):
        folder = Path(folder)
        if not folder.is_dir():
            raise InsightsError(f"{folder} is not a folder: give the --out folder of a grading run")
        report = read_report(folder / "report.json")
        subs = submissions_of(report, folder / "report.json", index)
        run_facts = report.get("run") if isinstance(report.get("run"), dict) else {}
        jobs = run_facts.get("jobs")
        url = db_url or f"sqlite:///{(folder / 'gradebook.db').resolve()}"
        expected = [s for s in subs if s.graded]
        entries, points = read_gradebook(url, sorted({s.assignment for s in subs})) if expected else ({}, {})
        if expected and not any((s.student, s.assignment) in entries for s in expected):
            raise InsightsError(f"the gradebook {display(url, 300)} holds none of the {len(expected)} graded "
                                f"submissions in {folder / 'report.json'}: give the --db URL the grading run used")
        for sub in subs:
            sub.gradebook = None if sub.conflict else entries.get((sub.student, sub.assignment))
        for assignment, value in points.items():
            data.points_possible[assignment] = value
        data.runs.append(RunInfo(folder, url if expected else "", _non_negative(run_facts.get("seconds")),
                                 jobs if isinstance(jobs, int) and not isinstance(jobs, bool) else None, len(subs)))
        for key in sorted({(s.student, s.assignment) for s in subs}):
            if key in by_key:
                earlier = data.runs[by_key[key][0].run].folder
                data.replaced.append((key[0], key[1], str(earlier), str(folder)))
            by_key[key] = [s for s in subs if (s.student, s.assignment) == key]
    data.submissions = sorted((s for group in by_key.values() for s in group),
                              key=lambda s: (s.assignment, s.student, s.file))
    for assignment in data.assignments:
        mine = [s for s in data.submissions if s.assignment == assignment]
        graded = [s for s in mine if s.status == GRADED_STATUS] or mine
        data.auto_points[assignment] = max(s.max_score for s in graded)
        data.points_possible.setdefault(assignment, max(s.max_score + s.written_points for s in graded))
    return data
