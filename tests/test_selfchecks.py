"""The visible self-checks of the exercise notebooks (issue 8).

Each grade cell's visible part (its source before ``### BEGIN HIDDEN TESTS``)
runs in a fresh namespace prepared by the notebook's own setup cell, with the
graded function replaced by

(a) the hidden reference: every check passes;
(b) a known mistake (the corpora's mutants where they fit): at least one check
    fails with a sentence that names it;
(c) a function that returns None: "did you forget `return`?", every check of
    the cell counted, and nothing escapes the cell.

The experiment cells of both notebooks run with functions that raise ValueError
or return None and must print one line naming the function, never a traceback.
"""
from __future__ import annotations

import contextlib
import functools
import io
import re

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from autograder.nbgrader_setup import SOLUTIONS  # noqa: E402
from autograder.reference import ch01_overfitting as ref01  # noqa: E402
from autograder.reference import ch02_ensembles as ref02  # noqa: E402
from autograder.reference import ch03_coadaptation as ref03  # noqa: E402
from autograder.reference import ch04_scaling as ref04  # noqa: E402
from autograder.reference import ch05_backprop as ref05  # noqa: E402
from autograder.reference import ch06_batchnorm as ref06  # noqa: E402
from autograder.reference import ch07_variants as ref07  # noqa: E402
from autograder.reference import ch09_practice as ref09  # noqa: E402
from autograder.reference import ch08_rdrop as ref08  # noqa: E402
from tests.corpus import ch01_overfitting_mutants as m01  # noqa: E402
from tests.corpus import ch02_ensembles_mutants as m02  # noqa: E402
from tests.corpus import ch03_coadaptation_mutants as m03  # noqa: E402
from tests.corpus import ch04_scaling_mutants as m04  # noqa: E402
from tests.corpus import ch05_backprop_mutants as m05  # noqa: E402
from tests.corpus import ch06_batchnorm_mutants as m06  # noqa: E402
from tests.corpus import ch07_variants_mutants as m07  # noqa: E402
from tests.corpus import ch09_practice_mutants as m09  # noqa: E402
from tests.corpus import ch08_rdrop_mutants as m08  # noqa: E402

HIDDEN = "### BEGIN HIDDEN TESTS"
CHAPTERS = {"01-overfitting": ref01, "02-ensembles": ref02, "03-coadaptation": ref03, "04-scaling": ref04,
            "05-backprop": ref05, "06-batchnorm": ref06, "07-variants": ref07, "09-practice": ref09, "08-rdrop": ref08}
SUMMARY = re.compile(r"^(?P<name>\w+): (?:all (?P<all>\d+) self-checks passed"
                     r"|(?P<failed>\d+) of (?P<total>\d+) self-checks failed"
                     r"|not implemented yet .*: 0 of (?P<stub>\d+) self-checks passed)", re.M)


@functools.lru_cache(maxsize=None)
def notebook(chapter: str):
    """(setup source, {grade_id: visible source of test_grade_id}, [experiment cell sources])."""
    nb = nbformat.read(str(SOLUTIONS / chapter / "exercises.ipynb"), as_version=4)
    setup, visible, experiments = None, {}, []
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "setup":
            setup = cell.source
        elif gid and gid.startswith("test_"):
            assert HIDDEN in cell.source, gid
            visible[gid[len("test_"):]] = cell.source.split(HIDDEN)[0]
        elif cell.cell_type == "code" and not gid:
            experiments.append(cell.source)
    return setup, visible, experiments


def graded(chapter):
    return [(chapter, name) for name in notebook(chapter)[1]]


def n_checks(source: str) -> int:
    return source.count("sc.check(")


def namespace(chapter: str, **impls) -> dict:
    """The notebook's globals after its setup cell, with the reference for every
    graded function and ``impls`` in place of some of them."""
    setup, visible, _ = notebook(chapter)
    ns = {"__name__": "__main__"}
    exec(compile(setup, "<setup>", "exec"), ns)
    ref = CHAPTERS[chapter]
    ns.update({name: getattr(ref, name) for name in visible})
    for source in ungraded_solutions(chapter):  # exercises without points: the solution's own code
        exec(compile(source, "<ungraded exercise>", "exec"), ns)
    ns.update(impls)
    return ns


def ungraded_solutions(chapter: str) -> list:
    """Sources of the solution cells of exercises that carry no points."""
    nb = nbformat.read(str(SOLUTIONS / chapter / "exercises.ipynb"), as_version=4)
    graded_ids = {c.metadata.get("nbgrader", {}).get("grade_id", "")[len("test_"):] for c in nb.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("test_")}
    return [c.source for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
            and c.metadata["nbgrader"]["grade_id"] not in graded_ids]


def run_visible(chapter: str, name: str, impl) -> str:
    """What the visible part of test_<name> prints with ``impl`` as <name>.
    An exception escaping the cell fails the calling test."""
    ns = namespace(chapter, **{name: impl})
    np.random.seed(0)
    torch.manual_seed(0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(notebook(chapter)[1][name], f"<test_{name}>", "exec"), ns)
    assert ns[name] is impl, "the self-checks must put the student's function back"
    return out.getvalue()


def summary(output: str, name: str) -> tuple[int, int]:
    """(failed, total) from the summary line."""
    found = [m for m in SUMMARY.finditer(output) if m["name"] == name]
    assert len(found) == 1, output
    m = found[0]
    if m["all"]:
        return 0, int(m["all"])
    if m["stub"]:
        return int(m["stub"]), int(m["stub"])
    return int(m["failed"]), int(m["total"])


# -- (a) the reference passes everything ------------------------------------------------

@pytest.mark.parametrize("chapter,name", graded("01-overfitting") + graded("02-ensembles") + graded("03-coadaptation") + graded("04-scaling") + graded("05-backprop") + graded("06-batchnorm") + graded("07-variants") + graded("09-practice") + graded("08-rdrop"))
def test_reference_passes_every_visible_check(chapter, name):
    output = run_visible(chapter, name, getattr(CHAPTERS[chapter], name))
    n = n_checks(notebook(chapter)[1][name])
    assert n >= 4, f"test_{name} has only {n} self-checks"
    assert output == f"{name}: all {n} self-checks passed \u2713\n"


def test_chapter_01_visible_checks_do_not_print_the_ridge_solution():
    """The closed form of ridge is derived by the student: the visible cell gives
    numbers and the least-squares reference, never X^T X + lam I."""
    src = notebook("01-overfitting")[1]["ridge_fit"].replace(" ", "")
    assert "X.T@X" not in src and "np.eye" not in src and "solve(" not in src


def test_visible_checks_do_not_print_the_derived_formulas():
    """The variance and the moments are derived by the student: the visible
    cells give numbers, never the formula."""
    _, visible, _ = notebook("04-scaling")
    for name in ("dropout_moments", "mc_moments"):
        src = visible[name].replace(" ", "")
        assert "p/(1-p)" not in src and "x**2*" not in src, name


def test_chapter_06_visible_checks_do_not_print_the_variance_formulas():
    """The training variance and the shift ratio are derived by the student: the visible
    cells give numbers and name mistakes, never the expressions."""
    _, visible, _ = notebook("06-batchnorm")
    for name in ("dropout_variance", "variance_shift_ratio"):
        src = visible[name].replace(" ", "")
        for piece in ("mean**2", "mean*mean", "c**2+v", "c*c+v", "/(1-p)-", "p*mean", "v+p*c"):
            assert piece not in src, (name, piece)


def test_chapter_02_visible_checks_do_not_print_the_variance_formula():
    """The variance of a correlated average is derived by the student: the visible
    cell gives numbers only."""
    src = notebook("02-ensembles")[1]["ensemble_variance"].replace(" ", "")
    for piece in ("rho*sigma2", "(1-rho)", "sigma2/k", "rho)*sigma2"):
        assert piece not in src, piece


def test_chapter_07_visible_checks_do_not_print_the_derived_formulas():
    """Gaussian dropout's variance and DropBlock's seed rate are derived by the student: the
    visible cells give numbers and name mistakes, never the formula."""
    _, visible, _ = notebook("07-variants")
    for name in ("gaussian_dropout", "dropblock_gamma", "dropblock"):
        src = visible[name].replace(" ", "")
        for piece in ("p/(1-p)", "p/(1.0-p)", "sqrt(p", "(H-b+1)", "(W-b+1)", "height-block_size+1", "-3+1"):
            assert piece not in src, (name, piece)


# -- (b) each central mistake fails a visible check with a sentence naming it -------------

MISTAKES = [
    # chapter 01: polynomial_features
    ("01-overfitting", "polynomial_features", "no x**0 column", m01.pf_no_ones_column, "the x**0 column is missing"),
    ("01-overfitting", "polynomial_features", "degree too few", m01.pf_one_degree_too_few, "must have shape (3, 4)"),
    ("01-overfitting", "polynomial_features", "degree too many", m01.pf_one_degree_too_many, "must have shape (3, 4)"),
    ("01-overfitting", "polynomial_features", "decreasing powers", m01.pf_decreasing, "decreasing order of power"),
    ("01-overfitting", "polynomial_features", "transposed", m01.pf_transposed, "must have shape (3, 4)"),
    # ridge_fit
    ("01-overfitting", "ridge_fit", "intercept unpenalised", m01.ridge_intercept_unpenalised,
     "lam seems not to penalise the first coefficient (the intercept): the spec penalises every coefficient"),
    ("01-overfitting", "ridge_fit", "last unpenalised", m01.ridge_last_unpenalised,
     "lam seems not to penalise the last coefficient"),
    ("01-overfitting", "ridge_fit", "half lam", m01.ridge_half_lam, "the solution for lam/2 = 1"),
    ("01-overfitting", "ridge_fit", "double lam", m01.ridge_double_lam, "the solution for 2 lam = 4"),
    ("01-overfitting", "ridge_fit", "lam times N", m01.ridge_lam_times_n, "the solution for lam * N = 10"),
    ("01-overfitting", "ridge_fit", "lam ignored", m01.ridge_lam_ignored, "lam is ignored"),
    ("01-overfitting", "ridge_fit", "lam on every entry", m01.ridge_lam_on_every_entry, "should be [0.2177, 0.1333, 0.5105]"),
    ("01-overfitting", "ridge_fit", "no ValueError", m01.ridge_no_value_error, "lam = -1 must raise ValueError"),
    ("01-overfitting", "ridge_fit", "column vector", m01.ridge_column_vector, "w must have shape (3,)"),
    # l2_penalty
    ("01-overfitting", "l2_penalty", "no 0.5", m01.l2_no_half, "twice the expected value: did you forget the 0.5?"),
    ("01-overfitting", "l2_penalty", "item", m01.l2_item, "no gradient flows: did you call .detach(), .item() or numpy?"),
    ("01-overfitting", "l2_penalty", "numpy", m01.l2_numpy, "no gradient flows: did you call .detach(), .item() or numpy?"),
    ("01-overfitting", "l2_penalty", "detached", m01.l2_detached, "no gradient flows"),
    ("01-overfitting", "l2_penalty", "first tensor only", m01.l2_first_only, "only the first tensor counts"),
    ("01-overfitting", "l2_penalty", "overwrites total", m01.l2_overwrites_total, "only the last tensor counts"),
    ("01-overfitting", "l2_penalty", "mean of squares", m01.l2_mean_of_squares, "the MEAN of the squares"),
    ("01-overfitting", "l2_penalty", "norms", m01.l2_norms_not_squared, "not squared norms"),
    ("01-overfitting", "l2_penalty", "indexes params", m01.l2_indexes_params, "object of type 'generator' has no len()"),
    ("01-overfitting", "l2_penalty", "two passes", m01.l2_two_passes, "a generator can be iterated only once"),
    ("01-overfitting", "l2_penalty", "shape (1,)", m01.l2_shape_one, "must be a 0-dimensional torch tensor"),
    # l1_penalty
    ("01-overfitting", "l1_penalty", "squares", m01.l1_squares, "that is L2; L1 adds up absolute values"),
    ("01-overfitting", "l1_penalty", "squared sum", m01.l1_squared_sum, "L1 is not squared"),
    ("01-overfitting", "l1_penalty", "no abs", m01.l1_no_abs, "take absolute values"),
    ("01-overfitting", "l1_penalty", "item", m01.l1_item, "no gradient flows: did you call .detach(), .item() or numpy?"),
    ("01-overfitting", "l1_penalty", "first tensor only", m01.l1_first_only, "only the first tensor counts"),
    ("01-overfitting", "l1_penalty", "half", m01.l1_half, "there is no 0.5 in the L1 penalty"),
    ("01-overfitting", "l1_penalty", "indexes params", m01.l1_indexes_params, "object of type 'generator' has no len()"),
    # early_stopping_epoch
    ("01-overfitting", "early_stopping_epoch", "global argmin", m01.es_global_argmin,
     "the lowest loss of the whole run, ignoring patience"),
    ("01-overfitting", "early_stopping_epoch", "one epoch late", m01.es_one_late, "you stop one epoch too late"),
    ("01-overfitting", "early_stopping_epoch", "one epoch early", m01.es_one_early, "you stop one epoch too early"),
    ("01-overfitting", "early_stopping_epoch", "stop epoch", m01.es_returns_stop_epoch,
     "you returned the epoch where training stopped; return the best epoch"),
    ("01-overfitting", "early_stopping_epoch", "tie improves", m01.es_tie_improves, "a tie counted as a new best"),
    ("01-overfitting", "early_stopping_epoch", "one-based", m01.es_one_based, "epochs are counted from 0"),
    ("01-overfitting", "early_stopping_epoch", "no ValueError", m01.es_no_value_error, "patience = 0 must raise ValueError"),
    ("01-overfitting", "early_stopping_epoch", "float epoch", m01.es_float_epoch, "the epoch must be an int"),
    ("01-overfitting", "early_stopping_epoch", "list only", m01.es_list_only, "has no attribute 'index'"),
    # chapter 02: ensemble_variance
    ("02-ensembles", "ensemble_variance", "independent members", m02.ev_independent,
     "the variance of an average of INDEPENDENT members"),
    ("02-ensembles", "ensemble_variance", "rho swapped", m02.ev_swapped, "rho and 1 - rho are swapped"),
    ("02-ensembles", "ensemble_variance", "k squared", m02.ev_k_squared, "shrinks like 1/k**2"),
    ("02-ensembles", "ensemble_variance", "variance of the sum", m02.ev_variance_of_sum, "the variance of the SUM"),
    ("02-ensembles", "ensemble_variance", "Var(sum)/k", m02.ev_divided_by_k_once, "that is Var(sum) / k"),
    ("02-ensembles", "ensemble_variance", "standard deviation", m02.ev_standard_deviation, "should be 0.88"),
    ("02-ensembles", "ensemble_variance", "array of one", m02.ev_array, "must return a single float"),
    # bootstrap_indices
    ("02-ensembles", "bootstrap_indices", "permutation", m02.bi_permutation, "that is a permutation"),
    ("02-ensembles", "bootstrap_indices", "without replacement", m02.bi_choice_without_replacement,
     "that is a permutation"),
    ("02-ensembles", "bootstrap_indices", "range(n - 1)", m02.bi_range_n_minus_1, "the index 4 = n-1 was never drawn"),
    ("02-ensembles", "bootstrap_indices", "one-based", m02.bi_one_based, "Python counts from 0"),
    ("02-ensembles", "bootstrap_indices", "half the data", m02.bi_half_the_data, "about 1 - 1/e = 63%"),
    ("02-ensembles", "bootstrap_indices", "fixed seed", m02.bi_fixed_seed, "returned the same sample"),
    ("02-ensembles", "bootstrap_indices", "global random", m02.bi_global_random, "never from np.random"),
    ("02-ensembles", "bootstrap_indices", "float indices", m02.bi_floats, "indices must be integers"),
    # enumerate_masks
    ("02-ensembles", "enumerate_masks", "no all-zero row", m02.em_no_all_zero, "the all-zero mask (every unit dropped)"),
    ("02-ensembles", "enumerate_masks", "no all-ones row", m02.em_no_all_ones, "the all-ones mask (every unit kept)"),
    ("02-ensembles", "enumerate_masks", "random rows", m02.em_random_rows, "some masks appear twice"),
    ("02-ensembles", "enumerate_masks", "half kept", m02.em_half_kept, "must have shape (2**3, 3) = (8, 3)"),
    ("02-ensembles", "enumerate_masks", "transposed", m02.em_transposed, "transposed?"),
    ("02-ensembles", "enumerate_masks", "uint8 wraps", m02.em_uint8_unpackbits, "1024 different rows"),
    # mask_probabilities
    ("02-ensembles", "mask_probabilities", "p is keep", m02.mp_p_is_keep, "you used p as the probability of KEEPING"),
    ("02-ensembles", "mask_probabilities", "no dropped factor", m02.mp_no_dropped_factor,
     "the factor p of each DROPPED unit is missing"),
    ("02-ensembles", "mask_probabilities", "binomial", m02.mp_binomial, "a binomial coefficient"),
    ("02-ensembles", "mask_probabilities", "uniform", m02.mp_uniform, "only right for p = 0.5"),
    ("02-ensembles", "mask_probabilities", "normalised over rows", m02.mp_normalised_over_rows,
     "should be [0.512, 0.008, 0.128]"),
    ("02-ensembles", "mask_probabilities", "NaN at p = 0", m02.mp_nan_at_p0, "mask_probabilities(masks, 0.0) should be"),
    ("02-ensembles", "mask_probabilities", "in place", m02.mp_in_place, "changed masks in place"),
    # exact_dropout_ensemble
    ("02-ensembles", "exact_dropout_ensemble", "geo not renormalised", m02.ex_geo_not_renormalised,
     "your geometric mean is not renormalised"),
    ("02-ensembles", "exact_dropout_ensemble", "arith from logits", m02.ex_arith_from_logits,
     "did you average the logits instead of the softmax outputs?"),
    ("02-ensembles", "exact_dropout_ensemble", "unweighted", m02.ex_unweighted, "every mask got the same weight"),
    ("02-ensembles", "exact_dropout_ensemble", "p is keep", m02.ex_p_is_keep, "use p as the probability of keeping"),
    ("02-ensembles", "exact_dropout_ensemble", "no inverted scaling", m02.ex_no_inverted_scaling,
     "kept hidden units are not divided by 1 - p"),
    ("02-ensembles", "exact_dropout_ensemble", "swapped", m02.ex_swapped, "that is the GEOMETRIC mean"),
    ("02-ensembles", "exact_dropout_ensemble", "geo unweighted", m02.ex_geo_unweighted, "every mask got the same weight"),
    ("02-ensembles", "exact_dropout_ensemble", "in place", m02.ex_in_place, "changed X or params in place"),
    # mc_dropout_average
    ("02-ensembles", "mc_dropout_average", "no 1/(1-p)", m02.mc_no_rescale, "NOT divided by 1 - p = 0.8"),
    ("02-ensembles", "mc_dropout_average", "logits then softmax", m02.mc_logits_then_softmax,
     "did you average logits and take one softmax?"),
    ("02-ensembles", "mc_dropout_average", "one mask reused", m02.mc_one_mask_reused, "the output of ONE masked network"),
    ("02-ensembles", "mc_dropout_average", "n_samples ignored", m02.mc_ignores_n_samples,
     "the output of ONE masked network"),
    ("02-ensembles", "mc_dropout_average", "weight-scaled", m02.mc_weight_scaled, "no mask at all"),
    ("02-ensembles", "mc_dropout_average", "exact average", m02.mc_exact, "with n_samples = 1 each row must be"),
    ("02-ensembles", "mc_dropout_average", "sum not mean", m02.mc_sum_not_mean, "so it sums to 1"),
    ("02-ensembles", "mc_dropout_average", "p is keep rate", m02.mc_p_is_keep_rate, "should be within 0.01"),
    ("02-ensembles", "mc_dropout_average", "fixed seed", m02.mc_fixed_seed, "gave the same average"),
    ("02-ensembles", "mc_dropout_average", "global random", m02.mc_global_random, "never from np.random"),
    # chapter 03: mean_abs_correlation
    ("03-coadaptation", "mean_abs_correlation", "diagonal", m03.mac_diagonal_included, "your mean includes the diagonal"),
    ("03-coadaptation", "mean_abs_correlation", "signed", m03.mac_signed, "you averaged the signed correlation"),
    ("03-coadaptation", "mean_abs_correlation", "rows", m03.mac_rows, "you correlated the rows (inputs)"),
    ("03-coadaptation", "mean_abs_correlation", "covariance", m03.mac_covariance, "the mean absolute covariance"),
    ("03-coadaptation", "mean_abs_correlation", "constant NaN", m03.mac_constant_nan, "a constant column gives NaN"),
    ("03-coadaptation", "mean_abs_correlation", "constant as 0", m03.mac_constant_as_zero,
     "you counted the pairs with the dead unit as correlation 0"),
    ("03-coadaptation", "mean_abs_correlation", "only zero columns", m03.mac_only_zero_columns,
     "test for zero variance, not for zeros"),
    ("03-coadaptation", "mean_abs_correlation", "fewer than two", m03.mac_few_not_zero,
     "there is no pair to average: the result is defined as 0.0"),
    ("03-coadaptation", "mean_abs_correlation", "in place", m03.mac_in_place, "changed H in place"),
    # fraction_inactive
    ("03-coadaptation", "fraction_inactive", "< 0", m03.fi_strictly_negative,
     "you counted only the entries < 0: a ReLU never outputs a negative number"),
    ("03-coadaptation", "fraction_inactive", "== 0", m03.fi_only_zeros, "you counted only the entries == 0"),
    ("03-coadaptation", "fraction_inactive", "active", m03.fi_active, "the fraction of ACTIVE entries"),
    ("03-coadaptation", "fraction_inactive", "per unit", m03.fi_per_unit, "the fraction of ALL N * D entries is one"),
    ("03-coadaptation", "fraction_inactive", "count", m03.fi_count, "the number of inactive entries"),
    ("03-coadaptation", "fraction_inactive", "dead units", m03.fi_dead_units, "units inactive on every input"),
    ("03-coadaptation", "fraction_inactive", "array of one", m03.fi_array_of_one, "must return a single float"),
    # ablation_importance
    ("03-coadaptation", "ablation_importance", "sign", m03.ai_sign_flipped, "the sign is flipped"),
    ("03-coadaptation", "ablation_importance", "rescaled", m03.ai_rescaled, "the other units are rescaled"),
    ("03-coadaptation", "ablation_importance", "input", m03.ai_input_ablation, "one per input feature?"),
    ("03-coadaptation", "ablation_importance", "W1 column", m03.ai_w1_column_only, "did you zero W1[:, j] only?"),
    ("03-coadaptation", "ablation_importance", "accumulates", m03.ai_accumulates, "your ablations accumulate"),
    ("03-coadaptation", "ablation_importance", "accuracies", m03.ai_accuracies, "the accuracies of the ablated"),
    ("03-coadaptation", "ablation_importance", "params modified", m03.ai_in_place_left_zeroed,
     "changed X, y or params in place"),
    ("03-coadaptation", "ablation_importance", "counts", m03.ai_counts, "should be [0, 0.125, -0.25]"),
    # random_deletion_accuracy
    ("03-coadaptation", "random_deletion_accuracy", "with replacement", m03.rd_with_replacement,
     "you draw WITH replacement"),
    ("03-coadaptation", "random_deletion_accuracy", "integers", m03.rd_integers, "you draw WITH replacement"),
    ("03-coadaptation", "random_deletion_accuracy", "rescaled", m03.rd_rescaled, "your survivors are rescaled"),
    ("03-coadaptation", "random_deletion_accuracy", "one set", m03.rd_fixed_set, "each repeat must delete a NEW"),
    ("03-coadaptation", "random_deletion_accuracy", "n_repeats ignored", m03.rd_ignores_n_repeats,
     "each repeat must delete a NEW"),
    ("03-coadaptation", "random_deletion_accuracy", "floor", m03.rd_floor, "int(1.8) truncates to 1"),
    ("03-coadaptation", "random_deletion_accuracy", "fraction kept", m03.rd_keep_fraction,
     "fraction is the fraction of units DELETED"),
    ("03-coadaptation", "random_deletion_accuracy", "fixed seed", m03.rd_fixed_seed,
     "a seed fixed inside your function"),
    ("03-coadaptation", "random_deletion_accuracy", "first k", m03.rd_first_k, "always the same unit?"),
    ("03-coadaptation", "random_deletion_accuracy", "global random", m03.rd_global_random, "never from np.random"),
    ("03-coadaptation", "random_deletion_accuracy", "sum", m03.rd_sum_not_mean, "return their mean"),
    ("03-coadaptation", "random_deletion_accuracy", "percent", m03.rd_percent, "not a percentage"),
    # chapter 04: dropout_forward
    ("04-scaling", "dropout_forward", "divides by p", m04.df_divides_by_p, "scaled by 1/p = 5 instead of 1/(1-p) = 1.25"),
    ("04-scaling", "dropout_forward", "no rescaling", m04.df_no_rescale, "scaled by 1 instead of 1/(1-p) = 1.25"),
    ("04-scaling", "dropout_forward", "times (1-p)", m04.df_scale_by_keep, "scaled by 1-p = 0.8 instead of 1/(1-p)"),
    ("04-scaling", "dropout_forward", "times p", m04.df_scale_by_p, "scaled by p = 0.2 instead of 1/(1-p)"),
    ("04-scaling", "dropout_forward", "p is keep", m04.df_p_is_keep, "p is the probability of DROPPING"),
    ("04-scaling", "dropout_forward", "drops in eval", m04.df_drops_in_eval, "at test time nothing is dropped"),
    ("04-scaling", "dropout_forward", "cached mask", m04.df_cached_mask, "returned the same mask"),
    ("04-scaling", "dropout_forward", "fixed seed", m04.df_fixed_seed, "returned the same mask"),
    ("04-scaling", "dropout_forward", "in place", m04.df_inplace, "changed x in place"),
    ("04-scaling", "dropout_forward", "global random", m04.df_global_random, "never from np.random"),
    ("04-scaling", "dropout_forward", "own generator", m04.df_own_generator, "never from np.random"),
    ("04-scaling", "dropout_forward", "per-row mask", m04.df_per_row_mask, "every row of your mask"),
    ("04-scaling", "dropout_forward", "per-column mask", m04.df_per_column_mask, "must have x's shape"),
    ("04-scaling", "dropout_forward", "NaN at p = 1", m04.df_nan_at_one, "must not divide by zero"),
    ("04-scaling", "dropout_forward", "no ValueError", m04.df_no_value_error, "must raise ValueError"),
    ("04-scaling", "dropout_forward", "eval mask of ones", m04.df_eval_mask_ones, "the mask must be None"),
    # standard_dropout_forward
    ("04-scaling", "standard_dropout_forward", "inverted scaling", m04.sd_inverted_scaling,
     "scaled by 1/(1-p) = 1.25 instead of 1"),
    ("04-scaling", "standard_dropout_forward", "no test-time factor", m04.sd_eval_unscaled,
     "at test time x is scaled by 1 instead of 1-p = 0.8"),
    ("04-scaling", "standard_dropout_forward", "test-time p", m04.sd_eval_scaled_by_p,
     "scaled by p = 0.2 instead of 1-p = 0.8"),
    ("04-scaling", "standard_dropout_forward", "test-time divide", m04.sd_eval_divides, "it does not divide"),
    ("04-scaling", "standard_dropout_forward", "drops in eval", m04.sd_drops_in_eval, "at test time nothing is dropped"),
    ("04-scaling", "standard_dropout_forward", "p is keep", m04.sd_p_is_keep, "p is the probability of DROPPING"),
    ("04-scaling", "standard_dropout_forward", "fixed seed", m04.sd_fixed_seed, "returned the same mask"),
    ("04-scaling", "standard_dropout_forward", "per-row mask", m04.sd_per_row, "every row of your mask"),
    ("04-scaling", "standard_dropout_forward", "in place at test time", m04.sd_inplace_eval, "changed x in place"),
    ("04-scaling", "standard_dropout_forward", "global random", m04.sd_global_random, "never from np.random"),
    # dropout_moments
    ("04-scaling", "dropout_moments", "var x^2 p", m04.dm_var_no_denominator, "Var[y] for p = 0.2 should be"),
    ("04-scaling", "dropout_moments", "var of x*mask", m04.dm_var_mask, "Var[y] for p = 0.2 should be"),
    ("04-scaling", "dropout_moments", "p read as keep", m04.dm_var_keep_swapped, "Var[y] for p = 0.2 should be"),
    ("04-scaling", "dropout_moments", "|x| not x^2", m04.dm_var_no_square, "Var[y] for p = 0.8 should be"),
    ("04-scaling", "dropout_moments", "std not var", m04.dm_std_not_var, "Var[y] for p = 0.2 should be"),
    ("04-scaling", "dropout_moments", "E[y^2]", m04.dm_second_moment, "Var[y] for p = 0 should be"),
    ("04-scaling", "dropout_moments", "mean (1-p)x", m04.dm_mean_standard, "E[y] for p = 0.2 should be"),
    ("04-scaling", "dropout_moments", "mean of the mask", m04.dm_mean_of_mask, "E[y] for p = 0.2 should be"),
    ("04-scaling", "dropout_moments", "in place", m04.dm_inplace, "changed x in place"),
    # mc_moments
    ("04-scaling", "mc_moments", "no rescaling", m04.mc_no_rescale, "the sample mean for p = 0.2 should be close to"),
    ("04-scaling", "mc_moments", "variance of the mask", m04.mc_var_of_mask, "the sample variance for p = 0.2"),
    ("04-scaling", "mc_moments", "one mask", m04.mc_one_mask, "the sample variance for p = 0.2"),
    ("04-scaling", "mc_moments", "p is keep", m04.mc_p_is_keep, "the sample variance for p = 0.2"),
    ("04-scaling", "mc_moments", "std not var", m04.mc_std_not_var, "the sample variance for p = 0.2"),
    ("04-scaling", "mc_moments", "one coin per sample", m04.mc_scalar_mask_per_sample, "kept or dropped together"),
    ("04-scaling", "mc_moments", "no simulation", m04.mc_analytic, "gave the same estimates"),
    ("04-scaling", "mc_moments", "global random", m04.mc_global_rng, "never from np.random"),
    ("04-scaling", "mc_moments", "in place", m04.mc_inplace, "changed x in place"),
    # chapter 05: dropout_backward
    ("05-backprop", "dropout_backward", "fresh mask", m05.backward_fresh_mask, "never draw a new one"),
    ("05-backprop", "dropout_backward", "ignores the mask", m05.backward_ignores_mask, "entries the mask drops must be 0"),
    ("05-backprop", "dropout_backward", "no 1/(1-p)", m05.backward_no_scale, "scaled by 1 instead of 1/(1-p) = 1.25"),
    ("05-backprop", "dropout_backward", "times (1-p)", m05.backward_times_keep, "scaled by 1-p = 0.8 instead of"),
    ("05-backprop", "dropout_backward", "divides by p", m05.backward_divides_by_p, "scaled by 1/p = 5 instead of"),
    ("05-backprop", "dropout_backward", "in place", m05.backward_in_place, "changed dout or mask in place"),
    # numerical_gradient
    ("05-backprop", "numerical_gradient", "one-sided", m05.numgrad_forward_difference, "one-sided (forward) difference"),
    ("05-backprop", "numerical_gradient", "x not restored", m05.numgrad_leaves_x_modified, "put every original value back"),
    ("05-backprop", "numerical_gradient", "divides by h", m05.numgrad_divides_by_h, "twice the true gradient"),
    ("05-backprop", "numerical_gradient", "ignores h", m05.numgrad_ignores_h, "use the h you are given"),
    ("05-backprop", "numerical_gradient", "evaluates f(x)", m05.numgrad_perturbs_copy_calls_original,
     "f must be evaluated at the perturbed x"),
    # relative_error
    ("05-backprop", "relative_error", "no floor", m05.rel_no_floor, "floor of 1e-8"),
    ("05-backprop", "relative_error", "no floor, global", m05.rel_no_floor_global, "floor of 1e-8"),
    ("05-backprop", "relative_error", "mean", m05.rel_mean, "the mean over the entries"),
    ("05-backprop", "relative_error", "no abs", m05.rel_no_abs, "absolute value of a - b"),
    ("05-backprop", "relative_error", "norms", m05.rel_norms, "a ratio of norms"),
    ("05-backprop", "relative_error", "max denominator", m05.rel_max_denominator, "adds |a| and |b|"),
    # mlp_loss_and_grads
    ("05-backprop", "mlp_loss_and_grads", "mask ignored in backward", m05.mlp_ignores_mask_in_backward,
     "the backward pass must go through the mask"),
    ("05-backprop", "mlp_loss_and_grads", "backward ignores the mask", m05.mlp_backward_ignores_mask,
     "the backward pass must go through the mask"),
    ("05-backprop", "mlp_loss_and_grads", "backward misses 1/(1-p)", m05.mlp_backward_no_scale,
     "1-p = 0.8 times the true ones"),
    ("05-backprop", "mlp_loss_and_grads", "mask ignored", m05.mlp_ignores_mask, "the loss with a mask and p = 0.2"),
    ("05-backprop", "mlp_loss_and_grads", "sum not mean", m05.mlp_sum_not_mean, "times too large"),
    ("05-backprop", "mlp_loss_and_grads", "divides twice", m05.mlp_divides_twice, "times too small"),
    ("05-backprop", "mlp_loss_and_grads", "b1 not through relu", m05.mlp_b1_not_through_relu, "only dL/db1 is wrong"),
    ("05-backprop", "mlp_loss_and_grads", "scales without a mask", m05.mlp_scales_without_mask,
     "hidden_mask=None means no dropout"),
    ("05-backprop", "mlp_loss_and_grads", "updates params", m05.mlp_updates_params, "changed params"),
    # DropoutFunction
    ("05-backprop", "DropoutFunction", "fresh mask in backward", m05.DropoutFreshMask, "never draw a new one"),
    ("05-backprop", "DropoutFunction", "backward misses 1/(1-p)", m05.DropoutBackwardNoScale,
     "backward: kept entries of the gradient are scaled by 1 instead of 1/(1-p) = 1.25"),
    ("05-backprop", "DropoutFunction", "identity backward", m05.DropoutIdentityBackward, "entries the mask drops must be 0"),
    ("05-backprop", "DropoutFunction", "backward ignores the mask", m05.DropoutBackwardIgnoresMask,
     "entries the mask drops must be 0"),
    ("05-backprop", "DropoutFunction", "mask gradient", m05.DropoutMaskGradient, "a gradient for the mask"),
    ("05-backprop", "DropoutFunction", "forward misses 1/(1-p)", m05.DropoutForwardNoScale,
     "forward: kept values are scaled by 1 instead of 1/(1-p) = 1.25"),
    ("05-backprop", "DropoutFunction", "backward still a stub", m05.DropoutStubBackward,
     "your DropoutFunction.backward is not implemented yet"),
    # chapter 06: dropout_variance
    ("06-batchnorm", "dropout_variance", "standard dropout", m06.dv_standard_dropout, "that is standard dropout's variance"),
    ("06-batchnorm", "dropout_variance", "zero-mean formula", m06.dv_zero_mean, "right for a zero-mean unit only"),
    ("06-batchnorm", "dropout_variance", "E[y^2]", m06.dv_no_mean_subtracted, "that is E[y^2]: subtract E[y]^2"),
    ("06-batchnorm", "dropout_variance", "p is keep", m06.dv_p_is_keep, "you used p as the probability of KEEPING"),
    ("06-batchnorm", "dropout_variance", "mask share", m06.dv_mask_share_only, "only the mask's share"),
    ("06-batchnorm", "dropout_variance", "E[m^2]", m06.dv_m_squared, "forgot E[m^2]"),
    ("06-batchnorm", "dropout_variance", "mean rescaled", m06.dv_mean_rescaled, "inverted dropout keeps the mean"),
    ("06-batchnorm", "dropout_variance", "noise on the mean", m06.dv_noise_on_mean_only, "not only c^2"),
    ("06-batchnorm", "dropout_variance", "std", m06.dv_std, "that is the standard deviation"),
    ("06-batchnorm", "dropout_variance", "var squared", m06.dv_var_squared, "you squared var"),
    ("06-batchnorm", "dropout_variance", "mean not squared", m06.dv_mean_not_squared, "where its square belongs"),
    ("06-batchnorm", "dropout_variance", "test variance", m06.dv_test_variance, "that is the test-time variance"),
    ("06-batchnorm", "dropout_variance", "list", m06.dv_list, "must return a single float"),
    # variance_shift_ratio
    ("06-batchnorm", "variance_shift_ratio", "inverted", m06.sr_inverted, "the ratio upside down"),
    ("06-batchnorm", "variance_shift_ratio", "1 - p", m06.sr_one_minus_p, "the ratio of a zero-mean unit only"),
    ("06-batchnorm", "variance_shift_ratio", "standard dropout", m06.sr_standard_dropout, "standard dropout's variance"),
    ("06-batchnorm", "variance_shift_ratio", "p is keep", m06.sr_p_is_keep, "the probability of KEEPING"),
    ("06-batchnorm", "variance_shift_ratio", "E[y^2]", m06.sr_no_mean_subtracted, "subtract E[y]^2"),
    ("06-batchnorm", "variance_shift_ratio", "mean not squared", m06.sr_mean_not_squared, "where its square belongs"),
    ("06-batchnorm", "variance_shift_ratio", "mask share", m06.sr_mask_share, "only the mask's share"),
    ("06-batchnorm", "variance_shift_ratio", "1 - ratio", m06.sr_lost_fraction, "that is 1 - ratio"),
    ("06-batchnorm", "variance_shift_ratio", "E[m^2]", m06.sr_m_squared, "forgets E[m^2]"),
    ("06-batchnorm", "variance_shift_ratio", "divides by var", m06.sr_divides_by_var, "raised ZeroDivisionError"),
    ("06-batchnorm", "variance_shift_ratio", "array", m06.sr_array, "must return a single float"),
    # bn_input_variance
    ("06-batchnorm", "bn_input_variance", "BN in training mode", m06.biv_bn_training_mode,
     "normalised with batch statistics (training mode)"),
    ("06-batchnorm", "bn_input_variance", "batch statistics with dropout", m06.biv_batch_stats_in_dropout_pass,
     "in the dropout pass the BN layer before it normalised with batch statistics"),
    ("06-batchnorm", "bn_input_variance", "unbiased", m06.biv_unbiased, "you divided by n - 1"),
    ("06-batchnorm", "bn_input_variance", "after bn", m06.biv_after_bn, "the variance of the BN layer's OUTPUT"),
    ("06-batchnorm", "bn_input_variance", "dropout never on", m06.biv_dropout_never_on,
     "your train_var is the variance with dropout OFF"),
    ("06-batchnorm", "bn_input_variance", "only nn.Dropout", m06.biv_only_nn_dropout, "nn.Dropout2d is a dropout layer too"),
    ("06-batchnorm", "bn_input_variance", "left in eval", m06.biv_left_in_eval, "save each module's flag and restore it"),
    ("06-batchnorm", "bn_input_variance", "model flag only", m06.biv_restores_model_flag_only,
     "save each module's flag and restore it"),
    ("06-batchnorm", "bn_input_variance", "no no_grad", m06.biv_no_grad_missing, "measure under torch.no_grad()"),
    ("06-batchnorm", "bn_input_variance", "swapped", m06.biv_swapped, "The order is (train_var, eval_var)"),
    ("06-batchnorm", "bn_input_variance", "one number", m06.biv_one_number, "each must have shape (3,)"),
    ("06-batchnorm", "bn_input_variance", "over the batch only", m06.biv_over_batch_only, "one variance per channel"),
    # recalibrate_bn
    ("06-batchnorm", "recalibrate_bn", "EMA", m06.rb_default_momentum, "that is the exponential average"),
    ("06-batchnorm", "recalibrate_bn", "no reset", m06.rb_no_reset, "reset them first"),
    ("06-batchnorm", "recalibrate_bn", "whole model train", m06.rb_whole_model_train, "dropout was on during the pass"),
    ("06-batchnorm", "recalibrate_bn", "BN in eval", m06.rb_bn_in_eval, "never saw a batch in training mode"),
    ("06-batchnorm", "recalibrate_bn", "reset_parameters", m06.rb_reset_parameters, "reset_parameters() resets them"),
    ("06-batchnorm", "recalibrate_bn", "momentum None", m06.rb_momentum_left_none, "put each BN's own momentum back"),
    ("06-batchnorm", "recalibrate_bn", "modes", m06.rb_modes_not_restored, "save each module's flag and restore it"),
    ("06-batchnorm", "recalibrate_bn", "copy", m06.rb_returns_copy, "return the model you were given"),
    ("06-batchnorm", "recalibrate_bn", "last batch", m06.rb_drops_last_batch, "the last, shorter batch is missing"),
    ("06-batchnorm", "recalibrate_bn", "one batch", m06.rb_one_batch, "as ONE batch"),
    ("06-batchnorm", "recalibrate_bn", "biased", m06.rb_biased_variance, "BIASED batch variances"),
    ("06-batchnorm", "recalibrate_bn", "layer by layer", m06.rb_layer_by_layer, "one layer after the other"),
    # uout
    ("06-batchnorm", "uout", "additive", m06.uout_additive, "your noise is additive"),
    ("06-batchnorm", "uout", "[0, beta]", m06.uout_zero_to_beta, "your r lies in [0, beta]"),
    ("06-batchnorm", "uout", "noise in eval", m06.uout_noise_in_eval, "Uout is the identity"),
    ("06-batchnorm", "uout", "one r", m06.uout_one_r, "every entry got the same r"),
    ("06-batchnorm", "uout", "one r per row", m06.uout_one_r_per_row, "every row got one r"),
    ("06-batchnorm", "uout", "x * r", m06.uout_times_r, "you multiplied x by r"),
    ("06-batchnorm", "uout", "global generator", m06.uout_global_rng, "two generators of the same seed gave different"),
    ("06-batchnorm", "uout", "fixed seed", m06.uout_fixed_seed, "two calls with one generator gave the same noise"),
    ("06-batchnorm", "uout", "normal", m06.uout_normal, "outside [-0.5, 0.5]"),
    ("06-batchnorm", "uout", "half width", m06.uout_half_width, "your r spans only (-beta/2, beta/2)"),
    ("06-batchnorm", "uout", "detached", m06.uout_detached, "no gradient reaches x"),
    ("06-batchnorm", "uout", "in place", m06.uout_in_place, "changed x in place"),
    ("06-batchnorm", "uout", "numpy", m06.uout_numpy, "must return a torch tensor"),
    ("06-batchnorm", "uout", "float64 output", m06.uout_float64_output, "dtype torch.float64"),
    ("06-batchnorm", "uout", "dropout instead", m06.uout_dropout_instead, "that is dropout's mask"),
    # chapter 07: dropconnect_linear
    ("07-variants", "dropconnect_linear", "drops activations", m07.dc_drops_activations,
     "you dropped the INPUTS (entries of x), not weights"),
    ("07-variants", "dropconnect_linear", "drops inputs (shared)", m07.dc_drops_inputs_shared,
     "you dropped the INPUTS (entries of x), not weights"),
    ("07-variants", "dropconnect_linear", "drops outputs", m07.dc_drops_outputs, "you dropped output units, not weights"),
    ("07-variants", "dropconnect_linear", "drops the bias", m07.dc_drops_bias, "the bias is never dropped"),
    ("07-variants", "dropconnect_linear", "bias rescaled", m07.dc_bias_rescaled, "yours is bias / (1 - p)"),
    ("07-variants", "dropconnect_linear", "mask per example", m07.dc_mask_per_example, "draw ONE mask per call"),
    ("07-variants", "dropconnect_linear", "no rescaling", m07.dc_no_rescale,
     "kept weights are scaled by 1 instead of 1/(1-p) = 1.25"),
    ("07-variants", "dropconnect_linear", "divides by p", m07.dc_divides_by_p,
     "kept weights are scaled by 1/p = 5 instead of 1/(1-p) = 1.25"),
    ("07-variants", "dropconnect_linear", "p is keep", m07.dc_p_is_keep, "p is the probability of DROPPING"),
    ("07-variants", "dropconnect_linear", "scaled in eval", m07.dc_scaled_in_eval,
     "at test time nothing is multiplied by 1 - p"),
    ("07-variants", "dropconnect_linear", "drops in eval", m07.dc_drops_in_eval, "with training=False the result should be"),
    ("07-variants", "dropconnect_linear", "seed fixed inside", m07.dc_fixed_seed, "is a seed fixed inside your function?"),
    ("07-variants", "dropconnect_linear", "global random state", m07.dc_global_rng, "never from torch's global generator"),
    ("07-variants", "dropconnect_linear", "weight in place", m07.dc_weight_in_place, "changed x, weight or bias in place"),
    ("07-variants", "dropconnect_linear", "no gradient", m07.dc_no_grad, "no gradient reaches weight and bias"),
    # gaussian_dropout
    ("07-variants", "gaussian_dropout", "std p", m07.gd_std_p, "you used p as the STANDARD DEVIATION"),
    ("07-variants", "gaussian_dropout", "variance p", m07.gd_var_p, "p is not the variance of inverted dropout's factor"),
    ("07-variants", "gaussian_dropout", "std p/(1-p)", m07.gd_std_ratio, "you used the variance as the STANDARD DEVIATION"),
    ("07-variants", "gaussian_dropout", "variance (1-p)/p", m07.gd_keep_over_drop, "p read as the KEEP probability"),
    ("07-variants", "gaussian_dropout", "additive noise", m07.gd_additive, "the noise must MULTIPLY x, not be added to it"),
    ("07-variants", "gaussian_dropout", "noise mean 0", m07.gd_mean_zero, "x times noise of mean 0 loses the signal"),
    ("07-variants", "gaussian_dropout", "Bernoulli instead", m07.gd_bernoulli, "that is Bernoulli dropout"),
    ("07-variants", "gaussian_dropout", "uniform noise", m07.gd_uniform, "your noise is not normally distributed"),
    ("07-variants", "gaussian_dropout", "noise in eval", m07.gd_noise_in_eval, "with training=False the result must be x itself"),
    ("07-variants", "gaussian_dropout", "eval scaled", m07.gd_eval_scaled, "with training=False the result must be x itself"),
    ("07-variants", "gaussian_dropout", "seed fixed inside", m07.gd_fixed_seed, "is a seed fixed inside your function?"),
    ("07-variants", "gaussian_dropout", "global random state", m07.gd_global_rng, "never from torch's global generator"),
    ("07-variants", "gaussian_dropout", "one noise per row", m07.gd_per_row, "draw one number per entry"),
    ("07-variants", "gaussian_dropout", "in place", m07.gd_in_place, "your function changed x in place"),
    ("07-variants", "gaussian_dropout", "float64 result", m07.gd_float64_result, "a float32 x must give a float32 result"),
    # spatial_dropout
    ("07-variants", "spatial_dropout", "per pixel", m07.sd_per_pixel, "SpatialDropout draws ONE coin per (example, channel)"),
    ("07-variants", "spatial_dropout", "rows, not maps", m07.sd_rows, "SpatialDropout draws ONE coin per (example, channel)"),
    ("07-variants", "spatial_dropout", "one mask for the batch", m07.sd_shared_batch,
     "every example of the batch lost the same channels"),
    ("07-variants", "spatial_dropout", "one coin per example", m07.sd_per_sample,
     "every example keeps or loses all of its channels at once"),
    ("07-variants", "spatial_dropout", "no rescaling", m07.sd_no_rescale,
     "kept feature maps are scaled by 1 instead of 1/(1-p) = 1.25"),
    ("07-variants", "spatial_dropout", "divides by p", m07.sd_divides_by_p, "scaled by 1/p = 5 instead of 1/(1-p) = 1.25"),
    ("07-variants", "spatial_dropout", "p is keep", m07.sd_p_is_keep, "p is the probability of DROPPING"),
    ("07-variants", "spatial_dropout", "drops in eval", m07.sd_drops_in_eval, "with training=False the result must be x itself"),
    ("07-variants", "spatial_dropout", "seed fixed inside", m07.sd_fixed_seed, "is a seed fixed inside your function?"),
    ("07-variants", "spatial_dropout", "F.dropout2d", m07.sd_torch_dropout2d, "F.dropout2d uses the global one"),
    ("07-variants", "spatial_dropout", "in place", m07.sd_in_place, "your function changed x in place"),
    # dropblock_gamma
    ("07-variants", "dropblock_gamma", "no valid-region factor", m07.dg_no_valid_factor, "you left out the valid region"),
    ("07-variants", "dropblock_gamma", "gamma = p", m07.dg_equals_p, "gamma is not p"),
    ("07-variants", "dropblock_gamma", "block_size not squared", m07.dg_block_not_squared, "a seed drops b * b positions"),
    ("07-variants", "dropblock_gamma", "square-map formula", m07.dg_square_map, "you used the height for both sides"),
    ("07-variants", "dropblock_gamma", "H - b", m07.dg_no_plus_one, "off by one"),
    ("07-variants", "dropblock_gamma", "factor inverted", m07.dg_inverted_valid, "your valid-region factor is upside down"),
    ("07-variants", "dropblock_gamma", "keep probability", m07.dg_keep_prob, "p is the probability of DROPPING"),
    ("07-variants", "dropblock_gamma", "integer division", m07.dg_integer_division, "integer division (//)?"),
    ("07-variants", "dropblock_gamma", "an array", m07.dg_as_array, "must return a single float"),
    # dropblock
    ("07-variants", "dropblock", "no normalisation", m07.db_no_normalisation, "kept values are not rescaled"),
    ("07-variants", "dropblock", "normalised by 1-p", m07.db_normalise_keep, "kept values are scaled by 1/(1-p) = 1.25"),
    ("07-variants", "dropblock", "normalised per map", m07.db_normalise_per_map, "your factor differs between feature maps"),
    ("07-variants", "dropblock", "gamma = p", m07.db_gamma_is_p, "is your seed rate p itself?"),
    ("07-variants", "dropblock", "no valid-region factor", m07.db_no_valid_factor,
     "is the valid-region factor missing from your seed rate?"),
    ("07-variants", "dropblock", "even blocks accepted", m07.db_even_blocks_accepted, "block_size = 4 is even"),
    ("07-variants", "dropblock", "blocks leave the map", m07.db_blocks_leave_map, "a block never leaves the map"),
    ("07-variants", "dropblock", "anchored at a corner", m07.db_top_left_anchor, "a block never leaves the map"),
    ("07-variants", "dropblock", "one mask for all channels", m07.db_shared_channels,
     "all channels of an example have the same blocks"),
    ("07-variants", "dropblock", "one mask for the batch", m07.db_shared_batch,
     "every example of the batch has the same blocks"),
    ("07-variants", "dropblock", "NaN when all dropped", m07.db_nan_when_all_dropped, "so do not divide by it"),
    ("07-variants", "dropblock", "drops in eval", m07.db_drops_in_eval, "with training=False the result must be x itself"),
    ("07-variants", "dropblock", "seed fixed inside", m07.db_fixed_seed, "is a seed fixed inside your function?"),
    ("07-variants", "dropblock", "global random state", m07.db_global_rng, "never from torch's global generator"),
    ("07-variants", "dropblock", "block_size as radius", m07.db_radius_block, "about 0.181 should be dropped"),
    # drop_path
    ("07-variants", "drop_path", "elementwise", m07.dp_elementwise, "DropPath keeps or drops an example's whole branch"),
    ("07-variants", "drop_path", "no rescaling", m07.dp_no_rescale,
     "kept examples are scaled by 1 instead of 1/(1-p) = 1.25"),
    ("07-variants", "drop_path", "batch mode in row mode", m07.dp_batch_in_row_mode,
     "that is batch mode; row mode draws one coin per example"),
    ("07-variants", "drop_path", "mode ignored", m07.dp_ignores_mode, "one coin decides for the whole tensor"),
    ("07-variants", "drop_path", "modes swapped", m07.dp_modes_swapped, "that is batch mode"),
    ("07-variants", "drop_path", "mask of shape (N,)", m07.dp_mask_shape_n, "your drop_path raised RuntimeError"),
    ("07-variants", "drop_path", "one coin per feature", m07.dp_per_feature,
     "DropPath keeps or drops an example's whole branch"),
    ("07-variants", "drop_path", "p is keep", m07.dp_p_is_keep, "scaled by 1/p = 5 instead of 1/(1-p) = 1.25"),
    ("07-variants", "drop_path", "drops in eval", m07.dp_drops_in_eval, "the result must be x itself"),
    ("07-variants", "drop_path", "seed fixed inside", m07.dp_fixed_seed, "is a seed fixed inside your function?"),
    ("07-variants", "drop_path", "global random state", m07.dp_global_rng, "never from torch's global generator"),
    ("07-variants", "drop_path", "in place", m07.dp_in_place, "your function changed x in place"),
    # cutout
    ("07-variants", "cutout", "input modified", m07.co_modifies_input, "changed the input images in place"),
    ("07-variants", "cutout", "same square", m07.co_same_square, "every image got the same square"),
    ("07-variants", "cutout", "shifted inside", m07.co_shifted_inside, "squares is clipped by the border"),
    ("07-variants", "cutout", "centre only where it fits", m07.co_centre_where_fits, "squares is clipped by the border"),
    ("07-variants", "cutout", "drawn pixel is the corner", m07.co_top_left_corner,
     "each of the 8 rows should be the centre of about"),
    ("07-variants", "cutout", "a square per channel", m07.co_square_per_channel,
     "the channels of an image have different holes"),
    ("07-variants", "cutout", "official slices, odd size", m07.co_official_odd, "most of yours are 2 pixels across"),
    ("07-variants", "cutout", "size + 1", m07.co_size_plus_one, "must be 4 x 4; most of yours are 5 pixels across"),
    ("07-variants", "cutout", "rescaled", m07.co_rescaled, "Cutout only zeroes the square (no rescaling)"),
    ("07-variants", "cutout", "seed fixed inside", m07.co_fixed_seed, "is a seed fixed inside your function?"),
    ("07-variants", "cutout", "global random state", m07.co_global_rng, "never from torch's global generator"),
    ("07-variants", "cutout", "H and W swapped", m07.co_height_width_swapped, "are H and W swapped?"),
    # multi_sample_dropout_logits
    ("07-variants", "multi_sample_dropout_logits", "one mask", m07.ms_one_mask, "all your samples have the same mask"),
    ("07-variants", "multi_sample_dropout_logits", "no rescaling", m07.ms_no_rescale,
     "kept features are scaled by 1 instead of 1/(1-p) = 1.25"),
    ("07-variants", "multi_sample_dropout_logits", "p is keep", m07.ms_p_is_keep,
     "scaled by 1/p = 5 instead of 1/(1-p) = 1.25"),
    ("07-variants", "multi_sample_dropout_logits", "mean of samples", m07.ms_mean_of_samples, "yours has (50, 3)"),
    ("07-variants", "multi_sample_dropout_logits", "dropout after the head", m07.ms_dropout_after_head,
     "you dropped the head's OUTPUT"),
    ("07-variants", "multi_sample_dropout_logits", "mask shared by the batch", m07.ms_mask_shared_by_batch,
     "every example of the batch got the same mask"),
    ("07-variants", "multi_sample_dropout_logits", "first sample clean", m07.ms_first_sample_clean,
     "your first sample is the features without dropout"),
    ("07-variants", "multi_sample_dropout_logits", "samples last", m07.ms_samples_last,
     "stack the samples along a NEW FIRST dimension"),
    ("07-variants", "multi_sample_dropout_logits", "seed fixed inside", m07.ms_fixed_seed,
     "is a seed fixed inside your function?"),
    ("07-variants", "multi_sample_dropout_logits", "F.dropout", m07.ms_global_dropout, "never from torch's global generator"),
    ("07-variants", "multi_sample_dropout_logits", "in place", m07.ms_in_place, "your function changed features in place"),
    # chapter 09: max_norm_
    ("09-practice", "max_norm_", "columns", m09.mn_columns, "you rescaled the COLUMNS"),
    ("09-practice", "max_norm_", "every row", m09.mn_every_row, "you rescaled a unit that was within max_norm"),
    ("09-practice", "max_norm_", "entries clipped", m09.mn_clip_entries, "you clipped each entry to [-2, 2]"),
    ("09-practice", "max_norm_", "whole matrix", m09.mn_frobenius, "you rescaled the whole matrix by its norm"),
    ("09-practice", "max_norm_", "not in place", m09.mn_not_in_place, "the weight you passed in is unchanged"),
    ("09-practice", "max_norm_", "no torch.no_grad", m09.mn_no_grad_missing, "make the change inside torch.no_grad()"),
    ("09-practice", "max_norm_", "no keepdim", m09.mn_no_keepdim, "must match the size"),
    ("09-practice", "max_norm_", "zero row NaN", m09.mn_zero_row_nan, "your result holds NaN"),
    ("09-practice", "max_norm_", "squared norm", m09.mn_squared_norm, "you divided by the SQUARED norm"),
    ("09-practice", "max_norm_", "returns a copy", m09.mn_returns_copy, "must return the weight it was given"),
    # dropout_ridge_solution
    ("09-practice", "dropout_ridge_solution", "least squares", m09.dr_least_squares, "that is least squares"),
    ("09-practice", "dropout_ridge_solution", "no p/(1-p)", m09.dr_no_factor, "its factor is missing"),
    ("09-practice", "dropout_ridge_solution", "full X^T X", m09.dr_full_gram, "your penalty uses the full X^T X"),
    ("09-practice", "dropout_ridge_solution", "(1-p)/p", m09.dr_inverted_factor, "your factor of p is inverted"),
    ("09-practice", "dropout_ridge_solution", "ordinary ridge", m09.dr_identity, "that is ordinary ridge"),
    ("09-practice", "dropout_ridge_solution", "factor p", m09.dr_factor_p, "your factor is p"),
    ("09-practice", "dropout_ridge_solution", "standard dropout", m09.dr_standard_dropout,
     "standard dropout's training weights"),
    ("09-practice", "dropout_ridge_solution", "centred", m09.dr_centred, "you centred the columns"),
    ("09-practice", "dropout_ridge_solution", "column vector", m09.dr_column_vector, "w must have shape (3,)"),
    ("09-practice", "dropout_ridge_solution", "in place", m09.dr_in_place, "your function changed X or y in place"),
    ("09-practice", "dropout_ridge_solution", "from least squares", m09.dr_from_least_squares,
     "dropout_ridge_solution(X6[:2], y6[:2], 0.3) should be"),
    # mc_dropout_predict
    ("09-practice", "mc_dropout_predict", "model.train()", m09.mc_train_mode,
     "BatchNorm was in training mode in your passes"),
    ("09-practice", "mc_dropout_predict", "dropout on without eval()", m09.mc_dropout_only_no_eval,
     "(model given in train mode)"),
    ("09-practice", "mc_dropout_predict", "modes not restored", m09.mc_not_restored,
     "the model came in eval mode and left in another"),
    ("09-practice", "mc_dropout_predict", "top-level flag", m09.mc_top_flag_restored,
     "came back with BatchNorm in training mode"),
    ("09-practice", "mc_dropout_predict", "no torch.no_grad", m09.mc_with_grad, "autograd was recording during your passes"),
    ("09-practice", "mc_dropout_predict", "logits averaged", m09.mc_logits_averaged,
     "you averaged logits, then took one softmax"),
    ("09-practice", "mc_dropout_predict", "mean of entropies", m09.mc_mean_of_entropies,
     "that is the MEAN of the per-pass entropies"),
    ("09-practice", "mc_dropout_predict", "one pass", m09.mc_one_pass, "your model ran once"),
    ("09-practice", "mc_dropout_predict", "dropout off", m09.mc_dropout_off, "dropout was off in your passes"),
    ("09-practice", "mc_dropout_predict", "0 log 0", m09.mc_entropy_nan,
     "your entropy is NaN when a probability is exactly 0"),
    ("09-practice", "mc_dropout_predict", "bits", m09.mc_bits, "your entropy is in bits"),
    ("09-practice", "mc_dropout_predict", "reseeded", m09.mc_reseeded, "the same dropout mask every time"),
    ("09-practice", "mc_dropout_predict", "softmax over the batch", m09.mc_softmax_batch_dim,
     "the COLUMNS of your mean_probs sum to 1"),
    ("09-practice", "mc_dropout_predict", "sum", m09.mc_sum_not_mean, "you added the 20 softmax outputs"),
    # chapter 08: symmetric_kl
    ("08-rdrop", "symmetric_kl", "KL(P||Q) only", m08.kl_one_direction, "that is KL(P||Q) alone"),
    ("08-rdrop", "symmetric_kl", "kl_div direction", m08.kl_div_direction_only, "the log goes on the SECOND distribution"),
    ("08-rdrop", "symmetric_kl", "the same term twice", m08.kl_same_term_twice, "that is KL(Q||P) alone"),
    ("08-rdrop", "symmetric_kl", "no 0.5", m08.kl_no_half, "the 0.5 is missing"),
    ("08-rdrop", "symmetric_kl", "softmax into kl_div", m08.kl_softmax_into_kl_div,
     "you passed probabilities where F.kl_div expects log-probabilities"),
    ("08-rdrop", "symmetric_kl", "log_target missing", m08.kl_log_target_missing, "without log_target=True"),
    ("08-rdrop", "symmetric_kl", "raw logits", m08.kl_of_raw_logits, "you passed raw logits"),
    ("08-rdrop", "symmetric_kl", "mean over elements", m08.kl_elementwise_mean, "you divided by the 2 classes too"),
    ("08-rdrop", "symmetric_kl", "batchmean", m08.kl_batchmean, "you divided by the batch size N = 3"),
    ("08-rdrop", "symmetric_kl", "always sum", m08.kl_always_sum, "that is the total; reduction='mean'"),
    ("08-rdrop", "symmetric_kl", "reduction ignored", m08.kl_reduction_ignored, "reduction='sum' asks for the total"),
    ("08-rdrop", "symmetric_kl", "mask ignored", m08.kl_mask_ignored, "the pad mask is ignored"),
    ("08-rdrop", "symmetric_kl", "mask inverted", m08.kl_mask_inverted, "the mask is inverted"),
    ("08-rdrop", "symmetric_kl", "snippet's masked_fill", m08.kl_snippet_mask, "your mask hid CLASS 2 in every example"),
    ("08-rdrop", "symmetric_kl", "mean over all positions", m08.kl_mean_over_all_positions,
     "you divided the total by all 15 positions"),
    ("08-rdrop", "symmetric_kl", "padded count", m08.kl_divides_by_padded_count, "you divided by the 5 PADDED positions"),
    ("08-rdrop", "symmetric_kl", "sum includes padding", m08.kl_sum_includes_padding,
     "your sum includes the padded positions"),
    ("08-rdrop", "symmetric_kl", ".item()", m08.kl_item, "did you call .item(), .detach() or numpy?"),
    ("08-rdrop", "symmetric_kl", "numpy", m08.kl_numpy, "did you call .item(), .detach() or numpy?"),
    ("08-rdrop", "symmetric_kl", "one side detached", m08.kl_one_side_detached, "part of your computation is detached"),
    ("08-rdrop", "symmetric_kl", "log(softmax)", m08.kl_log_of_softmax, "take the log-probabilities from F.log_softmax"),
    ("08-rdrop", "symmetric_kl", "masked_fill_ on the logits", m08.kl_in_place_on_logits,
     "changed the logits in place"),
    ("08-rdrop", "symmetric_kl", "per-position values", m08.kl_per_position, "must return a 0-d torch tensor"),
    # rdrop_loss
    ("08-rdrop", "rdrop_loss", "first pass only", m08.loss_first_pass_only, "the cross-entropy of the first pass only"),
    ("08-rdrop", "rdrop_loss", "no 0.5", m08.loss_no_half, "the 0.5 is missing"),
    ("08-rdrop", "rdrop_loss", "cross-entropy summed", m08.loss_ce_summed, "summed over the 3 examples"),
    ("08-rdrop", "rdrop_loss", "alpha on the cross-entropy", m08.loss_alpha_on_ce,
     "alpha multiplies the cross-entropy instead of the KL term"),
    ("08-rdrop", "rdrop_loss", "alpha missing", m08.loss_alpha_missing, "still contains the KL term"),
    ("08-rdrop", "rdrop_loss", "KL summed", m08.loss_kl_summed, "your KL term is the SUM over the 3 examples"),
    ("08-rdrop", "rdrop_loss", "cross-entropy over padding", m08.loss_ce_mask_ignored,
     "your cross-entropy includes the padded positions"),
    ("08-rdrop", "rdrop_loss", "KL over padding", m08.loss_kl_mask_ignored, "your KL term includes the padded positions"),
    ("08-rdrop", "rdrop_loss", "mask ignored", m08.loss_mask_ignored, "the pad mask is ignored in both terms"),
    ("08-rdrop", "rdrop_loss", "class axis", m08.loss_class_axis, "F.cross_entropy reads the classes from axis 1"),
    ("08-rdrop", "rdrop_loss", "per-sequence mean", m08.loss_per_sequence_mean, "you averaged within each sequence"),
    ("08-rdrop", "rdrop_loss", "divides by all positions", m08.loss_divides_by_all_positions, "instead of the 6 real ones"),
    ("08-rdrop", "rdrop_loss", ".item()", m08.loss_item, "did you call .item(), .detach() or numpy?"),
    ("08-rdrop", "rdrop_loss", "KL detached", m08.loss_detached_kl, "your KL term is detached"),
    # rdrop_forward
    ("08-rdrop", "rdrop_forward", "two calls", m08.fwd_two_calls, "you called the model 2 times"),
    ("08-rdrop", "rdrop_forward", "the same half twice", m08.fwd_same_half_twice, "logits1 and logits2 are the same rows"),
    ("08-rdrop", "rdrop_forward", "one pass returned twice", m08.fwd_one_pass,
     "the model was not called on torch.cat([x, x], dim=0)"),
    ("08-rdrop", "rdrop_forward", "one mask for both passes", m08.fwd_shared_mask, "your two halves are identical"),
    ("08-rdrop", "rdrop_forward", "eval mode", m08.fwd_eval_mode, "your two halves are identical"),
    ("08-rdrop", "rdrop_forward", "halves by parity", m08.fwd_parity_split, "split by even and odd rows?"),
    ("08-rdrop", "rdrop_forward", "repeat_interleave", m08.fwd_repeat_interleave, "your copies are interleaved"),
    ("08-rdrop", "rdrop_forward", "stack on a new axis 1", m08.fwd_stack_new_axis, "your copies are interleaved"),
    ("08-rdrop", "rdrop_forward", "cat on the last axis", m08.fwd_cat_last_axis,
     "the model was not called on torch.cat([x, x], dim=0)"),
    ("08-rdrop", "rdrop_forward", "halves swapped", m08.fwd_swapped, "your halves are swapped"),
    ("08-rdrop", "rdrop_forward", "torch.no_grad()", m08.fwd_no_grad, "your outputs carry no gradient"),
    ("08-rdrop", "rdrop_forward", "left in eval mode", m08.fwd_eval_afterwards, "the model is in eval mode"),
    ("08-rdrop", "rdrop_forward", "numpy outputs", m08.fwd_numpy, "rdrop_forward must return two tensors"),
    ("08-rdrop", "rdrop_forward", "the whole output", m08.fwd_whole_output, "must return 2 values (logits1, logits2)"),
]


@pytest.mark.parametrize("chapter,name,label,impl,phrase", MISTAKES,
                         ids=[f"{m[1]}-{m[2]}" for m in MISTAKES])
def test_each_mistake_fails_a_visible_check_with_a_sentence_naming_it(chapter, name, label, impl, phrase):
    output = run_visible(chapter, name, impl)
    failed, total = summary(output, name)
    assert total == n_checks(notebook(chapter)[1][name]), output
    assert failed >= 1, f"{label}: every visible check passes\n{output}"
    crosses = [line for line in output.splitlines() if line.startswith("  \u2717 ")]
    assert any(phrase in line for line in crosses), f"{label}: no failure says {phrase!r}\n{output}"
    assert "Traceback" not in output and "line 3)" not in output


def test_the_central_mistakes_each_cost_a_check_of_their_own():
    """Dividing by p used to pass all nine checks; now it fails exactly the scaling check."""
    output = run_visible("04-scaling", "dropout_forward", m04.df_divides_by_p)
    assert summary(output, "dropout_forward") == (1, 10)
    assert ("kept values are scaled by 1/p = 5 instead of 1/(1-p) = 1.25 (p = 0.2): p is the probability of "
            "dropping") in output


# -- (c) None, exceptions, stubs ------------------------------------------------------------

def returns_none(*args, **kwargs):
    return None


class ForwardReturnsNone(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, p):
        x * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None, None


class BackwardReturnsNone(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, p):
        ctx.save_for_backward(mask)
        ctx.p = p
        return x * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad_output):
        (mask,) = ctx.saved_tensors
        grad_output * mask / (1 - ctx.p)


@pytest.mark.parametrize("chapter,name", [g for g in graded("01-overfitting") + graded("02-ensembles") + graded("03-coadaptation") + graded("04-scaling") + graded("05-backprop") + graded("06-batchnorm") + graded("07-variants") + graded("09-practice") + graded("08-rdrop")
                                          if g[1] != "DropoutFunction"])
def test_a_function_returning_none_is_told_to_return(chapter, name):
    output = run_visible(chapter, name, returns_none)
    n = n_checks(notebook(chapter)[1][name])
    assert summary(output, name) == (n, n), output
    assert f"your {name} returned None: did you forget `return`?" in output
    assert output.count("did you forget `return`?") == 1, "said once, then 'same problem as above'"
    assert "cannot unpack" not in output and "NoneType" not in output


def test_dropout_forward_returning_none_prints_one_clear_report():
    output = run_visible("04-scaling", "dropout_forward", returns_none)
    lines = output.splitlines()
    assert lines[0] == ("  \u2717 out and mask have x's shape: your dropout_forward returned None: "
                        "did you forget `return`?")
    assert lines[-1] == "dropout_forward: 10 of 10 self-checks failed (see above)."
    assert len(lines) == 11


def test_the_corpus_functions_that_forget_return():
    """They validate p first (so the ValueError check passes), then forget `return`."""
    output = run_visible("04-scaling", "dropout_forward", m04.df_returns_none)
    assert summary(output, "dropout_forward") == (9, 10), output
    assert output.count("your dropout_forward returned None: did you forget `return`?") == 1
    output = run_visible("05-backprop", "mlp_loss_and_grads", m05.mlp_returns_none)
    assert summary(output, "mlp_loss_and_grads") == (5, 5), output
    assert "your mlp_loss_and_grads returned None: did you forget `return`?" in output


def test_dropout_function_returning_none():
    output = run_visible("05-backprop", "DropoutFunction", ForwardReturnsNone)
    assert summary(output, "DropoutFunction") == (5, 5), output
    assert "your DropoutFunction.forward seems to return None: did you forget `return`?" in output
    output = run_visible("05-backprop", "DropoutFunction", BackwardReturnsNone)
    assert summary(output, "DropoutFunction") == (3, 5), output  # the forward checks still pass
    assert "one value per input of forward" in output and "did you forget `return`?" in output


def test_an_exception_in_the_student_function_names_the_function_and_every_check_is_counted():
    def dropout_forward(x, p, rng, training=True):
        return x * "oops", None

    output = run_visible("04-scaling", "dropout_forward", dropout_forward)
    assert summary(output, "dropout_forward") == (10, 10), output
    assert "your dropout_forward raised UFuncTypeError" in output or "your dropout_forward raised TypeError" in output
    assert "<test_dropout_forward>" not in output


def test_an_error_in_a_function_the_student_calls_is_located():
    def dropout_forward(x, p, rng, training=True):
        raise ValueError(f"p too large: {p}")

    ns = namespace("04-scaling", dropout_forward=dropout_forward)
    exec("def mc_moments(x, p, n_samples, rng):\n"        # as a student writes it, in the notebook
         "    samples = np.stack([dropout_forward(x, p, rng)[0] for _ in range(n_samples)])\n"
         "    return samples.mean(0), samples.var(0)\n", ns)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(notebook("04-scaling")[1]["mc_moments"], "<test_mc_moments>", "exec"), ns)
    text = out.getvalue()
    assert "your mc_moments raised ValueError: p too large: 0.2 (in dropout_forward, line" in text, text
    assert summary(text, "mc_moments") == (7, 7)


def test_stubs_say_not_implemented_once():
    def dropout_backward(dout, mask, p):
        raise NotImplementedError()

    output = run_visible("05-backprop", "dropout_backward", dropout_backward)
    assert output == "dropout_backward: not implemented yet (the stub raises NotImplementedError): 0 of 4 self-checks passed.\n"


def test_selfcheck_never_raises_and_counts_every_check():
    from dropout_lab.selfcheck import SelfCheck

    src = '''
with SelfCheck("f") as sc:
    with sc.check("first"):
        f(1)
    with sc.check("second"):
        sc.expect(f(2) == 3, "f(2) is 3")
    with sc.check("third"):
        undefined_name
    with sc.check("fourth"):
        pass
    raise KeyError("outside any check")
'''
    ns = {"__name__": "__main__", "SelfCheck": SelfCheck, "f": lambda v: v + 1}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(src, "<cell>", "exec"), ns)
    text = out.getvalue()
    assert "  \u2717 third: checking your result raised NameError" in text
    assert "the remaining self-checks could not run" in text
    assert text.rstrip().endswith("f: 2 of 5 self-checks failed (see above).")


# -- experiments ----------------------------------------------------------------------------

def _raise_value_error(*args, **kwargs):
    raise ValueError("p must be in [0, 1]")


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
@pytest.mark.parametrize("how", ["raises", "returns None"])
def test_experiment_cells_degrade_gracefully(chapter, how, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # the small experiments
    impl = _raise_value_error if how == "raises" else returns_none
    _, visible, experiments = notebook(chapter)
    bad = {name: impl for name in visible if name != "DropoutFunction"}
    ns = namespace(chapter, **bad)
    import matplotlib.pyplot as plt

    plt.close("all")
    for source in experiments:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(source, "<experiment>", "exec"), ns)  # never raises
        line = out.getvalue().strip()
        assert "\n" not in line, line
        if how == "raises":
            assert re.fullmatch(r"the experiment needs a working \w+: it raised ValueError: p must be in \[0, 1\] "
                                r"\(line \d+ of its cell\) \u2014 fix it above and rerun this cell\.", line), line
        else:
            assert re.fullmatch(r"the experiment needs a working \w+: it returned None: did you forget `return`\? "
                                r"\u2014 fix it above and rerun this cell\.", line), line
        assert plt.get_fignums() == [], "a half-drawn figure was left open"
    for name, fn in bad.items():
        assert ns[name] is fn, "the experiment must put the student's functions back"


def test_experiment_guard_names_the_function_that_raised():
    from dropout_lab.experiments.guard import experiment

    def dropout_forward(x, p, rng, training=True):
        raise ValueError("bad p")

    ns = {"__name__": "__main__", "experiment": experiment, "dropout_forward": dropout_forward, "np": np}
    src = 'with experiment("dropout_forward") as run:\n    dropout_forward(np.ones(3), 0.5, None)\nok = run.ok\n'
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(src, "<cell>", "exec"), ns)
    assert ns["ok"] is False and ns["dropout_forward"] is dropout_forward
    assert out.getvalue().startswith("the experiment needs a working dropout_forward: it raised ValueError: bad p (line ")
    assert out.getvalue().endswith(" \u2014 fix it above and rerun this cell.\n")


def test_solution_experiments_run_clean(monkeypatch):
    """The reference functions run every experiment cell without a message."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    import matplotlib.pyplot as plt

    for chapter in sorted(CHAPTERS):
        ns = namespace(chapter)
        for source in notebook(chapter)[2]:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(source, "<experiment>", "exec"), ns)
            assert "the experiment" not in out.getvalue(), out.getvalue()
        plt.close("all")


def test_an_undefined_function_is_named():
    ns = namespace("04-scaling")
    del ns["dropout_moments"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(notebook("04-scaling")[1]["dropout_moments"], "<test_dropout_moments>", "exec"), ns)
    text = out.getvalue()
    assert "dropout_moments is not defined: run the cell that defines it (above) first" in text
    assert summary(text, "dropout_moments") == (6, 6)
