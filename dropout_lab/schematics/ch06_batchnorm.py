"""Schematic for chapter 06 (dropout and batch normalisation). A drawing: nothing is measured.

Two rows through the same two layers, inverted dropout followed by BatchNorm. Training
(top): the unit x (mean c, variance v) is multiplied by m/(1-p); its variance becomes
(c^2 + v)/(1-p) - c^2; BatchNorm normalises with the batch statistics and, as a side
effect, folds them into its running statistics (momentum 0.1). Test (bottom): dropout is
the identity, the unit keeps its variance v, and BatchNorm divides by the running variance
collected under the noise, so its output has variance ratio = v / ((c^2 + v)/(1-p) - c^2)
instead of 1: the variance shift.
"""
from __future__ import annotations

TRAIN, TEST, STATS, SHIFT = "#1f77b4", "#2ca02c", "#7f7f7f", "#b22222"


def _box(ax, xy, text, color, width=1.7, height=0.9, fontsize=11, face="white", ls="-"):
    from matplotlib.patches import FancyBboxPatch

    x, y = xy
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.08", linewidth=1.6, edgecolor=color,
                                facecolor=face, linestyle=ls, zorder=2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3)


def _arrow(ax, start, end, color, ls="-", lw=1.8):
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops=dict(arrowstyle="-|>", color=color, lw=lw, linestyle=ls,
                                shrinkA=0, shrinkB=0, mutation_scale=14))


def dropout_then_bn(p: float = 0.5, c: float = 1.0, v: float = 1.0):
    """Training and test paths of one unit through inverted dropout then BatchNorm, with
    the running variance collected under the noise; prints the example's numbers
    (default c = v = 1, p = 0.5: variance 3 in training, 1 at test, ratio 1/3).
    Returns the Figure."""
    import matplotlib.pyplot as plt

    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must lie in [0, 1), got {p}")
    var_train, var_test = (c * c + v) / (1.0 - p) - c * c, v     # the numbers printed on the drawing
    ratio = var_test / var_train
    fig, ax = plt.subplots(figsize=(11.0, 5.6))
    ax.set_xlim(0, 12.6)
    ax.set_ylim(-0.2, 7.1)
    ax.set_axis_off()

    y_tr, y_st, y_te = 5.9, 3.55, 1.2
    xs = (1.0, 3.55, 6.3, 9.05, 11.45)
    widths_tr = (1.6, 2.0, 2.3, 2.1, 1.6)
    widths_te = (1.6, 2.0, 2.3, 2.1, 1.75)

    ax.text(0.05, y_tr + 0.85, "training (model.train())", color=TRAIN, fontsize=11, style="italic")
    ax.text(0.05, y_te + 0.85, "test (model.eval())", color=TEST, fontsize=11, style="italic")

    # training row
    _box(ax, (xs[0], y_tr), f"unit $x$\nmean $c={c:g}$\nvar $v={v:g}$", TRAIN, width=1.6, height=1.15, fontsize=10)
    _box(ax, (xs[1], y_tr), rf"dropout $p={p:g}$" + "\n" + r"$y = x\,m/(1-p)$", TRAIN, width=2.0, height=1.0, fontsize=10)
    _box(ax, (xs[2], y_tr), r"$\mathrm{Var}[y]=\dfrac{c^2+v}{1-p}-c^2$" + f"\n$= {var_train:.3g}$", TRAIN,
         width=2.3, height=1.15, fontsize=10)
    _box(ax, (xs[3], y_tr), "BatchNorm\nbatch mean, batch var", TRAIN, width=2.1, height=1.0, fontsize=10)
    _box(ax, (xs[4], y_tr), "output var 1", TRAIN, width=1.6, height=0.8, fontsize=10)
    for a, b, wa, wb in zip(xs[:-1], xs[1:], widths_tr[:-1], widths_tr[1:]):
        _arrow(ax, (a + wa / 2 + 0.1, y_tr), (b - wb / 2 - 0.1, y_tr), TRAIN)

    # running statistics, collected under the noise
    _box(ax, (xs[3], y_st), "running statistics\n" + r"$\sigma^2_{\mathrm{run}} \leftarrow 0.9\,\sigma^2_{\mathrm{run}}"
         r" + 0.1\,\sigma^2_{\mathrm{batch}}$" + f"\n$\\approx {var_train:.3g}$ (noise included)",
         STATS, width=3.5, height=1.25, fontsize=10, face="#f2f2f2")
    _arrow(ax, (xs[3], y_tr - 0.5), (xs[3], y_st + 0.65), STATS)
    _arrow(ax, (xs[3], y_st - 0.65), (xs[3], y_te + 0.55), STATS)
    ax.text(xs[3] + 0.12, (y_tr + y_st) / 2 + 0.1, "collected\nin training", color=STATS, fontsize=9, va="center")
    ax.text(xs[3] + 0.12, (y_st + y_te) / 2 - 0.05, "reused\nat test", color=STATS, fontsize=9, va="center")

    # test row
    _box(ax, (xs[0], y_te), f"unit $x$\nmean $c={c:g}$\nvar $v={v:g}$", TEST, width=1.6, height=1.15, fontsize=10)
    _box(ax, (xs[1], y_te), "dropout off\n$y = x$", TEST, width=2.0, height=1.0, fontsize=10, ls="--")
    _box(ax, (xs[2], y_te), r"$\mathrm{Var}[y] = v$" + f"\n$= {var_test:.3g}$", TEST, width=2.3, height=1.0, fontsize=10)
    _box(ax, (xs[3], y_te), "BatchNorm\n" + r"divides by $\sqrt{\sigma^2_{\mathrm{run}}}$", TEST, width=2.1, height=1.0, fontsize=10)
    _box(ax, (xs[4], y_te), f"output var\n{var_test:.3g}/{var_train:.3g} = {ratio:.2f}", SHIFT, width=1.75, height=1.0, fontsize=10)
    for a, b, wa, wb in zip(xs[:-1], xs[1:], widths_te[:-1], widths_te[1:]):
        _arrow(ax, (a + wa / 2 + 0.1, y_te), (b - wb / 2 - 0.1, y_te), TEST)

    ax.text(xs[4], y_te - 0.95, "variance shift:\nratio " + r"$v \,/\, \mathrm{Var}_{\mathrm{train}}[y]$",
            color=SHIFT, fontsize=10, ha="center", va="center")
    ax.text(xs[1], y_st, "the mean is unchanged:\n" + r"$\mathbb{E}[y] = c$ in both rows," + "\nso the running mean is right",
            color="0.25", fontsize=9.5, ha="center", va="center")
    fig.tight_layout()
    return fig
