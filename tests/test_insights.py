"""Issue 17: the class report and the LMS exports, on a synthetic class with
known mistakes (tests/insights_helpers.py): counts, shares and groups, exports
parsed back with the documented Canvas and Moodle layouts, escaping,
anonymisation, privacy of feedback, and one-line errors for bad input."""
import csv
import html
import io
import json
import re
from html.parser import HTMLParser

import pytest

from autograder import cli
from autograder.insights import write_insights
from autograder.insights.aggregate import histogram, outcome
from autograder.insights.anonymise import anonymise, pseudonyms
from autograder.insights.sources import FunctionResult
from autograder.scoring import STUB_MESSAGE
from tests.insights_helpers import (A, B, HOSTILE, HOSTILE_MESSAGE, ROSTER, SCALE_BRUNO, STUDENTS, class_results,
                                    graded_class, write_gradebook)

SCALE = "kept values are scaled by 1/(1-p)"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return graded_class(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def written(run, tmp_path_factory):
    """The report and exports of the run, without and with the roster."""
    plain = write_insights(run)
    roster = tmp_path_factory.mktemp("roster") / "roster.csv"
    roster.write_text(ROSTER)
    out = tmp_path_factory.mktemp("with_roster")
    rostered = write_insights(out, runs=[run], roster_path=roster)
    return plain, rostered, out


def _assignment(report, name):
    return next(a for a in report["assignments"] if a["assignment"] == name)


def test_known_mistakes_give_known_counts_shares_and_examples(written):
    a = _assignment(written[0]["report"], A)
    assert (a["students"], a["graded"], a["full_marks"]) == (7, 6, 1)
    assert (a["mean_score"], a["median_score"]) == (3.5, 4.0)
    assert [(m["grade_id"], m["check"], m["count"], m["share"], m["students"]) for m in a["mistakes"]] == [
        ("f1", SCALE, 2, 0.333, ["zz_bruno", "zz_carla"]),
        ("f2", "shape", 2, 0.333, [HOSTILE, "zz_dario"]),
        ("f1", "returns None", 1, 0.167, ["zz_fiona"]),
    ]
    # the example is the first student's own message; a gated check is a consequence, not a mistake
    assert a["mistakes"][0]["example"] == SCALE_BRUNO
    assert not any(m["check"] == "dtype" for m in a["mistakes"])
    assert a["not_attempted"] == [{"grade_id": "f1", "count": 1, "share": 0.167, "students": ["zz_dario"]}]
    b = _assignment(written[0]["report"], B)
    assert [(m["check"], m["count"], m["share"]) for m in b["mistakes"]] == [("grad", 1, 0.333)]
    top = written[0]["report"]["top_mistakes"]
    assert [(m["assignment"], m["share"]) for m in top] == [(A, 0.333), (A, 0.333), (B, 0.333), (A, 0.167)]


def test_mistakes_that_travel_together_form_groups(written):
    a = _assignment(written[0]["report"], A)
    assert [(g["students"], [(c["grade_id"], c["check"]) for c in g["checks"]]) for g in a["groups"]] == [
        ([HOSTILE, "zz_dario"], [("f2", "shape")]),
        (["zz_bruno", "zz_carla"], [("f1", SCALE)]),
    ]
    assert _assignment(written[0]["report"], B)["groups"] == []  # one student alone is not a group


def test_functions_histogram_and_timing(written):
    a = _assignment(written[0]["report"], A)
    f1, f2 = a["functions"]
    assert (f1["mean_score"], f1["mean_share"], f1["full"], f1["full_share"], f1["not_attempted"]) == (2.0, 0.5, 2, 0.333, 1)
    assert (f2["mean_score"], f2["mean_share"], f2["full"], f2["full_share"]) == (1.5, 0.75, 4, 0.667)
    assert a["histogram"]["counts"] == [1, 0, 0, 1, 0, 0, 2, 0, 1, 1]  # scores 0, 2, 4, 4, 5, 6 in ten bins of 0.6
    assert a["timing"] == {"notebooks": 7, "not_recorded": 0, "median_seconds": 4.0, "slowest_seconds": 9.5,
                           "slowest_student": "zz_dario", "slowest_assignment": A, "total_seconds": 30.0}
    t = written[0]["report"]["timing"]
    assert (t["notebooks"], t["total_seconds"], t["wall_seconds"], t["jobs"]) == (12, 37.0, 12.0, 2)


def test_attention_lists_and_behind(written):
    report = written[0]["report"]
    a, b = _assignment(report, A), _assignment(report, B)
    assert [(u["student"], u["status"]) for u in a["ungradable"]] == [("zz_elio", "invalid")]
    assert "not valid JSON" in a["ungradable"][0]["reason"]
    assert [f["student"] for f in a["flagged"]] == ["zz_fiona"]
    assert b["conflicts"] == [{"student": "zz_elio", "files": ["zz_elio.ipynb", "zz_elio_05-backprop.ipynb"]}]
    assert b["graded"] == 3  # the two conflicting files count for neither side
    assert [x["student"] for x in report["behind"]] == ["zz_dario"]
    cells = {r["student"]: {k: v["state"] for k, v in r["cells"].items()} for r in report["students"]}
    assert cells["zz_dario"] == {A: "low", B: "missing"}
    assert cells["zz_elio"] == {A: "ungradable", B: "conflict"}
    with_roster = written[1]["report"]
    assert [x["student"] for x in with_roster["behind"]] == ["zz_dario", "zz_gino"]
    assert with_roster["roster"]["unrostered"] == [{"student": HOSTILE, "assignments": [A],
                                                    "files": [f"{HOSTILE}_{A}.ipynb"]}]


def test_outcome_and_histogram_edges():
    stub = FunctionResult("f", 0.0, 1.0, "zero", [STUB_MESSAGE], [])
    assert outcome(stub) == "stub"
    assert outcome(FunctionResult("f", 0.0, 1.0, "not_run", ["not graded: the cell failed"], [])) == "not_run"
    assert histogram([0.0, 10.0, 10.0], 10.0)["counts"][-1] == 2  # full marks land in the last bin
    assert histogram([], 0.0) == {"bin_edges": [], "counts": []}


def _csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_canvas_export_reads_back_in_canvas_layout(written):
    _, rostered, out = written
    rows = _csv(out / "canvas_grades.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A, B]
    assert rows[1][0] == "Points Possible" and rows[1][5:] == ["7", "3"]  # 6 automatic + 1 written; 3
    by_login = {r[3]: r for r in rows[2:]}
    assert by_login["alba.login"] == ["Rossi, Alba", "101", "S1", "alba.login", "Sec 1", "7", "3"]  # manual grade in
    assert by_login["bruno.login"][5:] == ["4", "1"]
    assert by_login["carla.login"][5:] == ["4", ""]  # no submission for B: no grade
    assert by_login["elio.login"][5:] == ["0", ""]  # an invalid file scored 0; conflicting files left blank
    assert by_login["gino.login"][5:] == ["", ""]  # on the roster, nothing submitted: an explicit missing row
    assert len(rows) == 2 + 7  # the roster's seven students, in roster order, and nobody else
    assert [r[3] for r in rows[2:]] == [f"{n}.login" for n in ("alba", "bruno", "carla", "dario", "elio", "fiona", "gino")]
    unrostered = _csv(out / "lms_unrostered.csv")
    assert unrostered[0][:3] == ["student_id", "assignment", "score"] and unrostered[1][:3] == [HOSTILE, A, "5"]
    assert {x["student"] for x in rostered["report"]["exports"]["not_exported"]} == {"zz_elio"}


def test_moodle_export_reads_back_with_moodle_conventions(written, run, tmp_path):
    _, _, out = written
    rows = _csv(out / "moodle_grades.csv")
    assert rows[0] == ["Email address", "Username", A, B]
    by_user = {r[1]: r for r in rows[1:]}
    assert by_user["alba_u"] == ["alba@uni.example", "alba_u", "7", "3"]
    assert by_user["carla_u"][2:] == ["4", "-"]  # Moodle reads "-" as "no grade"
    assert by_user["gino_u"][2:] == ["-", "-"]
    assert by_user["elio_u"][2:] == ["0", ""]
    assert HOSTILE not in (out / "moodle_grades.csv").read_text()  # an unknown user would abort Moodle's import
    # --missing zero: missing entries become 0, a conflict stays blank
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    write_insights(tmp_path, runs=[run], roster_path=roster, missing="zero")
    zero = {r[1]: r for r in _csv(tmp_path / "moodle_grades.csv")[1:]}
    assert zero["gino_u"][2:] == ["0", "0"] and zero["carla_u"][2:] == ["4", "0"] and zero["elio_u"][2:] == ["0", ""]


def test_without_a_roster_every_submitting_student_gets_a_row(written, run):
    rows = _csv(run / "canvas_grades.csv")
    assert sorted(r[3] for r in rows[2:]) == sorted(STUDENTS)
    hostile = next(r for r in rows[2:] if r[3] == HOSTILE)
    assert hostile[0] == HOSTILE and hostile[5:] == ["5", ""]
    assert not (run / "lms_unrostered.csv").exists()
    moodle = _csv(run / "moodle_grades.csv")
    assert moodle[0] == ["Username", A, B] and len(moodle) == 1 + len(STUDENTS)


class _Elements(HTMLParser):
    """Every element and attribute of a page, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.sources = set(), set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}
        self.sources += [value for name, value in attrs if name in ("src", "href")]


def test_student_text_is_escaped_in_the_page(written, run):
    page = (run / "class_report.html").read_text(encoding="utf-8")
    parsed = _Elements()
    parsed.feed(page)
    assert "script" not in parsed.tags and "b" not in parsed.tags  # the markup in names and messages stayed text
    assert not [a for a in parsed.attributes if a.startswith("on")]
    assert html.escape(HOSTILE, quote=True) in page
    assert html.escape(HOSTILE_MESSAGE, quote=True) in page and html.escape("<b>values</b>") not in page  # passed: not shown
    # everything is embedded: images are data URIs (two figures), nothing else is fetched
    assert sorted(s.split(":")[0] for s in parsed.sources if not s.startswith("#")) == ["data", "data", "data"]
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    report = json.loads((run / "class_report.json").read_text(encoding="utf-8"))
    assert _assignment(report, A)["mistakes"][1]["example"] == HOSTILE_MESSAGE  # JSON keeps the text as it was


def test_anonymised_report_names_nobody_and_is_stable(written, run, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    first = write_insights(run, roster_path=roster, anonymised=True)
    html_text = first["html"].read_text(encoding="utf-8")
    json_text = first["json"].read_text(encoding="utf-8")
    assert first["html"].name == "class_report_anonymised.html" and (run / "class_report.html").exists()
    for text in (html_text, json_text, json.dumps(first["report"])):
        for name in STUDENTS + ["zz_gino", "Rossi", "alba@", "alba.login", str(run)]:
            for form in {name, json.dumps(name)[1:-1], html.escape(name, quote=True)}:
                assert form not in text, f"{name!r} leaked"
    names = sorted({s for s in re.findall(r"student-[a-z2-7]{8}", json_text)})
    assert len(names) == len(STUDENTS) + 1  # every student (and the roster's gino) has a distinct pseudonym
    a = _assignment(first["report"], A)
    assert [m["count"] for m in a["mistakes"]] == [2, 2, 1]  # the numbers are the named report's
    assert all(m["students"] == sorted(m["students"]) for m in a["mistakes"])  # order by pseudonym, not by name
    again = write_insights(run, roster_path=roster, anonymised=True)
    assert again["json"].read_text(encoding="utf-8") == json_text  # stable: same folder, same pseudonyms
    elsewhere = tmp_path / "elsewhere"
    other = write_insights(elsewhere, runs=[run], anonymised=True)
    assert not set(re.findall(r"student-[a-z2-7]{8}", other["json"].read_text())) & set(names)  # a key per folder


def test_pseudonyms_replace_whole_ids_only():
    names = pseudonyms(["ana", "ana-maria", ""], b"k" * 32)
    assert len(set(names.values())) == 2 and "" not in names
    text = "analysis of ana/04-scaling by ana-maria; banana, ana_04.ipynb"
    assert anonymise(text, names) == (f"analysis of {names['ana']}/04-scaling by {names['ana-maria']}; banana, "
                                      f"{names['ana']}_04.ipynb")
    assert anonymise({"folder": "/home/ana", "students": ["ana-maria", "ana"]}, names) == {
        "students": sorted([names["ana"], names["ana-maria"]])}


def test_feedback_pages_never_name_another_student(run):
    pages = sorted((run / "feedback").rglob("*.html"))
    assert len(pages) == len(class_results())
    plain = [s for s in STUDENTS if s != HOSTILE]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        owner = [s for s in plain if s in page.parent.name] or [HOSTILE]
        others = [s for s in plain if s not in owner]
        assert not [s for s in others if s in text], (page, [s for s in others if s in text])
        if owner != [HOSTILE]:
            assert "&lt;img" not in text
        else:
            assert "<script" not in text and html.escape(HOSTILE_MESSAGE) in text


def _insights(*args):
    return cli.main(["insights", *map(str, args)])


@pytest.mark.parametrize("case", ["no report", "not a folder", "not json", "gradebook missing", "gradebook empty",
                                  "gradebook of another run", "roster without id", "roster repeats an id",
                                  "roster not utf-8", "roster row too long", "bad --low"])
def test_bad_input_is_one_clear_line(case, run, tmp_path, capsys):
    out, extra = tmp_path / "out", []
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "report.json").write_text((run / "report.json").read_text())
    roster = tmp_path / "roster.csv"
    if case == "no report":
        out.mkdir()
        expected = "no report.json"
    elif case == "not a folder":
        expected = "is not a folder"
    elif case == "not json":
        out.mkdir()
        (out / "report.json").write_text('{"rows": [')
        expected = "could not be read as JSON"
    elif case == "gradebook missing":
        out, expected = copy, "no gradebook at"
    elif case == "gradebook empty":
        (copy / "gradebook.db").write_bytes(b"")
        out, expected = copy, "is empty"
    elif case == "gradebook of another run":
        write_gradebook(f"sqlite:///{copy / 'gradebook.db'}", [])
        out, expected = copy, "holds none of the 9 graded submissions"
    else:
        out = run
        text = {"roster without id": "name,email\nAlba,a@x\n", "roster repeats an id": "id\nzz_alba\nzz_alba\n",
                "roster not utf-8": None, "roster row too long": "id,name\nzz_alba,Rossi, Alba\n",
                "bad --low": "id\nzz_alba\n"}[case]
        if text is None:
            roster.write_bytes(b"id,name\nzz_alba,Jos\xe9\n")
        else:
            roster.write_text(text)
        extra = ["--roster", roster] + (["--low", "1.5"] if case == "bad --low" else [])
        expected = {"roster without id": "has no 'id' column", "roster repeats an id": "line 3 repeats id zz_alba",
                    "roster not utf-8": "is not UTF-8", "roster row too long": "line 2 has 3 cells",
                    "bad --low": "--low must be a share"}[case]
    assert _insights(out, *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err


def test_several_runs_later_replaces_earlier(run, tmp_path, capsys):
    later = graded_class(tmp_path / "later", wall_seconds=3.0)
    report = json.loads((later / "report.json").read_text())
    report["rows"] = [r for r in report["rows"] if r["student"] == "zz_dario"]
    report["submissions"] = [s for s in report["submissions"] if s["student"] == "zz_dario"]
    for s in report["submissions"]:
        s["seconds"] = 1.25
    (later / "report.json").write_text(json.dumps(report))
    assert _insights(tmp_path / "out", "--run", run, "--run", later) == 0
    assert "Class report:" in capsys.readouterr().out
    merged = json.loads((tmp_path / "out" / "class_report.json").read_text())
    assert [(r["student"], r["assignment"]) for r in merged["replaced"]] == [("zz_dario", A)]
    a = _assignment(merged, A)
    assert a["graded"] == 6
    assert (a["timing"]["slowest_student"], a["timing"]["slowest_seconds"]) == (HOSTILE, 6.0)  # zz_dario's 9.5 s replaced
    assert merged["timing"]["wall_seconds"] == 15.0


def test_grade_id_csv_cells_are_formula_safe(run, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,first_name,last_name\nzz_alba,=HYPERLINK(\"x\"),+cmd\n")
    write_insights(tmp_path, runs=[run], roster_path=roster)
    text = (tmp_path / "canvas_grades.csv").read_text()
    for row in csv.reader(io.StringIO(text)):
        assert not any(re.match(r"[=+\-@]", cell) for cell in row), row
