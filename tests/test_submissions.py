"""Finding submissions in nbgrader's layout and in a flat folder, and reading
each one once (issue 7, findings 5 and 6: links, special files, hostile names)."""
import hashlib
import json
import os
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import nbformat
import pytest

from autograder import submissions as submissions_mod
from autograder.cli import absolute_sqlite_url
from autograder.names import is_safe_component
from autograder.nbgrader_setup import REPO_ROOT
from autograder.submission_reader import (InvalidNotebook, load_submission, parse_submission, read_submission,
                                          submission_digest)
from autograder.submissions import DiscoveryError, Submission, discover

KNOWN = {"04-scaling": {"dropout_forward", "test_dropout_forward"},
         "05-backprop": {"dropout_backward", "test_dropout_backward"}}


def _nb(path: Path, grade_ids=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = [{"cell_type": "code", "source": "", "metadata": {"nbgrader": {"grade_id": g}}} for g in grade_ids]
    path.write_text(json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}))
    return path


def test_nbgrader_layout_with_or_without_the_submitted_folder(tmp_path):
    _nb(tmp_path / "submitted" / "alice" / "04-scaling" / "exercises.ipynb")
    _nb(tmp_path / "submitted" / "bob" / "05-backprop" / "renamed.ipynb")
    (tmp_path / "submitted" / "carl" / "04-scaling").mkdir(parents=True)
    for root in (tmp_path, tmp_path / "submitted"):
        subs, problems = discover(root, KNOWN)
        assert sorted((s.student, s.assignment, s.path.name) for s in subs) == [
            ("alice", "04-scaling", "exercises.ipynb"), ("bob", "05-backprop", "renamed.ipynb")]
        assert problems == [("carl", "04-scaling", "the submission folder holds no .ipynb file")]
    subs, _ = discover(tmp_path, KNOWN, only="05-backprop")
    assert [s.student for s in subs] == ["bob"]


def test_flat_folder_names_and_guessing(tmp_path):
    _nb(tmp_path / "dora_04-scaling.ipynb")
    _nb(tmp_path / "ed.ipynb", ["dropout_backward"])           # assignment guessed from grade_ids
    _nb(tmp_path / "fay.ipynb")                                 # nothing to go by
    (tmp_path / "gus_05-backprop.txt").write_text("not a notebook")  # still a submission: graded as invalid
    (tmp_path / ".hidden.ipynb").write_text("{}")
    subs, problems = discover(tmp_path, KNOWN)
    assert sorted((s.student, s.assignment) for s in subs) == [
        ("dora", "04-scaling"), ("ed", "05-backprop"), ("gus", "05-backprop")]
    assert len(problems) == 1 and problems[0][0] == "fay" and "--assignment" in problems[0][2]
    subs, problems = discover(tmp_path, KNOWN, only="04-scaling")
    # ed.ipynb holds a 05 notebook: kept, so that grading reports it as the wrong assignment
    assert sorted((s.student, s.assignment) for s in subs) == [
        ("dora", "04-scaling"), ("ed", "04-scaling"), ("fay", "04-scaling")] and not problems


def test_bad_student_ids_are_reported_and_duplicates_are_both_kept(tmp_path):
    _nb(tmp_path / "submitted" / "bad name!" / "04-scaling" / "exercises.ipynb")
    subs, problems = discover(tmp_path, KNOWN)
    assert not subs and "characters" in problems[0][2]
    flat = tmp_path / "flat"
    _nb(flat / "hal_04-scaling.ipynb")
    _nb(flat / "hal.ipynb", ["dropout_forward"])
    subs, problems = discover(flat, KNOWN)
    assert not problems
    assert [(s.student, s.assignment, s.path.name, s.conflict) for s in subs] == [
        ("hal", "04-scaling", "hal.ipynb", ("hal_04-scaling.ipynb",)),
        ("hal", "04-scaling", "hal_04-scaling.ipynb", ("hal.ipynb",))]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DiscoveryError, match="not found"):
        discover(tmp_path / "nope", KNOWN)


def test_relative_sqlite_urls_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_sqlite_url("sqlite:///g.db") == f"sqlite:///{tmp_path / 'g.db'}"
    assert absolute_sqlite_url("sqlite:////abs/g.db") == "sqlite:////abs/g.db"
    assert absolute_sqlite_url("postgresql://u@h/db") == "postgresql://u@h/db"


# --------------------------------------------------------------------------- conflicts


def _chapter_known() -> dict:
    """assignment -> grade_ids of the chapter solutions (what the pipeline recognises files by)."""
    known = {}
    for nb_path in sorted((REPO_ROOT / "solutions").glob("*/exercises.ipynb")):
        nb = nbformat.read(str(nb_path), as_version=4)
        known[nb_path.parent.name] = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}
    return known


def test_a_stub_named_alice_does_not_replace_alices_work(tmp_path):
    """Finding 6: alice.ipynb (a chapter 04 stub) sorted first and silently replaced alice_04-scaling.ipynb."""
    known = _chapter_known()
    (tmp_path / "alice.ipynb").write_bytes((REPO_ROOT / "chapters" / "04-scaling" / "exercises.ipynb").read_bytes())
    (tmp_path / "alice_04-scaling.ipynb").write_bytes(
        (REPO_ROOT / "solutions" / "04-scaling" / "exercises.ipynb").read_bytes())
    _nb(tmp_path / "bob_04-scaling.ipynb")
    subs, problems = discover(tmp_path, known)
    assert not problems
    alice = [s for s in subs if s.student == "alice"]
    assert sorted((s.assignment, s.path.name, s.conflict) for s in alice) == [
        ("04-scaling", "alice.ipynb", ("alice_04-scaling.ipynb",)),
        ("04-scaling", "alice_04-scaling.ipynb", ("alice.ipynb",))]
    slugs = {s.slug for s in alice}
    assert len(slugs) == 2 and all(is_safe_component(x) and x.startswith("alice~") for x in slugs)
    bob = [s for s in subs if s.student == "bob"]
    assert bob[0].conflict == () and bob[0].slug == "bob"  # no conflict: output paths as before


def test_nbgrader_folder_with_two_notebooks_keeps_both(tmp_path):
    folder = tmp_path / "submitted" / "ida" / "04-scaling"
    _nb(folder / "copy.ipynb")
    _nb(folder / "mine.ipynb")
    _nb(tmp_path / "submitted" / "jon" / "04-scaling" / "exercises.ipynb")
    _nb(tmp_path / "submitted" / "jon" / "04-scaling" / "old.ipynb")  # exercises.ipynb wins, as in nbgrader
    subs, problems = discover(tmp_path, KNOWN)
    assert not problems
    ida = [s for s in subs if s.student == "ida"]
    assert [(s.path.name, s.conflict) for s in ida] == [
        ("copy.ipynb", ("ida/04-scaling/mine.ipynb",)), ("mine.ipynb", ("ida/04-scaling/copy.ipynb",))]
    assert len({s.slug for s in ida}) == 2
    assert [(s.path.name, s.slug) for s in subs if s.student == "jon"] == [("exercises.ipynb", "jon")]


def test_a_flat_file_and_an_nbgrader_folder_of_one_student_get_distinct_slugs(tmp_path):
    _nb(tmp_path / "kim" / "04-scaling" / "kim_04-scaling.ipynb")
    _nb(tmp_path / "kim_04-scaling.ipynb")
    subs, _ = discover(tmp_path, KNOWN)
    assert len(subs) == 2 and all(s.conflict for s in subs) and len({s.slug for s in subs}) == 2


def test_submission_stays_constructible_positionally():
    sub = Submission("al", "04-scaling", Path("/x/al_04-scaling.ipynb"))
    assert (sub.conflict, sub.slug, sub.key, sub.file) == ((), "al", "04-scaling/al", "al_04-scaling.ipynb")


# --------------------------------------------------------------------------- hostile names


FORMULA_NAMES = ['=HYPERLINK("evil.example","y")', "+cmd", "-cmd", "@cmd"]


def test_names_a_spreadsheet_or_terminal_would_run_are_problem_rows(tmp_path):
    for name in FORMULA_NAMES:
        _nb(tmp_path / f"{name}.ipynb", ["dropout_forward"])
    _nb(tmp_path / "\x1b[2J\x1b[Hfake_04-scaling.ipynb")
    _nb(tmp_path / "a\rb_04-scaling.ipynb")
    _nb(tmp_path / "evil\u202egnp.ipynb", ["dropout_forward"])
    subs, problems = discover(tmp_path, KNOWN)
    assert not subs
    assert len(problems) == len(FORMULA_NAMES) + 3
    for student, assignment, message in problems:
        assert assignment == "04-scaling"
        for text in (student, message):
            assert text.isprintable() and "\x1b" not in text and "\u202e" not in text
            text.encode("utf-8")
        assert not student.startswith(("=", "+", "-", "@")) or student in FORMULA_NAMES
        assert "rename" in message.lower()
    assert "\\x1b[2J\\x1b[Hfake" in {p[0] for p in problems}


def test_a_latin1_file_name_gets_a_problem_row(tmp_path):
    fd = os.open(os.fsencode(tmp_path) + b"/jos\xe9_04-scaling.ipynb", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode())
    os.close(fd)
    subs, problems = discover(tmp_path, KNOWN)
    assert not subs
    assert problems[0][:2] == ("jos\\xe9", "04-scaling") and "UTF-8" in problems[0][2]
    assert "jos\\xe9_04-scaling.ipynb" in problems[0][2] and "Rename" in problems[0][2]
    "".join(problems[0]).encode("utf-8")


def test_student_ids_in_any_script_are_accepted(tmp_path):
    _nb(tmp_path / "josé_04-scaling.ipynb")
    _nb(tmp_path / "李雷_04-scaling.ipynb")
    _nb(tmp_path / "ann.o'neil_04-scaling.ipynb")
    _nb(tmp_path / "bo.b-1@uni+x_04-scaling.ipynb")
    _nb(tmp_path / unicodedata.normalize("NFD", "zoë_04-scaling.ipynb"))
    subs, problems = discover(tmp_path, KNOWN)
    assert sorted(s.student for s in subs) == sorted(["josé", "李雷", "bo.b-1@uni+x", "zoë"])
    assert [p[0] for p in problems] == ["ann.o'neil"]
    assert all(s.slug == s.student for s in subs)


# --------------------------------------------------------------------------- links and special files

_PROBE = r"""
import json, sys, time
from autograder.submissions import discover
from autograder.submission_reader import load_submission
root = sys.argv[1]
known = {"04-scaling": {"dropout_forward"}, "05-backprop": {"dropout_backward"}}
started = time.perf_counter()
subs, problems = discover(root, known)
found = time.perf_counter() - started
loaded = {}
for name in sys.argv[2:]:
    started = time.perf_counter()
    res = load_submission(root + "/" + name)
    loaded[name] = [res.notebook is None, res.digest, res.error, time.perf_counter() - started]
print(json.dumps({"subs": [[s.student, s.path.name] for s in subs], "problems": problems, "seconds": found,
                  "loaded": loaded}))
"""


def _probe(root: Path, *names: str) -> dict:
    """Discovery and load_submission in a child process with a memory cap and a
    timeout, so a regression that reads /dev/zero or waits on a FIFO fails
    instead of hanging the test run (or filling the machine's memory)."""
    def limits():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(root), *names], capture_output=True, text=True,
                              timeout=30, cwd=REPO_ROOT, preexec_fn=limits)
    except subprocess.TimeoutExpired:
        pytest.fail("discovery or load_submission blocked on a link or a special file")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_links_and_fifos_are_refused_before_they_are_opened(tmp_path):
    """Finding 5: a symlink to /dev/zero was hashed forever; a FIFO blocks whoever opens it."""
    _nb(tmp_path / "ann_04-scaling.ipynb")
    (tmp_path / "bob_04-scaling.ipynb").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "carol_04-scaling.ipynb")
    (tmp_path / "dan.ipynb").symlink_to("/dev/zero")  # no assignment in the name: discovery would peek
    os.mkfifo(tmp_path / "eve.ipynb")
    (tmp_path / "fay_04-scaling.ipynb").symlink_to(tmp_path / "ann_04-scaling.ipynb")  # even a link to a notebook
    out = _probe(tmp_path, "bob_04-scaling.ipynb", "carol_04-scaling.ipynb", "dan.ipynb", "eve.ipynb")
    assert out["subs"] == [["ann", "ann_04-scaling.ipynb"]]
    assert out["seconds"] < 1.0
    rows = {p[0]: p for p in out["problems"]}
    assert sorted(rows) == ["bob", "carol", "dan", "eve", "fay"]
    assert rows["bob"][1] == "04-scaling" and "symbolic link" in rows["bob"][2]
    assert rows["dan"][1] == "unknown" and "symbolic link" in rows["dan"][2]
    assert "not a regular file" in rows["carol"][2] and "FIFO" in rows["carol"][2]
    loaded = out["loaded"]
    for name, (no_notebook, digest, error, seconds) in loaded.items():
        assert no_notebook and seconds < 1.0, name
    assert "symbolic link" in loaded["bob_04-scaling.ipynb"][2]
    assert loaded["bob_04-scaling.ipynb"][1] == "link:" + hashlib.sha256(b"/dev/zero").hexdigest()
    assert "FIFO" in loaded["carol_04-scaling.ipynb"][2] and loaded["carol_04-scaling.ipynb"][1] == "special"


def test_links_in_the_nbgrader_layout_are_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    _nb(elsewhere / "04-scaling" / "exercises.ipynb")
    sub = tmp_path / "class" / "submitted"
    sub.mkdir(parents=True)
    (sub / "mallory").symlink_to(elsewhere, target_is_directory=True)      # a linked student folder
    (sub / "nina").mkdir()
    (sub / "nina" / "04-scaling").symlink_to(elsewhere / "04-scaling")     # a linked assignment folder
    _nb(sub / "oscar" / "05-backprop" / "notes.ipynb")
    (sub / "oscar" / "04-scaling").mkdir()
    (sub / "oscar" / "04-scaling" / "exercises.ipynb").symlink_to("/dev/zero")  # a linked notebook
    os.mkfifo(sub / "oscar" / "05-backprop" / "exercises.ipynb")               # a FIFO notebook
    subs, problems = discover(tmp_path / "class", KNOWN)
    assert not subs
    rows = {(p[0], p[1]): p[2] for p in problems}
    assert set(rows) == {("mallory", "unknown"), ("nina", "04-scaling"), ("oscar", "04-scaling"),
                         ("oscar", "05-backprop")}
    assert all("symbolic link" in m for k, m in rows.items() if k != ("oscar", "05-backprop"))
    assert "FIFO" in rows[("oscar", "05-backprop")]
    # a link named "submitted" does not redirect discovery elsewhere
    flat = tmp_path / "flat"
    _nb(flat / "pia_04-scaling.ipynb")
    (flat / "submitted").symlink_to(elsewhere, target_is_directory=True)
    subs, problems = discover(flat, KNOWN)
    assert [s.student for s in subs] == ["pia"]
    assert [(p[0], p[1]) for p in problems] == [("submitted", "unknown")] and "symbolic link" in problems[0][2]


def test_the_assignment_peek_is_capped_and_never_follows_links(tmp_path, monkeypatch):
    calls = []
    real = submissions_mod.read_regular_file

    def spy(path, max_bytes):
        calls.append((Path(path).name, max_bytes))
        return real(path, max_bytes)

    monkeypatch.setattr(submissions_mod, "read_regular_file", spy)
    monkeypatch.setattr(submissions_mod, "MAX_PEEK_BYTES", 1000)
    _nb(tmp_path / "big.ipynb", ["dropout_forward"] * 100)   # over the cap: cannot be guessed
    _nb(tmp_path / "ed.ipynb", ["dropout_backward"])
    _nb(tmp_path / "fi_04-scaling.ipynb")                     # its name says it all: never read
    subs, problems = discover(tmp_path, KNOWN)
    assert sorted(calls) == [("big.ipynb", 1000), ("ed.ipynb", 1000)]
    assert [(s.student, s.assignment) for s in subs] == [("ed", "05-backprop"), ("fi", "04-scaling")]
    assert [(p[0], p[1]) for p in problems] == [("big", "unknown")]


def test_discovering_ten_thousand_files_reads_none_of_them(tmp_path, monkeypatch):
    def never(path, max_bytes):
        raise AssertionError(f"{path} was read although its name says its assignment")

    monkeypatch.setattr(submissions_mod, "read_regular_file", never)
    for i in range(10_000):
        (tmp_path / f"s{i:05d}_04-scaling.ipynb").write_bytes(b"{}")
    started = time.perf_counter()
    subs, problems = discover(tmp_path, KNOWN)
    elapsed = time.perf_counter() - started
    assert len(subs) == 10_000 and not problems
    assert elapsed < 3.0, f"discovery took {elapsed:.1f} s"


# --------------------------------------------------------------------------- reading once


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def _notebook_dict(**top):
    nb = json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])))
    nb.update(top)
    return nb


def test_load_submission_reads_once_and_digests_what_it_parsed(tmp_path):
    path = _write_json(tmp_path / "a_04-scaling.ipynb", _notebook_dict())
    loaded = load_submission(path)
    assert loaded.error is None and loaded.notebook.cells[0].source == "x = 1"
    assert loaded.digest == hashlib.sha256(path.read_bytes()).hexdigest() == submission_digest(path)
    assert loaded.size == path.stat().st_size
    bad = tmp_path / "b_04-scaling.ipynb"
    bad.write_text('{"cells": [')
    loaded = load_submission(bad)
    assert loaded.notebook is None and "not valid JSON" in loaded.error
    assert loaded.digest == hashlib.sha256(b'{"cells": [').hexdigest() == submission_digest(bad)
    missing = load_submission(tmp_path / "nope.ipynb")
    assert missing.notebook is None and missing.digest == "unreadable" and missing.error


@pytest.mark.parametrize("metadata", [[], "a string", None, 3])
@pytest.mark.parametrize("version", [3, 4])
def test_odd_top_level_metadata_is_repaired(tmp_path, metadata, version):
    if version == 4:
        data = _notebook_dict(metadata=metadata)
    else:
        data = {"nbformat": 3, "nbformat_minor": 0, "metadata": metadata,
                "worksheets": [{"cells": [{"cell_type": "code", "input": "x = 1", "language": "python",
                                           "outputs": [], "metadata": {}}], "metadata": {}}]}
    path = _write_json(tmp_path / "m.ipynb", data)
    nb = load_submission(path).notebook
    assert nb is not None and nb.cells[0].source == "x = 1" and isinstance(nb.metadata, dict)
    assert read_submission(path).cells[0].source == "x = 1"


def test_hostile_json_is_invalid_with_a_plain_message():
    deep = _notebook_dict()
    node = deep["cells"][0]["metadata"]
    for _ in range(500):  # deep enough for nbformat's recursion, shallow enough for json's
        node["a"] = {}
        node = node["a"]
    for raw in (json.dumps(deep).encode(), b"[" * 100_000 + b"]" * 100_000,
                b'{"nbformat": 4, "cells": [' + b"9" * 10_000 + b"]}"):
        with pytest.raises(InvalidNotebook) as info:
            parse_submission(raw, "deep_04-scaling.ipynb")
        message = str(info.value)
        assert message.startswith("deep_04-scaling.ipynb") and "recursion" not in message.lower()


def test_reader_messages_show_hostile_names_safely(tmp_path):
    fd = os.open(os.fsencode(tmp_path) + b"/\x1b[2Jjos\xe9.ipynb", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    loaded = load_submission(Path(os.fsdecode(os.fsencode(tmp_path) + b"/\x1b[2Jjos\xe9.ipynb")))
    assert loaded.notebook is None and loaded.error.startswith("\\x1b[2Jjos\\xe9.ipynb is empty")
    loaded.error.encode("utf-8")


def test_stray_files_are_not_students_and_wrong_folders_are_clear_errors(tmp_path):
    """Issue 8: README.txt was a student; an empty folder or one student's folder gave "0 submissions"."""
    flat = tmp_path / "flat"
    _nb(flat / "ann_04-scaling.ipynb")
    (flat / "README.txt").write_text("hello")
    (flat / "grades.csv").write_text("a,b")
    ignored = []
    subs, problems = discover(flat, KNOWN, ignored=ignored)
    assert [s.student for s in subs] == ["ann"] and not problems and sorted(ignored) == ["README.txt", "grades.csv"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DiscoveryError, match="no submissions found.*Expected nbgrader's layout"):
        discover(tmp_path / "empty", KNOWN)
    only_stray = tmp_path / "stray"
    only_stray.mkdir()
    (only_stray / "README.txt").write_text("x")
    with pytest.raises(DiscoveryError, match="README.txt"):
        discover(only_stray, KNOWN)
    _nb(tmp_path / "submitted" / "bob" / "04-scaling" / "exercises.ipynb")
    with pytest.raises(DiscoveryError, match="ONE student's folder"):
        discover(tmp_path / "submitted" / "bob", KNOWN)
