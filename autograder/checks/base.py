"""The vocabulary checks are written in.

A check function receives a :class:`Checker` and declares sub-checks::

    def check_dropout_forward(c: Checker):
        with c.check("kept values are scaled by 1/(1-p)", weight=2):
            out, mask = c.outputs("p0.5")
            c.require(np.allclose(out, x * mask / 0.5), "kept values ... ")

Inside ``with c.check(...)`` a :class:`CheckFailed` (from ``require`` or from
reading an output that is missing or errored) fails that sub-check with its
message; any other exception fails it with a generic message, so a strange
submission never crashes the grader. Each sub-check earns its weight or zero;
the function's score is ``points * earned / total``.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from autograder.recording import Entry, Output, View


class CheckFailed(Exception):
    """A sub-check failed; ``str(exc)`` is the student-facing message."""


@dataclass
class SubResult:
    name: str
    weight: float
    passed: bool
    message: str = ""


class Checker:
    """Access to the student's and the reference's recordings plus the
    list of sub-check results built so far."""

    def __init__(self, student: View, reference: View):
        self.student = student
        self.reference = reference
        self.results: list[SubResult] = []

    # -- declaring sub-checks ----------------------------------------------
    @contextmanager
    def check(self, name: str, weight: float = 1.0):
        try:
            yield
        except CheckFailed as exc:
            self.results.append(SubResult(name, weight, False, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a weird output must not crash grading
            self.results.append(SubResult(
                name, weight, False,
                f"your output could not be checked ({type(exc).__name__}: {str(exc)[:200]}); "
                "check its type, shape and dtype against the task"))
        else:
            self.results.append(SubResult(name, weight, True))

    @staticmethod
    def require(condition, message: str) -> None:
        if not bool(condition):
            raise CheckFailed(message)

    # -- reading recordings --------------------------------------------------
    def entry(self, key: str, side: str = "student") -> Entry:
        view = self.student if side == "student" else self.reference
        entry = view.entries.get(key)
        if entry is None:
            raise CheckFailed(f"no result was recorded for the call {key!r}")
        return entry

    def raised(self, key: str) -> str | None:
        """The exception type the student's call raised, or None."""
        entry = self.entry(key)
        return entry.error_type if entry.status == "error" else None

    def outputs(self, key: str, n: int | None = None, side: str = "student") -> list:
        """The values a call returned (arrays, dicts of arrays or None).

        Fails the sub-check with a message if the call raised, or if ``n`` is
        given and the call did not return exactly ``n`` values.
        """
        entry = self.entry(key, side)
        if entry.status == "error":
            who = "your function" if side == "student" else "the reference"
            raise CheckFailed(f"{who} raised {entry.error_type}: {entry.error_message}")
        if n is not None and len(entry.outputs) != n:
            raise CheckFailed(f"expected {n} returned value{'s' if n > 1 else ''}, got {len(entry.outputs)}")
        return [_value(o) for o in entry.outputs]

    def output(self, key: str, side: str = "student"):
        """The single value a call returned (a tuple return is an error)."""
        entry = self.entry(key, side)
        values = self.outputs(key, side=side)
        if entry.is_tuple:
            raise CheckFailed(f"expected one returned value, got a tuple of {len(values)}")
        return values[0]

    def raw_outputs(self, key: str, side: str = "student") -> list[Output]:
        entry = self.entry(key, side)
        if entry.status == "error":
            raise CheckFailed(f"raised {entry.error_type}: {entry.error_message}")
        return entry.outputs

    def ref(self, key: str):
        """The reference's values for a call (a list, like :meth:`outputs`)."""
        return self.outputs(key, side="reference")

    def mutated(self, key: str) -> tuple:
        return self.entry(key).mutated

    # -- result --------------------------------------------------------------
    def fraction(self) -> float:
        total = sum(r.weight for r in self.results)
        return 0.0 if total == 0 else sum(r.weight for r in self.results if r.passed) / total


def _value(output: Output):
    if output.kind == "array":
        return output.value
    if output.kind == "none":
        return None
    if output.kind == "dict":
        return {k: _value(v) for k, v in output.value.items()}
    if output.kind == "too_large":
        raise CheckFailed(f"an output of shape {output.shape} is far larger than the task asks for")
    raise CheckFailed(f"returned a {output.type}, expected a numeric array, tensor or number")


# -- helpers checks share ----------------------------------------------------

def as_float_array(value, what: str = "output") -> np.ndarray:
    """``value`` as a float64 array, failing with a message if it is not numeric."""
    if value is None:
        raise CheckFailed(f"the {what} is None")
    if isinstance(value, dict):
        raise CheckFailed(f"the {what} is a dict, expected an array")
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise CheckFailed(f"the {what} has dtype {arr.dtype}, expected numbers")
    return arr.astype(np.float64)


def require_shape(arr: np.ndarray, shape, what: str = "output") -> None:
    if tuple(arr.shape) != tuple(shape):
        raise CheckFailed(f"the {what} has shape {tuple(arr.shape)}, expected {tuple(shape)}")


def close(a, b, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    """Elementwise closeness with tolerances that accept float32 results."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.isfinite(a) == np.isfinite(b))) \
        and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def describe_difference(got, expected) -> str:
    """A short, hidden-input-free description of how two arrays differ."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return f"shape {got.shape} instead of {expected.shape}"
    if np.isnan(got).any() and not np.isnan(expected).any():
        return "it contains NaN"
    err = np.abs(got - expected)
    return f"largest absolute difference {err.max():.3g} ({np.mean(err > 1e-6):.0%} of entries differ)"
