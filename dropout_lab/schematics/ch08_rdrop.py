"""Chapter 08 schematic: R-Drop's two dropout passes, and the same two passes as one call.

Left: one input goes through the SAME network twice; each pass drops a different set of
hidden units (crossed out), so the two sub-networks give two output distributions P1 and P2.
Each is trained with the cross-entropy against the label, and the two are pulled together by
the symmetric KL divergence. Right: the batch concatenated with itself goes through the
network in one call; every row draws its own mask, and the output is split into its first
half (P1) and its second half (P2). Drawings only: the distributions are illustrative numbers
(:data:`P1`, :data:`P2`), nothing is measured.
"""
from __future__ import annotations

import numpy as np

#: Hidden masks of the two passes (1 = kept), five hidden units, drop probability 0.4 each.
MASK1 = (1, 0, 1, 1, 0)
MASK2 = (0, 1, 1, 0, 1)
#: Illustrative output distributions of the two sub-networks over four classes.
P1 = np.array([0.62, 0.20, 0.12, 0.06])
P2 = np.array([0.41, 0.38, 0.14, 0.07])

PASS1, PASS2, KL_COLOUR, EDGE = "tab:blue", "tab:orange", "tab:purple", "0.55"


def symmetric_kl_of_illustration() -> float:
    """0.5 (KL(P1||P2) + KL(P2||P1)) of the two illustrative distributions (nats)."""
    return float(0.5 * np.sum((P1 - P2) * (np.log(P1) - np.log(P2))))


def _network(ax, x0, y0, mask, colour, scale=1.0):
    """A 3-5-4 network with its hidden layer masked; returns the output units' positions."""
    from matplotlib.patches import Circle

    xs = (x0, x0 + 1.1 * scale, x0 + 2.2 * scale)
    ins = [(xs[0], y0 + (i - 1) * 0.55 * scale) for i in range(3)]
    hid = [(xs[1], y0 + (i - 2) * 0.5 * scale) for i in range(5)]
    outs = [(xs[2], y0 + (i - 1.5) * 0.5 * scale) for i in range(4)]
    r = 0.12 * scale
    for j, (hx, hy) in enumerate(hid):
        kept = mask[j]
        for (a, b) in ins + outs:
            ax.plot([a, hx], [b, hy], color=EDGE if kept else "0.9", lw=0.9 if kept else 0.6,
                    ls="-" if kept else ":", zorder=1)
    for (a, b) in ins:
        ax.add_patch(Circle((a, b), r, facecolor="tab:olive", edgecolor="black", zorder=3))
    for (a, b) in outs:
        ax.add_patch(Circle((a, b), r, facecolor="white", edgecolor=colour, lw=1.8, zorder=3))
    for j, (a, b) in enumerate(hid):
        if mask[j]:
            ax.add_patch(Circle((a, b), r, facecolor=colour, edgecolor="black", zorder=3))
        else:
            ax.add_patch(Circle((a, b), r, facecolor="0.95", edgecolor="0.6", ls="--", zorder=3))
            d = 0.09 * scale
            ax.plot([a - d, a + d], [b - d, b + d], color="tab:red", lw=1.8, zorder=4)
            ax.plot([a - d, a + d], [b + d, b - d], color="tab:red", lw=1.8, zorder=4)
    return outs


def _bars(ax, x0, y0, probs, colour, label, width=0.28, height=1.3):
    """A small bar chart of ``probs`` with its base at (x0, y0)."""
    from matplotlib.patches import Rectangle

    for k, v in enumerate(probs):
        ax.add_patch(Rectangle((x0 + k * (width + 0.06), y0), width, v * height, facecolor=colour,
                               edgecolor="black", lw=0.6, zorder=3))
        ax.text(x0 + k * (width + 0.06) + width / 2, y0 - 0.12, f"{k}", ha="center", va="top", fontsize=7)
    ax.plot([x0 - 0.05, x0 + 4 * (width + 0.06)], [y0, y0], color="black", lw=0.8)
    ax.text(x0 + 2 * (width + 0.06) - 0.03, y0 + height * max(probs) + 0.15, label, ha="center", fontsize=10,
            color=colour, fontweight="bold")


def _arrow(ax, start, end, colour="black", lw=1.3, ls="-"):
    ax.annotate("", xy=end, xytext=start, zorder=2,
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=lw, linestyle=ls, shrinkA=0, shrinkB=0,
                                mutation_scale=12))


def draw_two_passes_vs_concat():
    """The R-Drop schematic; returns the matplotlib Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch, Rectangle

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.5, 5.6), gridspec_kw={"width_ratios": [1.15, 1]})
    for ax in (ax1, ax2):
        ax.set_axis_off()
        ax.set_aspect("equal")

    # ---------------- left: two forward calls ----------------
    ax1.set_xlim(-0.4, 8.6)
    ax1.set_ylim(-4.0, 3.6)
    ax1.set_title("R-Drop: the same input, two dropout masks, one set of weights", fontsize=11)
    ax1.add_patch(FancyBboxPatch((-0.25, -0.35), 0.9, 0.7, boxstyle="round,pad=0.05", facecolor="white",
                                 edgecolor="black", lw=1.4, zorder=2))
    ax1.text(0.2, 0.0, "$x$", ha="center", va="center", fontsize=13, zorder=3)
    y_top, y_bot = 1.75, -1.75
    _network(ax1, 1.55, y_top, MASK1, PASS1)
    _network(ax1, 1.55, y_bot, MASK2, PASS2)
    _arrow(ax1, (0.7, 0.2), (1.35, y_top - 0.2))
    _arrow(ax1, (0.7, -0.2), (1.35, y_bot + 0.2))
    ax1.text(2.65, y_top + 1.35, "pass 1, mask $m_1$", ha="center", fontsize=9, color=PASS1)
    ax1.text(2.65, y_bot - 1.45, "pass 2, mask $m_2$", ha="center", fontsize=9, color=PASS2)
    _bars(ax1, 4.6, y_top - 0.55, P1, PASS1, "$P_1$")
    _bars(ax1, 4.6, y_bot - 0.55, P2, PASS2, "$P_2$")
    _arrow(ax1, (4.0, y_top), (4.5, y_top))
    _arrow(ax1, (4.0, y_bot), (4.5, y_bot))
    ax1.text(5.25, y_top - 0.95, "classes", ha="center", fontsize=7, color="0.3")
    # CE to the label, and the KL between the two
    ax1.text(6.55, y_top + 0.25, r"$\mathrm{CE}(P_1, y)$", fontsize=10, color=PASS1, va="center")
    ax1.text(6.55, y_bot + 0.25, r"$\mathrm{CE}(P_2, y)$", fontsize=10, color=PASS2, va="center")
    ax1.annotate("", xy=(6.3, y_bot + 1.2), xytext=(6.3, y_top - 0.65),
                 arrowprops=dict(arrowstyle="<|-|>", color=KL_COLOUR, lw=1.8, mutation_scale=12))
    ax1.text(6.45, 0.0, r"$\alpha \cdot \frac{1}{2}\,[\mathrm{KL}(P_1\Vert P_2)$" + "\n"
             + r"$+\ \mathrm{KL}(P_2\Vert P_1)]$" + f"\n= {symmetric_kl_of_illustration():.3f} nats",
             fontsize=9.5, color=KL_COLOUR, va="center")
    ax1.text(4.1, -3.85, r"loss $= \frac{1}{2}[\mathrm{CE}_1 + \mathrm{CE}_2] + \alpha\,\times$ symmetric KL;"
             "  at test time: one pass, no mask", ha="center", fontsize=9)

    # ---------------- right: one call on the concatenated batch ----------------
    ax2.set_xlim(-0.3, 7.7)
    ax2.set_ylim(-4.0, 3.6)
    ax2.set_title("The same two passes as ONE call on cat([x, x])", fontsize=11)
    rows = 6                                           # B = 3 examples, twice
    cell = 0.42
    top = 1.3
    for r in range(rows):
        first = r < rows // 2
        ax2.add_patch(Rectangle((0.0, top - (r + 1) * cell), 1.0, cell, facecolor="#dbe9f6" if first else "#fde3cc",
                                edgecolor="black", lw=0.7, zorder=2))
        ax2.text(0.5, top - (r + 0.5) * cell, f"$x_{{{r % (rows // 2) + 1}}}$", ha="center", va="center", fontsize=9,
                 zorder=3)
    ax2.text(0.5, top + 0.25, "batch, $2B$ rows", ha="center", fontsize=9)
    ax2.text(-0.15, top - 1.5 * cell, "copy 1", ha="right", va="center", fontsize=8, color=PASS1, rotation=90)
    ax2.text(-0.15, top - 4.5 * cell, "copy 2", ha="right", va="center", fontsize=8, color=PASS2, rotation=90)
    ax2.add_patch(FancyBboxPatch((1.75, top - rows * cell), 2.2, rows * cell, boxstyle="round,pad=0.06",
                                 facecolor="#f4f4f4", edgecolor="black", lw=1.3, zorder=2))
    ax2.text(2.85, top - rows * cell / 2, "model\n(train mode)\n\none call,\na fresh mask\nfor every row",
             ha="center", va="center", fontsize=9, zorder=3)
    _arrow(ax2, (1.05, top - rows * cell / 2), (1.7, top - rows * cell / 2))
    for r in range(rows):
        first = r < rows // 2
        ax2.add_patch(Rectangle((4.6, top - (r + 1) * cell), 1.0, cell, facecolor=PASS1 if first else PASS2,
                                alpha=0.55, edgecolor="black", lw=0.7, zorder=2))
    _arrow(ax2, (4.0, top - rows * cell / 2), (4.55, top - rows * cell / 2))
    ax2.text(5.1, top + 0.25, "logits, $2B$ rows", ha="center", fontsize=9)
    ax2.text(5.75, top - 1.5 * cell, r"first half $\to P_1$", va="center", fontsize=9, color=PASS1)
    ax2.text(5.75, top - 4.5 * cell, r"second half $\to P_2$", va="center", fontsize=9, color=PASS2)
    ax2.plot([4.5, 7.5], [top - 3 * cell, top - 3 * cell], color="black", lw=1.0, ls="--")
    ax2.text(3.7, -2.1, "same distribution of mask pairs as two calls,\nhalf the calls (one kernel launch per layer);\n"
             "but BatchNorm computes its batch statistics\nover all $2B$ rows: each example counts twice,\n"
             "and pass 1's output depends on pass 2's mask",
             ha="center", va="center", fontsize=8.8, color="0.2")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.02, wspace=0.04)
    return fig
