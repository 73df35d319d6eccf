"""Building submissions for grading tests from the real chapter notebooks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat

from autograder.examples import solution_cells, student_version, with_sources
from autograder.nbgrader_setup import REPO_ROOT, SOLUTIONS

ASSIGNMENT = "04-scaling"


def solution_nb(assignment: str = ASSIGNMENT):
    return nbformat.read(str(SOLUTIONS / assignment / "exercises.ipynb"), as_version=4)


def insert_after_setup(nb, source: str):
    """A copy of ``nb`` with a code cell right after the locked setup cell."""
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def replace_solution(nb, grade_id: str, source: str):
    """A copy of ``nb`` whose solution cell ``grade_id`` holds ``source``."""
    return with_sources(nb, {grade_id: source})


def drop_cells(nb, predicate):
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    nb.cells = [c for c in nb.cells if not predicate(c)]
    return nb


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def run_grader(submissions: Path, out: Path, *extra, timeout: int = 900):
    """Run the CLI as an instructor would; returns the CompletedProcess."""
    cmd = [sys.executable, "-m", "autograder", "grade", str(submissions), "--out", str(out), "--no-progress", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def rows_by(out: Path) -> dict:
    """report.json rows keyed by (student, grade_id)."""
    rows = json.loads((out / "report.json").read_text())["rows"]
    return {(r["student"], r["grade_id"]): r for r in rows}


def total(rows: dict, student: str) -> tuple[float, float]:
    mine = [r for (s, _), r in rows.items() if s == student]
    return sum(r["score"] for r in mine), sum(r["max_score"] for r in mine)


__all__ = ["solution_nb", "student_version", "solution_cells", "insert_after_setup", "replace_solution",
           "drop_cells", "write", "run_grader", "rows_by", "total", "ASSIGNMENT"]
