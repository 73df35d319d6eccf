"""chapters/*/exercises.ipynb is exactly what nbgrader generates from solutions/.

And nothing under chapters/ (what students and the website see) carries solution code,
hidden tests, a sentinel planted in the solutions, or a reference to the grader.
Set ``DROPOUT_BOOK_ROOT`` to check another copy of the repository.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from scripts import generate_student

REPO_ROOT = Path(__file__).resolve().parent.parent
ROOT = Path(os.environ.get("DROPOUT_BOOK_ROOT", REPO_ROOT)).resolve()
SOLUTION_NOTEBOOKS = sorted((ROOT / "solutions").glob("[0-9][0-9]-*/exercises.ipynb"))
LEAKS = re.compile(r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS|"
                   r"SENTINEL-[A-Z]+-[0-9A-Za-z-]+|autograder")


_GENERATED: dict[str, Path] = {}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Generate each chapter at most once per module (nbgrader takes seconds)."""
    base = tmp_path_factory.mktemp("generated")

    def get(chapter_dir: Path) -> Path:
        if chapter_dir.name not in _GENERATED:
            out = base / chapter_dir.name
            generate_student.generate(chapter_dir, out)
            _GENERATED[chapter_dir.name] = out
        return _GENERATED[chapter_dir.name]

    return get


def _cells(path: Path) -> list[tuple[str, str, dict]]:
    """Cell type, source and nbgrader flags; not checksums nor execution counts."""
    return generate_student.normalise(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("solution", SOLUTION_NOTEBOOKS,
                         ids=[p.parent.name for p in SOLUTION_NOTEBOOKS])
def test_student_notebook_matches_fresh_generation(solution, generated):
    chapter = solution.parent.name
    committed = ROOT / "chapters" / chapter / "exercises.ipynb"
    assert committed.is_file(), (
        f"{committed.relative_to(ROOT)} is missing: run `make student` to generate it "
        f"from solutions/{chapter}/"
    )
    fresh = generated(solution.parent) / "exercises.ipynb"
    assert fresh.is_file(), "nbgrader generated no exercises.ipynb"
    expected, actual = _cells(fresh), _cells(committed)
    if expected != actual:
        diffs = [i for i, (a, b) in enumerate(zip(expected, actual)) if a != b]
        pytest.fail(
            f"chapters/{chapter}/exercises.ipynb is not what nbgrader generates from "
            f"solutions/{chapter}/exercises.ipynb ({len(actual)} cells committed, "
            f"{len(expected)} generated, differing cells: {diffs[:10]}). Never edit the "
            f"student notebook by hand: edit the solution and run `make student`."
        )


@pytest.mark.parametrize("solution", SOLUTION_NOTEBOOKS,
                         ids=[p.parent.name for p in SOLUTION_NOTEBOOKS])
def test_student_notebook_has_no_outputs(solution):
    committed = ROOT / "chapters" / solution.parent.name / "exercises.ipynb"
    if not committed.is_file():
        pytest.skip("missing; reported by test_student_notebook_matches_fresh_generation")
    nb = json.loads(committed.read_text(encoding="utf-8"))
    with_outputs = [i for i, c in enumerate(nb["cells"])
                    if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not with_outputs, f"{committed.relative_to(ROOT)} has outputs in cells {with_outputs}"


def test_every_student_notebook_has_a_source():
    """A chapters/*/exercises.ipynb without solutions/ counterpart was written by hand."""
    orphans = [p.relative_to(ROOT) for p in sorted((ROOT / "chapters").glob("*/exercises.ipynb"))
               if not (ROOT / "solutions" / p.parent.name / "exercises.ipynb").is_file()]
    assert not orphans, f"student notebooks with no nbgrader source in solutions/: {orphans}"


def test_nothing_under_chapters_leaks():
    hits = []
    for path in sorted((ROOT / "chapters").rglob("*")):
        if not path.is_file() or ".ipynb_checkpoints" in path.parts or "__pycache__" in path.parts:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for match in sorted(set(LEAKS.findall(text))):
            hits.append(f"{path.relative_to(ROOT)}: {match!r}")
    assert not hits, (
        "chapters/ is public (students, website) but contains solution / hidden-test "
        "markers, solution sentinels or references to the grader:\n  " + "\n  ".join(hits)
    )


@pytest.mark.parametrize("solution", SOLUTION_NOTEBOOKS,
                         ids=[p.parent.name for p in SOLUTION_NOTEBOOKS])
def test_check_mode_agrees(solution, generated):
    """The comparison `make student --check` uses finds no difference either."""
    problems = generate_student.compare(generated(solution.parent),
                                        ROOT / "chapters" / solution.parent.name)
    assert not problems, "\n".join(problems)
