"""Messages name the mistake (autograder/POLICY.md, "Messages").

For each recognisable mistake in the mutant corpora, the student-facing
messages must contain the phrase that names it, with numbers from a
representative case (p = 0.2: 1/p = 5.0, 1/(1-p) = 1.25), and no message in
the corpora may report a degenerate case (p = 0, where 1/p is inf; p = 0.5,
where p and 1 - p coincide).
"""
import re

import pytest

from autograder.checks.base import NONE_MESSAGE
from autograder.registry import graded_functions
from autograder.scoring import STUB_MESSAGE, score_function_in_process
from tests.corpus import ch01_overfitting_mutants as m01
from tests.corpus import ch02_ensembles_mutants as m02
from tests.corpus import ch03_coadaptation_mutants as m03
from tests.corpus import ch04_scaling_mutants as m04
from tests.corpus import ch05_backprop_mutants as m05

SEEDS = (7000, 7001)

#: (grade_id, mutant, phrases every seed's messages must contain)
NAMED = [
    # chapter 01: features, ridge, penalties, early stopping
    ("polynomial_features", m01.pf_no_ones_column, ["the x**0 column (all ones) is missing"]),
    ("polynomial_features", m01.pf_one_degree_too_few, ["one degree too few", "degree 3 has 4 columns"]),
    ("polynomial_features", m01.pf_decreasing, ["decreasing order of power"]),
    ("polynomial_features", m01.pf_transposed, ["transposed"]),
    ("ridge_fit", m01.ridge_intercept_unpenalised,
     ["with lam=3.0 your first coefficient (the intercept) is not penalised: the spec penalises every coefficient"]),
    ("ridge_fit", m01.ridge_last_unpenalised, ["your last coefficient is not penalised"]),
    ("ridge_fit", m01.ridge_half_lam, ["lam/2 = 1.5 instead of lam = 3.0"]),
    ("ridge_fit", m01.ridge_double_lam, ["2 lam = 6.0 instead of lam = 3.0"]),
    ("ridge_fit", m01.ridge_lam_times_n, ["lam * N = 120.0 instead of lam = 3.0", "not their mean"]),
    ("ridge_fit", m01.ridge_lam_ignored, ["the plain least-squares solution: lam is ignored"]),
    ("ridge_fit", m01.ridge_augmented_without_sqrt, ["lam**2 = 9.0 instead of lam = 3.0"]),
    ("l2_penalty", m01.l2_no_half, ["twice the expected value: did you forget the 0.5?"]),
    ("l2_penalty", m01.l2_item, ["no gradient flows", "did you call .detach(), .item() or numpy"]),
    ("l2_penalty", m01.l2_detached, ["no gradient flows"]),
    ("l2_penalty", m01.l2_first_only, ["only the first parameter tensor counts"]),
    ("l2_penalty", m01.l2_overwrites_total, ["only the last parameter tensor counts"]),
    ("l2_penalty", m01.l2_two_passes, ["can be iterated only once"]),
    ("l2_penalty", m01.l2_indexes_params, ["has no len()", "params = list(params)"]),
    ("l1_penalty", m01.l1_squares, ["that is the L2 penalty"]),
    ("l1_penalty", m01.l1_squared_sum, ["squares the sum of absolute values"]),
    ("l1_penalty", m01.l1_no_abs, ["without their absolute values"]),
    ("l1_penalty", m01.l1_item, ["no gradient flows"]),
    ("early_stopping_epoch", m01.es_global_argmin, ["the lowest loss of the whole run, ignoring patience"]),
    ("early_stopping_epoch", m01.es_returns_stop_epoch, ["you returned the epoch where training stopped"]),
    ("early_stopping_epoch", m01.es_one_late, ["you stop one epoch too late"]),
    ("early_stopping_epoch", m01.es_one_early, ["you stop one epoch too early"]),
    ("early_stopping_epoch", m01.es_tie_improves, ["a loss EQUAL to the best so far is not a new best"]),
    ("early_stopping_epoch", m01.es_one_based, ["your epochs are counted from 1"]),
    # chapter 02: the variance of an average, bootstrap, masks, the two means, Monte Carlo
    ("ensemble_variance", m02.ev_independent,
     ["with sigma2=2.0, rho=0.3, k=5 your variance is 0.4", "an average of k INDEPENDENT members"]),
    ("ensemble_variance", m02.ev_swapped, ["your variance is 1.52", "rho and 1 - rho are swapped"]),
    ("ensemble_variance", m02.ev_k_squared, ["shrinks like 1/k**2"]),
    ("ensemble_variance", m02.ev_variance_of_sum, ["the variance of the SUM of the k members"]),
    ("ensemble_variance", m02.ev_list, ["a list or tuple holding it"]),
    ("bootstrap_indices", m02.bi_permutation, ["all 1000 of your indices are distinct", "WITHOUT replacement"]),
    ("bootstrap_indices", m02.bi_range_n_minus_1, ["index n-1 = 4 was drawn 0 times", "upper bound is exclusive"]),
    ("bootstrap_indices", m02.bi_one_based, ["your indices run from 1 to n = 1000: Python counts from 0"]),
    ("bootstrap_indices", m02.bi_fixed_seed, ["generators of different seeds returned the same sample"]),
    ("bootstrap_indices", m02.bi_global_random, ["ignores the rng"]),
    ("bootstrap_indices", m02.bi_floats, ["indices must be integers"]),
    ("enumerate_masks", m02.em_no_all_zero, ["the all-zero mask (every unit dropped) is missing"]),
    ("enumerate_masks", m02.em_no_all_ones, ["the all-ones mask (every unit kept) is missing"]),
    ("enumerate_masks", m02.em_random_rows, ["repeat an earlier row", "masks are missing"]),
    ("enumerate_masks", m02.em_half_kept, ["every one of your masks keeps exactly 1 of the 3 units"]),
    ("enumerate_masks", m02.em_transposed, ["your array is transposed"]),
    ("mask_probabilities", m02.mp_p_is_keep,
     ["you used p as the probability of KEEPING", "has probability (1-p)**4 = 0.41, not p**4 = 0.0016"]),
    ("mask_probabilities", m02.mp_no_dropped_factor, ["the factor p of each DROPPED unit is missing"]),
    ("mask_probabilities", m02.mp_binomial, ["a binomial coefficient"]),
    ("mask_probabilities", m02.mp_normalised_over_rows, ["you divided by the sum over the rows you were given"]),
    ("exact_dropout_ensemble", m02.ex_geo_not_renormalised, ["your geo is not renormalised"]),
    ("exact_dropout_ensemble", m02.ex_arith_from_logits, ["your arith is the NORMALISED GEOMETRIC mean"]),
    ("exact_dropout_ensemble", m02.ex_unweighted, ["you gave every mask the same weight 1/2**H"]),
    ("exact_dropout_ensemble", m02.ex_p_is_keep, ["read p as the probability of KEEPING a unit"]),
    ("exact_dropout_ensemble", m02.ex_no_inverted_scaling, ["not scaled by 1/(1-p) = 1.25"]),
    ("exact_dropout_ensemble", m02.ex_swapped, ["you return (geo, arith)"]),
    ("exact_dropout_ensemble", m02.ex_geo_log, ["the LOG of the geometric mean"]),
    ("mc_dropout_average", m02.mc_no_rescale, ["not scaled by 1/(1-p) = 1.43 (p = 0.3)"]),
    ("mc_dropout_average", m02.mc_divides_by_p, ["scaled by 1/p = 3.33 instead of 1/(1-p) = 1.43"]),
    ("mc_dropout_average", m02.mc_logits_then_softmax, ["you averaged logits, then took one softmax"]),
    ("mc_dropout_average", m02.mc_one_mask_reused, ["the softmax output of a SINGLE mask"]),
    ("mc_dropout_average", m02.mc_ignores_n_samples, ["the softmax output of a SINGLE mask"]),
    ("mc_dropout_average", m02.mc_p_is_keep_rate, ["keep each hidden unit with probability p = 0.2 instead of 1-p = 0.8"]),
    ("mc_dropout_average", m02.mc_weight_scaled, ["the full (weight-scaled) network's softmax output"]),
    ("mc_dropout_average", m02.mc_exact, ["the EXACT average over all masks"]),
    ("mc_dropout_average", m02.mc_sum_not_mean, ["you added the 2 softmax outputs; divide by n_samples"]),
    ("mc_dropout_average", m02.mc_fixed_seed, ["ignores rng"]),
    # chapter 03: correlation, sparsity, ablation, random deletion
    ("mean_abs_correlation", m03.mac_diagonal_included, ["your mean includes the diagonal of the correlation matrix"]),
    ("mean_abs_correlation", m03.mac_signed, ["you averaged the SIGNED correlations"]),
    ("mean_abs_correlation", m03.mac_rows, ["you correlated the ROWS (inputs) instead of the COLUMNS (units)"]),
    ("mean_abs_correlation", m03.mac_covariance, ["the mean absolute COVARIANCE"]),
    ("mean_abs_correlation", m03.mac_constant_nan, ["your result is NaN", "Leave constant columns out"]),
    ("mean_abs_correlation", m03.mac_constant_as_zero, ["you counted the pairs with a constant column as correlation 0"]),
    ("mean_abs_correlation", m03.mac_only_zero_columns, ["Test for zero variance, not for zeros"]),
    ("mean_abs_correlation", m03.mac_few_not_zero, ["there is no pair of non-constant columns to average: return 0.0"]),
    ("mean_abs_correlation", m03.mac_in_place, ["your function changed H in place"]),
    ("fraction_inactive", m03.fi_strictly_negative, ["you counted only the entries < 0"]),
    ("fraction_inactive", m03.fi_only_zeros, ["you counted only the entries == 0"]),
    ("fraction_inactive", m03.fi_active, ["the fraction of ACTIVE entries"]),
    ("fraction_inactive", m03.fi_per_unit, ["fraction_inactive returns ONE number", "one per unit"]),
    ("fraction_inactive", m03.fi_count, ["that is the NUMBER of inactive entries"]),
    ("fraction_inactive", m03.fi_dead_units, ["units inactive on EVERY input (dead units)"]),
    ("ablation_importance", m03.ai_sign_flipped, ["the sign is flipped"]),
    ("ablation_importance", m03.ai_rescaled, ["you rescaled the other units (by H/(H-1) = 1.2)"]),
    ("ablation_importance", m03.ai_input_ablation, ["one per INPUT"]),
    ("ablation_importance", m03.ai_w1_column_only, ["it still outputs relu(b1[j])"]),
    ("ablation_importance", m03.ai_accumulates, ["your ablations accumulate"]),
    ("ablation_importance", m03.ai_accuracies, ["you returned the accuracies of the ablated networks"]),
    ("ablation_importance", m03.ai_in_place_left_zeroed, ["your function changed params in place"]),
    ("random_deletion_accuracy", m03.rd_with_replacement, ["fewer than k = 4 DISTINCT units", "WITH replacement"]),
    ("random_deletion_accuracy", m03.rd_integers, ["WITH replacement"]),
    ("random_deletion_accuracy", m03.rd_rescaled, ["your survivors seem to be rescaled", "1/(1-fraction) = 2.0"]),
    ("random_deletion_accuracy", m03.rd_fixed_set, ["the accuracy of a SINGLE deleted set"]),
    ("random_deletion_accuracy", m03.rd_ignores_n_repeats, ["the accuracy of a SINGLE deleted set"]),
    ("random_deletion_accuracy", m03.rd_floor, ["fraction * H = 3.6: you deleted int(3.6) = 3 units"]),
    ("random_deletion_accuracy", m03.rd_keep_fraction, ["you deleted round((1 - fraction) * H) = 6 units"]),
    ("random_deletion_accuracy", m03.rd_fixed_seed, ["deleted the same 4 units"]),
    ("random_deletion_accuracy", m03.rd_first_k, ["deleted the same 4 units"]),
    ("random_deletion_accuracy", m03.rd_global_random, ["ignores the rng"]),
    ("random_deletion_accuracy", m03.rd_sum_not_mean, ["you return the SUM of the accuracies"]),
    ("random_deletion_accuracy", m03.rd_percent, ["a percentage?"]),
    # chapter 04: the scaling
    ("dropout_forward", m04.df_divides_by_p,
     ["kept values are scaled by 1/p = 5.0 instead of 1/(1-p) = 1.25: p is the probability of dropping"]),
    ("dropout_forward", m04.df_scale_by_p, ["multiplied by p = 0.2 instead of scaled by 1/(1-p) = 1.25"]),
    ("dropout_forward", m04.df_scale_by_keep, ["multiplied by 1-p = 0.8 instead of divided by it (1/(1-p) = 1.25)"]),
    ("dropout_forward", m04.df_no_rescale, ["not rescaled", "1/(1-p) = 1.25"]),
    ("dropout_forward", m04.df_p_is_keep, ["1/p = 5.0", "you dropped with probability 1-p"]),
    ("standard_dropout_forward", m04.sd_inverted_scaling,
     ["scaled by 1/(1-p) = 1.25 while training: that is inverted dropout"]),
    ("standard_dropout_forward", m04.sd_eval_unscaled, ["left out the test-time factor", "1-p = 0.8"]),
    ("standard_dropout_forward", m04.sd_eval_scaled_by_p, ["multiplied by p = 0.2 instead of the keep probability"]),
    ("standard_dropout_forward", m04.sd_eval_divides, ["divided by 1-p"]),
    # chapter 04: eval mode, the mask and rng
    ("dropout_forward", m04.df_drops_in_eval, ["you drop units in evaluation mode"]),
    ("standard_dropout_forward", m04.sd_drops_in_eval, ["you drop units in evaluation mode"]),
    ("dropout_forward", m04.df_fixed_seed, ["the same mask", "ignores rng"]),
    ("dropout_forward", m04.df_cached_mask, ["the same mask", "ignores rng"]),
    ("standard_dropout_forward", m04.sd_fixed_seed, ["the same mask", "ignores rng"]),
    ("dropout_forward", m04.df_global_random, ["ignores the rng"]),
    ("dropout_forward", m04.df_own_generator, ["ignores the rng"]),
    ("standard_dropout_forward", m04.sd_global_random, ["ignores the rng"]),
    ("dropout_forward", m04.df_per_row_mask, ["not one per row"]),
    # chapter 04: moments
    ("dropout_moments", m04.dm_var_mask, ["variance of x * mask, before the rescaling"]),
    ("dropout_moments", m04.dm_var_keep_swapped, ["keep probability"]),
    ("dropout_moments", m04.dm_second_moment, ["second moment"]),
    ("dropout_moments", m04.dm_std_not_var, ["standard deviation"]),
    ("dropout_moments", m04.dm_mean_standard, ["before the rescaling by 1/(1-p)"]),
    ("mc_moments", m04.mc_no_rescale, ["not rescaled"]),
    ("mc_moments", m04.mc_one_mask, ["share one mask"]),
    # chapter 05: backward passes
    ("dropout_backward", m05.backward_ignores_mask, ["your backward ignores the mask"]),
    ("dropout_backward", m05.backward_no_scale, ["your backward forgets the 1/(1-p)", "1/(1-p) = 1.25"]),
    ("dropout_backward", m05.backward_divides_by_p, ["1/p = 5.0 instead of 1/(1-p) = 1.25"]),
    ("dropout_backward", m05.backward_times_keep, ["multiplied by 1-p = 0.8 instead of divided by it"]),
    ("dropout_backward", m05.backward_fresh_mask, ["never draw a new one"]),
    ("DropoutFunction", m05.DropoutIdentityBackward, ["your backward ignores the mask"]),
    ("DropoutFunction", m05.DropoutBackwardIgnoresMask, ["your backward ignores the mask"]),
    ("DropoutFunction", m05.DropoutBackwardNoScale, ["your backward forgets the 1/(1-p)"]),
    ("DropoutFunction", m05.DropoutForwardNoScale, ["forward: kept values are not rescaled"]),
    ("DropoutFunction", m05.DropoutStubBackward,
     ["backward is still a stub", "Your forward is right and earns its points"]),
    ("mlp_loss_and_grads", m05.mlp_backward_ignores_mask, ["your backward ignores the dropout mask"]),
    ("mlp_loss_and_grads", m05.mlp_ignores_mask_in_backward, ["your backward ignores the dropout mask"]),
    ("mlp_loss_and_grads", m05.mlp_backward_no_scale, ["your backward forgets the 1/(1-p)", "1/(1-p) = 1.25"]),
]


def _text(grade_id, fn, seed):
    return "\n".join(score_function_in_process(grade_id, fn, seed).messages)


@pytest.mark.parametrize("grade_id,fn,phrases", [pytest.param(*row, id=f"{row[0]}-{row[1].__name__}")
                                                 for row in NAMED])
def test_message_names_the_mistake(grade_id, fn, phrases):
    for seed in SEEDS:
        text = _text(grade_id, fn, seed)
        missing = [p for p in phrases if p not in text]
        assert not missing, (seed, missing, text)


def test_the_p_mistake_is_told_with_p_of_two_tenths():
    """The issue's example, as the student reads it: the sub-check, then the mistake."""
    result = score_function_in_process("dropout_forward", m04.df_divides_by_p, SEEDS[0])
    assert result.messages[0] == (
        "kept values are scaled by 1/(1-p), dropped ones are 0: with p=0.2 kept values are scaled by "
        "1/p = 5.0 instead of 1/(1-p) = 1.25: p is the probability of dropping, 1-p that of keeping "
        "(out = x * mask / (1 - p))")


@pytest.mark.parametrize("fn", [m04.df_returns_none, m05.mlp_returns_none], ids=lambda f: f.__name__)
def test_a_function_that_returns_none_is_asked_about_return(fn):
    grade_id = "dropout_forward" if fn is m04.df_returns_none else "mlp_loss_and_grads"
    result = score_function_in_process(grade_id, fn, SEEDS[0])
    assert result.score == 0 and result.messages == [NONE_MESSAGE]


def test_a_stub_still_gets_the_one_line_stub_message():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    result = score_function_in_process("dropout_forward", stub, SEEDS[0])
    assert result.messages == [STUB_MESSAGE]


#: A degenerate case in a message: an infinite or NaN factor, p = 0 reported as the failing case,
#: or a p-versus-(1-p) comparison made at p = 0.5.
DEGENERATE = [re.compile(r"(by|=|about) (inf|nan)\b", re.I), re.compile(r"with p=0(\.0)?(?![.\d])"),
              re.compile(r"p=0\.5\b[^;]*(1/p =|by p =|1-p = 0\.5)")]


def _mutants():
    return [pytest.param(grade_id, fn, id=f"{grade_id}-{label}")
            for module in (m01, m02, m03, m04, m05) for grade_id, rows in module.MUTANTS.items()
            for label, fn, _ in rows if grade_id in graded_functions()]


@pytest.mark.parametrize("grade_id,fn", _mutants())
def test_no_message_reports_a_degenerate_case(grade_id, fn):
    for line in score_function_in_process(grade_id, fn, SEEDS[0]).messages:
        assert not any(pattern.search(line) for pattern in DEGENERATE), line
