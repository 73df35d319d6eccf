"""Writing scores into the nbgrader gradebook (trusted process only).

Only the grader's parent process writes, one submission at a time, so
SQLite needs no locking across workers; any SQLAlchemy URL nbgrader accepts
(PostgreSQL for several graders) works the same. Writes are idempotent:
regrading a student updates their rows instead of adding new ones.
"""
from __future__ import annotations

import warnings

from nbgrader.api import Gradebook, MissingEntry

from .nbgrader_setup import speed_up_gradebook

NOTEBOOK_ID = "exercises"


def grade_cells(db_url: str, assignment: str, notebook: str = NOTEBOOK_ID) -> dict:
    """Code grade cell name -> max score, as recorded by generate_assignment:
    the cells the grader scores."""
    return _cells_of_type(db_url, assignment, notebook, "code")


def written_cells(db_url: str, assignment: str, notebook: str = NOTEBOOK_ID) -> dict:
    """Markdown grade cell name -> max score: written answers, which only an
    instructor can grade (nbgrader's "manually graded answer" cells)."""
    return _cells_of_type(db_url, assignment, notebook, "markdown")


def _cells_of_type(db_url: str, assignment: str, notebook: str, cell_type: str) -> dict:
    speed_up_gradebook()
    with Gradebook(db_url) as gb:
        nb = gb.find_notebook(notebook, assignment)
        return {cell.name: float(cell.max_score) for cell in nb.grade_cells if cell.cell_type == cell_type}


def open_gradebook(db_url: str) -> Gradebook:
    """One connection for a whole run: nbgrader checks its schema (running the
    alembic tool) every time a Gradebook is opened, about half a second."""
    speed_up_gradebook()
    return Gradebook(db_url)


def save_scores(gb: Gradebook, assignment: str, student: str, scores: dict,
                notebook: str = NOTEBOOK_ID, written: tuple = ()) -> None:
    """Store ``scores`` (grade cell name -> auto score) for one submission and
    mark the ``written`` answer cells as needing a manual grade (unless an
    instructor has already given one)."""
    gb.update_or_create_student(student)
    try:
        gb.find_submission(assignment, student)
    except MissingEntry:
        with warnings.catch_warnings():
            # nbgrader 0.9.6 builds the submission's children before adding it to
            # the session; SQLAlchemy 2 warns "not in session" during autoflush,
            # yet the rows are written correctly (the e2e tests read them back).
            warnings.filterwarnings("ignore", message=r".*not in session.*")
            gb.add_submission(assignment, student)
    for cell_name, score in scores.items():
        grade = gb.find_grade(cell_name, notebook, assignment, student)
        grade.auto_score = float(score)
        # A manual score an instructor gave earlier stays, flagged for review.
        grade.needs_manual_grade = grade.manual_score is not None
    for cell_name in written:
        grade = gb.find_grade(cell_name, notebook, assignment, student)
        grade.needs_manual_grade = grade.manual_score is None
    gb.db.commit()


def gradebook_totals(db_url: str, assignment: str, student: str) -> tuple[float, float]:
    """(score, max_score) nbgrader itself computes for a submission."""
    with Gradebook(db_url) as gb:
        sub = gb.find_submission(assignment, student)
        return float(sub.score), float(sub.max_score)
