"""nbgrader's view of the course: generate assignments, fill the gradebook.

``solutions/NN-name/exercises.ipynb`` is the nbgrader source of assignment
``NN-name``. Generating an assignment (i) writes the student version and
(ii) records the source cells (hidden tests included), grade cells and
points in a gradebook. nbgrader's ``--force`` wipes the whole release
folder, which would delete the prose page in ``chapters/NN-name/``; so we
always generate into a temporary course directory and copy out notebooks.
"""
from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from pathlib import Path

from traitlets.config import Config

#: nbgrader course id used for every gradebook (nbgrader's Gradebook default).
COURSE_ID = "default_course"
REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO_ROOT / "solutions"
CHAPTERS = REPO_ROOT / "chapters"


def speed_up_gradebook() -> None:
    """Cache nbgrader's schema-head lookup for this process.

    nbgrader's ``Gradebook()`` runs the ``alembic`` command (~0.45 s) on every
    construction to learn the schema head, a constant of the installed
    nbgrader; generating one assignment alone opens several gradebooks.
    """
    import nbgrader.api as api

    if not getattr(api.get_alembic_version, "_dropout_cached", False):
        cached = functools.lru_cache(maxsize=1)(_alembic_head)
        cached._dropout_cached = True
        api.get_alembic_version = cached


def _alembic_head() -> str:
    """The schema head nbgrader's migrations define, read in-process with
    alembic's API: the same answer as nbgrader's `alembic heads` subprocess,
    which takes about 2 s to start."""
    import nbgrader
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(nbgrader.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(config).get_current_head()


def assignments(solutions_root: Path = SOLUTIONS) -> list[str]:
    """Assignment ids: the ``NN-name`` folders of solutions/ holding notebooks."""
    return sorted(p.name for p in solutions_root.iterdir()
                  if p.is_dir() and any(p.glob("*.ipynb")))


def generate_assignment(assignment: str, db_url: str, out_dir: Path,
                        solutions_root: Path = SOLUTIONS) -> list[Path]:
    """Run nbgrader's GenerateAssignment for ``assignment``.

    Writes the student notebooks into ``out_dir`` (created) and records the
    assignment in the gradebook at ``db_url`` (created if needed). Returns the
    generated notebook paths.
    """
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.converters import GenerateAssignment

    speed_up_gradebook()
    source = solutions_root / assignment
    if not source.is_dir():
        raise ValueError(f"no such assignment: {assignment!r} (no folder {source})")
    with tempfile.TemporaryDirectory(prefix="nbgrader-course-") as tmp:
        course = Path(tmp)
        (course / "source").mkdir()
        # Copy only notebooks: any other file in the source folder would be released too.
        (course / "source" / assignment).mkdir()
        for nb in source.glob("*.ipynb"):
            shutil.copy2(nb, course / "source" / assignment / nb.name)
        config = Config()
        config.CourseDirectory.root = str(course)
        config.CourseDirectory.source_directory = "source"
        config.CourseDirectory.release_directory = "release"
        config.CourseDirectory.db_url = db_url
        # nbgrader's CourseDirectory defaults to course '' but Gradebook() to
        # 'default_course'; SQLite ignores the mismatch, PostgreSQL's foreign keys do not.
        config.CourseDirectory.course_id = COURSE_ID
        config.CourseDirectory.assignment_id = assignment
        config.GenerateAssignment.create_assignment = True
        config.GenerateAssignment.force = True
        coursedir = CourseDirectory(config=config)
        converter = GenerateAssignment(coursedir=coursedir, config=config)
        converter.log.setLevel(logging.WARNING)
        converter.log.addHandler(logging.StreamHandler())
        converter.start()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for nb in sorted((course / "release" / assignment).glob("*.ipynb")):
            shutil.copy2(nb, out_dir / nb.name)
            written.append(out_dir / nb.name)
    if not written:
        raise RuntimeError(f"nbgrader generated no notebook for {assignment}")
    return written
