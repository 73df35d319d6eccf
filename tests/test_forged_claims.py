"""A recording is written by the student's kernel, so every entry in it is a
CLAIM. These tests forge recordings the way someone who cannot solve the
exercise would (issue 7, finding 1) and require that none of them earns
anything, for every graded function (later chapters are covered as soon as
they are registered) and several seeds.

The forgeries start from the reference's own recording, so they know
everything a probe reveals: which calls exist, how many values each returns,
shapes, dtypes, which calls raise and with which exception type, which
outputs are None. What they do not have is the values.
"""
import random

import numpy as np
import pytest
import torch

from autograder.checks.base import NONE_MESSAGE, Checker, CheckFailed
from autograder.recording import Entry, Output, View, view_of
from autograder.registry import graded_functions
from autograder.scoring import STUB_MESSAGE, reference_view, score_view
from dropout_lab.probes import same_seed_calls
from dropout_lab.recorder import Recording

SEEDS = (3, 11, 2024)
MAX_SCORE = 10.0


# -- forgeries -------------------------------------------------------------------

def _is_01(arr: np.ndarray) -> bool:
    return arr.dtype.kind == "b" or (arr.size > 0 and bool(np.isin(arr, (0, 1)).all()))


def _random_like(arr: np.ndarray, rng) -> np.ndarray:
    """Random values of ``arr``'s shape and dtype: 0/1 where the reference
    returns a 0/1 mask (or a bool), numbers of the same scale otherwise."""
    if _is_01(arr):
        return (rng.random(arr.shape) < 0.5).astype(arr.dtype)
    if arr.dtype.kind in "iu":
        return rng.integers(-5, 6, size=arr.shape).astype(arr.dtype)
    scale = float(np.std(arr)) if arr.size > 1 and np.isfinite(arr).all() else 1.0
    return (rng.normal(size=arr.shape) * (scale or 1.0)).astype(arr.dtype)


def _random_output(out: Output, rng) -> Output:
    if out.kind == "array":
        return Output("array", _random_like(out.value, rng), out.type, out.shape)
    if out.kind == "dict":
        return Output("dict", {k: _random_output(v, rng) for k, v in out.value.items()}, out.type)
    return out


def _random_claims(entry: Entry, rng) -> Entry:
    """(a) random outputs of the right shape and dtype, the reference's error
    types claimed where it raised, and no input ever modified."""
    if entry.status == "error":
        return Entry("error", error_type=entry.error_type, error_message="forged")
    return Entry("ok", [_random_output(o, rng) for o in entry.outputs], mutated=(), is_tuple=entry.is_tuple)


def _not_implemented(entry: Entry, rng) -> Entry:
    """(b) every call raises NotImplementedError: the untouched stub."""
    return Entry("error", error_type="NotImplementedError", error_message="")


def _returns_none(entry: Entry, rng) -> Entry:
    """(c) every call returns None: a stub whose body is ``pass``."""
    return Entry("ok", [Output("none", None, "NoneType")], mutated=(), is_tuple=False)


FORGERIES = {"random-claims": _random_claims, "not-implemented": _not_implemented, "returns-none": _returns_none}


def forged_view(grade_id: str, seed: int, forge) -> View:
    reference = reference_view(grade_id, seed)
    rng = np.random.default_rng([seed, 7])
    entries = {key: forge(entry, rng) for key, entry in reference.entries.items()}
    return View(grade_id, seed, entries)


# -- tests -------------------------------------------------------------------------

@pytest.mark.parametrize("forgery", sorted(FORGERIES))
@pytest.mark.parametrize("grade_id", sorted(graded_functions()))
def test_forged_recording_earns_nothing(grade_id, forgery):
    for seed in SEEDS:
        result = score_view(grade_id, forged_view(grade_id, seed, FORGERIES[forgery]), seed, MAX_SCORE)
        credited = [r.name for r in result.checks if r.passed]
        assert result.score == 0, (seed, result.score, credited)


@pytest.mark.parametrize("grade_id", sorted(graded_functions()))
def test_a_stub_gets_the_one_line_stub_message(grade_id):
    result = score_view(grade_id, forged_view(grade_id, SEEDS[0], _not_implemented), SEEDS[0], MAX_SCORE)
    assert result.messages == [STUB_MESSAGE]


@pytest.mark.parametrize("grade_id", sorted(graded_functions()))
def test_a_function_returning_none_gets_the_one_line_return_message(grade_id):
    result = score_view(grade_id, forged_view(grade_id, SEEDS[0], _returns_none), SEEDS[0], MAX_SCORE)
    assert result.messages == [NONE_MESSAGE]


@pytest.mark.parametrize("grade_id", sorted(graded_functions()))
def test_every_function_declares_its_central_computation(grade_id):
    """Gating needs something to gate on: each function names its central
    computation, which carries at least half of its weight, while peripheral
    checks (validation, shapes, dtypes, in-place) carry at most a quarter."""
    seed = SEEDS[0]
    checker = Checker(reference_view(grade_id, seed), reference_view(grade_id, seed))
    graded_functions()[grade_id].check(checker)
    total = sum(r.weight for r in checker.results)
    central = sum(r.weight for r in checker.results if r.central)
    peripheral = sum(r.weight for r in checker.results if r.peripheral)
    assert central > 0 and central >= 0.5 * total, [(r.name, r.weight, r.central) for r in checker.results]
    assert peripheral <= 0.25 * total, [(r.name, r.weight, r.peripheral) for r in checker.results]


# -- the gate itself ---------------------------------------------------------------

def _toy_checker(**outcomes) -> Checker:
    """A Checker with sub-checks a (central), b (central, gated by a), c
    (central), p (gated by all central ones) and q (gated by c only);
    ``outcomes`` says which fail on their own."""
    checker = Checker(View("g", 0, {}), View("g", 0, {}))
    for name, kwargs in (("a", dict(central=True)), ("b", dict(central=True, gated_by=("a",))),
                         ("c", dict(central=True)), ("p", dict(peripheral=True)), ("q", dict(gated_by=("c",)))):
        with checker.check(name, weight=1, **kwargs):
            if outcomes.get(name) == "fail":
                raise CheckFailed(f"{name} is wrong")
    return checker


def test_a_closed_gate_withholds_credit_and_says_why():
    checker = _toy_checker(a="fail")
    assert checker.fraction() == pytest.approx(2 / 5)  # c and q: q needs only c
    by_name = {r.name: r for r in checker.results}
    assert by_name["a"].message == "a is wrong" and not by_name["a"].gated
    assert by_name["b"].gated and by_name["b"].message == "not credited until 'a' passes"
    assert by_name["p"].gated and by_name["p"].message == "not credited until 'a' passes"
    assert not by_name["q"].gated and by_name["q"].passed


def test_a_check_failing_behind_a_closed_gate_is_reported_under_the_gate():
    """One message names the central mistake; the checks it drags down say
    which gate to fix first instead of echoing it."""
    checker = _toy_checker(a="fail", p="fail", q="fail")
    assert checker.fraction() == pytest.approx(1 / 5)  # c only; q failed on its own
    by_name = {r.name: r for r in checker.results}
    assert by_name["p"].gated and by_name["p"].message == "not credited until 'a' passes"
    assert not by_name["q"].gated and by_name["q"].message == "q is wrong"  # its gate, c, is open


def test_gates_follow_gated_central_checks_to_what_failed():
    checker = _toy_checker(a="fail", c="fail")
    assert checker.fraction() == 0
    assert {r.name: r.message for r in checker.results}["p"] == "not credited until 'a' and 'c' pass"


# -- "a function of rng": same seed, same result, whatever the global state ----------

def _global_draws(n):
    return np.random.random(n), torch.rand(n).numpy(), np.array([random.random() for _ in range(n)])


def test_same_seed_calls_reseed_global_states_differently_and_restore_them():
    rec = Recording("g", 0)
    before = np.random.get_state()[1].copy(), torch.random.get_rng_state().clone(), random.getstate()
    same_seed_calls(rec, "global", lambda rng: _global_draws(3), lambda s: (np.random.default_rng(s),), 5)
    same_seed_calls(rec, "own", lambda rng: rng.random(3), lambda s: (np.random.default_rng(s),), 5)
    assert np.array_equal(np.random.get_state()[1], before[0])
    assert torch.equal(torch.random.get_rng_state(), before[1]) and random.getstate() == before[2]
    view = view_of(rec)
    first, second = (view.entries[f"global {i}"].outputs for i in (1, 2))
    assert all(not np.array_equal(a.value, b.value) for a, b in zip(first, second))
    first, second = (view.entries[f"own {i}"].outputs for i in (1, 2))
    assert np.array_equal(first[0].value, second[0].value)
