"""Experiment cells of the exercise notebooks run the student's own functions.

``experiment`` makes such a cell degrade gracefully, whatever goes wrong in
the student's code: instead of a traceback that points at the experiment's
own lines, it prints one sentence naming the function to fix::

    with experiment("dropout_forward", "mc_moments") as run:
        ...                       # uses the student's functions, plots
    if run.ok:
        ...                       # optional: code that needs the results

    the experiment needs a working dropout_forward: it raised ValueError: p must
    be in [0, 1] (line 3 of its cell) \u2014 fix it above and rerun this cell.

While the block runs, the graded functions are wrapped as in the self-checks
(:mod:`dropout_lab.selfcheck`), so a function that returns None is named as
such ("did you forget `return`?").
"""
from __future__ import annotations

import sys

from ..selfcheck import ReturnProblem, _Guarded, diagnose


def _pyplot():
    """matplotlib.pyplot if the notebook imported it (never imported here)."""
    return sys.modules.get("matplotlib.pyplot")


def _names(names) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def explain(exc: BaseException, needs, namespace: dict) -> str:
    """One line saying which of the student's functions to fix and why."""
    d = diagnose(exc, namespace, focus=tuple(needs))
    if d.kind == "stub" and d.culprit:
        return (f"the experiment needs {d.culprit}, which is not implemented yet (its stub raises "
                f"NotImplementedError) \u2014 implement it above and rerun this cell.")
    if d.culprit:
        text = d.text
        if isinstance(exc, ReturnProblem):
            text = f"it {exc.problem}"
        elif text.startswith(f"your {d.culprit} "):
            text = "it " + text[len(f"your {d.culprit} "):]
        else:  # raised in a helper the function calls: keep "your mc_moments raised ... (in helper)"
            text = text[0].lower() + text[1:]
        return f"the experiment needs a working {d.culprit}: {text} \u2014 fix it above and rerun this cell."
    what = _names(needs) or "functions"
    detail = d.text.replace("checking your result raised ", "")
    return (f"the experiment could not use your {what}: {detail} \u2014 check what they return "
            f"(the self-checks above help), fix them and rerun this cell.")


class experiment:
    """Context manager for an experiment cell that needs the functions ``needs``.

    Any exception (not KeyboardInterrupt) raised in the block is replaced by
    one printed line; ``ok`` tells whether the block ran to its end and
    ``message`` holds the line that was printed (None when ok).
    """

    def __init__(self, *needs: str, namespace: dict | None = None):
        self.needs = needs
        self.namespace = namespace if namespace is not None else sys._getframe(1).f_globals
        self.ok = True
        self.message: str | None = None
        self._guard = _Guarded(self.namespace)

    def __enter__(self) -> "experiment":
        self._figures = set(_pyplot().get_fignums()) if _pyplot() else set()
        self._guard.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._guard.__exit__(None, None, None)
        if exc is None or not isinstance(exc, Exception):
            return False
        self.ok = False
        plt = _pyplot()
        if plt is not None:  # a half-drawn figure would show as an empty plot
            for num in set(plt.get_fignums()) - self._figures:
                plt.close(num)
        self.message = explain(exc, self.needs, self.namespace)
        print(self.message)
        return True
