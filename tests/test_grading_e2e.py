"""The grader as an instructor uses it: one command over a class, the
gradebook, grades.csv, report.json and feedback; resume after a kill."""
import csv
import json
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter

import pytest
from nbgrader.api import Gradebook

from autograder.checks.base import NONE_MESSAGE
from autograder.examples import MISTAKES, make_examples
from autograder.nbgrader_setup import REPO_ROOT, assignments
from autograder.scoring import STUB_MESSAGE
from tests.book_fixtures import SCREENSHOT_DIR
from tests.grading_helpers import rows_by, run_grader, total
from tests.test_browser import browser, open_standalone  # noqa: F401 (browser is a fixture)

pytestmark = pytest.mark.slow


def mistaken() -> list:
    """The assignments in which the example student ``kim`` makes typical mistakes."""
    return [a for a in MISTAKES if a in assignments()]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    make_examples(root / "subs")
    out = root / "out"
    proc = run_grader(root / "subs", out, "--jobs", "2", "--timeout", "30")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, out, proc


def test_solution_full_marks_stub_zero_partial_between(graded):
    _, out, _ = graded
    rows = rows_by(out)
    for assignment in assignments():
        mine = {g: r for (s, g), r in rows.items() if s == "ada"}
        assert mine, "the solution notebook was not graded"
    score, max_score = total(rows, "ada")
    assert max_score > 0 and score == max_score, [r["messages"] for (s, _), r in rows.items() if s == "ada"]
    score, max_score = total(rows, "ben")
    assert score == 0 and max_score > 0
    ben = [r for (s, _), r in rows.items() if s == "ben"]
    assert all(any("stub" in m or "NotImplementedError" in m for m in r["messages"]) for r in ben)
    cyd_score, _ = total(rows, "cyd")
    assert 0 < cyd_score < max_score


def test_instructor_terminal_shows_no_library_warnings(graded):
    _, _, proc = graded
    noise = [line for line in proc.stderr.splitlines() if "Warning" in line or "Traceback" in line]
    assert not noise, noise[:5]


def test_attacker_and_corrupt_file_are_reported_not_fatal(graded):
    _, out, _ = graded
    rows = rows_by(out)
    dee = [r for (s, _), r in rows.items() if s == "dee"]
    assert dee and all(r["score"] == 0 for r in dee)
    assert any("monkeypatching" in f for f in dee[0]["flags"])
    eve = [r for (s, _), r in rows.items() if s == "eve"]
    assert eve and all(r["score"] == 0 and r["status"] == "not_run" for r in eve)
    assert any("JSON" in m or "notebook" in m for m in eve[0]["messages"])


def test_gradebook_csv_json_and_feedback_agree(graded):
    _, out, _ = graded
    rows = rows_by(out)
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        for student in ("ada", "ben", "cyd", "dee", "eve"):
            for assignment in assignments():
                sub = gb.find_submission(assignment, student)
                expected = sum(r["score"] for (s, g), r in rows.items()
                               if s == student and r["assignment"] == assignment)
                assert sub.score == pytest.approx(expected)
    with open(out / "grades.csv") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert {r["student_id"] for r in csv_rows} == {"ada", "ben", "cyd", "dee", "eve"} | ({"kim"} if mistaken() else set())
    assert len(csv_rows) == 5 * len(assignments()) + len(mistaken())
    report = json.loads((out / "report.json").read_text())["rows"]
    assert {"student", "assignment", "grade_id", "score", "max_score", "status", "messages"} <= set(report[0])
    page = (out / "feedback" / "cyd" / f"{assignments()[0]}.html").read_text()
    assert "what to fix" in page and "not implemented" not in page.lower() or "stub" in page


def test_feedback_reveals_no_hidden_code_or_inputs(graded):
    _, out, _ = graded
    solution_texts = []
    for nb_path in sorted((REPO_ROOT / "solutions").glob("*/exercises.ipynb")):
        solution_texts.append(nb_path.read_text())
    for page in (out / "feedback").rglob("*.html"):
        text = page.read_text()
        assert "SENTINEL" not in text and "BEGIN SOLUTION" not in text and "def " not in text
    report = (out / "report.json").read_text()
    assert "SENTINEL" not in report and "autograder.reference" not in report


def _expected_mistakes(rows: list) -> Counter:
    """(function, sub-check) -> students, straight from report.json rows: failed sub-checks
    not withheld behind a gate, in functions that are not stubs; None and no recording count as one."""
    found = Counter()
    for r in rows:
        if r["status"] == "full" or r["messages"] == [STUB_MESSAGE]:
            continue
        if r["messages"] == [NONE_MESSAGE]:
            found[(r["grade_id"], "returns None")] += 1
        elif r["status"] == "not_run":
            found[(r["grade_id"], "did not run")] += 1
        else:
            for c in {c["name"] for c in r["checks"] if not c["passed"] and not c["gated"]}:
                found[(r["grade_id"], c)] += 1
    return found


def test_class_report_numbers_agree_with_report_json(graded):
    """`grade` wrote the class report; every number in it follows from report.json and the gradebook.
    (These class-report tests run before test_rerun_resumes_without_regrading, which regrades one
    assignment into the same folder and so rewrites the report with that assignment alone.)"""
    _, out, proc = graded
    assert "Class report:" in proc.stdout and "most common mistake" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    insights = json.loads((out / "class_report.json").read_text())
    graded_assignments = sorted({s["assignment"] for s in report["submissions"]})
    assert [a["assignment"] for a in insights["assignments"]] == graded_assignments
    for a in insights["assignments"]:
        mine = [s for s in report["submissions"] if s["assignment"] == a["assignment"]]
        ok = [s for s in mine if s["status"] == "ok" and not s["conflict"]]
        students = {s["student"] for s in ok}
        rows = [r for r in report["rows"] if r["assignment"] == a["assignment"] and r["student"] in students]
        assert a["graded"] == len(ok) and sum(a["histogram"]["counts"]) == len(ok)
        assert a["mean_score"] == pytest.approx(statistics.fmean(s["score"] for s in ok), abs=1e-3)
        assert a["full_marks"] == sum(s["score"] == s["max_score"] for s in ok)
        for f in a["functions"]:
            mine_f = [r for r in rows if r["grade_id"] == f["grade_id"]]
            assert f["mean_score"] == pytest.approx(statistics.fmean(r["score"] for r in mine_f), abs=1e-3)
            assert f["full"] == sum(r["status"] == "full" for r in mine_f)
            assert f["not_attempted"] == sum(r["messages"] == [STUB_MESSAGE] for r in mine_f)
        assert {(m["grade_id"], m["check"]): m["count"] for m in a["mistakes"]} == _expected_mistakes(rows)
        assert all(m["share"] == round(m["count"] / len(ok), 3) for m in a["mistakes"])
        assert [u["student"] for u in a["ungradable"]] == sorted(s["student"] for s in mine if s["status"] != "ok")
        assert [f["student"] for f in a["flagged"]] == sorted(s["student"] for s in mine if s["flags"])
        seconds = [s["seconds"] for s in mine]
        assert a["timing"]["median_seconds"] == pytest.approx(statistics.median(seconds), abs=0.01)
        assert a["timing"]["slowest_seconds"] == pytest.approx(max(seconds), abs=0.01)
    for assignment in set(mistaken()) & set(graded_assignments):  # kim's 1/p is named, with kim
        scaling = [m for m in insights["top_mistakes"] if m["assignment"] == assignment
                   and m["grade_id"] == "dropout_forward"]
        assert scaling and scaling[0]["students"] == ["kim"] and "1/p = 5.0" in scaling[0]["example"]
    behind = {b["student"] for b in insights["behind"]}
    assert behind >= {"ben", "dee", "eve"} and "ada" not in behind
    assert insights["timing"]["notebooks"] == len(report["submissions"]) and insights["timing"]["jobs"] == 2


def _graded_assignments(out) -> list:
    """The assignments of this run (not assignments(): a chapter may appear while the tests run)."""
    return sorted({s["assignment"] for s in json.loads((out / "report.json").read_text())["submissions"]})


def test_lms_exports_carry_the_gradebook_scores(graded):
    _, out, _ = graded
    with open(out / "canvas_grades.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *_graded_assignments(out)]
    assert rows[1][0] == "Points Possible"
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        for column, assignment in enumerate(_graded_assignments(out), start=5):
            assert float(rows[1][column]) == gb.find_assignment(assignment).max_score
            scores = {s.student_id: s.score for s in gb.assignment_submissions(assignment)}
            for row in rows[2:]:  # no submission (kim outside chapter 04): no grade
                assert (float(row[column]) if row[column] else None) == scores.get(row[3]), (row[3], assignment)
    with open(out / "moodle_grades.csv", newline="") as fh:
        moodle = list(csv.reader(fh))
    assert moodle[0] == ["Username", *_graded_assignments(out)]
    assert {r[0] for r in moodle[1:]} == {r[3] for r in rows[2:]} == {"ada", "ben", "cyd", "dee", "eve", "kim"}


def test_class_report_opens_in_a_browser(graded, browser):
    _, out, _ = graded
    shot = SCREENSHOT_DIR / "class_report.png"
    report = open_standalone(browser, out / "class_report.html", screenshot=shot)
    assert not report["problems"], "\n".join(report["problems"])
    assert report["images"] == len(_graded_assignments(out)) and report["scripts"] == 0  # a figure each
    assert "1/p = 5.0" in report["text"] and shot.is_file()


def test_rerun_resumes_without_regrading(graded):
    root, out, _ = graded
    before = {p: p.stat().st_mtime_ns for p in (out / "results").rglob("*.json")}
    proc = run_grader(root / "subs", out, "--jobs", "2")
    assert proc.returncode == 0
    assert "resuming" in proc.stderr
    after = {p: p.stat().st_mtime_ns for p in (out / "results").rglob("*.json")}
    assert before == after
    # --regrade ignores the journal (after a fix to a check, say) and replaces, not adds, rows.
    proc = run_grader(root / "subs", out, "--jobs", "2", "--regrade", "--assignment", assignments()[0])
    assert proc.returncode == 0 and "resuming" not in proc.stderr
    regraded = {p for p in (out / "results").rglob("*.json") if p.stat().st_mtime_ns != before[p]}
    assert regraded == {p for p in before if p.parent.name == assignments()[0]}
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        assert len(gb.assignment_submissions(assignments()[0])) == 5


def test_killed_run_resumes_without_losing_or_duplicating(tmp_path):
    make_examples(tmp_path / "subs", chosen=[assignments()[0]])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "autograder", "grade", str(tmp_path / "subs"), "--out", str(out),
           "--no-progress", "--jobs", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "results").rglob("*.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = list((out / "results").rglob("*.json"))
    assert 1 <= len(first) < 4, "the kill should land mid-class"
    first_mtimes = {p: p.stat().st_mtime_ns for p in first}
    rerun = run_grader(tmp_path / "subs", out, "--jobs", "1")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert all(p.stat().st_mtime_ns == m for p, m in first_mtimes.items())  # not regraded
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        subs = gb.assignment_submissions(assignments()[0])
        names = sorted(s.student.id for s in subs)
    assert names == ["ada", "ben", "cyd", "dee", "eve"]  # each once


def test_bad_arguments_give_clear_errors(tmp_path):
    proc = run_grader(tmp_path / "nowhere", tmp_path / "out")
    assert proc.returncode == 2 and "not found" in proc.stderr
    (tmp_path / "subs").mkdir()
    proc = run_grader(tmp_path / "subs", tmp_path / "out", "--assignment", "99-nope")
    assert proc.returncode == 2 and "unknown assignment" in proc.stderr


def test_solution_and_stub_notebooks_run_without_any_cell_error(graded):
    """The solution runs clean, and the untouched student notebook runs top to
    bottom with stubs: experiment cells say "implement X first" instead of
    raising, and self-checks report instead of raising."""
    _, out, _ = graded
    for assignment in assignments():
        for student in ("ada", "ben"):
            result = json.loads((out / "results" / assignment / f"{student}.json").read_text())
            assert result["status"] == "ok" and result["messages"] == [], (student, assignment, result["messages"])


def test_db_option_puts_the_gradebook_where_asked(tmp_path):
    import nbformat

    from autograder.nbgrader_setup import SOLUTIONS

    assignment = assignments()[0]
    subs = tmp_path / "flat"
    subs.mkdir()
    nb = nbformat.read(str(SOLUTIONS / assignment / "exercises.ipynb"), as_version=4)
    nbformat.write(nb, str(subs / f"zoe_{assignment}.ipynb"))
    db = tmp_path / "elsewhere" / "class.db"
    db.parent.mkdir()
    proc = run_grader(subs, tmp_path / "out", "--db", f"sqlite:///{db}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "out" / "gradebook.db").exists()
    assert_full_auto_marks_and_written_pending(f"sqlite:///{db}", assignment, "zoe")


def assert_full_auto_marks_and_written_pending(db_url, assignment, student):
    """Every automatic point earned; every written answer left to the instructor."""
    from autograder.gradebook_io import grade_cells, written_cells

    auto, written = grade_cells(db_url, assignment), written_cells(db_url, assignment)
    assert written, "the chapter has written answers"
    with Gradebook(db_url) as gb:
        sub = gb.find_submission(assignment, student)
        assert sub.score == sum(auto.values()) > 0
        assert sub.max_score == sum(auto.values()) + sum(written.values())
        for name in written:
            grade = gb.find_grade(name, "exercises", assignment, student)
            assert grade.needs_manual_grade and grade.auto_score is None and grade.manual_score is None


def test_written_answers_await_manual_grading(graded):
    """Written answers are listed for the instructor, counted nowhere in the
    automatic score, announced to the student, and their keys reach no student."""
    from autograder.gradebook_io import written_cells

    _, out, _ = graded
    db_url = f"sqlite:///{out / 'gradebook.db'}"
    written = {a: written_cells(db_url, a) for a in assignments()}
    with open(out / "grades.csv") as fh:
        csv_rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(fh)}
    listed = json.loads((out / "report.json").read_text())["written"]
    for (student, assignment), row in csv_rows.items():
        mine = {w["grade_id"] for w in listed if w["student"] == student and w["assignment"] == assignment}
        if student == "eve":  # an unreadable file has no answers to grade
            assert not mine and "written" not in row["note"]
            continue
        n, points = len(written[assignment]), sum(written[assignment].values())
        assert mine == set(written[assignment])
        assert f"{n} written answers ({points:g} points) await manual grading" in row["note"], row["note"]
    for student in ("ada", "ben", "cyd"):
        for assignment in assignments():
            page = (out / "feedback" / student / f"{assignment}.html").read_text()
            assert "graded by your instructor" in page and "Answer key" not in page
    assert_full_auto_marks_and_written_pending(db_url, assignments()[0], "ada")

