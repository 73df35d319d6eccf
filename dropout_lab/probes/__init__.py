"""Probes: what the grader calls each graded function with.

A probe is ``probe(fn, rec, rng)``: it draws inputs from ``rng`` (a numpy
Generator seeded from the run's secret seed and the grade_id) and makes
``rec.call(name, fn, ...)`` calls. The same probe runs on the student's
function in the sandbox and on the hidden reference in the grader, so it must
be deterministic given ``rng`` and must draw the same inputs whatever ``fn``
returns. Probes are public: knowing the inputs' distribution does not help
anyone produce correct outputs without solving the exercise.

Stochastic functions get their own ``np.random.Generator`` / ``torch.Generator``
seeded from ``rng``, so results are reproducible for one implementation.
"""
from __future__ import annotations

PROBES: dict = {}


def probe(grade_id: str):
    """Register a probe function under ``grade_id``."""

    def register(fn):
        if grade_id in PROBES:
            raise ValueError(f"duplicate probe for {grade_id}")
        PROBES[grade_id] = fn
        return fn

    return register


def get_probe(grade_id: str):
    _load_all()
    try:
        return PROBES[grade_id]
    except KeyError:
        raise KeyError(f"no probe registered for grade_id {grade_id!r}") from None


def _load_all() -> None:
    # Imported lazily so a numpy-only chapter does not import torch.
    from . import ch04_scaling, ch05_backprop  # noqa: F401


def child_seed(rng) -> int:
    """A fresh integer seed for a Generator handed to the function under test."""
    return int(rng.integers(0, 2**62))
