"""Bad input never stops the class: each broken submission gets rows that say
what happened and the points it honestly earned; the others grade normally."""
import nbformat
import pytest

from tests.grading_helpers import (ASSIGNMENT, drop_cells, insert_after_setup, replace_solution, rows_by,
                                   run_grader, solution_cells, solution_nb, write)

pytestmark = pytest.mark.slow

FIRST = "dropout_moments"  # the function each defect is planted in: no other exercise calls it


def _test_cell(cell):
    return cell.metadata.get("nbgrader", {}).get("grade")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    subs = root / "subs"
    sol = solution_nb()
    sources = solution_cells(sol)
    (subs).mkdir()
    (subs / f"corrupt_{ASSIGNMENT}.ipynb").write_text('{"cells": [')
    (subs / f"empty_{ASSIGNMENT}.ipynb").write_text("")
    (subs / f"notanotebook_{ASSIGNMENT}.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (subs / f"textfile_{ASSIGNMENT}.txt").write_text("I did it all in my head")
    (subs / f"wrongformat_{ASSIGNMENT}.ipynb").write_text('{"nbformat": 99, "nbformat_minor": 0, "cells": []}')
    write(drop_cells(sol, _test_cell), subs / f"deletedtests_{ASSIGNMENT}.ipynb")
    edited = nbformat.from_dict(sol)
    for cell in edited.cells:
        if _test_cell(cell):
            cell.source = "pass  # I removed the checks"
    write(edited, subs / f"editedtests_{ASSIGNMENT}.ipynb")
    write(replace_solution(sol, FIRST, sources[FIRST].replace(f"def {FIRST}(", "def my_dropout(")),
          subs / f"renamed_{ASSIGNMENT}.ipynb")
    write(replace_solution(sol, FIRST, "def dropout_moments(x, p)\n    return x, x"),
          subs / f"syntax_{ASSIGNMENT}.ipynb")
    write(replace_solution(sol, FIRST, "def dropout_moments(x, p):\n    while True:\n        pass"),
          subs / f"loop_{ASSIGNMENT}.ipynb")
    write(insert_after_setup(sol, "import numpy as np\nblocks = []\nwhile True:\n    blocks.append(np.ones(10**8))"),
          subs / f"membomb_{ASSIGNMENT}.ipynb")
    write(insert_after_setup(sol, "import sys\nsys.exit(0)"), subs / f"sysexit_{ASSIGNMENT}.ipynb")
    write(replace_solution(sol, FIRST, sources[FIRST] + "\nimport os\nos._exit(1)\n"), subs / f"osexit_{ASSIGNMENT}.ipynb")
    # endless, so the outcome cannot depend on how fast a machine gets through a fixed count
    write(insert_after_setup(sol, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"),
          subs / f"forkbomb_{ASSIGNMENT}.ipynb")
    write(insert_after_setup(sol, "for i in range(200000):\n    print('spam' * 10, i)"), subs / f"spam_{ASSIGNMENT}.ipynb")
    write(insert_after_setup(sol, "import warnings, sys\nwarnings.warn('careful')\nprint('to stderr', file=sys.stderr)"),
          subs / f"warning_{ASSIGNMENT}.ipynb")
    write(sol, subs / f"control_{ASSIGNMENT}.ipynb")
    out = root / "out"
    proc = run_grader(subs, out, "--jobs", "2", "--timeout", "20")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return rows_by(out)


def _mine(rows, student):
    mine = {g: r for (s, g), r in rows.items() if s == student}
    assert mine, f"no report rows for {student}"
    return mine


def _all_full(mine):
    return all(r["score"] == r["max_score"] for r in mine.values())


@pytest.mark.parametrize("student, words", [
    ("corrupt", "JSON"), ("empty", "empty"), ("notanotebook", ""), ("textfile", ""), ("wrongformat", "format"),
])
def test_unreadable_files_get_zero_with_a_reason(graded, student, words):
    mine = _mine(graded, student)
    assert all(r["score"] == 0 and r["status"] == "not_run" for r in mine.values())
    assert all(r["messages"] for r in mine.values())
    assert words.lower() in " ".join(next(iter(mine.values()))["messages"]).lower()


@pytest.mark.parametrize("student", ["deletedtests", "editedtests", "warning", "spam", "control"])
def test_restored_tests_and_noise_still_full_marks(graded, student):
    mine = _mine(graded, student)
    assert _all_full(mine), {g: r["messages"] for g, r in mine.items() if r["score"] != r["max_score"]}


@pytest.mark.parametrize("student, hint", [
    ("renamed", "NameError"), ("syntax", "SyntaxError"), ("loop", "Timeout"),
])
def test_one_broken_function_costs_only_that_function(graded, student, hint):
    mine = _mine(graded, student)
    assert mine[FIRST]["score"] == 0 and hint.lower() in " ".join(mine[FIRST]["messages"]).lower()
    others = {g: r for g, r in mine.items() if g != FIRST}
    assert others and _all_full(others), {g: r["messages"] for g, r in others.items()}


@pytest.mark.parametrize("student", ["membomb", "sysexit"])
def test_kernel_survives_memory_bomb_and_sys_exit(graded, student):
    mine = _mine(graded, student)
    assert _all_full(mine), {g: r["messages"] for g, r in mine.items()}
    assert mine[FIRST]["submission_status"] == "ok"


@pytest.mark.parametrize("student, status", [("osexit", "kernel_died"), ("forkbomb", "timeout")])
def test_kernel_killers_get_rows_that_say_why(graded, student, status):
    mine = _mine(graded, student)
    assert all(r["submission_status"] == status for r in mine.values())
    assert mine[FIRST]["score"] == 0
    for row in mine.values():
        if row["score"] == 0:
            assert "kernel" in " ".join(row["messages"]).lower(), row["messages"]
