"""Command line: ``python -m autograder grade SUBMISSIONS [options]``."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .pipeline import GradeRun, grade_class
from .report import totals, write_reports
from .submissions import DiscoveryError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder",
                                     description="Grade dropout-course notebooks in a sandbox against the hidden reference.")
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser("grade", help="grade a folder of submissions")
    grade.add_argument("submissions", type=Path,
                       help="nbgrader 'submitted/<student>/<assignment>/' tree, or a flat folder of "
                            "<student>.ipynb / <student>_<assignment>.ipynb files")
    grade.add_argument("--assignment", help="grade only this assignment (e.g. 04-scaling); default: all")
    grade.add_argument("--out", type=Path, default=Path("grading"),
                       help="output folder: reports, feedback, autograded notebooks, resume journal (default: grading)")
    grade.add_argument("--db", help="gradebook SQLAlchemy URL (default: sqlite:///OUT/gradebook.db)")
    grade.add_argument("--jobs", "-j", type=int, default=1, help="submissions graded in parallel (default 1)")
    grade.add_argument("--timeout", type=int, default=60, help="seconds per cell before it is stopped (default 60)")
    grade.add_argument("--regrade", action="store_true",
                       help="grade every submission again, even those the journal in OUT/results says are done "
                            "(after a change to the checks or the reference)")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def absolute_sqlite_url(url: str) -> str:
    """``sqlite:///relative.db`` made absolute: nbgrader opens the gradebook
    from a temporary course directory, where a relative path points elsewhere."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix):].startswith("/"):
        return prefix + str(Path(url[len(prefix):]).resolve())
    return url


def configure_logging(out: Path) -> Path:
    """Everything to ``OUT/grading.log``; the console gets only the grader's
    own warnings (a missing sandbox, say), not nbgrader's per-cell notes."""
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "grading.log"
    to_file = logging.FileHandler(log_path)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    to_console = logging.StreamHandler(sys.stderr)
    to_console.setLevel(logging.WARNING)
    to_console.addFilter(lambda record: record.name.startswith("autograder"))
    root = logging.getLogger()
    root.handlers[:] = [to_file, to_console]
    root.setLevel(logging.INFO)
    traitlets_log = logging.getLogger("traitlets")  # nbgrader's preprocessors log here
    traitlets_log.handlers[:] = []
    traitlets_log.propagate = True
    return log_path


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.jobs < 1 or args.timeout < 1:
        print("error: --jobs and --timeout must be at least 1", file=sys.stderr)
        return 2
    out = args.out.resolve()
    db_url = absolute_sqlite_url(args.db) if args.db else f"sqlite:///{out / 'gradebook.db'}"
    log_path = configure_logging(out)
    run = GradeRun(out=out, db_url=db_url, jobs=args.jobs, cell_timeout=args.timeout,
                   progress=not args.no_progress, regrade=args.regrade)
    started = time.perf_counter()
    try:
        results = grade_class(args.submissions, run, args.assignment, log=lambda m: print(m, file=sys.stderr))
    except (DiscoveryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = write_reports(results, out)
    elapsed = time.perf_counter() - started
    for res in sorted(results, key=lambda r: (r["assignment"], r["student"])):
        score, max_score = totals(res)
        flag = "  [flagged: " + "; ".join(res["flags"]) + "]" if res.get("flags") else ""
        print(f"{res['assignment']:12s} {res['student']:24s} {score:6g} / {max_score:g}  {res.get('status', '')}{flag}")
    print(f"\n{len(results)} submission(s) in {elapsed:.1f} s. Gradebook: {db_url}\n"
          f"CSV: {paths['csv']}\nJSON: {paths['json']}\nFeedback: {paths['feedback']}/<student>/<assignment>.html\nLog: {log_path}")
    return 0
