"""Command line: ``python -m autograder grade SUBMISSIONS [options]`` and
``python -m autograder insights OUT [options]`` (:mod:`autograder.insights`),
which ``grade`` also runs on its own output at the end."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from . import insights
from .names import display
from .pipeline import GradeRun, Interrupted, grade_class
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
    grade.add_argument("--notebook-timeout", type=int, default=300,
                       help="seconds for a whole notebook, however many cells it has (default 300)")
    grade.add_argument("--regrade", action="store_true",
                       help="grade every submission again, even those the journal in OUT/results says are done "
                            "(after a change to the checks or the reference)")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    insights.add_parser(sub)
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


def _remove_if_empty(log_path: Path, made_folder: Path | None) -> None:
    """A run that failed before grading leaves no empty log (nor the folder it made)."""
    logging.shutdown()
    try:
        if log_path.stat().st_size == 0:
            log_path.unlink()
        if made_folder is not None:
            made_folder.rmdir()  # only if empty
    except OSError:
        pass


def warn_if_unsandboxed() -> None:
    """Say it once, on the console, before grading starts (workers log to the file)."""
    from .sandbox import bwrap_available

    if not bwrap_available():
        print("WARNING: bubblewrap (bwrap) is not available: student kernels run UNSANDBOXED with "
              "rlimits only and can read and write anything this user can. Install bubblewrap.",
              file=sys.stderr)


def main(argv=None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before or after grading itself: no traceback either
        print("\ninterrupted; run the same command again to resume.", file=sys.stderr)
        return 130


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "insights":
        return insights.run(args)
    if args.jobs < 1 or args.timeout < 1 or args.notebook_timeout < 1:
        print("error: --jobs, --timeout and --notebook-timeout must be at least 1", file=sys.stderr)
        return 2
    out = args.out.resolve()
    if out.exists() and not out.is_dir():
        print(f"error: --out {display(str(args.out), 300)} is a file; give a folder for the grading "
              "results (it is created if missing)", file=sys.stderr)
        return 2
    created_out = not out.exists()
    db_url = absolute_sqlite_url(args.db) if args.db else f"sqlite:///{out / 'gradebook.db'}"
    log_path = configure_logging(out)
    run = GradeRun(out=out, db_url=db_url, jobs=args.jobs, cell_timeout=args.timeout,
                   notebook_timeout=args.notebook_timeout, progress=not args.no_progress, regrade=args.regrade)
    started = time.perf_counter()
    warn_if_unsandboxed()
    try:
        results = grade_class(args.submissions, run, args.assignment, log=lambda m: print(m, file=sys.stderr))
    except (DiscoveryError, ValueError) as exc:
        print(f"error: {display(str(exc), limit=1000)}", file=sys.stderr)
        _remove_if_empty(log_path, out if created_out else None)
        return 2
    except (Interrupted, KeyboardInterrupt) as exc:
        done = f"{exc.done} of {exc.total} submissions graded in this run are" if isinstance(exc, Interrupted) \
            else "Submissions graded so far are"
        print(f"\ninterrupted. {done} kept in {out / 'results'}; run the same command again to "
              "grade the rest.", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started
    paths = write_reports(results, out, run={"seconds": round(elapsed, 2), "jobs": args.jobs})
    for res in sorted(results, key=lambda r: (r["assignment"], r["student"])):
        score, max_score = totals(res)
        flag = "  [flagged: " + "; ".join(res["flags"]) + "]" if res.get("flags") else ""
        conflict = "  [conflict: another file claims this student]" if res.get("conflict") else ""
        print(f"{display(res['assignment']):12s} {display(res['student']):24s} {score:6g} / {max_score:g}  "
              f"{display(res.get('status', ''))}{flag}{conflict}")
    print(f"\n{len(results)} submission(s) in {elapsed:.1f} s. Gradebook: {db_url}\n"
          f"CSV: {paths['csv']}\nJSON: {paths['json']}\nFeedback: {paths['feedback']}/<student>/<assignment>.html\nLog: {log_path}")
    print(class_report(out, db_url))
    return 0


def class_report(out: Path, db_url: str) -> str:
    """Write the class report and the LMS exports of this run; one line saying
    where, or why not (a report problem never fails the grading run)."""
    logging.captureWarnings(True)  # a library's warning goes to grading.log, not to the lecturer's terminal
    try:
        written = insights.write_insights(out, db_url=db_url)
    except insights.InsightsError as exc:
        return f"Class report not written: {display(str(exc), 1000)}"
    except Exception as exc:  # noqa: BLE001 - the grades are written; the report is a bonus
        logging.getLogger(__name__).exception("class report failed")
        return f"Class report not written ({type(exc).__name__}: {display(str(exc), 300)}); see {out / 'grading.log'}"
    finally:
        logging.captureWarnings(False)
    return (f"Class report: {written['html']} ({insights.command.headline(written['report'])})\n"
            f"LMS exports: {', '.join(str(p) for k, p in written.items() if k not in ('html', 'json', 'report'))}")
