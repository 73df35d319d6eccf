"""Execution time of every chapter notebook, the way a student and the grader run it.

For each assignment: the solution notebook in normal mode (budget <= 60 s),
in grading mode (NBGRADER_EXECUTION set: "a few seconds"), and the student
notebook with its stubs. Plain nbclient, no sandbox, kernel start included.

Run: ``.venv/bin/python -m bench.notebooks`` (part of ``make bench``).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from autograder.nbgrader_setup import CHAPTERS, SOLUTIONS, assignments


def run(path: Path, grading: bool) -> float:
    nb = nbformat.read(str(path), as_version=4)
    env_backup = dict(os.environ)
    os.environ.pop("NBGRADER_EXECUTION", None)
    if grading:
        os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        return time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(env_backup)


def main() -> int:
    print(f"{'notebook':44s} {'seconds':>8s}")
    for assignment in assignments():
        for label, path, grading in (("solution, normal", SOLUTIONS / assignment / "exercises.ipynb", False),
                                     ("solution, grading mode", SOLUTIONS / assignment / "exercises.ipynb", True),
                                     ("student stubs, normal", CHAPTERS / assignment / "exercises.ipynb", False)):
            print(f"{assignment + ' ' + label:44s} {run(path, grading):8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
