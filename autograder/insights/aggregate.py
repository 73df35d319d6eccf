"""The class report's numbers, computed from a :class:`~.sources.ClassData`.

Everything returned is plain JSON (``class_report.json`` is exactly
:func:`summarise`'s result, plus the exports' facts). Definitions:

* a submission is *graded* when its notebook ran to its end (status ``ok``)
  and no other file claims the same student and assignment; only graded
  submissions enter the class statistics. The others are listed: *could not
  be graded* (invalid file, wrong assignment, timeout, a dead kernel, a grader
  error: status other than ``ok``) and *conflicts* (the lecturer decides);
* scores are the grader's automatic points; written answers await an
  instructor and are counted only in the exports (from the gradebook);
* a function's *outcome* is ``full``, ``stub`` (still raises
  NotImplementedError: not attempted), ``none`` (returns None), ``not_run``
  (its cell failed, so nothing was recorded), ``mistake`` (partial or zero
  credit from failed sub-checks) or ``not_graded`` (the grader has no
  reference for it);
* a *mistake* is a failed sub-check that was not withheld behind a gate (a
  gated check fails because a central one did: a consequence, not a second
  mistake), keyed by (function, sub-check name); ``returns None`` and
  ``did not run`` are mistakes too, stubs are not. Its ``share`` is its
  count over the assignment's graded submissions;
* a *group* is two or more graded students whose sets of mistakes are equal
  and not empty;
* a student is *behind* when two or more assignments are ``missing`` (no
  file), ``ungradable`` or ``low`` (automatic score below ``low_share`` of the
  automatic points).
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict

import numpy as np

from ..checks.base import NONE_MESSAGE
from ..scoring import STUB_MESSAGE
from .roster import Roster
from .sources import GRADED_STATUS, ClassData, FunctionResult, Submission

#: default: an assignment below half of its automatic points counts as low.
LOW_SHARE = 0.5
#: histogram bins per assignment.
HISTOGRAM_BINS = 10
#: mistakes shown in the "at a glance" list across assignments.
TOP_MISTAKES = 10
#: states of a (student, assignment) cell that count towards being behind.
BEHIND_STATES = ("missing", "ungradable", "low")
RETURNS_NONE, DID_NOT_RUN = "returns None", "did not run"


def _round(value, digits: int = 3):
    return None if value is None else round(float(value), digits)


def outcome(fn: FunctionResult) -> str:
    """``full``, ``stub``, ``none``, ``not_run``, ``not_graded`` or ``mistake`` (see the module docstring)."""
    if fn.status == "full":
        return "full"
    if fn.status == "not_graded":
        return "not_graded"
    if fn.messages == [STUB_MESSAGE]:
        return "stub"
    if fn.messages == [NONE_MESSAGE]:
        return "none"
    if fn.status == "not_run":
        return "not_run"
    return "mistake"


def mistakes_of(fn: FunctionResult) -> list:
    """``[(sub-check name, message), ...]`` of a function's mistakes (empty for
    full marks and stubs). A report.json without sub-checks falls back to the
    messages, "name: message" each."""
    kind = outcome(fn)
    if kind == "none":
        return [(RETURNS_NONE, NONE_MESSAGE)]
    if kind == "not_run":
        return [(DID_NOT_RUN, fn.messages[0] if fn.messages else "its cell did not run")]
    if kind != "mistake":
        return []
    failed = [(c.name, c.message) for c in fn.checks if not c.passed and not c.gated]
    if failed:
        return failed
    found = []
    for message in fn.messages:
        name, sep, text = message.partition(": ")
        found.append((name, text) if sep else (message, message))
    return found


def histogram(scores: list, max_score: float, bins: int = HISTOGRAM_BINS) -> dict:
    """Counts of ``scores`` in ``bins`` equal bins over [0, max_score] (the last bin includes max_score)."""
    if max_score <= 0:
        return {"bin_edges": [], "counts": []}
    counts, edges = np.histogram(np.asarray(scores, dtype=float), bins=bins, range=(0.0, float(max_score)))
    return {"bin_edges": [_round(e) for e in edges], "counts": [int(c) for c in counts]}


def _function_order(subs: list) -> list:
    order: list = []
    for sub in subs:
        for fn in sub.functions:
            if fn.grade_id not in order and fn.grade_id != "(submission)":
                order.append(fn.grade_id)
    return order


def function_stats(graded: list) -> list:
    """Per function: mean points, mean share of its points, how many at full
    marks, how many left it a stub; over the graded submissions."""
    rows = []
    for grade_id in _function_order(graded):
        fns = [fn for sub in graded for fn in sub.functions if fn.grade_id == grade_id]
        max_score = max(fn.max_score for fn in fns)
        mean = statistics.fmean(fn.score for fn in fns)
        full = sum(outcome(fn) == "full" for fn in fns)
        rows.append({"grade_id": grade_id, "max_score": max_score, "n": len(fns), "mean_score": _round(mean),
                     "mean_share": _round(mean / max_score) if max_score else None,
                     "full": full, "full_share": _round(full / len(fns)),
                     "not_attempted": sum(outcome(fn) == "stub" for fn in fns)})
    return rows


def student_mistakes(sub: Submission) -> dict:
    """``{(grade_id, check): message}`` of one submission."""
    found = {}
    for fn in sub.functions:
        for name, message in mistakes_of(fn):
            found.setdefault((fn.grade_id, name), message)
    return found


def mistake_table(graded: list) -> list:
    """The assignment's mistakes, most frequent first: count, share of the
    graded submissions, the students, and one example message (the first
    student's, in name order)."""
    hits: dict = defaultdict(dict)
    for sub in sorted(graded, key=lambda s: s.student):
        for key, message in student_mistakes(sub).items():
            hits[key][sub.student] = message
    order = {g: i for i, g in enumerate(_function_order(graded))}
    rows = []
    for (grade_id, check), students in hits.items():
        rows.append({"grade_id": grade_id, "check": check, "count": len(students),
                     "share": _round(len(students) / len(graded)), "students": sorted(students),
                     "example": next(iter(students.values()))})
    return sorted(rows, key=lambda r: (-r["count"], order.get(r["grade_id"], 1e9), r["check"]))


def mistake_groups(graded: list) -> list:
    """Students (two or more) who failed exactly the same non-empty set of sub-checks, largest group first."""
    by_set: dict = defaultdict(list)
    for sub in graded:
        keys = frozenset(student_mistakes(sub))
        if keys:
            by_set[keys].append(sub.student)
    groups = [{"checks": [{"grade_id": g, "check": c} for g, c in sorted(keys)], "students": sorted(students),
               "count": len(students), "share": _round(len(students) / len(graded))}
              for keys, students in by_set.items() if len(students) >= 2]
    return sorted(groups, key=lambda g: (-g["count"], -len(g["checks"]), g["students"]))


def not_attempted(graded: list) -> list:
    """Per function, the graded students who left it a stub."""
    rows = []
    for grade_id in _function_order(graded):
        students = sorted(s.student for s in graded for fn in s.functions
                          if fn.grade_id == grade_id and outcome(fn) == "stub")
        if students:
            rows.append({"grade_id": grade_id, "count": len(students), "share": _round(len(students) / len(graded)),
                         "students": students})
    return rows


def timing(subs: list) -> dict:
    """Grading time of ``subs`` (seconds in their workers): median, slowest (and whose), total."""
    timed = [s for s in subs if s.seconds is not None]
    if not timed:
        return {"notebooks": 0, "not_recorded": len(subs), "median_seconds": None, "slowest_seconds": None,
                "slowest_student": None, "slowest_assignment": None, "total_seconds": None}
    slowest = max(timed, key=lambda s: s.seconds)
    return {"notebooks": len(timed), "not_recorded": len(subs) - len(timed),
            "median_seconds": _round(statistics.median(s.seconds for s in timed), 2),
            "slowest_seconds": _round(slowest.seconds, 2), "slowest_student": slowest.student,
            "slowest_assignment": slowest.assignment, "total_seconds": _round(sum(s.seconds for s in timed), 2)}


def _reason(sub: Submission) -> str:
    if sub.messages:
        return sub.messages[0]
    for fn in sub.functions:
        if fn.messages:
            return fn.messages[0]
    return sub.status


def _conflicted(subs: list) -> set:
    per_student = Counter(s.student for s in subs)
    return {s.student for s in subs if s.conflict or per_student[s.student] > 1}


def assignment_summary(assignment: str, subs: list, auto_points: float, points_possible: float) -> dict:
    """Everything the report says about one assignment (``subs``: its submissions)."""
    conflicted = _conflicted(subs)
    graded = sorted((s for s in subs if s.graded and s.student not in conflicted), key=lambda s: s.student)
    scores = [s.score for s in graded]
    return {
        "assignment": assignment,
        "auto_points": auto_points,
        "points_possible": points_possible,
        "students": len({s.student for s in subs}),
        "graded": len(graded),
        "mean_score": _round(statistics.fmean(scores)) if scores else None,
        "median_score": _round(statistics.median(scores)) if scores else None,
        "full_marks": sum(s.score >= auto_points for s in graded),
        "histogram": histogram(scores, auto_points),
        "functions": function_stats(graded),
        "mistakes": mistake_table(graded) if graded else [],
        "groups": mistake_groups(graded) if graded else [],
        "not_attempted": not_attempted(graded) if graded else [],
        "flagged": [{"student": s.student, "file": s.file, "flags": list(s.flags)}
                    for s in sorted(subs, key=lambda s: s.student) if s.flags],
        "ungradable": [{"student": s.student, "file": s.file, "status": s.status, "reason": _reason(s)}
                       for s in sorted(subs, key=lambda s: s.student) if s.status != GRADED_STATUS],
        "conflicts": [{"student": student, "files": sorted(s.file for s in subs if s.student == student)}
                      for student in sorted(conflicted)],
        "timing": timing(subs),
    }


def cell_state(subs: list, auto_points: float, low_share: float) -> dict:
    """One (student, assignment) cell of the cross-assignment table."""
    if not subs:
        return {"state": "missing", "score": None, "max_score": auto_points}
    if len(subs) > 1 or subs[0].conflict:
        return {"state": "conflict", "score": None, "max_score": auto_points}
    sub = subs[0]
    if sub.status != GRADED_STATUS:
        state = "ungradable"
    elif auto_points and sub.score < low_share * auto_points:
        state = "low"
    else:
        state = "ok"
    return {"state": state, "score": sub.score, "max_score": sub.max_score}


def student_table(data: ClassData, students: list, low_share: float) -> list:
    """One row per student: a cell per assignment and whether they are behind."""
    by_pair: dict = defaultdict(list)
    for sub in data.submissions:
        by_pair[(sub.student, sub.assignment)].append(sub)
    rows = []
    for student in students:
        cells = {a: cell_state(by_pair.get((student, a), []), data.auto_points[a], low_share)
                 for a in data.assignments}
        lagging = [{"assignment": a, **c} for a, c in cells.items() if c["state"] in BEHIND_STATES]
        rows.append({"student": student, "cells": cells, "behind": len(lagging) >= 2, "lagging": lagging})
    return rows


def roster_summary(data: ClassData, roster: Roster) -> dict:
    """Roster students without a submission (per assignment) and submissions without a roster entry."""
    rostered = set(roster.ids())
    submitted: dict = defaultdict(set)
    for sub in data.submissions:
        submitted[sub.student].add(sub.assignment)
    missing = [{"student": e.student_id, "assignments": [a for a in data.assignments if a not in submitted[e.student_id]]}
               for e in roster.entries]
    return {"students": len(roster.entries),
            "missing": [m for m in missing if m["assignments"]],
            "unrostered": [{"student": s, "assignments": sorted(submitted[s]),
                            "files": sorted(x.file for x in data.submissions if x.student == s)}
                           for s in sorted(submitted) if s not in rostered]}


def summarise(data: ClassData, roster: Roster | None = None, low_share: float = LOW_SHARE) -> dict:
    """The whole class report as plain JSON (see the module docstring for every definition)."""
    students = sorted({s.student for s in data.submissions} | set(roster.ids() if roster else []))
    assignments = [assignment_summary(a, [s for s in data.submissions if s.assignment == a],
                                      data.auto_points[a], data.points_possible[a]) for a in data.assignments]
    top = sorted(({"assignment": a["assignment"], **m} for a in assignments for m in a["mistakes"]),
                 key=lambda m: (-m["share"], -m["count"], m["assignment"], m["grade_id"], m["check"]))
    table = student_table(data, students, low_share)
    overall = timing(data.submissions)
    walls = [r.wall_seconds for r in data.runs if r.wall_seconds is not None]
    overall["wall_seconds"] = _round(sum(walls), 2) if walls else None
    jobs = {r.jobs for r in data.runs if r.jobs}
    overall["jobs"] = jobs.pop() if len(jobs) == 1 else None
    return {
        "anonymised": False,
        "low_share": low_share,
        "runs": [{"folder": str(r.folder), "gradebook": r.gradebook, "wall_seconds": r.wall_seconds,
                  "jobs": r.jobs, "submissions": r.submissions} for r in data.runs],
        "replaced": [{"student": s, "assignment": a, "earlier": e, "later": l} for s, a, e, l in data.replaced],
        "totals": {"students": len(students), "assignments": len(assignments),
                   "submissions": len(data.submissions),
                   "graded": sum(a["graded"] for a in assignments),
                   "ungradable": sum(len(a["ungradable"]) for a in assignments),
                   "flagged": sum(len(a["flagged"]) for a in assignments),
                   "conflicts": sum(len(a["conflicts"]) for a in assignments),
                   "behind": sum(r["behind"] for r in table)},
        "timing": overall,
        "top_mistakes": top[:TOP_MISTAKES],
        "top_not_attempted": sorted(({"assignment": a["assignment"], **n} for a in assignments
                                     for n in a["not_attempted"]),
                                    key=lambda n: (-n["share"], -n["count"], n["assignment"], n["grade_id"]))[:TOP_MISTAKES],
        "assignments": assignments,
        "students": table,
        "behind": [{"student": r["student"], "lagging": r["lagging"]} for r in table if r["behind"]],
        "roster": roster_summary(data, roster) if roster else None,
    }
