"""Issue 8: three kinds of students, graded as a teaching assistant would.

A careful student (everything right), a typical one (the chapter's classic
mistakes: dividing by p, np.random instead of rng, a backward that forgets
1/(1-p), an MLP backward that ignores the mask) and one who stopped halfway
(some functions solved, the rest untouched stubs). The expected totals are
the ones an experienced TA would sign: a wrong central computation keeps at
most a quarter of its function, a stub keeps nothing, what is right is
credited in full.
"""
import pytest

from tests.grading_helpers import replace_solution, rows_by, run_grader, solution_nb, student_version, write

pytestmark = pytest.mark.slow

TYPICAL = {
    "04-scaling": {
        "dropout_forward": (
            "def dropout_forward(x, p, rng, training=True):\n"
            "    if not 0 <= p <= 1:\n        raise ValueError('p must be in [0, 1]')\n"
            "    if not training:\n        return x, None\n"
            "    mask = rng.random(x.shape) >= p\n"
            "    if p == 0:\n        return x.copy(), mask\n"
            "    return x * mask / p, mask\n"),
        "mc_moments": (
            "def mc_moments(x, p, n_samples, rng):\n"
            "    samples = np.stack([x * (np.random.random(x.shape) >= p) / (1 - p) for _ in range(n_samples)])\n"
            "    return samples.mean(axis=0), samples.var(axis=0)\n"),
    },
    "05-backprop": {
        "dropout_backward": "def dropout_backward(dout, mask, p):\n    return dout * mask\n",
        "mlp_loss_and_grads": None,  # filled below: the solution with the mask ignored on the way back
    },
}
HALF_DONE = {"04-scaling": ["dropout_forward", "dropout_moments"],
             "05-backprop": ["dropout_backward", "relative_error"]}


def _solution_source(assignment, grade_id):
    from autograder.examples import solution_cells

    return solution_cells(solution_nb(assignment))[grade_id]


def _points(assignment) -> dict:
    """grade_id of the graded function -> its points, from the source notebook."""
    return {c.metadata["nbgrader"]["grade_id"][len("test_"):]: c.metadata["nbgrader"]["points"]
            for c in solution_nb(assignment).cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"}  # not written answers


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("three")
    subs = root / "subs"
    mlp = _solution_source("05-backprop", "mlp_loss_and_grads")
    TYPICAL["05-backprop"]["mlp_loss_and_grads"] = mlp.replace(
        "dh = dh_drop if hidden_mask is None else dropout_backward(dh_drop, hidden_mask, p)", "dh = dh_drop")
    assert TYPICAL["05-backprop"]["mlp_loss_and_grads"] != mlp
    for assignment in ("04-scaling", "05-backprop"):
        stub = student_version(assignment, root / "scratch")
        write(solution_nb(assignment), subs / f"careful_{assignment}.ipynb")
        typical = solution_nb(assignment)
        for gid, src in TYPICAL[assignment].items():
            typical = replace_solution(typical, gid, src)
        write(typical, subs / f"typical_{assignment}.ipynb")
        half = stub
        for gid in HALF_DONE[assignment]:
            half = replace_solution(half, gid, _solution_source(assignment, gid))
        write(half, subs / f"halfdone_{assignment}.ipynb")
    out = root / "out"
    proc = run_grader(subs, out, "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = rows_by(out)
    for (student, gid), row in sorted(rows.items()):
        print(f"{student:9s} {gid:26s} {row['score']:5g} / {row['max_score']:g}  {row['messages'][:1]}")
    return rows


def _score(rows, student, gid):
    return rows[(student, gid)]["score"], rows[(student, gid)]["max_score"]


def test_the_careful_student_gets_full_marks(graded):
    for assignment in ("04-scaling", "05-backprop"):
        for gid in _points(assignment):
            score, max_score = _score(graded, "careful", gid)
            assert score == max_score, (gid, graded[("careful", gid)]["messages"])


def test_half_done_earns_exactly_the_solved_functions(graded):
    for assignment in ("04-scaling", "05-backprop"):
        for gid, pts in _points(assignment).items():
            score, _ = _score(graded, "halfdone", gid)
            assert score == (pts if gid in HALF_DONE[assignment] else 0), gid
            if gid not in HALF_DONE[assignment]:
                assert "stub" in " ".join(graded[("halfdone", gid)]["messages"])


def test_typical_mistakes_cost_what_a_ta_would_take(graded):
    """Each mistake's share of its function; every function without a mistake keeps full marks."""
    shares = {"dropout_forward": (0, 0.25),        # the central scaling is wrong
              "mc_moments": (0.5, 0.9),            # a right estimator that ignores rng
              "dropout_backward": (0, 0.25),       # the central gradient is wrong
              "mlp_loss_and_grads": (0, 0.5)}      # loss right, gradients wrong
    for assignment in ("04-scaling", "05-backprop"):
        for gid in _points(assignment):
            score, max_score = _score(graded, "typical", gid)
            lo, hi = shares.get(gid, (1, 1))
            assert lo * max_score <= score <= hi * max_score, (gid, score, graded[("typical", gid)]["messages"])


def test_the_p_mistake_is_named_with_numbers(graded):
    text = " ".join(graded[("typical", "dropout_forward")]["messages"])
    assert "1/p" in text and "1/(1-p)" in text and "inf" not in text
