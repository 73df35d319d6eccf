"""The graded API is fixed by COURSE_SPEC.md (graders outside the project rely
on it): names, signatures and grade_ids in the solution notebooks, the student
notebooks and the hidden references must match it exactly."""
import ast
import inspect

import nbformat
import pytest

from autograder.nbgrader_setup import CHAPTERS, SOLUTIONS
from autograder.registry import CHAPTER_MODULES, graded_functions

#: COURSE_SPEC.md, sections 01 to 05: grade_id -> signature (methods for classes).
SPEC = {
    "01-overfitting": {
        "polynomial_features": "(x, degree)",
        "ridge_fit": "(X, y, lam)",
        "l2_penalty": "(params, weight_decay)",
        "l1_penalty": "(params, strength)",
        "early_stopping_epoch": "(val_losses, patience)",
    },
    "02-ensembles": {
        "ensemble_variance": "(sigma2, rho, k)",
        "bootstrap_indices": "(n, rng)",
        "enumerate_masks": "(n)",
        "mask_probabilities": "(masks, p)",
        "exact_dropout_ensemble": "(X, params, p)",
        "mc_dropout_average": "(X, params, p, n_samples, rng)",
    },
    "03-coadaptation": {
        "mean_abs_correlation": "(H)",
        "fraction_inactive": "(H)",
        "ablation_importance": "(X, y, params)",
        "random_deletion_accuracy": "(X, y, params, fraction, n_repeats, rng)",
    },
    "04-scaling": {
        "dropout_forward": "(x, p, rng, training=True)",
        "standard_dropout_forward": "(x, p, rng, training=True)",
        "dropout_moments": "(x, p)",
        "mc_moments": "(x, p, n_samples, rng)",
    },
    "05-backprop": {
        "dropout_backward": "(dout, mask, p)",
        "numerical_gradient": "(f, x, h=1e-05)",
        "relative_error": "(a, b)",
        "mlp_loss_and_grads": "(X, y, params, hidden_mask, p)",
        "DropoutFunction": {"forward": "(ctx, x, mask, p)", "backward": "(ctx, grad_output)"},
    },
    "06-batchnorm": {
        "dropout_variance": "(mean, var, p)",
        "variance_shift_ratio": "(mean, var, p)",
        "bn_input_variance": "(model, bn, X)",
        "recalibrate_bn": "(model, X, batch_size)",
        "uout": "(x, beta, generator, training=True)",
    },
    "07-variants": {
        "dropconnect_linear": "(x, weight, bias, p, generator, training=True)",
        "gaussian_dropout": "(x, p, generator, training=True)",
        "spatial_dropout": "(x, p, generator, training=True)",
        "dropblock_gamma": "(p, block_size, height, width)",
        "dropblock": "(x, p, block_size, generator, training=True)",
        "drop_path": "(x, p, generator, training=True, mode='row')",
        "cutout": "(images, size, generator)",
        "multi_sample_dropout_logits": "(features, head, p, n_samples, generator)",
    },
    "08-rdrop": {
        "symmetric_kl": "(logits_p, logits_q, pad_mask=None, reduction='mean')",
        "rdrop_loss": "(logits1, logits2, targets, alpha, pad_mask=None)",
        "rdrop_forward": "(model, x)",
    },
    "09-practice": {
        "max_norm_": "(weight, max_norm)",
        "dropout_ridge_solution": "(X, y, p)",
        "mc_dropout_predict": "(model, x, n_samples)",
    },
}


#: Exercises with a solution cell but no points (visible self-checks only): not part of the
#: fixed graded API, listed so that an accidental one is noticed.
UNGRADED = {"01-overfitting": {}, "02-ensembles": {}, "03-coadaptation": {}, "04-scaling": {"exact_dropout_average": "(f, x, p)"}, "05-backprop": {}, "06-batchnorm": {}, "07-variants": {}, "08-rdrop": {}, "09-practice": {}}


def _signature(node):
    if isinstance(node, ast.ClassDef):
        return {f.name: f"({ast.unparse(f.args)})" for f in node.body if isinstance(f, ast.FunctionDef)}
    return f"({ast.unparse(node.args)})"


@pytest.mark.parametrize("assignment", sorted(SPEC))
@pytest.mark.parametrize("folder", [SOLUTIONS, CHAPTERS], ids=["solution", "student"])
def test_notebook_defines_the_spec_api(assignment, folder):
    nb = nbformat.read(str(folder / assignment / "exercises.ipynb"), as_version=4)
    grade_ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    found, written = {}, []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "markdown":
            # a written answer: graded by hand, its own kind of grade_id
            assert meta.get("grade") and meta["grade_id"].startswith("written_"), meta
            written.append(meta["grade_id"])
        elif meta.get("solution"):
            defs = {n.name: n for n in ast.parse(cell.source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            assert meta["grade_id"] in defs, f"solution cell {meta['grade_id']} does not define it"
            found[meta["grade_id"]] = _signature(defs[meta["grade_id"]])
    assert found == {**SPEC[assignment], **UNGRADED[assignment]}
    for grade_id in SPEC[assignment]:
        assert grade_ids.count(f"test_{grade_id}") == 1 and grade_ids.count(grade_id) == 1
    for grade_id in UNGRADED[assignment]:
        assert f"test_{grade_id}" not in grade_ids, f"{grade_id} is not in the graded API: it may not have points"
    assert written and not set(written) & set(SPEC[assignment])


def test_references_match_the_spec():
    expected = {gid: sig for chapter in SPEC.values() for gid, sig in chapter.items()}
    assert set(graded_functions()) == set(expected) and set(CHAPTER_MODULES) == set(SPEC)
    for grade_id, graded in graded_functions().items():
        ref = graded.reference
        if inspect.isclass(ref):
            methods = {name: str(inspect.signature(getattr(ref, name))) for name in expected[grade_id]}
            assert methods == expected[grade_id]
            assert issubclass(ref, __import__("torch").autograd.Function)
        else:
            assert str(inspect.signature(ref)) == expected[grade_id], grade_id
