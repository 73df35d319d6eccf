"""``python -m autograder insights OUT``: the class report and the LMS exports.

Reads the runs (``--run RUN``, repeatable; default ``OUT`` itself), writes
``OUT/class_report.html`` and ``OUT/class_report.json`` plus the LMS exports,
or, with ``--anonymise``, ``OUT/class_report_anonymised.html`` / ``.json``
and no export. Bad input is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..names import display
from ..safe_files import write_atomic
from .aggregate import LOW_SHARE, summarise
from .anonymise import anonymise, load_key, pseudonyms
from .errors import InsightsError
from .exports import MISSING_CHOICES, write_exports
from .page import render
from .roster import read_roster
from .sources import load_runs

REPORT_NAME, ANONYMISED_NAME = "class_report", "class_report_anonymised"


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``insights`` on the grader's sub-command parser."""
    p = sub.add_parser("insights", help="class report (what the class got wrong) and LMS grade exports",
                       description="Write OUT/class_report.html and .json and Canvas/Moodle grade files from the "
                                   "report.json and gradebook of one or many grading runs.")
    p.add_argument("out", type=Path, help="folder to write into; also the run read when no --run is given")
    p.add_argument("--run", dest="runs", action="append", type=Path, metavar="RUN",
                   help="the --out folder of a grading run; repeat for several (a later run replaces an earlier "
                        "one's files of the same student and assignment)")
    p.add_argument("--db", help="gradebook SQLAlchemy URL of the runs (default: RUN/gradebook.db of each run)")
    p.add_argument("--roster", type=Path,
                   help="CSV of the class (nbgrader's student file: id, first_name, last_name, email, lms_user_id; "
                        "optionally sis_user_id, sis_login_id, section, username)")
    p.add_argument("--anonymise", "--anonymize", action="store_true",
                   help="write class_report_anonymised.html/.json with stable pseudonyms instead of names (no exports)")
    p.add_argument("--low", type=float, default=LOW_SHARE,
                   help=f"share of the automatic points below which an assignment counts as low (default {LOW_SHARE})")
    p.add_argument("--missing", choices=MISSING_CHOICES, default="blank",
                   help="what a roster student without a submission gets in the exports: no grade (blank in "
                        "Canvas, '-' in Moodle; default) or zero")
    return p


def write_insights(out: Path, runs: list | None = None, db_url: str | None = None, roster_path: Path | None = None,
                   anonymised: bool = False, low_share: float = LOW_SHARE, missing: str = "blank") -> dict:
    """Build the report and write every file; returns ``{"html", "json", "report", ...exports}``.
    Raises InsightsError on bad input."""
    out = Path(out)
    if not 0 < low_share <= 1:
        raise InsightsError(f"--low must be a share in (0, 1], got {low_share:g}")
    data = load_runs(runs or [out], db_url)
    if not data.submissions:
        raise InsightsError("report.json lists no submission: nothing to report")
    roster = read_roster(roster_path) if roster_path else None
    out.mkdir(parents=True, exist_ok=True)
    report = summarise(data, roster, low_share)
    paths: dict = {}
    if anonymised:
        names = pseudonyms({s.student for s in data.submissions} | set(roster.ids() if roster else []),
                           load_key(out))
        report = anonymise(report, names)
        report["anonymised"] = True
        name = ANONYMISED_NAME
    else:
        report["exports"] = write_exports(data, roster, out, missing)
        paths.update({f: out / f for f in report["exports"]["files"]})
        name = REPORT_NAME
    from .plots import assignment_figure  # matplotlib: imported only when a report is drawn, not by every grader start

    figures = {a["assignment"]: assignment_figure(a) for a in report["assignments"]}
    paths["json"], paths["html"] = out / f"{name}.json", out / f"{name}.html"
    write_atomic(paths["json"], json.dumps(report, indent=1, ensure_ascii=False))
    write_atomic(paths["html"], render(report, figures))
    paths["report"] = report
    return paths


def headline(report: dict) -> str:
    """One line for the terminal: the most common mistake, or that there is none."""
    t = report["totals"]
    line = (f"{t['students']} students, {t['graded']} graded, {t['ungradable']} not gradable, "
            f"{t['flagged']} flagged, {t['behind']} behind")
    if report["top_mistakes"]:
        m = report["top_mistakes"][0]
        line += (f"; most common mistake: {100 * m['share']:.0f}% in {m['assignment']} "
                 f"{m['grade_id']} ({display(m['check'], 80)})")
    return line


def run(args) -> int:
    """The ``insights`` sub-command."""
    try:
        paths = write_insights(args.out, args.runs, args.db, args.roster, args.anonymise, args.low, args.missing)
    except InsightsError as exc:
        print(f"error: {display(str(exc), 1000)}", file=sys.stderr)
        return 2
    print(f"Class report: {paths['html']}\nJSON: {paths['json']}")
    for key, path in paths.items():
        if key not in ("html", "json", "report"):
            print(f"Export: {path}")
    print(headline(paths["report"]))
    return 0

