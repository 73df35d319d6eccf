"""Grading-mode switch.

nbgrader sets ``NBGRADER_EXECUTION`` (to ``autograde`` or ``validate``) while it
runs a notebook. Experiments read :func:`scaled` so a notebook that takes tens
of seconds for a student grades in a few seconds.
"""
import os

GRADING_ENV = "NBGRADER_EXECUTION"


def is_grading() -> bool:
    """True while nbgrader (or our grader) executes the notebook."""
    return bool(os.environ.get(GRADING_ENV))


def scaled(full, grading):
    """Return ``grading`` in grading mode and ``full`` otherwise.

    Use it for epochs, sample counts, seeds lists: ``epochs = scaled(40, 2)``.
    """
    return grading if is_grading() else full
