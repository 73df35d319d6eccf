"""Reports of a grading run: grades.csv, report.json and per-student feedback.

``report.json`` has one row per (student, assignment, grade_id) with score,
max_score, status and messages. ``grades.csv`` has one row per (student,
assignment) with the totals. Feedback pages show the student's scores and
messages only: no hidden inputs, no reference code.
"""
from __future__ import annotations

import csv
import html
import json
from pathlib import Path


def report_rows(results: list) -> list:
    rows = []
    for res in results:
        for fn in res["functions"]:
            rows.append({"student": res["student"], "assignment": res["assignment"],
                         "grade_id": fn["grade_id"], "score": fn["score"], "max_score": fn["max_score"],
                         "status": fn["status"], "messages": fn["messages"],
                         "submission_status": res.get("status", ""), "flags": res.get("flags", [])})
    return sorted(rows, key=lambda r: (r["student"], r["assignment"], r["grade_id"]))


def totals(res: dict) -> tuple[float, float]:
    return (round(sum(f["score"] for f in res["functions"]), 2),
            round(sum(f["max_score"] for f in res["functions"]), 2))


def write_reports(results: list, out: Path) -> dict:
    """Write the three outputs into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "csv": out / "grades.csv", "feedback": out / "feedback"}
    paths["json"].write_text(json.dumps({"rows": report_rows(results)}, indent=1))
    with open(paths["csv"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student_id", "assignment", "score", "max_score", "status", "flags"])
        for res in sorted(results, key=lambda r: (r["student"], r["assignment"])):
            score, max_score = totals(res)
            writer.writerow([res["student"], res["assignment"], score, max_score,
                             res.get("status", ""), "; ".join(res.get("flags", []))])
    for res in results:
        folder = paths["feedback"] / res["student"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{res['assignment']}.html").write_text(feedback_html(res))
    return paths


def feedback_html(res: dict) -> str:
    """A self-contained feedback page for one student and assignment."""
    esc = html.escape
    score, max_score = totals(res)
    rows = []
    for fn in res["functions"]:
        items = "".join(f"<li>{esc(m)}</li>" for m in fn["messages"])
        rows.append(f"<tr class='{esc(fn['status'])}'><td><code>{esc(fn['grade_id'])}</code></td>"
                    f"<td>{fn['score']:g} / {fn['max_score']:g}</td><td>{esc(fn['status'])}</td>"
                    f"<td><ul>{items}</ul></td></tr>")
    notes = "".join(f"<li>{esc(m)}</li>" for m in res.get("messages", []) if m)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Feedback: {esc(res['assignment'])} for {esc(res['student'])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td{{vertical-align:top;padding:.3em .6em}}
tr.full td:nth-child(2){{color:#1a7f37}} tr.zero td:nth-child(2),tr.not_run td:nth-child(2){{color:#b3261e}}
table{{border-collapse:collapse}} tr{{border-bottom:1px solid #ddd}}</style></head>
<body><h1>{esc(res['assignment'])}: {score:g} / {max_score:g}</h1>
<p>Student: <strong>{esc(res['student'])}</strong>. Each function was run on fresh inputs and compared
with a reference implementation; messages say what a correct function does.</p>
{f'<h2>About the run</h2><ul>{notes}</ul>' if notes else ''}
<table><tr><th>function</th><th>points</th><th>status</th><th>what to fix</th></tr>
{''.join(rows)}</table></body></html>
"""
