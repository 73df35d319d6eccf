"""Example submissions for `make grade`, the end-to-end tests and the bench.

They are generated from solutions/ at run time, so no copy of a solution is
committed anywhere else. Each example student shows one grader behaviour:

* ``ada``: the full solution (full marks);
* ``ben``: the untouched student notebook (zero, "still a stub" messages);
* ``cyd``: half the functions solved (partial credit);
* ``dee``: an attacker: stubs plus monkeypatching and snooping (zero, flagged);
* ``eve``: a corrupt file (an "invalid" row, the class goes on);
* ``kim`` (chapter 04 only): the mistakes the class report should surface,
  ``dropout_forward`` scaled by 1/p and a variance without the 1/(1-p)
  factor, one function left a stub, the others the solution's.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat

from .nbgrader_setup import SOLUTIONS, assignments, generate_assignment

ATTACK_CELL = '''
import numpy as np, os, glob
np.allclose = lambda *a, **k: True          # monkeypatch a comparison
np.testing.assert_allclose = lambda *a, **k: None
for path in glob.glob("/work/**/gradebook.db", recursive=True) + glob.glob("/**/autograder/*.py"):
    try:
        print(open(path, "rb").read(100))   # try to read the hidden side
    except OSError as exc:
        print("blocked:", exc)
'''

#: assignment -> solution cells of ``kim``, a student with typical mistakes
#: (functions not listed keep the solution's cell; ``None`` leaves the stub).
MISTAKES = {
    "04-scaling": {
        "dropout_forward": '''def dropout_forward(x, p, rng, training=True):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    return x * mask / max(p, 1e-12), mask   # scaled by 1/p
''',
        "dropout_moments": '''def dropout_moments(x, p):
    x = np.asarray(x, dtype=np.float64)
    return x.copy(), x**2 * p               # the variance without 1/(1-p)
''',
        "exact_dropout_average": None,
    },
}


def solution_cells(nb) -> dict:
    """grade_id -> source of each code solution cell (not the written answers)."""
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}


def with_sources(student_nb, sources: dict):
    """A copy of the student notebook with some solution cells filled in."""
    nb = nbformat.from_dict(json.loads(nbformat.writes(student_nb)))
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and gid in sources:
            cell.source = sources[gid]
    return nb


def student_version(assignment: str, workdir: Path):
    """The student notebook nbgrader generates for ``assignment``."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    out = generate_assignment(assignment, f"sqlite:///{workdir / 'examples-gradebook.db'}", workdir / assignment)
    return nbformat.read(str(out[0]), as_version=4)


def make_examples(root: Path, chosen: list | None = None) -> Path:
    """Write ``root/submitted/<student>/<assignment>/exercises.ipynb``; returns root."""
    root = Path(root).resolve()  # nbgrader works from a temporary course dir: no relative paths
    scratch = root / ".scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    for assignment in chosen or assignments():
        solution = nbformat.read(str(SOLUTIONS / assignment / "exercises.ipynb"), as_version=4)
        student = student_version(assignment, scratch)
        sources = solution_cells(solution)
        half = dict(list(sources.items())[: max(1, len(sources) // 2)])
        attacked = with_sources(student, {})
        attacked.cells.insert(1, nbformat.v4.new_code_cell(ATTACK_CELL))
        notebooks = {"ada": solution, "ben": student, "cyd": with_sources(student, half), "dee": attacked}
        if assignment in MISTAKES:
            mistaken = {gid: MISTAKES[assignment].get(gid, src) for gid, src in sources.items()}
            notebooks["kim"] = with_sources(student, {g: s for g, s in mistaken.items() if s is not None})
        for name, nb in notebooks.items():
            folder = root / "submitted" / name / assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(folder / "exercises.ipynb"))
        corrupt = root / "submitted" / "eve" / assignment
        corrupt.mkdir(parents=True, exist_ok=True)
        (corrupt / "exercises.ipynb").write_text('{"cells": [ {"cell_type": "code", "source": "unterminated')
    return root


if __name__ == "__main__":
    import sys

    print(make_examples(Path(sys.argv[1] if len(sys.argv) > 1 else "grading/examples")))
