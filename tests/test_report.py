"""Reports never fail on a name and never carry one as markup, formula or path
(issue 7, finding 6)."""
import csv
import json
import os
import re
from pathlib import Path

from autograder.report import CSV_COLUMNS, write_reports
from autograder.submissions import discover

KNOWN = {"04-scaling": {"dropout_forward", "test_dropout_forward"},
         "05-backprop": {"dropout_backward", "test_dropout_backward"}}
FORMULA = re.compile(r"[=+\-@\t\r]")


def _result(student, assignment="04-scaling", score=1.0, status="ok", messages=(), **extra):
    """A result dict as the pipeline makes it."""
    res = {"student": student, "assignment": assignment, "source": extra.pop("source", ""), "status": status,
           "messages": list(messages), "flags": extra.pop("flags", []),
           "functions": [{"grade_id": "dropout_forward", "score": score, "max_score": 2.0, "status": "partial",
                          "messages": list(messages) or ["ok"], "checks": [], "cell": "test_dropout_forward"}]}
    res.update(extra)
    return res


def _problem(student, assignment, message):
    """A problem row as the pipeline turns it into a result (pipeline._problem_result)."""
    return {"version": 2, "student": student, "assignment": assignment, "source": "", "digest": "", "flags": [],
            "status": "invalid", "messages": [message],
            "functions": [{"grade_id": "(submission)", "cell": "", "score": 0.0, "max_score": 0.0,
                           "status": "not_run", "messages": [message], "checks": []}]}


def _read(out: Path):
    with open(out / "grades.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    pages = sorted(p.relative_to(out / "feedback") for p in (out / "feedback").rglob("*.html"))
    return table, report["rows"], pages


def test_a_latin1_file_name_gets_its_row_in_every_report(tmp_path):
    """write_reports raised UnicodeEncodeError: grades.csv truncated, no feedback for anyone."""
    subs_dir = tmp_path / "subs"
    subs_dir.mkdir()
    fd = os.open(os.fsencode(subs_dir) + b"/jos\xe9_04-scaling.ipynb", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"{}")
    os.close(fd)
    (subs_dir / "ann_04-scaling.ipynb").write_text("{}")
    subs, problems = discover(subs_dir, KNOWN)
    results = [_result(s.student, source=str(s.path), file=s.path.name, slug=s.slug) for s in subs]
    results += [_problem(*p) for p in problems]
    # a grader message that quotes the raw name must not break the writers either
    results.append(_result("kai", source=os.fsdecode(os.fsencode(subs_dir) + b"/k\xe4i_04-scaling.ipynb"),
                           messages=[os.fsdecode(b"k\xe4i_04-scaling.ipynb is empty.")], status="invalid"))
    out = tmp_path / "out"
    write_reports(results, out)
    table, rows, pages = _read(out)
    assert table[0] == CSV_COLUMNS
    students = [r[0] for r in table[1:]]
    assert students == ["ann", "jos\\xe9", "kai"]
    kai = table[1:][2]
    assert kai[CSV_COLUMNS.index("file")] == "k\\xe4i_04-scaling.ipynb"
    assert "jos\\xe9" in {r["student"] for r in rows}
    assert {str(p) for p in pages} >= {"ann/04-scaling.html", "kai/04-scaling.html"} and len(pages) == 3
    page = (out / "feedback" / pages[1]).read_text(encoding="utf-8")
    assert "jos\\xe9" in page


def test_no_csv_cell_starts_a_formula(tmp_path):
    names = ['=HYPERLINK("http://x","y")', "+cmd", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    results = [_result(n, file=f"{n}.ipynb", flags=["-flag"], status="invalid", messages=["=1+1"]) for n in names]
    results.append(_problem("+cmd", "04-scaling", "+cmd.ipynb: rename the file"))
    out = tmp_path / "out"
    write_reports(results, out)
    table, rows, pages = _read(out)
    assert len(table) == len(results) + 1
    for row in table[1:]:
        for cell in row:
            assert not FORMULA.match(cell), f"a spreadsheet would run {cell!r}"
    assert {r[0] for r in table[1:]} >= {"'=HYPERLINK(\"http://x\",\"y\")", "'+cmd", "'-2+3", "'@SUM(A1)"}
    scores = sorted(float(r[CSV_COLUMNS.index("score")]) for r in table[1:])
    assert scores == [0.0] + [1.0] * len(names)  # numbers stay numbers


def test_no_escape_code_reaches_any_report(tmp_path):
    name = "\x1b[2J\x1b[Hfake"
    results = [_result(name, file=f"{name}_04-scaling.ipynb", messages=[f"{name} \u202e\r\n"]),
               _problem(name, "04-scaling", f"{name}_04-scaling.ipynb: rename the file")]
    out = tmp_path / "out"
    write_reports(results, out)
    for path in [out / "grades.csv", out / "report.json", *(out / "feedback").rglob("*.html")]:
        text = path.read_text(encoding="utf-8")
        assert "\x1b" not in text and "\u202e" not in text and "\r" not in text.replace("\r\n", "")
    _, rows, pages = _read(out)
    assert {r["student"] for r in rows} == {"\\x1b[2J\\x1b[Hfake"}
    assert all("\\x1b" in m for r in rows for m in r["messages"])
    assert len(pages) == 2  # two results, two pages, even with the same student and assignment


def test_conflicting_files_get_two_rows_and_two_feedback_pages(tmp_path):
    results = [
        _result("alice", score=0.0, file="alice.ipynb", slug="alice~alice.ipynb",
                conflict=["alice_04-scaling.ipynb"], source="/subs/alice.ipynb"),
        _result("alice", score=2.0, file="alice_04-scaling.ipynb", slug="alice~alice_04-scaling.ipynb",
                conflict=["alice.ipynb"], source="/subs/alice_04-scaling.ipynb"),
        _result("bob", score=1.0, source="/subs/bob_04-scaling.ipynb", slug="bob"),
    ]
    out = tmp_path / "out"
    write_reports(results, out)
    table, rows, pages = _read(out)
    col = {c: i for i, c in enumerate(CSV_COLUMNS)}
    alice = [r for r in table[1:] if r[col["student_id"]] == "alice"]
    assert [(r[col["file"]], r[col["status"]], float(r[col["score"]])) for r in alice] == [
        ("alice.ipynb", "conflict", 0.0), ("alice_04-scaling.ipynb", "conflict", 2.0)]
    assert "alice_04-scaling.ipynb" in alice[0][col["note"]] and "alice.ipynb" in alice[1][col["note"]]
    bob = [r for r in table[1:] if r[col["student_id"]] == "bob"][0]
    assert (bob[col["status"]], bob[col["file"]], bob[col["note"]]) == ("ok", "bob_04-scaling.ipynb", "")
    assert {(r["file"], tuple(r["conflict"])) for r in rows if r["student"] == "alice"} == {
        ("alice.ipynb", ("alice_04-scaling.ipynb",)), ("alice_04-scaling.ipynb", ("alice.ipynb",))}
    assert [str(p) for p in pages] == ["alice~alice.ipynb/04-scaling.html",
                                       "alice~alice_04-scaling.ipynb/04-scaling.html", "bob/04-scaling.html"]
    page = (out / "feedback" / "alice~alice.ipynb" / "04-scaling.html").read_text(encoding="utf-8")
    assert "alice_04-scaling.ipynb" in page and "conflict" in page
    # without the slug key (an older journal), two conflicting results still get two pages
    for res in results:
        res.pop("slug")
    write_reports(results, tmp_path / "old")
    assert len(_read(tmp_path / "old")[2]) == 3


def test_feedback_pages_stay_inside_the_feedback_folder(tmp_path):
    results = [_result(".."), _result("."), _result("a/b"), _result("x", slug="../../escaped"),
               _result("y", assignment="../../z"), _result("", slug="")]
    out = tmp_path / "out"
    write_reports(results, out)
    pages = list((out / "feedback").rglob("*.html"))
    assert len(pages) == len(results)
    for page in pages:
        rel = page.resolve().relative_to((out / "feedback").resolve())
        assert len(rel.parts) == 2 and not any(p.startswith(".") for p in rel.parts)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "z.html").exists()
