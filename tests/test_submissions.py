"""Finding submissions in nbgrader's layout and in a flat folder."""
import json
from pathlib import Path

import pytest

from autograder.cli import absolute_sqlite_url
from autograder.submissions import DiscoveryError, discover

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
    assert sorted(s.student for s in subs) == ["dora", "fay"] and not problems


def test_bad_student_ids_and_duplicates_are_reported(tmp_path):
    _nb(tmp_path / "submitted" / "bad name!" / "04-scaling" / "exercises.ipynb")
    subs, problems = discover(tmp_path, KNOWN)
    assert not subs and "characters" in problems[0][2]
    flat = tmp_path / "flat"
    _nb(flat / "hal_04-scaling.ipynb")
    _nb(flat / "hal.ipynb", ["dropout_forward"])
    subs, problems = discover(flat, KNOWN)
    assert len(subs) == 1 and "two submissions" in problems[0][2]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DiscoveryError, match="not found"):
        discover(tmp_path / "nope", KNOWN)


def test_relative_sqlite_urls_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_sqlite_url("sqlite:///g.db") == f"sqlite:///{tmp_path / 'g.db'}"
    assert absolute_sqlite_url("sqlite:////abs/g.db") == "sqlite:////abs/g.db"
    assert absolute_sqlite_url("postgresql://u@h/db") == "postgresql://u@h/db"
