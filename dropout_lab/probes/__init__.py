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
    from . import ch01_overfitting, ch02_ensembles, ch03_coadaptation, ch04_scaling, ch05_backprop  # noqa: F401
    from . import ch06_batchnorm  # noqa: F401
    from . import ch07_variants  # noqa: F401
    from . import ch08_rdrop  # noqa: F401
    from . import ch09_practice  # noqa: F401


def child_seed(rng) -> int:
    """A fresh integer seed for a Generator handed to the function under test."""
    return int(rng.integers(0, 2**62))


def same_seed_calls(rec, key: str, fn, make_args, seed: int) -> None:
    """Record ``fn(*make_args(seed))`` twice, as ``"<key> 1"`` and ``"<key> 2"``.

    ``make_args(seed)`` builds fresh arguments, including a fresh generator
    (``np.random.default_rng(seed)`` or a seeded ``torch.Generator``), so both
    calls get generators of the same seed. Right before each call the global
    random states a careless implementation might read (numpy's legacy
    RandomState, Python's ``random`` and, if torch is already imported,
    torch's default generator) are reseeded to DIFFERENT values. A function of
    its generator returns the same result twice; one that draws from global
    state (``np.random.random``, ``torch.rand`` without ``generator=``) does
    not, whatever state the notebook left behind. The global states are
    restored afterwards so that later notebook cells see what they would have
    seen without grading.
    """
    saved = _global_states()
    try:
        for i in (1, 2):
            args = make_args(seed)
            _reseed_globals(seed, i)
            rec.call(f"{key} {i}", fn, *args)
    finally:
        _restore_global_states(saved)


def _torch():
    import sys

    return sys.modules.get("torch")  # never import torch for a numpy-only chapter


def _global_states():
    import random

    import numpy as np

    torch = _torch()
    return (np.random.get_state(), random.getstate(),
            torch.random.get_rng_state() if torch is not None else None)


def _reseed_globals(seed: int, i: int) -> None:
    import random

    import numpy as np

    np.random.seed([int(seed) % 2**32, i])
    random.seed(f"{seed}-{i}")
    torch = _torch()
    if torch is not None:
        torch.manual_seed((int(seed) * 2 + i) % 2**63)


def _restore_global_states(saved) -> None:
    import random

    import numpy as np

    np_state, py_state, torch_state = saved
    np.random.set_state(np_state)
    random.setstate(py_state)
    torch = _torch()
    if torch is not None and torch_state is not None:
        torch.random.set_rng_state(torch_state)
