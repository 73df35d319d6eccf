"""The gradebook works on PostgreSQL too (``--db postgresql+psycopg://...``),
graded in parallel. A throwaway server runs as an unprivileged user in a temp
dir; the test is skipped, with the reason, where no PostgreSQL is installed."""
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.nbgrader_setup import SOLUTIONS, assignments
from tests.grading_helpers import run_grader

pytestmark = pytest.mark.slow
UNPRIVILEGED = 65534  # postgres refuses to run as root


def _pg_bin(name):
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        pytest.skip(f"PostgreSQL's {name} is not installed")
    return found


def _as_unprivileged(cmd):
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups", *cmd]


@pytest.fixture
def postgres_url(tmp_path):
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    pytest.importorskip("psycopg")
    # Not under tmp_path: pytest's folders are root-only, and the server runs unprivileged.
    home = Path(tempfile.mkdtemp(prefix="dropout-pg-"))
    if os.geteuid() == 0:
        os.chown(home, UNPRIVILEGED, UNPRIVILEGED)
    data = home / "data"
    subprocess.run(_as_unprivileged([initdb, "-D", str(data), "--auth=trust", "-U", "grader"]),
                   check=True, capture_output=True)
    subprocess.run(_as_unprivileged([pg_ctl, "-D", str(data), "-l", str(home / "log"), "-w", "-o",
                                     f"-k {home} -c listen_addresses=''", "start"]),
                   check=True, capture_output=True)
    try:
        # no TCP port (none to race for): the server listens only on a socket in its private folder
        yield f"postgresql+psycopg://grader@/postgres?host={home}"
    finally:
        subprocess.run(_as_unprivileged([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_grading_into_postgresql(tmp_path, postgres_url):
    assignment = assignments()[0]
    subs = tmp_path / "flat"
    subs.mkdir()
    solution = nbformat.read(str(SOLUTIONS / assignment / "exercises.ipynb"), as_version=4)
    for student in ("ann", "bo"):
        nbformat.write(solution, str(subs / f"{student}_{assignment}.ipynb"))
    proc = run_grader(subs, tmp_path / "out", "--db", postgres_url, "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    from tests.test_grading_e2e import assert_full_auto_marks_and_written_pending

    for student in ("ann", "bo"):
        assert_full_auto_marks_and_written_pending(postgres_url, assignment, student)
