"""Reports of a grading run: grades.csv, report.json and per-student feedback.

``report.json`` has ``rows``: one per (student, assignment, grade_id) with
score, max_score, status, messages and ``checks`` (each sub-check's name,
passed, central, gated and message); ``written``: answers awaiting an
instructor; ``submissions``: one per submitted file with its totals, status,
messages, flags and grading ``seconds`` (``None`` when not recorded); and
``run``: facts about the grading run (wall-clock seconds, jobs), when the
caller gives them. ``grades.csv`` has one row per submitted
file with the totals. Feedback pages show the student's scores and messages
only: no hidden inputs, no reference code.

Names are data: every student, assignment and file name written is passed
through :func:`autograder.names.display` (printable, no escape codes, always
UTF-8-encodable, so no name can make a write fail half-way), every CSV text
cell through :func:`autograder.names.csv_safe` (no formulas), and feedback
folders are safe path components. Each file is written to a temporary name
and renamed into place, so a failure never leaves a truncated report.

Keys read from each result dict (what the pipeline must provide):

* ``student``, ``assignment`` (str), ``functions`` (list of
  ``{"grade_id", "score", "max_score", "status", "messages"}``): required;
* ``status`` (str), ``messages`` (list of str), ``flags`` (list of str):
  optional, default empty;
* ``slug`` (str): optional; the feedback folder is ``feedback/<slug>/``
  (falls back to the student id), so two conflicting files get two pages;
* ``file`` (str, the submitted file's name, raw or displayed): optional,
  falls back to the last component of ``source``;
* ``written`` (list of ``{"grade_id", "max_score"}``, written answers that
  await an instructor's grade): optional; the CSV note gives their points,
  report.json lists them under ``written`` and the feedback page shows them,
  never in the score (which is the grader's alone);
* ``conflict`` (list of the other files' names claiming the same student and
  assignment): optional; when non-empty the CSV status is ``conflict``, the
  note names the other files, and report.json rows carry the list;
* ``seconds`` (number, wall-clock seconds the submission took in its
  worker): optional; report.json's ``submissions`` carry it;
* each function's ``checks`` (list of ``{"name", "passed", "central",
  "gated", "message"}``): optional; report.json rows carry them.
"""
from __future__ import annotations

import csv
import html
import io
import json
import logging
import math
from pathlib import Path, PurePath

from .names import DISPLAY_LIMIT, component, csv_safe, display
from .safe_files import write_atomic

log = logging.getLogger(__name__)

CSV_COLUMNS = ["student_id", "assignment", "score", "max_score", "status", "flags", "file", "note"]
#: cap of a message written to a report (characters); messages are the grader's, but may quote names.
MESSAGE_LIMIT = 4000


def _d(value, limit: int = DISPLAY_LIMIT) -> str:
    return display("" if value is None else value, limit)


def _message(value) -> str:
    return display("" if value is None else value, MESSAGE_LIMIT, multiline=True)


def result_file(res: dict) -> str:
    """The submitted file's name, displayed (empty when unknown)."""
    name = res.get("file")
    if not name:
        source = res.get("source") or ""
        name = PurePath(str(source)).name if source else ""
    return _d(name)


def result_conflict(res: dict) -> list:
    """The other files that claim this result's student and assignment, displayed."""
    other = res.get("conflict") or []
    if isinstance(other, str):
        other = [other]
    return [_d(o) for o in other]


def conflict_note(res: dict) -> str:
    others = result_conflict(res)
    if not others:
        return ""
    return (f"conflict: {len(others) + 1} files claim this student and assignment; the others: "
            f"{', '.join(others)}. Each was graded; decide which one counts.")


def report_rows(results: list) -> list:
    rows = []
    for res in results:
        common = {"student": _d(res["student"]), "assignment": _d(res["assignment"]),
                  "file": result_file(res), "submission_status": _d(res.get("status", "")),
                  "flags": [_message(f) for f in res.get("flags", [])], "conflict": result_conflict(res)}
        for fn in res["functions"]:
            rows.append({"student": common["student"], "assignment": common["assignment"],
                         "grade_id": _d(fn["grade_id"]), "score": fn["score"], "max_score": fn["max_score"],
                         "status": _d(fn["status"]), "messages": [_message(m) for m in fn["messages"]],
                         "submission_status": common["submission_status"], "flags": common["flags"],
                         "file": common["file"], "conflict": common["conflict"],
                         "checks": [check_row(c) for c in fn.get("checks", []) if isinstance(c, dict)]})
    return sorted(rows, key=lambda r: (r["student"], r["assignment"], r["grade_id"], r["file"]))


def check_row(check: dict) -> dict:
    """One sub-check as report.json lists it (names and messages displayed)."""
    return {"name": _d(check.get("name", "")), "passed": bool(check.get("passed")),
            "central": bool(check.get("central")), "gated": bool(check.get("gated")),
            "message": _message(check.get("message", ""))}


def seconds_of(res: dict) -> float | None:
    """The submission's grading time in seconds, or None when not recorded."""
    value = res.get("seconds")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return round(float(value), 2)
    return None


def submission_rows(results: list) -> list:
    """report.json's ``submissions``: one per submitted file, with its totals
    (automatic points only; ``written_points`` await an instructor)."""
    rows = []
    for res in results:
        score, max_score = totals(res)
        rows.append({"student": _d(res["student"]), "assignment": _d(res["assignment"]), "file": result_file(res),
                     "status": _d(res.get("status", "")), "score": score, "max_score": max_score,
                     "written_points": pending_points(res),
                     "messages": [_message(m) for m in res.get("messages", []) if m],
                     "flags": [_message(f) for f in res.get("flags", [])], "conflict": result_conflict(res),
                     "seconds": seconds_of(res)})
    return sorted(rows, key=lambda r: (r["student"], r["assignment"], r["file"]))


def written_rows(results: list) -> list:
    """report.json's ``written`` rows: answers awaiting an instructor's grade."""
    rows = [{"student": _d(res["student"]), "assignment": _d(res["assignment"]), "file": result_file(res),
             "grade_id": _d(w["grade_id"]), "max_score": w["max_score"], "status": "manual"}
            for res in results for w in res.get("written", [])]
    return sorted(rows, key=lambda r: (r["student"], r["assignment"], r["grade_id"], r["file"]))


def pending_points(res: dict) -> float:
    return round(sum(w["max_score"] for w in res.get("written", [])), 2)


def written_note(res: dict) -> str:
    n, points = len(res.get("written", [])), pending_points(res)
    if not n:
        return ""
    return (f"{n} written answer{'s' if n != 1 else ''} ({points:g} point{'s' if points != 1 else ''}) "
            f"await manual grading, not included in score or max_score")


def totals(res: dict) -> tuple[float, float]:
    return (round(sum(f["score"] for f in res["functions"]), 2),
            round(sum(f["max_score"] for f in res["functions"]), 2))


def csv_row(res: dict) -> list:
    """One grades.csv row: displayed, formula-safe text cells; numbers as they are."""
    score, max_score = totals(res)
    status = _d(res.get("status", ""))
    note = conflict_note(res)
    if note:
        note = f"{note} (status of this file: {status})"
        status = "conflict"
    elif status not in ("ok", "") and res.get("messages"):
        note = display(res["messages"][0], 300)
    if written_note(res):
        note = f"{note}; {written_note(res)}" if note else written_note(res)
    cells = [_d(res["student"]), _d(res["assignment"]), score, max_score, status,
             "; ".join(_d(f, 300) for f in res.get("flags", [])), result_file(res), note]
    return [csv_safe(c) for c in cells]


def write_reports(results: list, out: Path, run: dict | None = None) -> dict:
    """Write the three outputs into ``out``; returns their paths. Never fails
    on a name; a feedback page that cannot be written is logged and skipped.
    ``run`` (JSON-able facts about the grading run) goes into report.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "csv": out / "grades.csv", "feedback": out / "feedback"}
    write_atomic(paths["json"], json.dumps({"rows": report_rows(results), "written": written_rows(results),
                                            "submissions": submission_rows(results), "run": dict(run or {})},
                                           indent=1))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for res in sorted(results, key=lambda r: (_d(r["student"]), _d(r["assignment"]), result_file(r))):
        writer.writerow(csv_row(res))
    write_atomic(paths["csv"], buf.getvalue())
    for res, page in feedback_paths(results, paths["feedback"]):
        try:
            page.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(page, feedback_html(res))
        except OSError as exc:
            log.warning("feedback page %s not written: %s", display(str(page), 500), display(exc, 500))
    return paths


def feedback_paths(results: list, folder: Path) -> list:
    """(result, page path) pairs: ``folder/<slug>/<assignment>.html``, every
    component safe (no ``..``, ``/`` or hidden names) and no two results
    sharing a page (a clash gets the file's slug and then a number appended)."""
    used, pairs = set(), []
    for res in results:
        base = component(res.get("slug") or res["student"])
        page = component(str(res["assignment"])) + ".html"
        name, n = base, 1
        while (name, page) in used:
            name = component(f"{base}~{result_file(res) or n}") if n == 1 else component(f"{base}~{n}")
            n += 1
        used.add((name, page))
        pairs.append((res, folder / name / page))
    return pairs


def feedback_html(res: dict) -> str:
    """A self-contained feedback page for one student and assignment."""
    esc = html.escape
    student, assignment = esc(_d(res["student"])), esc(_d(res["assignment"]))
    score, max_score = totals(res)
    rows = []
    for fn in res["functions"]:
        items = "".join(f"<li>{esc(_message(m))}</li>" for m in fn["messages"])
        rows.append(f"<tr class='{esc(_d(fn['status']))}'><td><code>{esc(_d(fn['grade_id']))}</code></td>"
                    f"<td class='points'>{fn['score']:g}&nbsp;/&nbsp;{fn['max_score']:g}</td><td>{esc(_d(fn['status']))}</td>"
                    f"<td><ul>{items}</ul></td></tr>")
    for w in res.get("written", []):
        rows.append(f"<tr class='manual'><td><code>{esc(_d(w['grade_id']))}</code></td>"
                    f"<td class='points'>&ndash;&nbsp;/&nbsp;{w['max_score']:g}</td><td>manual</td>"
                    f"<td><ul><li>your written answer is graded by your instructor</li></ul></td></tr>")
    notes = [_message(m) for m in res.get("messages", []) if m]
    if conflict_note(res):
        notes.insert(0, conflict_note(res))
    notes_html = "".join(f"<li>{esc(m)}</li>" for m in notes)
    pending = f" (+ {pending_points(res):g} for written answers, graded by hand)" if res.get("written") else ""
    file = result_file(res)
    file_html = f" File: <code>{esc(file)}</code>." if file else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Feedback: {assignment} for {student}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td{{vertical-align:top;padding:.3em .6em}}td.points{{white-space:nowrap}}
tr.full td:nth-child(2){{color:#1a7f37}} tr.zero td:nth-child(2),tr.not_run td:nth-child(2){{color:#b3261e}}
table{{border-collapse:collapse}} tr{{border-bottom:1px solid #ddd}}</style></head>
<body><h1>{assignment}: {score:g} / {max_score:g}{pending}</h1>
<p>Student: <strong>{student}</strong>.{file_html} Each function was run on fresh inputs and compared
with a reference implementation; messages say what a correct function does.</p>
{f'<h2>About the run</h2><ul>{notes_html}</ul>' if notes_html else ''}
<table><tr><th>function</th><th>points</th><th>status</th><th>what to fix</th></tr>
{''.join(rows)}</table></body></html>
"""
