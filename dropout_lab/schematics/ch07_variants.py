"""Chapter 07 schematic: the unit each member of the dropout family drops, side by side.

Six panels, drawn (nothing is measured): an activation (element dropout, and the Gaussian
and Alpha variants that replace its noise), a weight (DropConnect), a channel
(SpatialDropout), a block of a feature map (DropBlock, with its valid seed region), a region
of the input image (Cutout, clipped at the border) and a residual branch (DropPath, one coin
per example in row mode). Dark cells or dashed red lines are dropped.
"""
from __future__ import annotations

import numpy as np

DROP = "#b22222"
KEEP = "#9ecae1"
EDGE = "#4a4a4a"

#: Titles of the six panels, in order: (unit, variant).
PANELS = (
    ("an activation", "dropout, Gaussian, Alpha"),
    ("a weight", "DropConnect"),
    ("a channel", "SpatialDropout"),
    ("a block", "DropBlock"),
    ("an input region", "Cutout"),
    ("a residual branch", "DropPath"),
)

#: The noise of each panel, printed under it.
NOISE = (
    "each entry: Bernoulli(1-p)/(1-p),\nor N(1, p/(1-p)); Alpha: drop to α',\nthen a·z + b",
    "each weight of W: Bernoulli(1-p)/(1-p);\nbias never dropped; one mask\nper call here (per example in the paper)",
    "one coin per (example, channel):\nthe whole map kept or zeroed",
    "seeds ~ Bernoulli(γ) where the b×b\nsquare fits (dashed); each seed\nzeroes its square",
    "one square per image, shared by\nits channels, clipped at the border;\nno rescaling",
    "one coin per example (row mode)\nor per mini-batch (batch mode);\nrate grows with depth",
)


def _grid(ax, x0, y0, n, cell, dropped, face=KEEP, lw=0.8):
    """An n x n grid of cells with lower-left corner (x0, y0); ``dropped`` is an (n, n) bool
    array (row 0 at the top) of cells drawn dark."""
    from matplotlib.patches import Rectangle

    for i in range(n):
        for j in range(n):
            dark = bool(dropped[i, j])
            ax.add_patch(Rectangle((x0 + j * cell, y0 + (n - 1 - i) * cell), cell, cell,
                                   facecolor="#222222" if dark else face, edgecolor="white", lw=lw))


def _element(ax):
    rng = np.random.default_rng(4)
    _grid(ax, 1.5, 2.0, 6, 1.15, rng.random((6, 6)) < 0.25)


def _weight(ax):
    ins = [(2.0, y) for y in (8.6, 6.6, 4.6, 2.6)]
    outs = [(8.0, y) for y in (7.6, 5.6, 3.6)]
    dropped = {(0, 1), (1, 0), (2, 2), (3, 1), (1, 2)}
    for i, a in enumerate(ins):
        for j, b in enumerate(outs):
            if (i, j) in dropped:
                ax.plot([a[0], b[0]], [a[1], b[1]], ls=(0, (3, 2)), color=DROP, lw=1.3, alpha=0.8)
            else:
                ax.plot([a[0], b[0]], [a[1], b[1]], color=EDGE, lw=1.4)
    for xy in ins + outs:
        ax.add_patch(_circle(xy))
    ax.text(2.0, 1.3, "inputs v", ha="center", fontsize=8)
    ax.text(8.0, 1.3, "outputs", ha="center", fontsize=8)


def _circle(xy, r=0.55):
    from matplotlib.patches import Circle

    return Circle(xy, r, facecolor=KEEP, edgecolor=EDGE, lw=1.2, zorder=3)


def _channel(ax):
    for k, off in enumerate((3.0, 2.0, 1.0, 0.0)):
        dark = np.ones((4, 4), bool) if k == 2 else np.zeros((4, 4), bool)
        face = ("#c6dbef", "#9ecae1", "#6baed6", "#4292c6")[k]
        _grid(ax, 1.0 + off, 1.8 + off, 4, 1.0, dark, face=face)
    ax.text(8.9, 8.9, "channels", fontsize=8, ha="right")


def _block(ax):
    from matplotlib.patches import Rectangle

    n, cell, x0, y0 = 8, 0.95, 1.2, 1.6
    dropped = np.zeros((n, n), bool)
    seeds = [(2, 5), (5, 2)]
    for i, j in seeds:
        dropped[i - 1:i + 2, j - 1:j + 2] = True
    _grid(ax, x0, y0, n, cell, dropped)
    # valid centres for b = 3: rows and columns 1..6
    ax.add_patch(Rectangle((x0 + cell, y0 + cell), (n - 2) * cell, (n - 2) * cell, fill=False,
                           ls=(0, (4, 2)), edgecolor=DROP, lw=1.6, zorder=4))
    for i, j in seeds:
        ax.plot(x0 + (j + 0.5) * cell, y0 + (n - 1 - i + 0.5) * cell, "o", color="white", ms=5, zorder=5)


def _region(ax):
    from matplotlib.patches import Rectangle

    n, cell, x0, y0 = 8, 0.95, 1.2, 1.6
    yy, xx = np.mgrid[0:n, 0:n]
    stroke = (np.abs(xx - 5) <= 1) | ((yy <= 1) & (xx >= 1))      # a rough "7"
    faces = np.where(stroke, 1, 0)
    hole = np.zeros((n, n), bool)
    hole[0:2, 0:3] = True              # centre at (0, 1): a 4 x 4 square clipped by the top-left border
    for i in range(n):
        for j in range(n):
            c = "#222222" if hole[i, j] else ("#6baed6" if faces[i, j] else "#deebf7")
            ax.add_patch(Rectangle((x0 + j * cell, y0 + (n - 1 - i) * cell), cell, cell, facecolor=c, edgecolor="white", lw=0.8))
    # the part of the square that falls outside the image
    ax.add_patch(Rectangle((x0 - 1 * cell, y0 + (n - 2) * cell), 4 * cell, 4 * cell, fill=False,
                           ls=(0, (4, 2)), edgecolor=DROP, lw=1.4, zorder=4))
    ax.plot(x0 + 1.5 * cell, y0 + (n - 0.5) * cell, "o", color="white", ms=5, zorder=5)


def _branch(ax):
    from matplotlib.patches import FancyBboxPatch

    for k, (y, dropped) in enumerate(((7.6, False), (2.6, True))):
        ax.text(0.2, y + 1.35, f"example {k + 1}: " + ("branch kept" if not dropped else "branch dropped"),
                fontsize=8, ha="left")
        ax.annotate("", xy=(8.6, y), xytext=(0.8, y), arrowprops=dict(arrowstyle="-|>", color=EDGE, lw=1.4))
        ax.text(0.5, y, "x", fontsize=10, ha="center", va="center")
        ax.text(9.2, y, "y", fontsize=10, ha="center", va="center")
        colour = DROP if dropped else EDGE
        ls = (0, (3, 2)) if dropped else "-"
        ax.plot([2.0, 2.0, 3.2], [y, y - 0.9, y - 0.9], color=colour, ls=ls, lw=1.3)
        ax.plot([5.8, 7.0, 7.0], [y - 0.9, y - 0.9, y], color=colour, ls=ls, lw=1.3)
        ax.add_patch(FancyBboxPatch((3.2, y - 1.3), 2.6, 0.8, boxstyle="round,pad=0.05",
                                    facecolor="#f2f2f2" if dropped else KEEP, edgecolor=colour, ls=ls, lw=1.3))
        ax.text(4.5, y - 0.9, "f(x)", fontsize=9, ha="center", va="center", color=colour)
        ax.add_patch(_circle((7.0, y), r=0.35))
        ax.text(7.0, y, "+", fontsize=10, ha="center", va="center", zorder=4)
        if dropped:
            ax.plot([3.6, 5.4], [y - 1.5, y - 0.3], color=DROP, lw=2.2)
            ax.plot([3.6, 5.4], [y - 0.3, y - 1.5], color=DROP, lw=2.2)
        ax.text(4.5, y - 2.0, "y = x + f(x)/(1-p)" if not dropped else "y = x", fontsize=8, ha="center")


def draw_units():
    """The six units side by side with the noise each draws; returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 6, figsize=(15.5, 3.7))
    for ax, draw, (unit, name), noise in zip(axes, (_element, _weight, _channel, _block, _region, _branch),
                                             PANELS, NOISE):
        ax.set_xlim(0, 10)
        ax.set_ylim(-2.6, 10)
        ax.set_aspect("equal")
        ax.set_axis_off()
        draw(ax)
        ax.set_title(f"{unit}\n({name})", fontsize=10.5)
        ax.text(5.0, -0.2, noise, fontsize=7.6, ha="center", va="top")
    fig.tight_layout()
    return fig
