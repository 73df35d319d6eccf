"""Chapter 02 schematic: all eight sub-networks of a 3-unit hidden layer, with their probabilities.

A 2-3-2 network (two inputs, three droppable hidden units, two softmax outputs). Dropout on the
hidden layer keeps each unit independently with probability ``1 - p``, so the layer has
2^3 = 8 sub-networks; a sub-network with k kept units is drawn with probability
``(1 - p)**k * p**(3 - k)`` (:func:`subnetwork_label`). The edges of each hidden unit have their
own colour in every panel: the sub-networks share those weights. Drawings only: nothing is
measured.
"""
from __future__ import annotations

import itertools

import numpy as np

#: Colours of the three hidden units' edges (the same weights in every sub-network).
UNIT_COLOURS = ("tab:blue", "tab:orange", "tab:green")


def masks_in_order():
    """The eight masks of three units (1 = kept), most kept first, then in reading order."""
    masks = [tuple(int(b) for b in bits) for bits in itertools.product((1, 0), repeat=3)]
    return sorted(masks, key=lambda m: -sum(m))


def subnetwork_label(mask, p):
    """Probability text for one sub-network, e.g. ``0.8^2 x 0.2 = 0.128`` (matplotlib mathtext)
    and the probability itself. ``p`` is the drop probability, in [0, 1]."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"the drop probability p must lie in [0, 1], got {p}")
    kept = int(sum(mask))
    dropped = len(mask) - kept
    prob = (1 - p) ** kept * p ** dropped
    parts = [f"{base:g}" + (f"^{{{k}}}" if k > 1 else "") for base, k in ((1 - p, kept), (p, dropped)) if k]
    product = r" \times ".join(parts)
    return f"${product} = {prob:.3g}$", prob


def _draw(ax, mask, p, index):
    from matplotlib.patches import Circle

    inputs = [(0.0, 0.45), (0.0, -0.45)]
    hidden = [(1.0, 0.8), (1.0, 0.0), (1.0, -0.8)]
    outputs = [(2.0, 0.45), (2.0, -0.45)]
    for j, (hx, hy) in enumerate(hidden):
        if not mask[j]:
            continue
        for (x, y) in inputs + outputs:
            ax.plot([x, hx], [y, hy], color=UNIT_COLOURS[j], lw=1.6, zorder=1)
    for (x, y) in inputs:
        ax.add_patch(Circle((x, y), 0.14, facecolor="tab:olive", edgecolor="black", zorder=3))
    for (x, y) in outputs:
        ax.add_patch(Circle((x, y), 0.14, facecolor="tab:purple", edgecolor="black", zorder=3))
    for j, (x, y) in enumerate(hidden):
        if mask[j]:
            ax.add_patch(Circle((x, y), 0.14, facecolor=UNIT_COLOURS[j], edgecolor="black", zorder=3))
        else:
            ax.add_patch(Circle((x, y), 0.14, facecolor="0.92", edgecolor="0.6", ls="--", zorder=3))
            for s in (1, -1):
                ax.plot([x - 0.11, x + 0.11], [y - 0.11 * s, y + 0.11 * s], color="tab:red", lw=2, zorder=4)
    text, _ = subnetwork_label(mask, p)
    ax.set_title(f"#{index}: mask {''.join(map(str, mask))}", fontsize=10)
    ax.text(1.0, -1.25, text, ha="center", va="top", fontsize=10)
    if sum(mask) == 0:
        ax.text(1.0, -1.6, "outputs = biases only", ha="center", va="top", fontsize=8, color="0.35")
    ax.set_xlim(-0.35, 2.35)
    ax.set_ylim(-1.75, 1.05)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_all_subnetworks(p=0.2):
    """Draw the eight sub-networks of a 3-unit dropout layer with their probabilities for drop
    probability ``p``; returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    masks = masks_in_order()
    total = sum(subnetwork_label(m, p)[1] for m in masks)
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.6))
    for i, (ax, mask) in enumerate(zip(axes.ravel(), masks), start=1):
        _draw(ax, mask, p, i)
    fig.suptitle(f"The 2^3 = 8 sub-networks of a 3-unit hidden layer, drop probability p = {p:g} "
                 f"(probabilities sum to {total:g})", fontsize=12)
    fig.text(0.5, 0.015, "inputs (olive), hidden units (their edges in their own colour: the same "
             "weights in every sub-network), softmax outputs (purple); dropped units crossed out",
             ha="center", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.88, bottom=0.06, wspace=0.05, hspace=0.25)
    return fig


def probabilities(p=0.2):
    """The probabilities of :func:`masks_in_order`'s masks (for checks): an array of 8."""
    return np.array([subnetwork_label(m, p)[1] for m in masks_in_order()])
