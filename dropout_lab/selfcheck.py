"""Visible self-checks for students.

They report, they do not raise: a failing self-check prints what is wrong and
the notebook goes on (in grading, the hidden recording in the same cell still
runs, so a partly right function still earns partial credit)::

    with SelfCheck("dropout_forward") as sc:
        out, mask = dropout_forward(np.ones((2, 3)), 0.5, rng)
        sc.expect(out.shape == (2, 3), "out must have x's shape")

An exception from the student's code inside the block is reported as a
failed check and swallowed.
"""
from __future__ import annotations

import traceback


class SelfCheck:
    def __init__(self, name: str):
        self.name = name
        self.passed = 0
        self.failed: list[str] = []

    def expect(self, condition, message: str) -> bool:
        """Record one check; ``message`` says what a correct function does."""
        ok = bool(condition)
        if ok:
            self.passed += 1
        else:
            self.failed.append(message)
            print(f"  \u2717 {message}")
        return ok

    def __enter__(self) -> "SelfCheck":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is NotImplementedError:
            print(f"{self.name}: not implemented yet (the stub raises NotImplementedError).")
            self.failed.append("not implemented")
            return True
        if exc_type is not None and issubclass(exc_type, Exception):
            where = traceback.extract_tb(tb)[-1]
            print(f"  \u2717 calling your code raised {exc_type.__name__}: {exc} (line {where.lineno})")
            self.failed.append(f"raised {exc_type.__name__}")
        total = self.passed + len(self.failed)
        if not self.failed:
            print(f"{self.name}: all {total} self-checks passed \u2713")
        else:
            print(f"{self.name}: {len(self.failed)} of {total} self-checks failed (see above).")
        return exc_type is not None and issubclass(exc_type, Exception)

    @property
    def ok(self) -> bool:
        return not self.failed
