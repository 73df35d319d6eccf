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

Gating. A recording is written by the student's kernel, so everything in it
is a claim: "raised ValueError", "modified nothing", "returned float32" cost a
forger nothing. Only the function's central computation (the scaling, the
gradient, the estimator), compared with values the grader derives from hidden
inputs, cannot be faked without solving. So a sub-check is declared
``central=True`` or not, and a non-central one earns its weight only when
the central sub-checks it depends on passed (by default all of the
function's central ones; ``gated_by`` names a subset, for a function with
two independent parts such as an autograd Function's forward and backward).
A central check that is itself only a claim about outputs a forger can
invent (a drop rate of claimed masks) is gated too, by the central check
that ties those outputs to the inputs. When a gate is closed the sub-check is
reported as not credited, with a short message naming the gate. A stub, a
None or an exception therefore earns nothing, whatever else the notebook
does::

    with c.check("kept values are scaled by 1/(1-p)", weight=8, central=True): ...
    with c.check("drops each entry with probability p", weight=3, central=True,
                 gated_by=("kept values are scaled by 1/(1-p)",)): ...
    with c.check("x is not modified", weight=1, peripheral=True): ...

``peripheral=True`` marks argument validation, dtype, shape and in-place
checks, which the grading policy caps at a quarter of a function's points.

A sub-check that fails while its gate is closed is reported under the gate
too ("not credited until ..."): the student fixes the central mistake first,
and one message names it instead of several echoing it.

Messages (autograder/POLICY.md). ``representative_first`` orders the
parameter values a check loops over so that the first failure, the one the
message reports, is a non-degenerate case (p = 0.2 rather than p = 0, where
1/p is inf, or p = 0.5, where p and 1 - p coincide); ``name_factor`` and
``factor_phrase`` turn a measured factor into "1/p = 5.0"; ``NONE_MESSAGE``
is what a function that returns None is told; ``probe_arguments`` re-derives
a call's hidden inputs in the grader so a check can compute what a named
mistake would have returned (never to show them).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from autograder.recording import Entry, Output, View


class CheckFailed(Exception):
    """A sub-check failed; ``str(exc)`` is the student-facing message."""


@dataclass
class SubResult:
    """One sub-check's outcome. ``passed`` means credited: a sub-check whose
    gate stayed closed has ``passed=False`` and ``gated=True`` (whether its own
    test passed or not), and its message names the gate."""

    name: str
    weight: float
    passed: bool
    message: str = ""
    central: bool = False
    peripheral: bool = False
    gated_by: tuple | None = None  # central names this one needs; None = all central ones
    gated: bool = False


class Checker:
    """Access to the student's and the reference's recordings plus the
    list of sub-check results built so far."""

    def __init__(self, student: View, reference: View):
        self.student = student
        self.reference = reference
        self.results: list[SubResult] = []
        self._gates_applied = False

    # -- declaring sub-checks ----------------------------------------------
    @contextmanager
    def check(self, name: str, weight: float = 1.0, *, central: bool = False,
              peripheral: bool = False, gated_by: tuple | None = None):
        """Declare one sub-check (see the module docstring for ``central``,
        ``peripheral`` and ``gated_by``)."""
        if central and peripheral:
            raise ValueError(f"sub-check {name!r} cannot be both central and peripheral")
        if central and gated_by is None:
            gated_by = ()  # a central check is ungated unless it says otherwise
        result = SubResult(name, weight, True, central=central, peripheral=peripheral,
                           gated_by=None if gated_by is None else tuple(gated_by))
        try:
            yield
        except CheckFailed as exc:
            result.passed, result.message = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - a weird output must not crash grading
            result.passed = False
            result.message = (f"your output could not be checked ({type(exc).__name__}: {str(exc)[:200]}); "
                              "check its type, shape and dtype against the task")
        self.results.append(result)

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
            hint = ""
            if side == "student" and "NoneType" in entry.error_message:
                hint = " (did your function return None? did you forget `return`?)"
            raise CheckFailed(f"{who} raised {entry.error_type}: {entry.error_message}{hint}")
        if n is not None and n > 1 and _returned_none(entry):
            raise CheckFailed(NONE_MESSAGE)
        if n is not None and len(entry.outputs) != n:
            raise CheckFailed(f"expected {n} returned value{'s' if n > 1 else ''}, got {len(entry.outputs)}")
        return [_value(o) for o in entry.outputs]

    def output(self, key: str, side: str = "student", allow_none: bool = False):
        """The single value a call returned (a tuple return is an error, and
        so is None unless ``allow_none``)."""
        entry = self.entry(key, side)
        values = self.outputs(key, side=side)
        if entry.is_tuple:
            raise CheckFailed(f"expected one returned value, got a tuple of {len(values)}")
        if side == "student" and not allow_none and _returned_none(entry):
            raise CheckFailed(NONE_MESSAGE)
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
    def apply_gates(self) -> None:
        """Withdraw the credit of every sub-check whose gate is closed: a
        central check it depends on failed, directly or through that check's
        own gate. Idempotent; gates are resolved once all sub-checks are
        declared, so declaration order is free."""
        if self._gates_applied:
            return
        self._gates_applied = True
        by_name = {r.name: r for r in self.results}
        central = tuple(r.name for r in self.results if r.central)

        def needs(r: SubResult) -> tuple:
            names = central if r.gated_by is None else r.gated_by
            unknown = [n for n in names if n not in by_name or not by_name[n].central]
            if unknown:
                raise ValueError(f"sub-check {r.name!r} is gated by {unknown}, which are not central sub-checks")
            return tuple(n for n in names if n != r.name)

        def blockers(r: SubResult, seen: frozenset) -> list:
            """The failed central checks that keep r's gate closed."""
            found = []
            for n in needs(r):
                dep = by_name[n]
                if not dep.passed:
                    found.append(n)
                elif n not in seen:
                    found += [b for b in blockers(dep, seen | {n}) if b not in found]
            return found

        closed = {r.name: list(dict.fromkeys(blockers(r, frozenset({r.name})))) for r in self.results}
        for r in self.results:
            if closed[r.name]:  # passed or not: the closed gate is what to fix first
                r.passed, r.gated = False, True
                r.message = gate_message(closed[r.name])

    def fraction(self) -> float:
        self.apply_gates()
        total = sum(r.weight for r in self.results)
        return 0.0 if total == 0 else sum(r.weight for r in self.results if r.passed) / total


def gate_message(closed) -> str:
    """The short, student-facing reason a passing sub-check earned nothing."""
    quoted = [f"'{n}'" for n in closed]
    names = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return f"not credited until {names} pass{'es' if len(closed) == 1 else ''}"


#: What a function that returned None is told (instead of "expected 2 returned values, got 1").
NONE_MESSAGE = "your function returned None: did you forget `return`?"


def _returned_none(entry: Entry) -> bool:
    return entry.status == "ok" and not entry.is_tuple and len(entry.outputs) == 1 \
        and entry.outputs[0].kind == "none"


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


#: What check_function_of_rng says when two same-seed calls differ.
RNG_MESSAGE = ("two calls with generators of the same seed gave different results, so your function "
               "ignores the rng it is given: draw every random number from rng (np.random.* uses numpy's "
               "global state, np.random.default_rng() a fresh seed of its own)")
GENERATOR_MESSAGE = ("two calls with generators of the same seed gave different results: draw every random "
                     "number from generator (torch.rand and friends without generator= use torch's global state)")


def same_values(a, b) -> bool:
    """True when two recorded values (arrays, None, dicts of them) agree to
    float tolerance; NaN matches NaN."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() \
            and all(same_values(a[k], b[k]) for k in a)
    return close(as_float_array(a), as_float_array(b))


def check_function_of_rng(c: Checker, key: str, message: str = RNG_MESSAGE) -> None:
    """Require that the calls ``"<key> 1"`` and ``"<key> 2"`` (recorded by
    ``dropout_lab.probes.same_seed_calls``: generators of one seed, global
    random states reseeded differently before each) returned the same values.

    Deterministic for a correct function, so it cannot fail one by chance. It
    is a comparison of two claims, so declare it non-central (gated)."""
    first, second = c.outputs(f"{key} 1"), c.outputs(f"{key} 2")
    c.require(len(first) == len(second) and all(same_values(a, b) for a, b in zip(first, second)), message)


# -- messages: representative cases and named factors -----------------------------

#: Drop probabilities at which a message is degenerate: 1/p or 1/(1-p) is
#: infinite (p = 0, p = 1) or p and 1 - p coincide (p = 0.5).
DEGENERATE_PS = (0.0, 0.5, 1.0)


def representative_first(values, avoid=DEGENERATE_PS, prefer: float = 0.2) -> list:
    """``values`` reordered for a check that stops at its first failure, so
    that the failure its message reports is a representative case: values in
    ``avoid`` last (p = 0.5 before p = 0 and p = 1, where factors are
    infinite), the others closest to ``prefer`` first. Every value is still checked; only the order changes."""
    values = list(values)
    good = sorted((v for v in values if v not in avoid), key=lambda v: abs(v - prefer))
    return good + sorted((v for v in values if v in avoid), key=lambda v: v in (0.0, 1.0))


#: Factors a dropout student can apply, as functions of the drop probability p.
P_FACTORS = {
    "1/(1-p)": lambda p: 1 / (1 - p),
    "1/p": lambda p: 1 / p,
    "1-p": lambda p: 1 - p,
    "p": lambda p: p,
    "1": lambda p: 1.0,
}


def fmt(value: float) -> str:
    """A number for a message: three significant digits, "5.0" rather than "5",
    and 0 for float noise around 0."""
    text = f"{0.0 if abs(value) < 1e-12 else value:.3g}"
    return text if any(ch in text for ch in ".en") else text + ".0"


def factor_phrase(form: str, p: float) -> str:
    """``"1/p = 5.0"`` for form "1/p" at p = 0.2 (just "1" for the form "1")."""
    return form if form == "1" else f"{form} = {fmt(P_FACTORS[form](p))}"


def name_factor(factor: float, p: float, forms=tuple(P_FACTORS), rtol: float = 1e-3) -> str | None:
    """The one form whose value at ``p`` is ``factor``, or None when none or
    several match (at p = 0.5, "p" and "1-p" do). ``forms`` names entries of
    P_FACTORS, or is a dict of its own {name: function of p}."""
    table = forms if isinstance(forms, dict) else {name: P_FACTORS[name] for name in forms}
    if not np.isfinite(factor):
        return None
    hits = []
    for form, fn in table.items():
        try:
            value = fn(p)
        except ZeroDivisionError:
            continue
        if np.isfinite(value) and np.isclose(factor, value, rtol=rtol, atol=0):
            hits.append(form)
    return hits[0] if len(hits) == 1 else None


def kept_factor(out, x, mask) -> float | None:
    """The one factor f with out == f * x on the kept entries (mask == 1,
    |x| > 1e-3), or None when there is no single factor."""
    out, x = np.asarray(out, dtype=np.float64), np.asarray(x, dtype=np.float64)
    kept = np.asarray(mask).astype(bool) & (np.abs(x) > 1e-3)
    if not kept.any():
        return None
    ratio = out[kept] / x[kept]
    f = float(np.median(ratio))
    return f if np.isfinite(f) and np.allclose(ratio, f, rtol=1e-4, atol=1e-9) else None


def dropped_problem(out, x, mask, backward: bool = False) -> str | None:
    """A message when positions the mask drops are not 0 in ``out`` (the
    output of a forward pass of x, or the gradient a backward pass returns
    for upstream gradient x); None when they are all 0."""
    out, x = np.asarray(out, dtype=np.float64), np.asarray(x, dtype=np.float64)
    m = np.asarray(mask).astype(bool)
    big = np.abs(x) > 1e-3
    dropped, kept = ~m & big, m & big
    if not np.any(np.abs(out[dropped]) > 1e-9):
        return None
    some_kept_zero = kept.any() and np.any(np.abs(out[kept]) <= 1e-12)
    if backward:
        if some_kept_zero:
            return ("some dropped positions get a gradient and some kept ones get none: use the mask you are "
                    "given (the one the forward pass applied), never draw a new one")
        return ("your backward ignores the mask: dropped positions (mask == 0) got a gradient; a dropped "
                "unit's output did not depend on its input, so its gradient is 0")
    if kept.any() and np.all(np.abs(out[kept]) <= 1e-12):
        return ("your output is 0 where your mask is 1 and non-zero where it is 0: return the mask of KEPT "
                "entries (1 = kept, 0 = dropped)")
    return "entries your mask drops (mask == 0) are not 0 in your output: multiply x by the mask you return"


def inverted_scale_problem(out, x, mask, p, backward: bool = False) -> str:
    """How ``out`` differs from x * mask / (1 - p), naming the factor a
    student applied (1/p, p, 1-p, none) at this p (pick a representative one:
    0 < p < 1, p != 0.5). For a backward pass x is the upstream gradient."""
    problem = dropped_problem(out, x, mask, backward)
    if problem:
        return problem
    noun = "kept gradients" if backward else "kept values"
    want = factor_phrase("1/(1-p)", p)
    f = kept_factor(out, x, mask)
    if f is None:
        return f"{noun} are not all scaled by one factor; inverted dropout scales each of them by {want}"
    form = name_factor(f, p)
    if form == "1/p":
        return (f"{noun} are scaled by 1/p = {fmt(1 / p)} instead of {want}: p is the probability of "
                "dropping, 1-p that of keeping")
    if form == "p":
        return (f"{noun} are multiplied by p = {fmt(p)} instead of scaled by {want}: inverted dropout "
                "divides by the keep probability 1-p")
    if form == "1-p":
        why = ("the backward pass scales by the same factor as the forward pass" if backward else
               "multiplying by 1-p is standard dropout's test-time step; inverted dropout divides while "
               "training so that test time needs nothing")
        return f"{noun} are multiplied by 1-p = {fmt(1 - p)} instead of divided by it ({want}): {why}"
    if form == "1":
        if backward:
            return (f"your backward forgets the 1/(1-p): kept gradients are scaled by 1 instead of {want}, "
                    "the factor the forward pass applied")
        return (f"kept values are not rescaled (scaled by 1 instead of {want}): divide them by the keep "
                "probability 1-p so that the expected output stays x")
    return f"{noun} are scaled by {fmt(f)} instead of {want}"


# -- the hidden inputs of a call, for diagnosing a named mistake --------------------

class _ArgumentCatcher:
    """A stand-in for dropout_lab.recorder.Recording that keeps each call's
    arguments instead of calling anything."""

    def __init__(self):
        self.calls: dict = {}

    def call(self, key, fn, *args, **kwargs):
        self.calls[key] = (args, kwargs)


@lru_cache(maxsize=32)
def _probe_calls(grade_id: str, seed: int) -> dict:
    from dropout_lab.probes import get_probe
    from dropout_lab.recorder import probe_seed

    catcher = _ArgumentCatcher()
    get_probe(grade_id)(None, catcher, np.random.default_rng(probe_seed(seed, grade_id)))
    return catcher.calls


def probe_arguments(c: Checker, key: str) -> tuple:
    """``(args, kwargs)`` the probe passed to the student's function for the
    call ``key`` (copies), re-derived in the grader from the run's seed. For a
    check that computes what a named mistake would have returned, so that its
    message can name the mistake; never put these values in a message."""
    args, kwargs = _probe_calls(c.reference.grade_id, c.reference.seed)[key]
    return copy.deepcopy(args), copy.deepcopy(kwargs)
