"""Visible self-checks for students.

They report, they never raise: a failing self-check prints what is wrong and
the notebook goes on (in grading, the hidden recording in the same cell still
runs, so a partly right function still earns partial credit)::

    with SelfCheck("dropout_forward") as sc:
        x = np.ones((2, 3))
        with sc.check("out and mask have x's shape"):
            out, mask = dropout_forward(x, 0.2, make_rng(1))
            sc.expect(np.shape(out) == x.shape, "out must have x's shape")
        with sc.check("p = 1.5 raises ValueError"):
            sc.expect_raises(ValueError, lambda: dropout_forward(x, 1.5, make_rng(2)), "p = 1.5 must raise ValueError")

Every ``with sc.check(label):`` block is one self-check, independent of the
others: an exception inside it (from the student's code or from checking a
malformed result) fails that check only, with a sentence saying what happened,
and the next check runs. ``sc.expect`` inside a check stops that check at its
first failed condition; outside a check it is a self-check of its own. The
summary counts every check of the cell.

While the block runs, each graded function of the course found in the
notebook (the names in :data:`RETURNS`) is temporarily replaced by a thin
wrapper that turns a ``None`` result into "your F returned None: did you forget
`return`?" and a result with the wrong number of values into a sentence naming
what F must return. An exception raised inside the student's code is reported
as "your F raised TypeError: ..." with the function (and helper) it came from.
"""
from __future__ import annotations

import functools
import sys
import types

import numpy as np

#: What each exercise function returns: the names of its values when it returns
#: a tuple, None when it returns one value. A graded function never returns None.
RETURNS = {
    "polynomial_features": None,
    "ridge_fit": None,
    "l2_penalty": None,
    "l1_penalty": None,
    "early_stopping_epoch": None,
    "ensemble_variance": None,
    "bootstrap_indices": None,
    "enumerate_masks": None,
    "mask_probabilities": None,
    "exact_dropout_ensemble": ("arith", "geo"),
    "mc_dropout_average": None,
    "mean_abs_correlation": None,
    "fraction_inactive": None,
    "ablation_importance": None,
    "random_deletion_accuracy": None,
    "dropout_forward": ("out", "mask"),
    "standard_dropout_forward": ("out", "mask"),
    "dropout_moments": ("mean", "var"),
    "mc_moments": ("mean", "var"),
    "exact_dropout_average": None,  # an exercise without points
    "dropout_backward": None,
    "numerical_gradient": None,
    "relative_error": None,
    "mlp_loss_and_grads": ("loss", "grads"),
    "dropout_variance": None,
    "variance_shift_ratio": None,
    "bn_input_variance": ("train_var", "eval_var"),
    "recalibrate_bn": None,
    "uout": None,
    "dropconnect_linear": None,
    "gaussian_dropout": None,
    "spatial_dropout": None,
    "dropblock_gamma": None,
    "dropblock": None,
    "drop_path": None,
    "cutout": None,
    "multi_sample_dropout_logits": None,
    "symmetric_kl": None,
    "rdrop_loss": None,
    "rdrop_forward": ("logits1", "logits2"),
    "max_norm_": None,
    "dropout_ridge_solution": None,
    "mc_dropout_predict": ("mean_probs", "entropy"),
}

CHECK, CROSS = "\u2713", "\u2717"
_MAX_MESSAGE = 240


class ReturnProblem(Exception):
    """A graded function returned None or the wrong number of values."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"your {name} {problem}")
        self.name = name
        self.problem = problem


class _Failed(Exception):
    """Stops a check at its first failed condition (already recorded)."""


# -- wrapping the student's graded functions --------------------------------------------

def _describe_value(value) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} value{'s' if len(value) != 1 else ''}"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a single {type(value).__name__} of shape {tuple(shape)}"
    return f"a single {type(value).__name__}"


def _guard(fn, name: str, returns):
    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        result = fn(*args, **kwargs)
        if result is None:
            raise ReturnProblem(name, "returned None: did you forget `return`?")
        if returns and (not isinstance(result, (tuple, list)) or len(result) != len(returns)):
            raise ReturnProblem(name, f"must return {len(returns)} values ({', '.join(returns)}); "
                                      f"it returned {_describe_value(result)}")
        return result

    guarded._dropout_lab_original = fn
    return guarded


def _original(obj):
    return getattr(obj, "_dropout_lab_original", obj)


class _Guarded:
    """Replace the graded functions of ``namespace`` by guarded wrappers; undo on exit."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.installed: dict = {}

    def __enter__(self):
        for name, returns in RETURNS.items():
            obj = self.namespace.get(name)
            if isinstance(obj, types.FunctionType) and not hasattr(obj, "_dropout_lab_original"):
                wrapper = _guard(obj, name, returns)
                self.namespace[name] = wrapper
                self.installed[name] = (obj, wrapper)
        return self

    def __exit__(self, *exc):
        for name, (obj, wrapper) in self.installed.items():
            if self.namespace.get(name) is wrapper:  # never undo a redefinition
                self.namespace[name] = obj
        self.installed = {}
        return False


# -- saying what went wrong --------------------------------------------------------------

def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 3] + "..."


def _exception_text(exc: BaseException) -> str:
    msg = _short(exc)
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def student_code_names(namespace: dict, focus=()) -> dict:
    """Code object -> display name for the student's graded functions found in
    ``namespace``: those named in ``focus`` (a function, or a class whose
    methods count) and every graded function of :data:`RETURNS`. Helpers
    (the student's own or an experiment's) are not named: an error inside one
    is reported at the graded function that called it."""
    names = {}
    for name in (*focus, *RETURNS):
        obj = _original(namespace.get(name))
        if isinstance(obj, types.FunctionType):
            names.setdefault(obj.__code__, name)
        elif isinstance(obj, type):
            for attr, value in vars(obj).items():
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                if isinstance(value, types.FunctionType):
                    names.setdefault(value.__code__, f"{name}.{attr}")
    return names


def student_frames(exc: BaseException, code_names: dict) -> list:
    """(display name, line number) of the student's frames in ``exc``'s
    traceback, outermost first."""
    found = []
    tb = exc.__traceback__
    while tb is not None:
        name = code_names.get(tb.tb_frame.f_code)
        if name is not None:
            found.append((name, tb.tb_lineno))
        tb = tb.tb_next
    return found


class Diagnosis:
    """What an exception says about the student's code.

    ``kind`` is "stub" (NotImplementedError from the student's code),
    "student" (None returned, or an exception raised inside the student's
    code), "torch" (torch rejected what the student's code returned) or
    "result" (checking a result failed: the result is malformed). ``culprit``
    names the student's function the problem is in, when known.
    """

    def __init__(self, kind: str, culprit: str | None, text: str):
        self.kind, self.culprit, self.text = kind, culprit, text


def diagnose(exc: BaseException, namespace: dict, focus=()) -> Diagnosis:
    frames = student_frames(exc, student_code_names(namespace, focus))
    if isinstance(exc, ReturnProblem):
        callers = [name for name, _ in frames if name != exc.name]
        return Diagnosis("student", exc.name, str(exc) + (f" (called by your {callers[0]})" if callers else ""))
    if frames:
        outer, (inner, line) = frames[0][0], frames[-1]
        if isinstance(exc, NotImplementedError):
            if inner == outer:
                return Diagnosis("stub", inner, f"your {inner} is not implemented yet "
                                                "(it raises NotImplementedError)")
            return Diagnosis("stub", inner, f"your {outer} calls {inner}, which is not implemented yet "
                                            "(it raises NotImplementedError)")
        where = f"line {line} of its cell" if inner == outer else f"in {inner}, line {line} of its cell"
        return Diagnosis("student", inner, f"your {outer} raised {_exception_text(exc)} ({where})")
    text = str(exc)
    missing = getattr(exc, "name", None) if isinstance(exc, NameError) else None
    if missing and (missing in focus or missing in RETURNS):
        return Diagnosis("student", missing, f"{missing} is not defined: run the cell that defines it "
                                             "(above) first")
    if "returned an incorrect number of gradients" in text:
        return Diagnosis("torch", None,
                         "backward must return one value per input of forward (x, mask, p): the "
                         "gradient for x and None for the others (or did you forget `return`?); "
                         f"torch says: {_short(text)}")
    if isinstance(exc, (TypeError, AttributeError)) and "NoneType" in text:
        classes = [name for name in focus if isinstance(namespace.get(name), type)
                   and "forward" in vars(namespace[name])]
        if classes:  # Function.apply returns what forward returns
            return Diagnosis("student", f"{classes[0]}.forward",
                             f"your {classes[0]}.forward seems to return None: did you forget `return`? "
                             f"({_exception_text(exc)})")
        return Diagnosis("student", None, "a value your code returned is None: did you forget `return`? "
                                          f"({_exception_text(exc)})")
    return Diagnosis("result", None, f"checking your result raised {_exception_text(exc)}")


# -- the self-checks ---------------------------------------------------------------------

_FACTOR_NAMES = ("1/(1-p)", "1/p", "1-p", "p", "1")

_HINTS = {
    ("1/p", "1/(1-p)"): "p is the probability of dropping: divide by the keep probability 1 - p",
    ("p", "1/(1-p)"): "p is the probability of dropping, and inverted dropout divides by the keep probability",
    ("1", "1/(1-p)"): "they are not rescaled; inverted dropout divides kept values by the keep probability",
    ("1-p", "1/(1-p)"): "multiplying by the keep probability is standard dropout's test-time rule; "
                        "inverted dropout divides by it in training",
    ("1/(1-p)", "1"): "dividing by 1 - p belongs to inverted dropout's training pass only",
    ("1-p", "1"): "multiplying by 1 - p belongs to standard dropout at test time only",
    ("1/p", "1"): "nothing is rescaled here",
    ("p", "1-p"): "p is the probability of dropping: the test-time factor is the keep probability",
    ("1", "1-p"): "standard dropout scales x by the keep probability at test time",
    ("1/(1-p)", "1-p"): "standard dropout multiplies by the keep probability at test time, it does not divide",
    ("1/p", "1-p"): "p is the probability of dropping: multiply by the keep probability",
}


def _factors(p: float) -> dict:
    out = {"1": 1.0}
    if p < 1:
        out["1/(1-p)"] = 1.0 / (1.0 - p)
        out["1-p"] = 1.0 - p
    if p > 0:
        out["1/p"] = 1.0 / p
        out["p"] = p
    return out


def _name_of(value: float, p: float):
    for name, v in _factors(p).items():
        if np.isclose(value, v, rtol=1e-6, atol=0):
            return name
    return None


def _fmt(values, digits: int = 4) -> str:
    """Numbers on one line: 0.25, [1, 2.5] or [[1, 0], [0.0625, 2]]."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        v = float(arr)
        return f"{0.0 if abs(v) < 1e-12 else v:.{digits}g}"
    if arr.size > 24:
        return f"an array of shape {arr.shape}"
    return "[" + ", ".join(_fmt(row, digits) for row in arr) + "]"


def _term(name, value: float) -> str:
    """'1/(1-p) = 1.25', or just '1'."""
    if name == "1":
        return "1"
    return f"{name} = {value:.4g}" if name else f"{value:.4g}"


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _entries(k: int) -> str:
    return f"{k} entr{'y' if k == 1 else 'ies'}"


class _Check:
    def __init__(self, sc: "SelfCheck", label: str):
        self.sc, self.label = sc, label

    def __enter__(self):
        self.sc._current = self.label
        self.sc._current_failed = False
        return self

    def __exit__(self, exc_type, exc, tb):
        sc = self.sc
        sc._current = None
        if exc is not None and not isinstance(exc, Exception):
            return False                          # KeyboardInterrupt and friends pass
        if isinstance(exc, _Failed) or sc._current_failed:
            return True                           # already recorded (later errors are consequences)
        if exc is not None:
            sc._record_error(self.label, exc)
            return True
        sc.passed += 1
        return False


class SelfCheck:
    """A cell of self-checks for the graded function (or class) ``name``."""

    def __init__(self, name: str):
        self.name = name
        self.namespace = sys._getframe(1).f_globals
        self.passed = 0
        self.failed: list[str] = []
        self._lines: list[str] = []
        self._last_error = None
        self._stubs = 0
        self._current: str | None = None
        self._current_failed = False
        self._guard = _Guarded(self.namespace)
        self._errstate = np.errstate(all="ignore")

    # the cell ------------------------------------------------------------------------
    def __enter__(self) -> "SelfCheck":
        self._errstate.__enter__()
        self._guard.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._guard.__exit__(None, None, None)
        self._errstate.__exit__(None, None, None)
        if exc is not None and not isinstance(exc, Exception):
            return False
        if exc is not None:  # outside any check: the rest of the cell did not run
            self._record_error("the remaining self-checks could not run", exc)
        self._report()
        return exc is not None

    def check(self, label: str) -> _Check:
        """One self-check: ``with sc.check("what a correct function does"):``."""
        return _Check(self, label)

    # conditions -----------------------------------------------------------------------
    def expect(self, condition, message: str) -> bool:
        """A condition; ``message`` says what a correct function does (and,
        when it can, what yours did). Inside a check, a failed condition ends
        the check; outside, it is a self-check of its own."""
        ok = bool(condition)
        if self._current is None:
            if ok:
                self.passed += 1
            else:
                self._record(message)
            return ok
        if not ok:
            self._record(message)
            self._current_failed = True
            raise _Failed()
        return True

    def fail(self, message: str):
        return self.expect(False, message)

    def expect_raises(self, exc_type, call, message: str) -> bool:
        """``call()`` must raise ``exc_type`` (e.g. ValueError for a bad p)."""
        try:
            call()
        except exc_type:
            return self.expect(True, message)
        except ReturnProblem:
            return self.fail(f"{message}; yours returned without raising it")
        except Exception as exc:  # noqa: BLE001 - reported
            if self._current is not None and diagnose(exc, self.namespace, (self.name,)).kind == "stub":
                raise                                     # reported as "not implemented yet"
            return self.fail(f"{message}; yours raised {_exception_text(exc)} instead")
        return self.fail(f"{message}; yours returned without raising it")

    def expect_close(self, got, want, what: str, rtol=1e-6, atol=1e-9, hints=()) -> bool:
        """``got`` must equal the numbers ``want``; ``hints`` are (value, sentence)
        pairs naming a recognisable mistake whose result is ``value``."""
        want = np.asarray(want, dtype=float)
        try:
            got_arr = np.asarray(got, dtype=float)
        except (TypeError, ValueError):
            return self.fail(f"{what} should be {_fmt(want)}; yours is {_short(repr(got))}, not numbers")
        if got_arr.shape != want.shape and got_arr.size != want.size:
            return self.fail(f"{what} should have shape {want.shape}; yours has shape {got_arr.shape}")
        got_arr = got_arr.reshape(want.shape)
        if np.allclose(got_arr, want, rtol=rtol, atol=atol):
            return self.expect(True, what)
        shown_want, shown_got = _fmt(want), _fmt(got_arr)
        should = "should be close to" if rtol > 1e-3 else "should be"
        message = f"{what} {should} {shown_want}; yours is {shown_got}"
        if shown_want == shown_got:
            message = (f"{what} {should} {shown_want}; yours is off by up to "
                       f"{float(np.nanmax(np.abs(got_arr - want))):.2g}")
        for value, sentence in hints:
            value = np.asarray(value, dtype=float)
            if value.size == want.size and np.allclose(got_arr, value.reshape(want.shape), rtol=1e-6,
                                                       atol=1e-12, equal_nan=True):
                return self.fail(f"{message}: {sentence}")
        if np.isnan(got_arr).any():
            message += " (NaN: a division of zero by zero?)"
        return self.fail(message)

    def expect_grads(self, grads, true: dict, *, p: float, n: int, dropped_unit=None) -> bool:
        """``grads`` (a dict) must match the true gradients ``true`` of a loss
        averaged over ``n`` examples with hidden dropout ``p``; a hidden unit
        ``dropped_unit`` that the mask drops in every example must get 0."""
        keys = list(true)
        if not isinstance(grads, dict) or set(grads) != set(keys):
            return self.fail(f"grads must be a dict with the keys {', '.join(keys)}")
        g = {k: np.asarray(grads[k], dtype=float) for k in keys}
        for k in keys:
            if g[k].shape != np.shape(true[k]):
                return self.fail(f"dL/d{k} must have shape {np.shape(true[k])}; yours has {g[k].shape}")
        wrong = [k for k in keys if not np.allclose(g[k], true[k], rtol=1e-6, atol=1e-9)]
        if not wrong:
            return self.expect(True, "gradients")
        names = _and([f"dL/d{k}" for k in wrong])

        def ratio(k):
            t = np.asarray(true[k], dtype=float)
            r = float(np.sum(g[k] * t) / max(float(np.sum(t * t)), 1e-300))
            return r if np.allclose(g[k], r * t, rtol=1e-6, atol=1e-9) else None

        ratios = [ratio(k) for k in wrong]
        common = ratios[0] if ratios[0] is not None and all(
            r is not None and np.isclose(r, ratios[0], rtol=1e-6) for r in ratios) else None
        if len(wrong) == len(keys) and common is not None:
            if np.isclose(common, n, rtol=1e-6):
                return self.fail(f"your gradients are N = {n} times too large: the loss is a MEAN over the "
                                 "batch, and so is every gradient")
            if np.isclose(common, 1 / n, rtol=1e-6):
                return self.fail(f"your gradients are N = {n} times too small: divide by N once, not twice")
        if set(wrong) <= {"W1", "b1"}:
            j = dropped_unit
            if j is not None and (np.abs(g["W1"][:, j]).max() > 1e-12 or abs(g["b1"][j]) > 1e-12):
                return self.fail(f"hidden unit {j} is dropped in every example, yet your dL/dW1[:, {j}] or "
                                 f"dL/db1[{j}] is not 0: the backward pass must go through the mask too")
            seen = _name_of(common, p) if common is not None else None
            if seen:
                return self.fail(f"{names} are {seen} = {common:.4g} times the true ones (p = {p}): the step back "
                                 "through the mask must multiply by the factor the forward pass applied")
            if wrong == ["b1"]:
                return self.fail("only dL/db1 is wrong (dL/dW1 is right): dL/db1 sums over the batch the same "
                                 "upstream gradient that dL/dW1 uses")
        verb = "differs" if len(wrong) == 1 else "differ"
        if common is not None:
            return self.fail(f"{names} {verb} from torch's autograd: {'it is' if len(wrong) == 1 else 'they are'} "
                             f"{common:.4g} times the true {'one' if len(wrong) == 1 else 'ones'}")
        errors = {k: float(np.max(np.abs(g[k] - true[k]) / np.maximum(1e-8, np.abs(g[k]) + np.abs(true[k]))))
                  for k in wrong}
        return self.fail(f"{names} {verb} from torch's autograd (largest relative error "
                         f"{max(errors.values()):.2g})")

    def expect_scaled(self, got, x, mask, *, p: float, factor: float, subject: str,
                      note: str = "", own_mask: bool = False, test_time: bool = False) -> bool:
        """``got`` must be ``x`` times ``factor`` where ``mask`` keeps and 0
        where it drops. ``subject`` names what is scaled, verb included
        ("kept values are"); a recognisable wrong factor (1/p, 1 - p, p, 1,
        1/(1-p)) is named with its value for this p."""
        x = np.asarray(x, dtype=float)
        got = np.asarray(got, dtype=float)
        if got.shape != x.shape:
            return self.fail(f"the result must have shape {x.shape}; yours has shape {got.shape}")
        if not np.isfinite(got).all():
            return self.fail(f"your result holds NaN or inf (p = {p}): a division by zero?")
        keep = np.broadcast_to(np.asarray(mask, dtype=float) != 0, x.shape)
        live = x != 0
        zero_kept = keep & live & (got == 0)
        leaked = ~keep & live & (got != 0)
        if test_time and zero_kept.any():
            return self.fail(f"at test time nothing is dropped, yet {int(zero_kept.sum())} of your "
                             f"{int(live.sum())} values are 0 (p = {p})")
        if zero_kept.any() and leaked.any():
            which = "your mask" if own_mask else "the mask"
            hint = ("the output must be 0 exactly where your mask is 0 (the mask holds 1 for KEPT units)"
                    if own_mask else "use the mask you are given (the forward pass's), never draw a new one")
            return self.fail(f"zeros in the wrong places: {_entries(int(zero_kept.sum()))} {which} keeps "
                             f"{'is' if zero_kept.sum() == 1 else 'are'} 0 and {_entries(int(leaked.sum()))} "
                             f"it drops {'is' if leaked.sum() == 1 else 'are'} not: {hint}")
        if leaked.any():
            return self.fail(f"entries the mask drops must be 0; yours are not 0 at {int(leaked.sum())} of the "
                             f"{int((~keep & live).sum())} dropped entries (p = {p})")
        if zero_kept.any():
            return self.fail(f"{_entries(int(zero_kept.sum()))} the mask keeps "
                             f"{'is' if zero_kept.sum() == 1 else 'are'} 0 in yours (p = {p})")
        sel = keep & live
        if not sel.any():
            return self.expect(True, subject)
        ratios = got[sel] / x[sel]
        observed = float(np.median(ratios))
        want = _term(_name_of(factor, p), factor)
        if not np.allclose(ratios, observed, rtol=1e-6, atol=1e-12):
            return self.fail(f"{subject} not all scaled by one factor (yours range from {ratios.min():.4g} to "
                             f"{ratios.max():.4g}); for p = {p} the factor is {want}")
        if np.isclose(observed, factor, rtol=1e-6, atol=0):
            return self.expect(True, subject)
        seen = _name_of(observed, p)
        message = f"{subject} scaled by {_term(seen, observed)} instead of {want} (p = {p})"
        hint = _HINTS.get((seen, _name_of(factor, p)))
        if note and seen not in ("1/p", "p"):  # the note explains this context better than the general hint
            hint = note
        elif note:
            hint = f"{hint}; {note}" if hint else note
        if hint:
            message += f": {hint}"
        return self.fail(message)

    def expect_drop_rate(self, mask, p: float, tolerance: float = 0.03) -> bool:
        """About a fraction p of ``mask`` (1 = kept) is 0, one coin per entry.
        With the 10 000 entries the notebooks use, a correct mask misses
        p = 0.2 by more than 0.03 (7.5 standard deviations) with probability
        below 1e-12."""
        m = np.asarray(mask, dtype=float) != 0
        rate = 1.0 - float(m.mean())
        if abs(rate - p) > tolerance:
            hint = (": p is the probability of DROPPING (1 = kept in the mask)"
                    if abs(rate - (1 - p)) <= tolerance else "")
            return self.fail(f"{rate:.0%} of the entries were dropped for p = {p}; about {p:.0%} should be{hint}")
        if m.ndim == 2 and min(m.shape) > 1:
            if (m == m[:, :1]).all():
                return self.fail("every row of your mask is all kept or all dropped: draw one coin per "
                                 "entry (a mask of x's full shape)")
            if (m == m[:1, :]).all():
                return self.fail("every column of your mask is all kept or all dropped: draw one coin per "
                                 "entry (a mask of x's full shape)")
        return self.expect(True, "drop rate")

    # bookkeeping ---------------------------------------------------------------------
    def _record(self, message: str):
        self._last_error = None
        self.failed.append(message)
        self._lines.append(f"  {CROSS} {message}")

    def _record_error(self, label: str, exc: BaseException):
        d = diagnose(exc, self.namespace, focus=(self.name,))
        if d.kind == "stub" and d.culprit and d.culprit.split(".")[0] == self.name:
            self._stubs += 1
        if d.kind == "result":
            self._record(f"{label}: {d.text}")
            return
        kind = exc.problem.split(";")[0] if isinstance(exc, ReturnProblem) else type(exc).__name__
        key = (d.kind, d.culprit, kind)
        if key == self._last_error:
            self.failed.append(d.text)
            self._lines.append(f"  {CROSS} {label}: same problem as above")
            return
        self._record(f"{label}: {d.text}")
        self._last_error = key

    def _report(self):
        total = self.passed + len(self.failed)
        if self.failed and self.passed == 0 and self._stubs == len(self.failed):
            print(f"{self.name}: not implemented yet (the stub raises NotImplementedError): "
                  f"0 of {total} self-checks passed.")
            return
        for line in self._lines:
            print(line)
        if not self.failed:
            print(f"{self.name}: all {total} self-checks passed {CHECK}")
        else:
            print(f"{self.name}: {len(self.failed)} of {total} self-checks failed (see above).")

    @property
    def ok(self) -> bool:
        return not self.failed
