"""Checks proven both ways: every correct variant earns full marks under many
seeds, every mutant loses points under every seed and keeps the share of its
function's points its table states (autograder/POLICY.md: the share an
experienced teaching assistant would leave it), and the references
themselves earn full marks. Runs in-process (no sandbox) for speed."""
import importlib

import pytest

from autograder.registry import CHAPTER_MODULES, graded_functions
from autograder.scoring import score_function_in_process

VARIANT_SEEDS = range(15)   # the statistical checks must never fail a correct variant (bounds: < 1e-9 each)
SLOW_VARIANT_SEEDS = range(8)  # the slowest variants (Python loops, torch): a corpus lists them in SLOW_VARIANTS
MUTANT_SEEDS = range(3)


def _corpus(kind):
    """pytest params (grade_id, fn, share) from every chapter's table.
    Entries are ``(label, fn)`` (variants) or ``(label, fn, share)``
    (mutants), share being the most it may keep or a (min, max) pair; a
    mutant without a share gets None, which test_every_mutant_states_its_share
    rejects."""
    rows = []
    for module in CHAPTER_MODULES.values():
        try:
            mod = importlib.import_module(f"tests.corpus.{module}_{kind}")
        except ModuleNotFoundError:
            continue
        table = getattr(mod, kind.upper())
        slow = getattr(mod, "SLOW_VARIANTS", set())
        for grade_id, entries in table.items():
            for entry in entries:
                label, fn, share = entry if len(entry) == 3 else (*entry, None)
                if kind == "variants":  # the third value is how many seeds the variant runs
                    share = SLOW_VARIANT_SEEDS if (grade_id, label) in slow else VARIANT_SEEDS
                rows.append(pytest.param(grade_id, fn, share, id=f"{module}-{grade_id}-{label}"))
    return rows


def test_slow_variants_name_real_variants():
    """A typo in SLOW_VARIANTS would silently give nothing fewer seeds; catch it."""
    for module in CHAPTER_MODULES.values():
        try:
            mod = importlib.import_module(f"tests.corpus.{module}_variants")
        except ModuleNotFoundError:
            continue
        labels = {(g, entry[0]) for g, entries in mod.VARIANTS.items() for entry in entries}
        unknown = set(getattr(mod, "SLOW_VARIANTS", set())) - labels
        assert not unknown, f"{module}: SLOW_VARIANTS names no variant: {sorted(unknown)}"


def share_of(result) -> float:
    """The share of its function's points a result earned, from the credited
    sub-checks' weights (not the rounded score)."""
    total = sum(r.weight for r in result.checks)
    return sum(r.weight for r in result.checks if r.passed) / total if total else 0.0


@pytest.mark.parametrize("grade_id", [pytest.param(g, id=f"{CHAPTER_MODULES[f.assignment]}-{g}")
                                      for g, f in sorted(graded_functions().items())])
def test_reference_scores_full_marks(grade_id):
    ref = graded_functions()[grade_id].reference
    for seed in range(5):
        result = score_function_in_process(grade_id, ref, seed, max_score=4)
        assert result.score == 4, (seed, result.messages)


@pytest.mark.parametrize("grade_id,fn,seeds", _corpus("variants"))
def test_correct_variant_scores_full_marks(grade_id, fn, seeds):
    for seed in seeds:
        result = score_function_in_process(grade_id, fn, 1000 + seed, max_score=4)
        assert result.score == 4, (seed, result.messages)


@pytest.mark.parametrize("grade_id,fn,share", _corpus("mutants"))
def test_mutant_keeps_its_stated_share(grade_id, fn, share):
    lo, hi = share if isinstance(share, tuple) else (0.0, share if share is not None else 1.0)
    for seed in MUTANT_SEEDS:
        result = score_function_in_process(grade_id, fn, 7000 + seed, max_score=4)
        assert result.score < 4, f"mutant earned full marks with seed {seed}"
        assert result.messages and result.messages != ["all checks passed"]
        kept = share_of(result)
        assert lo - 1e-9 <= kept <= hi + 1e-9, (seed, kept, result.messages)


def test_every_mutant_states_its_share():
    missing = [p.id for p in _corpus("mutants") if p.values[2] is None]
    assert not missing, f"mutants without a stated share (label, fn, share): {missing}"


def test_every_graded_function_has_variants_and_mutants():
    variants = {p.values[0] for p in _corpus("variants")}
    mutants = {p.values[0] for p in _corpus("mutants")}
    missing = [g for g in graded_functions() if g not in variants or g not in mutants]
    assert not missing, f"graded functions without a variant or mutant corpus: {missing}"
