"""Chapter 09 schematic: the max-norm projection and MC dropout's T passes.

Left: a unit's incoming weight vector w (drawn in 2-D) after a gradient step lands outside
the ball ||w|| <= c; the projection rescales it along the ray to the origin, to c w/||w||.
A vector inside the ball is left alone. Right: MC dropout runs the same input through T
thinned networks (dropout kept on), averages the T softmax outputs into the predictive
distribution, and reads the uncertainty off its entropy. Nothing is measured.
"""
from __future__ import annotations

import numpy as np


def project_to_ball(w, c):
    """The drawn projection (2-D vectors only, for the picture): w if ||w|| <= c, else c w/||w||."""
    w = np.asarray(w, dtype=float)
    n = np.linalg.norm(w)
    return w if n <= c else w * (c / n)


def draw_practice_schematic(c: float = 3.0):
    """Return the two-panel matplotlib Figure described in the module docstring."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, FancyArrowPatch, Rectangle

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11.5, 4.6), gridspec_kw={"width_ratios": [1, 1.45]})

    # --- left: max-norm projection
    ax.add_patch(Circle((0, 0), c, facecolor="tab:blue", alpha=0.08, edgecolor="tab:blue", lw=1.5))
    before = np.array([2.0, 1.2])
    after_step = np.array([3.6, 2.6])
    proj = project_to_ball(after_step, c)
    inside = np.array([-1.6, 1.4])
    for vec, colour, label in ((before, "0.4", "w before the step"),
                               (after_step, "tab:red", "after the SGD step: ||w|| > c"),
                               (proj, "tab:green", "projected: c w / ||w||"),
                               (inside, "tab:purple", "inside the ball: unchanged")):
        ax.annotate("", xy=vec, xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=colour, lw=2))
        ax.plot([], [], color=colour, lw=2, label=label)
    ax.annotate("", xy=after_step, xytext=before,
                arrowprops=dict(arrowstyle="-|>", color="tab:red", lw=1.2, ls="--"))
    ax.plot([proj[0], after_step[0]], [proj[1], after_step[1]], ls=":", color="tab:green", lw=1.5)
    ax.text(0.2, -c - 0.45, f"ball ||w|| ≤ c = {c:g}", color="tab:blue", ha="center", fontsize=9)
    ax.set_xlim(-4.6, 4.8)
    ax.set_ylim(-4.0, 6.2)
    ax.set_aspect("equal")
    ax.set_xlabel("$w_1$ (incoming weight from input 1)")
    ax.set_ylabel("$w_2$ (incoming weight from input 2)")
    ax.set_title("max-norm: project a unit's incoming weights", fontsize=11)
    ax.legend(loc="upper left", fontsize=8, frameon=False)

    # --- right: MC dropout
    bx.axis("off")
    bx.set_xlim(0, 10)
    bx.set_ylim(0, 6)
    bx.add_patch(Rectangle((0.1, 2.55), 1.3, 0.9, facecolor="0.9", edgecolor="black"))
    bx.text(0.75, 3.0, "input x", ha="center", va="center", fontsize=9)
    rng = np.random.default_rng(3)
    ys = (4.9, 3.5, 1.2)
    for k, y in enumerate(ys):
        bx.add_patch(Rectangle((2.0, y - 0.4), 2.8, 0.8, facecolor="tab:orange", alpha=0.25,
                               edgecolor="tab:orange"))
        mask = "".join("●" if m else "○" for m in rng.random(6) > 0.5)
        label = f"pass {k + 1 if k < 2 else 'T'}: mask {mask}"
        bx.text(3.4, y, label, ha="center", va="center", fontsize=7.5)
        bx.add_patch(FancyArrowPatch((1.4, 3.0), (2.0, y), arrowstyle="-|>", mutation_scale=10, color="0.3"))
        probs = rng.dirichlet(np.ones(4) * 0.8)
        for j, pj in enumerate(probs):
            bx.add_patch(Rectangle((4.9 + 0.22 * j, y - 0.35), 0.17, 0.7 * pj, facecolor="tab:blue"))
        bx.add_patch(FancyArrowPatch((5.9, y), (6.9, 3.0), arrowstyle="-|>", mutation_scale=10, color="0.3"))
    bx.text(3.4, 2.35, "⋮", ha="center", va="center", fontsize=14)
    bx.text(5.35, 5.6, "softmax of each pass", ha="center", fontsize=8.5)
    bx.add_patch(Rectangle((6.9, 2.3), 1.6, 1.4, facecolor="tab:green", alpha=0.15, edgecolor="tab:green"))
    bx.text(7.7, 3.0, "mean over\nT passes\n$\\bar p(y\\,|\\,x)$", ha="center", va="center", fontsize=8.5)
    bx.add_patch(FancyArrowPatch((8.5, 3.0), (9.0, 3.0), arrowstyle="-|>", mutation_scale=10, color="0.3"))
    bx.text(9.05, 3.75, "prediction:\nargmax $\\bar p$", ha="left", va="center", fontsize=8)
    bx.text(9.05, 2.25, "uncertainty:\n$H = -\\sum_c \\bar p_c \\log \\bar p_c$", ha="left", va="center",
            fontsize=8)
    bx.set_title("MC dropout: dropout kept on, T passes averaged (BatchNorm stays in eval mode)",
                 fontsize=11)
    fig.subplots_adjust(left=0.06, right=0.93, top=0.9, bottom=0.12, wspace=0.15)
    return fig
