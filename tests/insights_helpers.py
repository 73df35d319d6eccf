"""A synthetic graded class with known mistakes, for the class report tests
(tests/test_insights.py, tests/test_browser.py).

The results are shaped as the pipeline makes them and written with the real
writers: ``report.write_reports`` (report.json, grades.csv, feedback) and
``gradebook_io.save_scores`` (an nbgrader gradebook), so the class report reads
exactly what a grading run leaves behind.

Assignment A (04-scaling; f1: 4 points, f2: 2 points, one written answer of 1 point):

=============  ==========================================  =================  ======
student        f1                                          f2                 total
=============  ==========================================  =================  ======
zz_alba        full                                        full               6
zz_bruno       scale wrong (gated dtype withheld): 2       full               4
zz_carla       scale wrong: 2                              full               4
zz_dario       stub                                        shape wrong: 0     0
zz_elio        invalid file (not graded)                   -                  0
zz_fiona       returns None (flagged: monkeypatching)      full               2
HOSTILE        full                                        shape wrong: 1     5
=============  ==========================================  =================  ======

Assignment B (05-backprop; g: 3 points): zz_alba 3, zz_bruno 1 (grad wrong), zz_fiona 3,
zz_elio two conflicting files; zz_carla, zz_dario and HOSTILE submitted nothing.
zz_alba's written answer in A has a manual grade of 1 (as formgrader would store it).
"""
from __future__ import annotations

from pathlib import Path

from nbgrader.api import Gradebook

from autograder.checks.base import NONE_MESSAGE
from autograder.gradebook_io import save_scores
from autograder.nbgrader_setup import speed_up_gradebook
from autograder.report import write_reports
from autograder.scoring import STUB_MESSAGE

A, B = "04-scaling", "05-backprop"
CELLS = {A: {"test_f1": 4.0, "test_f2": 2.0}, B: {"test_g": 3.0}}
WRITTEN = {A: {"written_a": 1.0}, B: {}}
HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_MESSAGE = "<script>alert('owned')</script> & \"quoted\""
STUDENTS = ["zz_alba", "zz_bruno", "zz_carla", "zz_dario", "zz_elio", "zz_fiona", HOSTILE]
SCALE_BRUNO = "kept values are scaled by 1/p = 5.0 instead of 1/(1-p) = 1.25 (zz_bruno's run)"
SCALE_CARLA = "kept values are scaled by 1/p = 2.0 instead of 1/(1-p) = 2.0"
SHAPE_DARIO = "returns shape (3,) instead of (3, 4)"
ROSTER = """id,first_name,last_name,email,lms_user_id,sis_user_id,sis_login_id,section,username
zz_alba,Alba,Rossi,alba@uni.example,101,S1,alba.login,Sec 1,alba_u
zz_bruno,Bruno,Bianchi,bruno@uni.example,102,S2,bruno.login,Sec 1,bruno_u
zz_carla,Carla,Verdi,carla@uni.example,103,S3,carla.login,Sec 2,carla_u
zz_dario,Dario,Neri,dario@uni.example,104,S4,dario.login,Sec 2,dario_u
zz_elio,Elio,Gallo,elio@uni.example,105,S5,elio.login,Sec 2,elio_u
zz_fiona,Fiona,Costa,fiona@uni.example,106,S6,fiona.login,Sec 1,fiona_u
zz_gino,Gino,Fontana,gino@uni.example,107,S7,gino.login,Sec 1,gino_u
"""


def check(name, passed, message="", central=True, gated=False):
    return {"name": name, "passed": passed, "weight": 1.0, "message": message, "central": central, "gated": gated}


def fn(cell, score, status, messages, checks=()):
    grade_id = cell[len("test_"):]
    max_score = {**CELLS[A], **CELLS[B]}[cell]
    return {"grade_id": grade_id, "cell": cell, "score": score, "max_score": max_score, "status": status,
            "messages": list(messages), "checks": list(checks)}


def full(cell):
    return fn(cell, {**CELLS[A], **CELLS[B]}[cell], "full", ["all checks passed"], [check("works", True)])


def result(student, assignment, functions, status="ok", messages=(), flags=(), file=None, conflict=(), seconds=1.0):
    file = file or f"{student}_{assignment}.ipynb"
    return {"student": student, "assignment": assignment, "slug": student if not conflict else f"{student}~{file}",
            "file": file, "source": f"/subs/{file}", "digest": "d", "status": status, "messages": list(messages),
            "flags": list(flags), "conflict": list(conflict), "functions": functions, "seconds": seconds,
            "written": [] if status in ("invalid",) or conflict else
            [{"grade_id": g, "cell": g, "score": None, "max_score": p, "status": "manual", "messages": []}
             for g, p in WRITTEN[assignment].items()]}


def class_results() -> list:
    scale = "kept values are scaled by 1/(1-p)"
    stub_checks = [check("scale", False, "your function raised NotImplementedError: "),
                   check("dtype", False, "not credited until 'scale' passes", central=False, gated=True)]
    return [
        result("zz_alba", A, [full("test_f1"), full("test_f2")], seconds=2.0),
        result("zz_bruno", A, [fn("test_f1", 2.0, "partial", [f"{scale}: {SCALE_BRUNO}", "dtype: not credited"],
                                  [check(scale, False, SCALE_BRUNO), check("mask applied", True),
                                   check("dtype", False, "not credited until 'scale' passes", False, True)]),
                               full("test_f2")], seconds=3.0),
        result("zz_carla", A, [fn("test_f1", 2.0, "partial", [f"{scale}: {SCALE_CARLA}"],
                                  [check(scale, False, SCALE_CARLA), check("mask applied", True)]),
                               full("test_f2")], seconds=4.0),
        result("zz_dario", A, [fn("test_f1", 0.0, "zero", [STUB_MESSAGE], stub_checks),
                               fn("test_f2", 0.0, "zero", [f"shape: {SHAPE_DARIO}"], [check("shape", False, SHAPE_DARIO)])],
               seconds=9.5),
        result("zz_elio", A, [fn("test_f1", 0.0, "not_run", ["not graded: zz_elio_04-scaling.ipynb is not valid JSON"]),
                              fn("test_f2", 0.0, "not_run", ["not graded: zz_elio_04-scaling.ipynb is not valid JSON"])],
               status="invalid", messages=["zz_elio_04-scaling.ipynb is not valid JSON"], seconds=0.5),
        result("zz_fiona", A, [fn("test_f1", 0.0, "zero", [NONE_MESSAGE], [check(scale, False, NONE_MESSAGE)]),
                               full("test_f2")], flags=["assigns to an attribute of numpy/torch (monkeypatching)"],
               seconds=5.0),
        result(HOSTILE, A, [full("test_f1"),
                            fn("test_f2", 1.0, "partial", [f"shape: {HOSTILE_MESSAGE}"],
                               [check("shape", False, HOSTILE_MESSAGE), check("<b>values</b>", True)])], seconds=6.0),
        result("zz_alba", B, [full("test_g")], seconds=1.0),
        result("zz_bruno", B, [fn("test_g", 1.0, "partial", ["grad: the gradient ignores the mask"],
                                  [check("grad", False, "the gradient ignores the mask")])], seconds=1.5),
        result("zz_fiona", B, [full("test_g")], seconds=2.5),
        result("zz_elio", B, [full("test_g")], file="zz_elio.ipynb", conflict=["zz_elio_05-backprop.ipynb"]),
        result("zz_elio", B, [fn("test_g", 0.0, "zero", ["grad: wrong"], [check("grad", False, "wrong")])],
               file="zz_elio_05-backprop.ipynb", conflict=["zz_elio.ipynb"]),
    ]


def write_gradebook(url: str, results: list, manual: dict = None) -> None:
    """The gradebook a grading run leaves (conflicts are not stored), plus ``manual`` grades
    ``{(student, assignment, cell): score}`` as an instructor would give them in formgrader."""
    speed_up_gradebook()
    with Gradebook(url) as gb:
        for assignment, cells in CELLS.items():
            gb.add_assignment(assignment)
            gb.add_notebook("exercises", assignment)
            for cell, points in {**cells}.items():
                gb.add_grade_cell(cell, "exercises", assignment, max_score=points, cell_type="code")
            for cell, points in WRITTEN[assignment].items():
                gb.add_grade_cell(cell, "exercises", assignment, max_score=points, cell_type="markdown")
        for res in results:
            if res["functions"] and not res["conflict"]:
                save_scores(gb, res["assignment"], res["student"], {f["cell"]: f["score"] for f in res["functions"]},
                            written=tuple(w["cell"] for w in res["written"]))
        for (student, assignment, cell), score in (manual or {}).items():
            grade = gb.find_grade(cell, "exercises", assignment, student)
            grade.manual_score = score
            grade.needs_manual_grade = False
        gb.db.commit()


def graded_class(folder: Path, wall_seconds: float = 12.0, jobs: int = 2) -> Path:
    """Write the synthetic class's run into ``folder``; returns it."""
    folder = Path(folder)
    results = class_results()
    write_reports(results, folder, run={"seconds": wall_seconds, "jobs": jobs})
    write_gradebook(f"sqlite:///{(folder / 'gradebook.db').resolve()}", results,
                    manual={("zz_alba", A, "written_a"): 1.0})
    return folder
