"""Exercises without points (chapter 04's exact_dropout_average): their locked
self-check cell passes the solution and names each known mistake."""
import contextlib
import io
import itertools

import nbformat
import numpy as np
import pytest

from autograder.nbgrader_setup import SOLUTIONS


def _cell(nb, grade_id):
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _run_check(impl=None) -> str:
    nb = nbformat.read(str(SOLUTIONS / "04-scaling" / "exercises.ipynb"), as_version=4)
    ns = {"__name__": "__main__"}
    exec(_cell(nb, "setup"), ns)
    exec(_cell(nb, "exact_dropout_average"), ns)
    if impl is not None:
        ns["exact_dropout_average"] = impl
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(_cell(nb, "check_exact_dropout_average"), ns)
    return out.getvalue()


def _average(x, p, weight, scale):
    def impl(f, x, p):
        total = 0.0
        for bits in itertools.product([0.0, 1.0], repeat=len(x)):
            m = np.array(bits)
            total = total + weight(m, p) * np.asarray(f(x * m * scale(p)), dtype=float)
        return total
    return impl


MISTAKES = {
    "same weight": _average(None, None, lambda m, p: 0.5 ** len(m), lambda p: 1 / (1 - p)),
    "divided by 1 - p": _average(None, None, lambda m, p: (1 - p) ** m.sum() * p ** (len(m) - m.sum()),
                                 lambda p: 1.0),
    "probability of keeping": _average(None, None, lambda m, p: p ** m.sum() * (1 - p) ** (len(m) - m.sum()),
                                       lambda p: 1 / (1 - p)),
}


def test_the_solution_passes_its_checks():
    assert "all 4 self-checks passed" in _run_check()


@pytest.mark.parametrize("phrase", sorted(MISTAKES))
def test_each_mistake_is_named(phrase):
    out = _run_check(MISTAKES[phrase])
    assert "self-checks failed" in out and phrase in out, out


def test_a_missing_return_is_named():
    out = _run_check(lambda f, x, p: None)
    assert "did you forget `return`?" in out, out
