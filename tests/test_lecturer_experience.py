"""Issue 8: what the lecturer sees. A quiet terminal, clear errors for the
wrong folder, a row (never silence) for a notebook of the wrong assignment,
stray files that are not students, and per-student facts where they belong."""
import csv
import json
import re

import pytest

from autograder.examples import make_examples
from tests.grading_helpers import rows_by, run_grader, solution_nb, student_version, write

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def examples_run(tmp_path_factory):
    """The bundled examples of two chapters (what these tests look at; every chapter's examples are
    graded once, by test_grading_e2e) plus a student who edited a locked cell and a 05 notebook
    handed in as 04."""
    root = tmp_path_factory.mktemp("lecturer")
    subs = root / "subs"
    make_examples(subs, chosen=["04-scaling", "05-backprop"])
    edited = solution_nb("04-scaling")
    for cell in edited.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_dropout_moments":
            cell.source = "print('I changed the test')"
    write(edited, subs / "submitted" / "fay" / "04-scaling" / "exercises.ipynb")
    write(solution_nb("05-backprop"), subs / "submitted" / "gil" / "04-scaling" / "exercises.ipynb")
    out = root / "out"
    proc = run_grader(subs, out, "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_terminal_shows_progress_and_summary_only(examples_run):
    out, proc = examples_run
    stderr_lines = [ln for ln in re.split(r"[\r\n]+", proc.stderr) if ln.strip()]
    assert all(ln.startswith("grading:") for ln in stderr_lines), stderr_lines[:5]
    summary = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert not any("checksum" in ln or "Warning" in ln or "Attribute" in ln for ln in summary), summary
    log = (out / "grading.log").read_text()
    assert "checksum" in log, "nbgrader's notes belong in the log"
    worker_lines = [ln for ln in log.splitlines() if "traitlets" in ln or "checksum" in ln]
    assert worker_lines and all(re.search(r"\[\d\d-[a-z-]+/\w+\]", ln) for ln in worker_lines), \
        worker_lines[:3]


def test_an_edited_locked_cell_is_a_per_student_fact(examples_run):
    out, _ = examples_run
    with open(out / "grades.csv", encoding="utf-8") as fh:
        rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(fh)}
    assert "test_dropout_moments" in rows[("fay", "04-scaling")]["flags"]
    untouched = [k for k in rows if k[0] in ("ada", "ben", "cyd")]
    assert untouched and not any("locked" in rows[k]["flags"] for k in untouched)
    feedback = (out / "feedback" / "fay" / "04-scaling.html").read_text()
    assert "test_dropout_moments" in feedback


def test_a_notebook_of_another_assignment_gets_its_own_status(examples_run):
    out, _ = examples_run
    gil = [r for (s, _), r in rows_by(out).items() if s == "gil"]
    assert gil and all(r["submission_status"] == "wrong_assignment" and r["score"] == 0 for r in gil)
    assert "05-backprop" in gil[0]["messages"][0]


def test_with_assignment_a_guessed_other_notebook_still_gets_a_row(tmp_path):
    subs = tmp_path / "flat"
    write(solution_nb("04-scaling"), subs / "ann_04-scaling.ipynb")
    write(student_version("05-backprop", tmp_path / "scratch"), subs / "bo.ipynb")   # a 05 notebook
    (subs / "README.txt").write_text("submissions of week 4")
    proc = run_grader(subs, tmp_path / "out", "--assignment", "04-scaling")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = rows_by(tmp_path / "out")
    assert rows[("bo", "dropout_forward")]["submission_status"] == "wrong_assignment"
    assert rows[("ann", "dropout_forward")]["score"] == rows[("ann", "dropout_forward")]["max_score"]
    assert not any(s == "README" for s, _ in rows) and "README.txt" in proc.stderr


@pytest.mark.parametrize("layout", ["empty", "one level too deep", "out is a file"])
def test_pointing_at_the_wrong_folder_is_a_clear_error(tmp_path, layout):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    if layout == "one level too deep":
        write(solution_nb(), subs / "submitted" / "ann" / "04-scaling" / "exercises.ipynb")
        subs = subs / "submitted" / "ann"
    if layout == "out is a file":
        write(solution_nb(), subs / "ann_04-scaling.ipynb")
        out.write_text("not a folder")
    proc = run_grader(subs, out)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    expected = {"empty": "Expected nbgrader's layout", "one level too deep": "ONE student's folder",
                "out is a file": "is a file"}[layout]
    assert expected in proc.stderr
    if layout == "out is a file":
        assert out.read_text() == "not a folder"
    else:  # a failed run leaves no empty log (nor the output folder it made)
        assert not (out / "grading.log").exists()


def test_feedback_keeps_points_on_one_line(examples_run):
    out, _ = examples_run
    page = (out / "feedback" / "cyd" / "04-scaling.html").read_text()
    assert "white-space:nowrap" in page and re.search(r"<td class='points'>[\d.]+&nbsp;/&nbsp;\d+</td>", page)


def test_report_json_has_a_row_for_every_file(examples_run):
    out, _ = examples_run
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert {r["student"] for r in rows} >= {"ada", "ben", "cyd", "dee", "eve", "fay", "gil"}
