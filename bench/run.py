"""Benchmark: plain `nbgrader autograde` vs our sandboxed grader, same run.

Grades the same submissions (copies of each chapter's solution notebook,
``--students`` per assignment, default 8) three ways and prints seconds per notebook
and the ratios the design budgets:

* ours with 1 job / plain nbgrader   (budget <= 1.2)
* throughput of ours with 2 jobs / plain nbgrader (budget >= 1.7)

Run: ``make bench`` or ``.venv/bin/python -m bench.run --students 4``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.nbgrader_setup import REPO_ROOT, SOLUTIONS, assignments

NBGRADER_CONFIG = """c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
c.Execute.timeout = 120
"""


def _timed(cmd, cwd, env=None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}")
    return elapsed


def build_course(root: Path, chosen: list, students: int) -> int:
    """An nbgrader course dir with source/ and submitted/ for every assignment."""
    (root / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(root=str(root)))
    count = 0
    for assignment in chosen:
        (root / "source" / assignment).mkdir(parents=True)
        shutil.copy2(SOLUTIONS / assignment / "exercises.ipynb", root / "source" / assignment / "exercises.ipynb")
        for i in range(students):
            folder = root / "submitted" / f"student{i:02d}" / assignment
            folder.mkdir(parents=True)
            shutil.copy2(SOLUTIONS / assignment / "exercises.ipynb", folder / "exercises.ipynb")
            count += 1
    return count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=8, help="submissions per assignment (default 8)")
    parser.add_argument("--assignment", action="append", help="limit to these assignments")
    args = parser.parse_args(argv)
    chosen = args.assignment or assignments()
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        n = build_course(root, chosen, args.students)
        for assignment in chosen:  # setup, not timed: both graders need the gradebook filled
            _timed([bin_dir / "nbgrader", "generate_assignment", assignment, "--force"], root, env)
        plain = sum(_timed([bin_dir / "nbgrader", "autograde", assignment, "--create", "--force"], root, env)
                    for assignment in chosen)
        ours = {}
        for jobs in (1, 2):
            out = root / f"ours-{jobs}"
            ours[jobs] = _timed([sys.executable, "-m", "autograder", "grade", str(root / "submitted"),
                                 "--out", str(out), "--jobs", str(jobs), "--no-progress"], REPO_ROOT, env)
            rows = json.loads((out / "report.json").read_text())["rows"]
            lost = [r for r in rows if r["score"] != r["max_score"]]
            if lost:
                sys.exit(f"ours with {jobs} job(s) did not give the solutions full marks: {lost[:2]}")
    print(f"{n} notebooks ({', '.join(chosen)}), {os.cpu_count()} CPUs")
    print(f"{'grader':28s} {'total s':>8s} {'s/notebook':>11s}")
    print(f"{'plain nbgrader autograde':28s} {plain:8.1f} {plain / n:11.2f}")
    for jobs, secs in ours.items():
        print(f"{'ours, --jobs ' + str(jobs):28s} {secs:8.1f} {secs / n:11.2f}")
    print(f"\nours (1 job) / plain            = {ours[1] / plain:.2f}   (budget <= 1.2)")
    print(f"throughput ours (2 jobs) / plain = {plain / ours[2]:.2f}   (budget >= 1.7)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
