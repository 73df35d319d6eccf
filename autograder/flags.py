"""Flags for instructor review: code in a submission that looks like an
attempt to game the grader. Flags never change a score (the sandbox and the
trusted scorer already make such attempts worthless); they make them visible.

The code scanned is what the grader actually ran: the code cells of the
sanitised notebook (after nbgrader restored locked and test cells), whatever
the submission's metadata claims. Every pattern runs in time linear in the
length of the code (no pattern can start a scan inside another match's
territory; see ``tests/test_flags.py``), and at most ``MAX_SCAN_CHARS`` are
scanned, so a hostile cell cannot stall the grader.
"""
from __future__ import annotations

import re

#: characters of student code scanned per submission; the rest is flagged for review.
MAX_SCAN_CHARS = 2_000_000

# Why each pattern is linear: a pattern either starts with a literal that
# cannot overlap a previous attempt's scan, or is guarded by a look-behind so
# that it starts only at the beginning of a chain (``np.a.b``), never in the
# middle (the old ``\b(np|numpy|torch)(\.\w+)+\s*=`` restarted at every
# ``np.`` of a long chain and took quadratic time).
SUSPICIOUS = [
    (r"(?<![\w.])(?:np|numpy|torch)(?:\.\w++)++\s*+=(?!=)", "assigns to an attribute of numpy/torch (monkeypatching)"),
    (r"setattr\(\s*+(?:np|numpy|torch)\b", "setattr on numpy/torch (monkeypatching)"),
    (r"dropout_lab\.recorder|\brecorder\b|DROPOUT_LAB_", "touches the grader's recorder"),
    (r"gradebook|autograder|solutions/|\.recordings", "refers to grader files"),
    (r"sys\.excepthook|set_custom_exc|sys\.settrace|sys\.setprofile", "installs an exception or trace hook"),
    (r"def\s++(?:__eq__|__array_ufunc__|__array_function__)", "defines comparison or numpy protocol overrides"),
    (r"\bsocket\b|urllib|requests\.|http\.client", "uses the network"),
    (r"\bsubprocess\b|os\.system|os\.fork|os\.exec|pty\.", "starts processes"),
    (r"\bctypes\b|\bbuiltins\b|__builtins__", "tampers with the interpreter"),
    (r"os\._exit|sys\.exit", "exits the kernel"),
    (r"['\"](?:\.\./|/(?:work|root|home|etc|tmp|proc|sys|var|usr|opt|srv|mnt)\b)",
     "refers to paths outside its own folder"),
    # "glob ... **" on one line: the lazy scan stops at the next "glob", so each
    # character is scanned from one start only.
    (r"\bglob\b(?:(?!\bglob\b)[^\n])*?\*\*|os\.walk|os\.scandir|os\.listdir\(\s*+['\"]/",
     "searches the file system"),
]
_COMPILED = [(re.compile(p), why) for p, why in SUSPICIOUS]
TOO_LARGE = "has more code than the grader scans for suspicious patterns; review it by hand"


def scan_sources(sources: list[str]) -> list[str]:
    """Distinct reasons found in ``sources`` (code cells the student wrote)."""
    found, budget = [], MAX_SCAN_CHARS
    for src in sources:
        if len(src) > budget:
            src = src[:budget]
            if TOO_LARGE not in found:
                found.append(TOO_LARGE)
        budget -= len(src)
        for pattern, why in _COMPILED:
            if why not in found and pattern.search(src):
                found.append(why)
        if budget <= 0:
            break
    return found


def student_code(nb) -> list[str]:
    """Sources of the code cells whose text the student controls.

    Meant for the SANITISED notebook: there a locked, non-solution cell holds
    the gradebook's source (nbgrader's OverwriteCells restored it) and a cell
    claiming an unknown grade_id has lost its nbgrader metadata, so a student
    cannot hide code by marking its cell ``locked``."""
    out = []
    for cell in getattr(nb, "cells", []) or []:
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if isinstance(meta, dict) and meta.get("locked") and not meta.get("solution"):
            continue
        src = cell.get("source", "")
        out.append(src if isinstance(src, str) else "".join(src))
    return out
