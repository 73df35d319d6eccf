"""Which graded functions exist: grade_id -> chapter, reference, checks.

Adding a graded function means: a probe in ``dropout_lab/probes/chNN_*.py``,
a reference in ``autograder/reference/chNN_*.py`` and a check in
``autograder/checks/chNN_*.py`` (listed in that module's ``CHECKS``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

#: assignment id (folder name) -> module suffix shared by probes, reference and checks.
CHAPTER_MODULES = {
    "01-overfitting": "ch01_overfitting",
    "02-ensembles": "ch02_ensembles",
    "03-coadaptation": "ch03_coadaptation",
    "04-scaling": "ch04_scaling",
    "05-backprop": "ch05_backprop",
    "06-batchnorm": "ch06_batchnorm",
    "07-variants": "ch07_variants",
    "08-rdrop": "ch08_rdrop",
    "09-practice": "ch09_practice",
}


@dataclass(frozen=True)
class GradedFunction:
    grade_id: str
    assignment: str
    reference: object
    check: object


def _build() -> dict:
    graded = {}
    for assignment, module in CHAPTER_MODULES.items():
        checks = importlib.import_module(f"autograder.checks.{module}").CHECKS
        reference = importlib.import_module(f"autograder.reference.{module}")
        for grade_id, check in checks.items():
            graded[grade_id] = GradedFunction(grade_id, assignment, getattr(reference, grade_id), check)
    return graded


_GRADED: dict | None = None


def graded_functions() -> dict:
    global _GRADED
    if _GRADED is None:
        _GRADED = _build()
    return _GRADED


def lookup(grade_id: str) -> GradedFunction | None:
    return graded_functions().get(grade_id)
