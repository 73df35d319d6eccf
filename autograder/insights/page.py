"""The class report as one self-contained HTML page.

Input: :func:`~.aggregate.summarise`'s report (optionally anonymised, with an
``exports`` entry) and ``{assignment: PNG data URI}``. The page has no script
and loads nothing: images are data URIs and a Content-Security-Policy
forbids every request but data-URI images, so even a name that slipped past
escaping could not run code or call out. Every text that comes from a report
(names, files, messages, check names) goes through :func:`html.escape`.
"""
from __future__ import annotations

import html

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
#: lists of students longer than this fold into a <details> element.
FOLD_AFTER = 8

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:76em;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em} h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em} h3{margin-top:1.3em}
table{border-collapse:collapse;margin:.5em 0 1em} th,td{padding:.25em .6em;vertical-align:top;text-align:left}
tr{border-bottom:1px solid #e5e5e5} th{background:#f6f6f6} td.num,th.num{text-align:right;white-space:nowrap}
.lede{font-size:1.05em;color:#444} .muted{color:#666} .note{font-size:.9em;color:#555}
.share{font-weight:600;white-space:nowrap} code{font-size:.92em;background:#f3f3f3;padding:0 .2em;border-radius:3px}
td.missing{background:#fde2e1} td.ungradable{background:#fde2e1} td.low{background:#fff4ce} td.conflict{background:#e8e0f8}
td.ok{background:#eaf6ec} img{max-width:100%;height:auto} details summary{cursor:pointer}
.scroll{overflow-x:auto;max-width:100%} .who{white-space:nowrap} .example{font-size:.9em;color:#444;max-width:40em} .pill{display:inline-block;padding:0 .4em;border-radius:.6em;background:#eee;font-size:.85em}
"""


def e(value) -> str:
    """Escaped text for HTML content and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def pct(share) -> str:
    return "&ndash;" if share is None else f"{100 * share:.0f}&nbsp;%"


def num(value, digits: int = 2) -> str:
    if value is None:
        return "&ndash;"
    return f"{round(float(value), digits):g}"


def seconds(value) -> str:
    return "&ndash;" if value is None else f"{value:.1f}&nbsp;s"


def people(students: list) -> str:
    """A list of students, folded when long."""
    names = ", ".join(f"<span class='who'>{e(s)}</span>" for s in students)
    if len(students) <= FOLD_AFTER:
        return names
    return f"<details><summary>{len(students)} students</summary>{names}</details>"


def table(headers: list, rows: list, numeric: tuple = ()) -> str:
    """An HTML table; ``rows`` hold already-escaped cell HTML; columns in ``numeric`` right-aligned."""
    head = "".join(f"<th class='num'>{h}</th>" if i in numeric else f"<th>{h}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td class='num'>{c}</td>" if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>"


def headline(report: dict) -> str:
    t = report["totals"]
    parts = [f"{t['students']} students, {t['submissions']} submitted files in {t['assignments']} "
             f"assignment{'s' if t['assignments'] != 1 else ''}",
             f"{t['graded']} graded", f"{t['ungradable']} could not be graded", f"{t['flagged']} flagged for review",
             f"{t['behind']} student{'s' if t['behind'] != 1 else ''} behind"]
    if t["conflicts"]:
        parts.append(f"{t['conflicts']} with conflicting files")
    return "; ".join(parts) + "."


def top_mistakes(report: dict) -> str:
    """The most common mistakes across assignments, then the functions most often not attempted."""
    rows = [[f"<span class='share'>{pct(m['share'])}</span>", people(m["students"]), e(m["assignment"]),
             f"<code>{e(m['grade_id'])}</code>", e(m["check"]), f"<div class='example'>{e(m['example'])}</div>"]
            for m in report["top_mistakes"]]
    if rows:
        out = ("<p class='note'>Share: of the assignment's graded submissions. A sub-check withheld because a "
               "central one failed is not counted again.</p>"
               + table(["share", "students", "assignment", "function", "failed sub-check", "example message"], rows,
                       numeric=(0,)))
    else:
        out = ("<p>No graded submission made a mistake in a function it attempted (see <em>Needs your "
               "attention</em> for what could not be graded).</p>")
    stubs = [[f"<span class='share'>{pct(n['share'])}</span>", str(n["count"]), e(n["assignment"]),
              f"<code>{e(n['grade_id'])}</code>"] for n in report["top_not_attempted"]]
    if stubs:
        out += ("<h3>Most often not attempted</h3><p class='note'>Functions graded students left a stub.</p>"
                + table(["share", "students", "assignment", "function"], stubs, numeric=(0, 1)))
    return out


def grouped(report: dict, kind: str, key) -> list:
    """Entries of ``kind`` ("ungradable", "flagged") across assignments, one
    group per ``key(entry)`` (a student with the same reason everywhere is one
    row): ``[(entry, [assignment, ...], [file, ...]), ...]``."""
    groups: dict = {}
    for a in report["assignments"]:
        for entry in a[kind]:
            group = groups.setdefault(key(entry), (entry, [], []))
            group[1].append(a["assignment"])
            group[2].append(entry["file"])
    return list(groups.values())


def files(names: list) -> str:
    codes = "<br>".join(f"<code>{e(n)}</code>" for n in names)
    return codes if len(names) <= 1 else f"<details><summary>{len(names)} files</summary>{codes}</details>"


def attention(report: dict) -> str:
    """Behind, could not be graded, flagged, conflicts: across assignments, one row per student and reason."""
    out = []
    behind = [[e(b["student"]), "; ".join(f"{e(l['assignment'])}: {e(l['state'])}"
                                           + (f" ({num(l['score'])}/{num(l['max_score'])})" if l["score"] is not None else "")
                                           for l in b["lagging"])] for b in report["behind"]]
    out.append(f"<h3>Behind ({len(behind)})</h3>")
    out.append("<p class='note'>Missing, not gradable or below "
               f"{pct(report['low_share'])} of the automatic points in two or more assignments.</p>")
    out.append(table(["student", "assignments"], behind) if behind else "<p class='muted'>Nobody.</p>")
    ungradable = [[e(u["student"]), e(u["status"]), e(u["reason"]), ", ".join(e(a) for a in assignments), files(names)]
                  for u, assignments, names in grouped(report, "ungradable",
                                                       lambda u: (u["student"], u["status"], u["reason"]))]
    out.append(f"<h3>Could not be graded ({report['totals']['ungradable']} files)</h3>")
    out.append(table(["student", "status", "why", "assignments", "file"], ungradable) if ungradable
               else "<p class='muted'>Every submission was graded.</p>")
    flagged = [[e(f["student"]), "<ul>" + "".join(f"<li>{e(x)}</li>" for x in f["flags"]) + "</ul>",
                ", ".join(e(a) for a in assignments), files(names)]
               for f, assignments, names in grouped(report, "flagged", lambda f: (f["student"], tuple(f["flags"])))]
    out.append(f"<h3>Flagged for review ({report['totals']['flagged']} files)</h3>")
    out.append("<p class='note'>Flags never change a score: they point at code worth reading.</p>")
    out.append(table(["student", "why", "assignments", "file"], flagged) if flagged
               else "<p class='muted'>No flags.</p>")
    conflicts = [[e(a["assignment"]), e(c["student"]), ", ".join(f"<code>{e(f)}</code>" for f in c["files"])]
                 for a in report["assignments"] for c in a["conflicts"]]
    if conflicts:
        out.append(f"<h3>Conflicting files ({len(conflicts)})</h3><p class='note'>Several files claim the same "
                   "student and assignment: each was graded, none entered the gradebook or the statistics. "
                   "Keep one and grade again.</p>")
        out.append(table(["assignment", "student", "files"], conflicts))
    return "".join(out)


def assignment_section(a: dict, figure: str | None) -> str:
    out = [f"<h2 id='a-{e(a['assignment'])}'>{e(a['assignment'])}</h2>"]
    mean = f"mean {num(a['mean_score'])}, median {num(a['median_score'])}" if a["graded"] else "nothing graded"
    out.append(f"<p>{a['graded']} of {a['students']} students graded; automatic points {num(a['auto_points'])} "
               f"(of {num(a['points_possible'])} with written answers); {mean}; "
               f"{a['full_marks']} at full marks.</p>")
    if figure:
        out.append(f"<img src='{figure}' alt='Histogram of the automatic scores of {e(a['assignment'])} and, per "
                   f"function, the mean score and the share of students at full marks'>")
    if a["functions"]:
        rows = [[f"<code>{e(f['grade_id'])}</code>", num(f["max_score"]), num(f["mean_score"]), pct(f["mean_share"]),
                 pct(f["full_share"]), str(f["not_attempted"])] for f in a["functions"]]
        out.append("<h3>Per function</h3>" + table(
            ["function", "points", "mean", "mean share", "at full marks", "left a stub"], rows, numeric=(1, 2, 3, 4, 5)))
    out.append(f"<h3>Mistakes ({len(a['mistakes'])})</h3>")
    if a["mistakes"]:
        rows = [[f"<span class='share'>{pct(m['share'])}</span>", str(m["count"]), f"<code>{e(m['grade_id'])}</code>",
                 e(m["check"]), people(m["students"]), f"<div class='example'>{e(m['example'])}</div>"]
                for m in a["mistakes"]]
        out.append(table(["share", "count", "function", "failed sub-check", "students", "example message"], rows,
                         numeric=(0, 1)))
    else:
        out.append("<p class='muted'>No graded submission failed a sub-check it attempted.</p>")
    if a["groups"]:
        rows = [[str(g["count"]), people(g["students"]),
                 "<ul>" + "".join(f"<li><code>{e(c['grade_id'])}</code>: {e(c['check'])}</li>" for c in g["checks"])
                 + "</ul>"] for g in a["groups"]]
        out.append("<h3>Mistakes that travel together</h3><p class='note'>Students who failed exactly the "
                   "same set of sub-checks.</p>" + table(["students", "who", "the same failed sub-checks"], rows,
                                                         numeric=(0,)))
    if a["not_attempted"]:
        rows = [[f"<code>{e(n['grade_id'])}</code>", pct(n["share"]), people(n["students"])] for n in a["not_attempted"]]
        out.append("<h3>Not attempted</h3><p class='note'>Graded students whose function still raises "
                   "NotImplementedError.</p>" + table(["function", "share", "students"], rows, numeric=(1,)))
    t = a["timing"]
    if t["notebooks"]:
        out.append(f"<p class='note'>Grading time: median {seconds(t['median_seconds'])} per notebook, slowest "
                   f"{seconds(t['slowest_seconds'])} ({e(t['slowest_student'])}), {seconds(t['total_seconds'])} in "
                   f"total over {t['notebooks']} notebooks"
                   + (f"; {t['not_recorded']} not recorded" if t["not_recorded"] else "") + ".</p>")
    return "".join(out)


def student_section(report: dict) -> str:
    assignments = [a["assignment"] for a in report["assignments"]]
    head = ["student"] + [e(a) for a in assignments] + ["behind"]
    body = []
    for row in report["students"]:
        cells = []
        for a in assignments:
            c = row["cells"][a]
            text = f"{num(c['score'])}/{num(c['max_score'])}" if c["score"] is not None else e(c["state"])
            if c["state"] in ("ungradable", "conflict") and c["score"] is not None:
                text += f" <span class='pill'>{e(c['state'])}</span>"
            cells.append(f"<td class='num {e(c['state'])}'>{text}</td>")
        body.append(f"<tr><td>{e(row['student'])}</td>{''.join(cells)}<td>{'yes' if row['behind'] else ''}</td></tr>")
    legend = ("<p class='note'>Automatic points. Colours: green graded, yellow below "
              f"{pct(report['low_share'])}, red missing or not gradable, violet conflicting files.</p>")
    return (legend + "<div class='scroll'><table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join(body) + "</table></div>")


def timing_section(report: dict) -> str:
    t = report["timing"]
    if not t["notebooks"]:
        return "<p class='muted'>No grading times were recorded (a report.json from an older grader).</p>"
    wall = ""
    if t.get("wall_seconds") is not None:
        jobs = f" with {t['jobs']} parallel jobs" if t.get("jobs") else ""
        wall = f" The run{'s' if len(report['runs']) > 1 else ''} took {seconds(t['wall_seconds'])} of wall-clock time{jobs}."
    return (f"<p>{t['notebooks']} notebooks: median {seconds(t['median_seconds'])}, slowest "
            f"{seconds(t['slowest_seconds'])} ({e(t['slowest_student'])}, {e(t['slowest_assignment'])}), "
            f"{seconds(t['total_seconds'])} of grading in total.{wall}"
            + (f" {t['not_recorded']} not recorded." if t["not_recorded"] else "") + "</p>")


def exports_section(report: dict) -> str:
    out = []
    exports = report.get("exports")
    if exports:
        files = "".join(f"<li><code>{e(name)}</code>: {e(what)}</li>" for name, what in exports["files"].items())
        out.append(f"<ul>{files}</ul>")
        if exports["pending_written"]:
            out.append(f"<p><strong>{exports['pending_written']} submissions still have written answers awaiting "
                       "a manual grade</strong> (nbgrader's formgrader): the exported grades count them as 0 until "
                       "they are graded there and the exports are written again.</p>")
        if exports["not_exported"]:
            rows = [[e(x["student"]), e(x["assignment"]), e(x["why"])] for x in exports["not_exported"]]
            out.append("<h3>Left blank in the exports</h3>" + table(["student", "assignment", "why"], rows))
    roster = report.get("roster")
    if roster:
        out.append(f"<h3>Roster ({roster['students']} students)</h3>")
        rows = [[e(m["student"]), ", ".join(e(a) for a in m["assignments"])] for m in roster["missing"]]
        out.append("<p>Roster students without a submission (an explicit missing entry in the exports):</p>"
                   + (table(["student", "assignments missing"], rows) if rows else "<p class='muted'>None.</p>"))
        rows = [[e(u["student"]), ", ".join(e(a) for a in u["assignments"]),
                 ", ".join(f"<code>{e(f)}</code>" for f in u["files"])] for u in roster["unrostered"]]
        out.append("<p>Submissions without a roster entry (not in the import files, listed in "
                   "<code>lms_unrostered.csv</code>):</p>"
                   + (table(["student", "assignments", "files"], rows) if rows else "<p class='muted'>None.</p>"))
    if report.get("replaced"):
        rows = [[e(r["student"]), e(r["assignment"])] for r in report["replaced"]]
        out.append("<h3>Graded in several runs</h3><p class='note'>The later run counts.</p>"
                   + table(["student", "assignment"], rows))
    return "".join(out)


def render(report: dict, figures: dict) -> str:
    """The whole page."""
    anonymised = report.get("anonymised")
    title = "Class report" + (" (anonymised)" if anonymised else "")
    privacy = ("Students are named by pseudonyms (stable for this grading folder)." if anonymised else
               "This page names students: it is for the lecturer. Share the anonymised version "
               "(<code>insights --anonymise</code>).")
    nav = " &middot; ".join(f"<a href='#a-{e(a['assignment'])}'>{e(a['assignment'])}</a>" for a in report["assignments"])
    sections = "".join(assignment_section(a, figures.get(a["assignment"])) for a in report["assignments"])
    exports = exports_section(report)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title><style>{STYLE}</style></head>
<body>
<h1>{title}</h1>
<p class="lede">{e(headline(report))}</p>
<p class="note">{privacy} Assignments: {nav}</p>
<h2>At a glance: the most common mistakes</h2>
{top_mistakes(report)}
<h2>Needs your attention</h2>
{attention(report)}
{sections}
<h2>Students &times; assignments</h2>
{student_section(report)}
<h2>Grading time</h2>
{timing_section(report)}
{'<h2>Exports and roster</h2>' + exports if exports else ''}
</body></html>
"""
