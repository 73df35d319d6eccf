"""Trusted scoring of one graded function from its recording.

Runs the probe on the hidden reference in this (the grader's) process,
loads the student's recording as hostile data, and applies the function's
checks. The result carries partial credit and student-facing messages; it
never shows hidden inputs or reference code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dropout_lab.recorder import run_probe

from .checks.base import NONE_MESSAGE, Checker, SubResult
from .recording import RecordingError, View, load_recording, view_of
from .registry import lookup

#: Status values of a scored function.
FULL, PARTIAL, ZERO, NOT_RUN, NOT_GRADED = "full", "partial", "zero", "not_run", "not_graded"


@dataclass
class FunctionScore:
    grade_id: str
    score: float
    max_score: float
    status: str
    messages: list = field(default_factory=list)
    checks: list = field(default_factory=list)  # SubResult list

    def as_row(self) -> dict:
        return {"grade_id": self.grade_id, "score": self.score, "max_score": self.max_score,
                "status": self.status, "messages": list(self.messages),
                "checks": [{"name": r.name, "passed": r.passed, "weight": r.weight, "message": r.message,
                            "central": r.central, "gated": r.gated} for r in self.checks]}


_reference_cache: dict = {}


def reference_view(grade_id: str, seed: int) -> View:
    """The reference's recording for this seed (cached per process)."""
    key = (grade_id, seed)
    if key not in _reference_cache:
        _reference_cache[key] = view_of(run_probe(grade_id, lookup(grade_id).reference, seed))
    return _reference_cache[key]


STUB_MESSAGE = ("still a stub: your function raised NotImplementedError; replace the "
                "`raise NotImplementedError()` line with your implementation")


def _one_reason(checker: Checker) -> str | None:
    """The one message for a function that earned nothing for a single reason
    every sub-check that failed on its own shares: it is a stub, or it returns
    None. A function with a credited part (a correct forward beside a stub
    backward) gets its sub-checks' own messages instead."""
    failed = [r for r in checker.results if not r.passed and not r.gated]
    if not failed or any(r.passed for r in checker.results):
        return None
    if all("NotImplementedError" in r.message for r in failed):
        return STUB_MESSAGE
    if all("did you forget `return`" in r.message for r in failed):
        return NONE_MESSAGE
    return None


def _messages(checker: Checker) -> list:
    """One line per failed sub-check, then one line per closed gate listing
    the sub-checks it withheld (short: a student fixes the gate first)."""
    lines = [f"{r.name}: {r.message}" for r in checker.results if not r.passed and not r.gated]
    withheld: dict = {}
    for r in checker.results:
        if r.gated:
            withheld.setdefault(r.message, []).append(r.name)
    lines += [f"{'; '.join(names)}: {why}" for why, names in withheld.items()]
    return lines


def score_view(grade_id: str, student: View, seed: int, max_score: float) -> FunctionScore:
    """Score an already-loaded student recording."""
    graded = lookup(grade_id)
    checker = Checker(student, reference_view(grade_id, seed))
    graded.check(checker)
    fraction = checker.fraction()
    score = round(max_score * fraction, 2)
    status = FULL if fraction == 1 else (ZERO if score == 0 else PARTIAL)
    messages = _messages(checker)
    reason = _one_reason(checker)
    if reason:
        messages = [reason]
    if status == FULL:
        messages = ["all checks passed"]
    return FunctionScore(grade_id, score, max_score, status, messages, checker.results)


def score_recording(grade_id: str, record_dir, seed: int, max_score: float,
                    cell_error: str | None = None) -> FunctionScore:
    """Score ``grade_id`` from the recording in ``record_dir``.

    ``cell_error`` is the error the grade cell raised in the sandbox, if any;
    it explains a missing recording (e.g. the function was never defined).
    """
    if lookup(grade_id) is None:
        return FunctionScore(grade_id, 0.0, max_score, NOT_GRADED,
                             [f"the grader has no reference for {grade_id!r}"])
    try:
        student = load_recording(record_dir, grade_id, seed)
    except RecordingError as exc:
        why = str(exc)
        if cell_error:
            why = f"the cell failed with {cell_error}"
            if cell_error.startswith(("NameError", "SyntaxError", "IndentationError")):
                why += f"; define {grade_id} in its solution cell and keep its name"
        return FunctionScore(grade_id, 0.0, max_score, NOT_RUN, [f"not graded: {why}"],
                             [SubResult("recording", 1.0, False, why)])
    return score_view(grade_id, student, seed, max_score)


def score_function_in_process(grade_id: str, fn, seed: int, max_score: float = 1.0) -> FunctionScore:
    """Probe ``fn`` directly in this process and score it: no sandbox, no files.

    For tests of the checks (variant and mutant corpora) and for authors; never
    for grading untrusted code.
    """
    student = view_of(run_probe(grade_id, fn, seed))
    return score_view(grade_id, student, seed, max_score)
