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
from tests.corpus import ch06_batchnorm_mutants as m06
from tests.corpus import ch07_variants_mutants as m07
from tests.corpus import ch09_practice_mutants as m09
from tests.corpus import ch08_rdrop_mutants as m08

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
    # chapter 06: the variance formulas (the representative case mean 3, var 4, p = 0.2), BN, Uout
    ("dropout_variance", m06.dv_standard_dropout, ["your variance is 4.64", "STANDARD dropout's training output"]),
    ("dropout_variance", m06.dv_zero_mean, ["your variance is 5.0", "right for a zero-mean unit only"]),
    ("dropout_variance", m06.dv_no_mean_subtracted, ["that is E[y^2], the second moment"]),
    ("dropout_variance", m06.dv_p_is_keep, ["you used p as the probability of KEEPING a unit"]),
    ("dropout_variance", m06.dv_mask_share_only, ["that is only the mask's share"]),
    ("dropout_variance", m06.dv_m_squared, ["forgot E[m^2]: m is 0 or 1, so m^2 = m"]),
    ("dropout_variance", m06.dv_mean_rescaled, ["inverted dropout keeps the mean"]),
    ("dropout_variance", m06.dv_noise_on_mean_only, ["not only c^2"]),
    ("dropout_variance", m06.dv_std, ["that is the standard deviation"]),
    ("dropout_variance", m06.dv_var_squared, ["you squared var"]),
    ("dropout_variance", m06.dv_mean_not_squared, ["you used the mean c where its square c^2 belongs"]),
    ("dropout_variance", m06.dv_test_variance, ["that is the test-time variance var"]),
    ("dropout_variance", m06.dv_list, ["not a list or tuple holding it"]),
    ("variance_shift_ratio", m06.sr_inverted, ["your ratio is 1.81", "the ratio upside down"]),
    ("variance_shift_ratio", m06.sr_one_minus_p, ["your ratio is 0.8", "the ratio of a zero-mean unit only"]),
    ("variance_shift_ratio", m06.sr_standard_dropout, ["the training variance of STANDARD dropout"]),
    ("variance_shift_ratio", m06.sr_p_is_keep, ["you used p as the probability of KEEPING a unit"]),
    ("variance_shift_ratio", m06.sr_no_mean_subtracted, ["that is var / E[y^2]"]),
    ("variance_shift_ratio", m06.sr_mean_not_squared, ["you used the mean c where its square c^2 belongs"]),
    ("variance_shift_ratio", m06.sr_lost_fraction, ["that is 1 - ratio"]),
    ("variance_shift_ratio", m06.sr_m_squared, ["forgets E[m^2] = 1 - p"]),
    ("variance_shift_ratio", m06.sr_divides_by_var, ["for a constant unit (var = 0) your function raised ZeroDivisionError"]),
    ("bn_input_variance", m06.biv_bn_training_mode, ["normalise with their batch statistics (training mode)"]),
    ("bn_input_variance", m06.biv_batch_stats_in_dropout_pass, ["keep every BN layer in eval mode in both passes"]),
    ("bn_input_variance", m06.biv_unbiased, ["with 10 values per channel", "you divided by n - 1"]),
    ("bn_input_variance", m06.biv_after_bn, ["that is the variance of bn's OUTPUT"]),
    ("bn_input_variance", m06.biv_dropout_never_on, ["your train_var equals your eval_var: no dropout was active"]),
    ("bn_input_variance", m06.biv_only_nn_dropout, ["the Dropout2d layer here is a dropout layer too"]),
    ("bn_input_variance", m06.biv_left_in_eval, ["save every module's `training` flag and restore each one"]),
    ("bn_input_variance", m06.biv_restores_model_flag_only, ["restore each one, not only the model's"]),
    ("bn_input_variance", m06.biv_no_grad_missing, ["measure under torch.no_grad()"]),
    ("bn_input_variance", m06.biv_swapped, ["you return (eval_var, train_var)"]),
    ("bn_input_variance", m06.biv_std, ["that is the standard deviation"]),
    ("bn_input_variance", m06.biv_one_number, ["return one variance per channel (dim 1)"]),
    ("bn_input_variance", m06.biv_over_batch_only, ["taken over every other dimension"]),
    ("recalibrate_bn", m06.rb_default_momentum, ["an exponential moving average", "set momentum=None"]),
    ("recalibrate_bn", m06.rb_no_reset, ["you did not reset the running statistics first"]),
    ("recalibrate_bn", m06.rb_whole_model_train, ["switch every dropout layer off (eval mode) for the pass"]),
    ("recalibrate_bn", m06.rb_bn_in_eval, ["your running statistics are the reset values (mean 0, variance 1)"]),
    ("recalibrate_bn", m06.rb_reset_parameters, ["reset_parameters() resets them"]),
    ("recalibrate_bn", m06.rb_momentum_left_none, ["put every BN's own momentum back"]),
    ("recalibrate_bn", m06.rb_modes_not_restored, ["save every module's `training` flag"]),
    ("recalibrate_bn", m06.rb_returns_copy, ["you returned a modified COPY of the model"]),
    ("recalibrate_bn", m06.rb_drops_last_batch, ["the last, smaller batch is missing"]),
    ("recalibrate_bn", m06.rb_one_batch, ["you passed X as a single batch"]),
    ("recalibrate_bn", m06.rb_biased_variance, ["averages the BIASED batch variances"]),
    ("recalibrate_bn", m06.rb_layer_by_layer, ["you recalibrated one BN layer after the other"]),
    ("uout", m06.uout_additive, ["your noise is ADDITIVE, x + r"]),
    ("uout", m06.uout_zero_to_beta, ["your r lies in [0, beta]"]),
    ("uout", m06.uout_noise_in_eval, ["with training=False your output is not x"]),
    ("uout", m06.uout_one_r, ["every entry got the same r"]),
    ("uout", m06.uout_one_r_per_row, ["your r is the same along dimension"]),
    ("uout", m06.uout_times_r, ["you multiplied x by r"]),
    ("uout", m06.uout_global_rng, ["draw every random number from generator"]),
    ("uout", m06.uout_fixed_seed, ["two calls with one generator gave the same noise"]),
    ("uout", m06.uout_normal, ["outside [-beta, beta]"]),
    ("uout", m06.uout_half_width, ["your r spans (-beta/2, beta/2)"]),
    ("uout", m06.uout_detached, ["no gradient reaches x"]),
    ("uout", m06.uout_in_place, ["you changed x in place"]),
    ("uout", m06.uout_float64_output, ["for a float32 input your output is float64"]),
    ("uout", m06.uout_dropout_instead, ["that is dropout's mask"]),
    # chapter 07: the dropout family
    ("dropconnect_linear", m07.dc_drops_activations, ["you dropped entries of x (activations), not weights"]),
    ("dropconnect_linear", m07.dc_drops_inputs_shared, ["you dropped inputs x[:, j], shared by the batch"]),
    ("dropconnect_linear", m07.dc_drops_outputs, ["that is dropout on the layer's outputs"]),
    ("dropconnect_linear", m07.dc_drops_bias, ["your bias is masked like the weights"]),
    ("dropconnect_linear", m07.dc_bias_rescaled, ["your bias is divided by 1-p = 0.8"]),
    ("dropconnect_linear", m07.dc_mask_per_example, ["different weight masks (one per example?)"]),
    ("dropconnect_linear", m07.dc_no_rescale, ["kept weights are not rescaled", "1/(1-p) = 1.25"]),
    ("dropconnect_linear", m07.dc_divides_by_p, ["kept weights are scaled by 1/p = 5.0 instead of 1/(1-p) = 1.25"]),
    ("dropconnect_linear", m07.dc_scaled_in_eval, ["that is standard dropout's test-time step"]),
    ("dropconnect_linear", m07.dc_drops_in_eval, ["you still drop weights in evaluation mode"]),
    ("dropconnect_linear", m07.dc_no_grad, ["no gradient reached weight or bias"]),
    ("gaussian_dropout", m07.gd_std_p, ["standard deviation p = 0.2 instead of sqrt(p/(1-p)) = 0.5"]),
    ("gaussian_dropout", m07.gd_var_p, ["variance p = 0.2 instead of p/(1-p) = 0.25"]),
    ("gaussian_dropout", m07.gd_keep_over_drop, ["variance (1-p)/p = 4.0 instead of p/(1-p) = 0.25"]),
    ("gaussian_dropout", m07.gd_additive, ["Gaussian dropout MULTIPLIES x"]),
    ("gaussian_dropout", m07.gd_mean_zero, ["x * N(0, ...) makes the expected output 0"]),
    ("gaussian_dropout", m07.gd_bernoulli, ["that is (inverted) Bernoulli dropout"]),
    ("gaussian_dropout", m07.gd_uniform, ["is not Gaussian"]),
    ("gaussian_dropout", m07.gd_noise_in_eval, ["you add noise in evaluation mode"]),
    ("gaussian_dropout", m07.gd_float64_result, ["a float32 input came back as float64"]),
    ("spatial_dropout", m07.sd_per_pixel, ["you dropped single entries (element dropout)"]),
    ("spatial_dropout", m07.sd_rows, ["F.dropout2d does to a 3-d tensor"]),
    ("spatial_dropout", m07.sd_no_rescale, ["kept maps are not rescaled", "1/(1-p) = 1.25"]),
    ("spatial_dropout", m07.sd_divides_by_p, ["kept maps are scaled by 1/p = 5.0 instead of 1/(1-p) = 1.25"]),
    ("spatial_dropout", m07.sd_drops_in_eval, ["you drop in evaluation mode"]),
    ("dropblock_gamma", m07.dg_no_valid_factor, ["you left out the valid-region factor"]),
    ("dropblock_gamma", m07.dg_equals_p, ["every seed drops a whole block"]),
    ("dropblock_gamma", m07.dg_block_not_squared, ["you divided by block_size instead of block_size^2"]),
    ("dropblock_gamma", m07.dg_square_map, ["you used the square-map formula with H for both sides"]),
    ("dropblock_gamma", m07.dg_no_plus_one, ["a block fits at H-b+1 positions"]),
    ("dropblock_gamma", m07.dg_keep_prob, ["you used the keep probability 1-p"]),
    ("dropblock_gamma", m07.dg_integer_division, ["did you use integer division (//)?"]),
    ("dropblock", m07.db_no_normalisation, ["your kept values are not rescaled"]),
    ("dropblock", m07.db_normalise_keep, ["you rescaled by 1/(1-p)", "the fraction kept is not 1-p"]),
    ("dropblock", m07.db_normalise_per_map, ["each of your maps is rescaled by its own kept fraction"]),
    ("dropblock", m07.db_gamma_is_p, ["as if gamma = p"]),
    ("dropblock", m07.db_no_valid_factor, ["without the valid-region factor"]),
    ("dropblock", m07.db_blocks_leave_map, ["some of your blocks stick out of the map"]),
    ("dropblock", m07.db_shared_channels, ["the same for all channels of an example"]),
    ("dropblock", m07.db_shared_batch, ["the same for every example of the batch"]),
    ("dropblock", m07.db_nan_when_all_dropped, ["return zeros when nothing is kept"]),
    ("drop_path", m07.dp_elementwise, ["single entries of an example are dropped"]),
    ("drop_path", m07.dp_no_rescale, ["kept examples are not rescaled", "1/(1-p) = 1.25"]),
    ("drop_path", m07.dp_ignores_mode, ["one coin decides for the WHOLE tensor"]),
    ("drop_path", m07.dp_drops_in_eval, ["you drop in evaluation mode"]),
    ("cutout", m07.co_same_square, ["your images get the same square"]),
    ("cutout", m07.co_shifted_inside, ["none of your 300 squares is clipped by the border"]),
    ("cutout", m07.co_centre_where_fits, ["none of your 300 squares is clipped by the border"]),
    ("cutout", m07.co_top_left_corner, ["the drawn pixel is the square's CENTRE"]),
    ("cutout", m07.co_square_per_channel, ["the zeroed pixels differ between the channels of an image"]),
    ("cutout", m07.co_official_odd, ["hold only size - 1 pixels for an odd size"]),
    ("cutout", m07.co_rescaled, ["Cutout is a data augmentation and rescales nothing"]),
    ("cutout", m07.co_modifies_input, ["your function changed images in place"]),
    ("multi_sample_dropout_logits", m07.ms_one_mask, ["used the same mask (one mask for all samples?)"]),
    ("multi_sample_dropout_logits", m07.ms_no_rescale, ["kept features are not rescaled", "1/(1-p) = 1.25"]),
    ("multi_sample_dropout_logits", m07.ms_mean_of_samples, ["you returned one (N, C) array"]),
    ("multi_sample_dropout_logits", m07.ms_dropout_after_head, ["apply each sample's mask to the FEATURES"]),
    ("multi_sample_dropout_logits", m07.ms_mask_shared_by_batch, ["every example of a sample got the same mask"]),
    ("multi_sample_dropout_logits", m07.ms_samples_last, ["stack the samples along the FIRST dimension"]),
    # chapter 09: max-norm, dropout ridge, MC dropout
    ("max_norm_", m09.mn_columns, ["you rescaled the COLUMNS of weight"]),
    ("max_norm_", m09.mn_every_row, ["every row is rescaled to norm max_norm, also the rows that were shorter"]),
    ("max_norm_", m09.mn_clip_entries, ["you clipped each ENTRY"]),
    ("max_norm_", m09.mn_frobenius, ["the whole matrix by its (Frobenius) norm"]),
    ("max_norm_", m09.mn_not_in_place, ["leaves the weight it was given unchanged"]),
    ("max_norm_", m09.mn_no_grad_missing, ["change it inside torch.no_grad()"]),
    ("max_norm_", m09.mn_no_keepdim, ["keep them as a column (keepdim=True)"]),
    ("max_norm_", m09.mn_zero_row_nan, ["became NaN"]),
    ("max_norm_", m09.mn_squared_norm, ["you divided by the SQUARED norm"]),
    ("max_norm_", m09.mn_inverse_factor, ["the inverse factor"]),
    ("max_norm_", m09.mn_returns_none, ["max_norm_ returns None"]),
    ("max_norm_", m09.mn_returns_copy, ["not a new tensor"]),
    ("max_norm_", m09.mn_numpy, ["it has no numpy view"]),
    ("dropout_ridge_solution", m09.dr_least_squares, ["with p = 0.2: that is the least-squares solution"]),
    ("dropout_ridge_solution", m09.dr_no_factor, ["without its factor p/(1-p) = 0.25"]),
    ("dropout_ridge_solution", m09.dr_full_gram, ["the full X^T X instead of its diagonal", "1-p = 0.8"]),
    ("dropout_ridge_solution", m09.dr_inverted_factor, ["(1-p)/p = 4.0 instead of p/(1-p) = 0.25"]),
    ("dropout_ridge_solution", m09.dr_identity, ["ordinary ridge with lambda = 0.25"]),
    ("dropout_ridge_solution", m09.dr_factor_p, ["your factor is p = 0.2 instead of p/(1-p) = 0.25"]),
    ("dropout_ridge_solution", m09.dr_standard_dropout, ["the weights of STANDARD dropout's training network"]),
    ("dropout_ridge_solution", m09.dr_mean_penalty, ["diag(X^T X) / N"]),
    ("dropout_ridge_solution", m09.dr_centred, ["the CENTRED columns"]),
    ("dropout_ridge_solution", m09.dr_column_vector, ["w must have shape (d,) = (5,)"]),
    ("dropout_ridge_solution", m09.dr_in_place, ["your function changed X or y in place"]),
    ("dropout_ridge_solution", m09.dr_from_least_squares, ["more features (9) than examples (6)"]),
    ("mc_dropout_predict", m09.mc_train_mode, ["BatchNorm was in training mode during your passes"]),
    ("mc_dropout_predict", m09.mc_dropout_only_no_eval,
     ["when the model came in TRAINING mode, BatchNorm stayed in training mode"]),
    ("mc_dropout_predict", m09.mc_not_restored, ["leaves some of its modules in training mode"]),
    ("mc_dropout_predict", m09.mc_top_flag_restored, ["model.train(flag) sets EVERY module"]),
    ("mc_dropout_predict", m09.mc_with_grad, ["your passes ran with gradients enabled"]),
    ("mc_dropout_predict", m09.mc_logits_averaged, ["you averaged logits, then took one softmax"]),
    ("mc_dropout_predict", m09.mc_mean_of_entropies, ["the MEAN of the per-pass entropies"]),
    ("mc_dropout_predict", m09.mc_one_pass, ["your model ran ONCE"]),
    ("mc_dropout_predict", m09.mc_dropout_off, ["dropout was off in every pass"]),
    ("mc_dropout_predict", m09.mc_children_only, ["model.children() lists only the top-level modules"]),
    ("mc_dropout_predict", m09.mc_entropy_nan, ["0 * log(0) is NaN"]),
    ("mc_dropout_predict", m09.mc_bits, ["your entropy is in bits"]),
    ("mc_dropout_predict", m09.mc_reseeded, ["the passes used the same dropout mask"]),
    ("mc_dropout_predict", m09.mc_softmax_batch_dim, ["not over the batch"]),
    ("mc_dropout_predict", m09.mc_sum_not_mean, ["you added the 8 softmax outputs; divide by n_samples"]),
    # chapter 08: R-Drop
    ("symmetric_kl", m08.kl_one_direction, ["your value is KL(P||Q) alone, one direction"]),
    ("symmetric_kl", m08.kl_div_direction_only,
     ["your value is KL(Q||P) alone", "the distribution whose log you pass comes SECOND"]),
    ("symmetric_kl", m08.kl_no_half, ["twice the symmetric KL: did you forget the 0.5?"]),
    ("symmetric_kl", m08.kl_softmax_into_kl_div, ["you passed PROBABILITIES where F.kl_div expects log-probabilities"]),
    ("symmetric_kl", m08.kl_log_target_missing, ["log_target=True"]),
    ("symmetric_kl", m08.kl_elementwise_mean, ["you divided by the number of ELEMENTS"]),
    ("symmetric_kl", m08.kl_batchmean, ["you divided by the batch size N = 2 only"]),
    ("symmetric_kl", m08.kl_always_sum, ["that is the SUM over the positions"]),
    ("symmetric_kl", m08.kl_reduction_ignored,
     ["your value is the MEAN over the real positions; reduction='sum' asks for their total"]),
    ("symmetric_kl", m08.kl_mask_ignored, ["the pad mask is ignored"]),
    ("symmetric_kl", m08.kl_mask_inverted, ["the mask is inverted"]),
    ("symmetric_kl", m08.kl_snippet_mask, ["against the CLASS axis", "pad_mask.unsqueeze(-1)"]),
    ("symmetric_kl", m08.kl_mean_over_all_positions, ["the padded positions still count in your mean"]),
    ("symmetric_kl", m08.kl_divides_by_padded_count, ["you divided by the number of PADDED positions"]),
    ("symmetric_kl", m08.kl_sum_includes_padding, ["reduction='sum' your value includes the padded positions"]),
    ("symmetric_kl", m08.kl_item,
     ["no gradient flows from your value to the logits", "yours returned a builtins.float"]),
    ("symmetric_kl", m08.kl_one_side_detached, ["is part of the computation detached"]),
    ("symmetric_kl", m08.kl_log_of_softmax, ["compute the log-probabilities with F.log_softmax"]),
    ("symmetric_kl", m08.kl_in_place_on_logits, ["your function changed the logits in place"]),
    ("symmetric_kl", m08.kl_per_position, ["one value per position"]),
    ("symmetric_kl", m08.kl_sums_axis_one, ["the classes are the LAST axis"]),
    ("rdrop_loss", m08.loss_first_pass_only, ["the cross-entropy of the FIRST pass only"]),
    ("rdrop_loss", m08.loss_no_half, ["your loss adds the two cross-entropies"]),
    ("rdrop_loss", m08.loss_ce_summed, ["your cross-entropies are SUMMED over the 6 positions"]),
    ("rdrop_loss", m08.loss_alpha_on_ce, ["alpha multiplies the cross-entropy instead of the KL term"]),
    ("rdrop_loss", m08.loss_alpha_missing, ["your loss does not change with alpha"]),
    ("rdrop_loss", m08.loss_kl_summed, ["your KL term is the SUM over the 6 real positions"]),
    ("rdrop_loss", m08.loss_ce_mask_ignored, ["your cross-entropy includes the padded positions"]),
    ("rdrop_loss", m08.loss_kl_mask_ignored, ["your KL term includes the padded positions"]),
    ("rdrop_loss", m08.loss_class_axis, ["F.cross_entropy reads the classes from axis 1"]),
    ("rdrop_loss", m08.loss_per_sequence_mean, ["you averaged within each sequence"]),
    ("rdrop_loss", m08.loss_divides_by_all_positions, ["the padded positions still count in your mean"]),
    ("rdrop_loss", m08.loss_item, ["no gradient flows from your value"]),
    ("rdrop_loss", m08.loss_detached_kl, ["is part of the computation detached"]),
    ("rdrop_forward", m08.fwd_two_calls, ["you call the model twice"]),
    ("rdrop_forward", m08.fwd_same_half_twice, ["your logits1 and logits2 are identical: one half returned twice"]),
    ("rdrop_forward", m08.fwd_shared_mask, ["two passes sharing one mask"]),
    ("rdrop_forward", m08.fwd_eval_mode, ["the model ran in eval mode"]),
    ("rdrop_forward", m08.fwd_parity_split, ["not into even and odd rows"]),
    ("rdrop_forward", m08.fwd_repeat_interleave, ["you interleaved the copies"]),
    ("rdrop_forward", m08.fwd_stack_new_axis, ["your halves mix examples"]),
    ("rdrop_forward", m08.fwd_swapped, ["your halves are swapped"]),
    ("rdrop_forward", m08.fwd_no_grad, ["no gradient reaches the model's parameters"]),
    ("rdrop_forward", m08.fwd_eval_afterwards, ["the model is in eval mode"]),
    ("rdrop_forward", m08.fwd_whole_output, ["yours returned one value"]),
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
            for module in (m01, m02, m03, m04, m05, m06, m07, m09, m08) for grade_id, rows in module.MUTANTS.items()
            for label, fn, _ in rows if grade_id in graded_functions()]


@pytest.mark.parametrize("grade_id,fn", _mutants())
def test_no_message_reports_a_degenerate_case(grade_id, fn):
    for line in score_function_in_process(grade_id, fn, SEEDS[0]).messages:
        assert not any(pattern.search(line) for pattern in DEGENERATE), line
