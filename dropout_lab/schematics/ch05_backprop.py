"""Schematics for chapter 05 (backprop through masks). Drawings only: nothing is measured."""
from __future__ import annotations

FORWARD, BACKWARD, CACHE, WRONG = "#1f77b4", "#d95f02", "#2ca02c", "#b22222"


def _box(ax, xy, text, color, width=1.6, height=0.75, fontsize=11, style="round,pad=0.08", lw=1.6,
         face=None, ls="-"):
    """A rounded box centred at ``xy`` with ``text``; returns the patch."""
    from matplotlib.patches import FancyBboxPatch

    x, y = xy
    patch = FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle=style,
                           linewidth=lw, edgecolor=color, facecolor=face or "white", linestyle=ls, zorder=2)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3)
    return patch


def _arrow(ax, start, end, color, text=None, text_xy=None, ls="-", lw=1.8, fontsize=9, ha="center"):
    """An arrow from ``start`` to ``end`` with an optional label at ``text_xy``."""
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops=dict(arrowstyle="-|>", color=color, lw=lw, linestyle=ls, shrinkA=0, shrinkB=0,
                                mutation_scale=14))
    if text:
        ax.text(*text_xy, text, color=color, fontsize=fontsize, ha=ha, va="center", zorder=3)


def dropout_cache_graph():
    """The computational graph of one inverted-dropout layer, forward and backward.

    Forward (top row): x is multiplied by m/(1-p) to give y; the mask m is drawn ONCE
    from the random number generator and stored in the cache with p. Backward (bottom
    row): the upstream gradient dL/dy is multiplied by the SAME cached m/(1-p) to give
    dL/dx; an arrow runs from the cache to the backward node. A crossed-out branch shows
    the wrong way: a fresh mask m' drawn in the backward pass. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.0, 5.4))
    ax.set_xlim(0, 10)
    ax.set_ylim(-1.35, 6.0)
    ax.set_axis_off()

    y_fwd, y_cache, y_bwd = 5.0, 3.1, 1.2
    x_in, x_op, x_out = 1.3, 5.0, 8.7

    # row labels
    ax.text(0.05, y_fwd + 0.62, "forward pass", color=FORWARD, fontsize=11, style="italic", ha="left")
    ax.text(0.05, y_bwd + 0.62, "backward pass", color=BACKWARD, fontsize=11, style="italic", ha="left")

    # forward row
    _box(ax, (x_in, y_fwd), "$x$", FORWARD, width=1.0)
    _box(ax, (x_op, y_fwd), r"$\times\ \dfrac{m}{1-p}$", FORWARD, width=1.9, height=0.95, fontsize=13)
    _box(ax, (x_out, y_fwd), r"$y = x \odot \dfrac{m}{1-p}$", FORWARD, width=2.1, height=0.95)
    _arrow(ax, (x_in + 0.55, y_fwd), (x_op - 1.0, y_fwd), FORWARD)
    _arrow(ax, (x_op + 1.0, y_fwd), (x_out - 1.1, y_fwd), FORWARD, "to the next layer", ((x_op + x_out) / 2 - 0.05, y_fwd + 0.3))

    # the mask: drawn once, stored in the cache
    _box(ax, (1.35, y_cache), "random number\ngenerator", "0.35", width=1.8, height=0.9, fontsize=10)
    _box(ax, (x_op, y_cache), "cache\n$(m,\\ p)$", CACHE, width=1.7, height=0.95, fontsize=11, face="#eef7ee", lw=2.2)
    _arrow(ax, (2.3, y_cache), (x_op - 0.9, y_cache), CACHE, "draw $m$ once,\nin the forward pass",
           (3.2, y_cache + 0.45), fontsize=9)
    _arrow(ax, (x_op, y_cache + 0.5), (x_op, y_fwd - 0.5), CACHE, "$m$ used by\nthe forward pass",
           (x_op + 0.15, (y_cache + y_fwd) / 2), fontsize=9, ha="left")
    _arrow(ax, (x_op, y_cache - 0.5), (x_op, y_bwd + 0.5), CACHE, "the SAME $m$\nread from the cache",
           (x_op + 0.15, (y_cache + y_bwd) / 2 + 0.05), fontsize=9, ha="left")

    # backward row (right to left)
    _box(ax, (x_out, y_bwd), r"$\dfrac{\partial L}{\partial y}$ (upstream)", BACKWARD, width=2.1, height=0.95)
    _box(ax, (x_op, y_bwd), r"$\times\ \dfrac{m}{1-p}$", BACKWARD, width=1.9, height=0.95, fontsize=13)
    _box(ax, (x_in, y_bwd), r"$\dfrac{\partial L}{\partial x}$", BACKWARD, width=1.0, height=0.95)
    _arrow(ax, (x_out - 1.1, y_bwd), (x_op + 1.0, y_bwd), BACKWARD)
    _arrow(ax, (x_op - 1.0, y_bwd), (x_in + 0.55, y_bwd), BACKWARD)

    # the wrong way: a fresh mask in the backward pass
    fresh = (8.25, -0.4)
    _box(ax, fresh, "fresh draw $m'$ in the backward pass", WRONG, width=3.3, height=0.6, fontsize=9.5, ls="--",
         lw=1.3)
    start, end = (fresh[0] - 1.65, fresh[1] + 0.1), (x_op + 0.55, y_bwd - 0.5)
    _arrow(ax, start, end, WRONG, ls="--", lw=1.4)
    mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
    ax.plot([mx - 0.2, mx + 0.2], [my - 0.2, my + 0.2], color=WRONG, lw=3, zorder=4)
    ax.plot([mx - 0.2, mx + 0.2], [my + 0.2, my - 0.2], color=WRONG, lw=3, zorder=4)
    ax.text(fresh[0], fresh[1] - 0.45, "wrong: $m'$ differs from $m$ on a fraction $2p(1-p)$ of the units",
            color=WRONG, fontsize=9, ha="center", va="top")
    ax.text(x_in, y_bwd - 0.75, r"$= \dfrac{\partial L}{\partial y} \odot \dfrac{m}{1-p}$", color=BACKWARD,
            fontsize=10, ha="center", va="top")
    fig.tight_layout()
    return fig
