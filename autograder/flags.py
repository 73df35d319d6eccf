"""Flags for instructor review: code in a submission that looks like an
attempt to game the grader. Flags never change a score (the sandbox and the
trusted scorer already make such attempts worthless); they make them visible.
"""
from __future__ import annotations

import re

#: (pattern, why) pairs searched in the student's code cells.
SUSPICIOUS = [
    (r"\b(np|numpy|torch)(\.\w+)+\s*=[^=]", "assigns to an attribute of numpy/torch (monkeypatching)"),
    (r"setattr\(\s*(np|numpy|torch)\b", "setattr on numpy/torch (monkeypatching)"),
    (r"dropout_lab\.recorder|\brecorder\b|DROPOUT_LAB_", "touches the grader's recorder"),
    (r"gradebook|autograder|solutions/", "refers to grader files"),
    (r"sys\.excepthook|set_custom_exc|sys\.settrace|sys\.setprofile", "installs an exception or trace hook"),
    (r"def\s+__eq__|def\s+__array_ufunc__|def\s+__array_function__", "defines comparison or numpy protocol overrides"),
    (r"\bsocket\b|urllib|requests\.|http\.client", "uses the network"),
    (r"\bsubprocess\b|os\.system|os\.fork|os\.exec|pty\.", "starts processes"),
    (r"\bctypes\b|\bbuiltins\b|__builtins__", "tampers with the interpreter"),
    (r"os\._exit|sys\.exit", "exits the kernel"),
    (r"['\"](\.\./|/(work|root|home|etc|tmp|proc|sys|var|usr|opt|srv|mnt)\b)",
     "refers to paths outside its own folder"),
    (r"\bglob\b.*\*\*|os\.walk|os\.scandir|os\.listdir\(\s*['\"]/", "searches the file system"),
]
_COMPILED = [(re.compile(p), why) for p, why in SUSPICIOUS]


def scan_sources(sources: list[str]) -> list[str]:
    """Distinct reasons found in ``sources`` (code cells the student wrote)."""
    found = []
    for src in sources:
        for pattern, why in _COMPILED:
            if pattern.search(src) and why not in found:
                found.append(why)
    return found


def student_code(nb) -> list[str]:
    """Sources of code cells that are not locked nbgrader cells (what the student wrote)."""
    out = []
    for cell in getattr(nb, "cells", []) or []:
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("locked") and not meta.get("solution"):
            continue
        src = cell.get("source", "")
        out.append(src if isinstance(src, str) else "".join(src))
    return out
