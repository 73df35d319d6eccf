"""Checks proven both ways: every correct variant earns full marks under many
seeds, every mutant loses points under every seed (and, where its table
states a max share, keeps at most that share of its function's points), and
the references themselves earn full marks. Runs in-process (no sandbox) for
speed."""
import importlib

import pytest

from autograder.registry import CHAPTER_MODULES, graded_functions
from autograder.scoring import score_function_in_process

VARIANT_SEEDS = range(25)   # the statistical checks must never fail a correct variant
MUTANT_SEEDS = range(3)


def _corpus(kind):
    """pytest params (grade_id, fn, max_share) from every chapter's table.
    Entries are ``(label, fn)`` or ``(label, fn, max_share)``; a 2-tuple's
    max_share is None (it must only lose points)."""
    rows = []
    for module in CHAPTER_MODULES.values():
        try:
            mod = importlib.import_module(f"tests.corpus.{module}_{kind}")
        except ModuleNotFoundError:
            continue
        table = getattr(mod, kind.upper())
        for grade_id, entries in table.items():
            for entry in entries:
                label, fn, max_share = entry if len(entry) == 3 else (*entry, None)
                rows.append(pytest.param(grade_id, fn, max_share, id=f"{grade_id}-{label}"))
    return rows


@pytest.mark.parametrize("grade_id", sorted(graded_functions()))
def test_reference_scores_full_marks(grade_id):
    ref = graded_functions()[grade_id].reference
    for seed in range(5):
        result = score_function_in_process(grade_id, ref, seed, max_score=4)
        assert result.score == 4, (seed, result.messages)


@pytest.mark.parametrize("grade_id,fn,_", _corpus("variants"))
def test_correct_variant_scores_full_marks(grade_id, fn, _):
    for seed in VARIANT_SEEDS:
        result = score_function_in_process(grade_id, fn, 1000 + seed, max_score=4)
        assert result.score == 4, (seed, result.messages)


@pytest.mark.parametrize("grade_id,fn,max_share", _corpus("mutants"))
def test_mutant_loses_points(grade_id, fn, max_share):
    for seed in MUTANT_SEEDS:
        result = score_function_in_process(grade_id, fn, 7000 + seed, max_score=4)
        assert result.score < 4, f"mutant earned full marks with seed {seed}"
        assert result.messages and result.messages != ["all checks passed"]
        if max_share is not None:
            assert result.score <= max_share * 4, (seed, result.score / 4, result.messages)


def test_every_graded_function_has_variants_and_mutants():
    variants = {p.values[0] for p in _corpus("variants")}
    mutants = {p.values[0] for p in _corpus("mutants")}
    missing = [g for g in graded_functions() if g not in variants or g not in mutants]
    assert not missing, f"graded functions without a variant or mutant corpus: {missing}"
