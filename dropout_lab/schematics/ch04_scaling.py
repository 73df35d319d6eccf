"""Chapter 04 schematic: a network, three of its thinned versions, and the test-time network.

A 4-5-2 fully connected network with dropout on the inputs (drop probability ``p_in``) and on
the hidden units (``p_hidden``); outputs are never dropped. A thinned network is the network
with the dropped units and every edge touching them removed; its probability is a product of
one factor per droppable unit, ``(1 - p)`` for a kept unit and ``p`` for a dropped one
(:func:`thinned_probability`). At test time every unit is present and, in standard dropout,
the outgoing weights of each unit are multiplied by its keep probability.
"""
from __future__ import annotations

import numpy as np

#: Layer sizes of the drawn network (inputs, hidden, outputs).
LAYERS = (4, 5, 2)

#: The thinned networks drawn by default: (input mask, hidden mask), 1 = kept.
DEFAULT_MASKS = (
    ((1, 1, 1, 1), (1, 1, 0, 1, 1)),
    ((1, 0, 1, 1), (0, 1, 1, 0, 1)),
    ((0, 1, 1, 0), (1, 0, 0, 1, 0)),
)


def thinned_probability(input_mask, hidden_mask, p_in=0.2, p_hidden=0.5) -> float:
    """Probability that dropout draws exactly this thinned network.

    Every droppable unit is kept or dropped independently, so the probability is
    ``(1-p_in)**kept_in * p_in**dropped_in * (1-p_hidden)**kept_h * p_hidden**dropped_h``.
    Masks are sequences of 0/1 (1 = kept); p values are drop probabilities in [0, 1].
    """
    for p in (p_in, p_hidden):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probabilities must lie in [0, 1], got {p}")
    prob = 1.0
    for mask, p in ((input_mask, p_in), (hidden_mask, p_hidden)):
        mask = np.asarray(mask)
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"a mask holds 0/1 values only, got {mask.tolist()}")
        kept = int(mask.sum())
        prob *= (1.0 - p) ** kept * p ** (mask.size - kept)
    return float(prob)


def probability_label(input_mask, hidden_mask, p_in=0.2, p_hidden=0.5) -> str:
    """The text printed under a thinned network (matplotlib mathtext): one factor per
    droppable unit, grouped as (1-p)^kept p^dropped for each layer, and their product."""
    def factors(mask, p):
        kept = int(np.sum(mask))
        dropped = len(mask) - kept
        if np.isclose(p, 1 - p):                      # p = 0.5: both factors are 0.5
            groups = [(p, kept + dropped)]
        else:
            groups = [(1 - p, kept), (p, dropped)]
        parts = [f"{base:g}" + (f"^{{{k}}}" if k > 1 else "") for base, k in groups if k]
        return r"\cdot ".join(parts) if parts else "1"

    prob = thinned_probability(input_mask, hidden_mask, p_in, p_hidden)
    return f"$P = {factors(input_mask, p_in)} \\times {factors(hidden_mask, p_hidden)} = {prob:.2g}$"


def _positions(n, x):
    ys = np.linspace(1, -1, n) * (0.28 * (n - 1))
    return [(x, y) for y in ys]


def _draw_net(ax, input_mask, hidden_mask, title, footer, weight_labels=None):
    pos = [_positions(n, x) for n, x in zip(LAYERS, (0.0, 1.0, 2.0))]
    alive = [list(input_mask), list(hidden_mask), [1] * LAYERS[2]]
    for layer in range(2):
        for i, (x0, y0) in enumerate(pos[layer]):
            for j, (x1, y1) in enumerate(pos[layer + 1]):
                if alive[layer][i] and alive[layer + 1][j]:
                    ax.plot([x0, x1], [y0, y1], color="0.45", lw=0.8, zorder=1)
        if weight_labels:
            ax.text(layer + 0.5, 1.3, weight_labels[layer], ha="center",
                    va="bottom", fontsize=9, color="tab:blue")
    colours = ("tab:green", "tab:orange", "tab:purple")
    for layer in range(3):
        for i, (x, y) in enumerate(pos[layer]):
            kept = alive[layer][i]
            ax.add_patch(_circle((x, y), kept, colours[layer]))
            if not kept:
                ax.plot([x - 0.1, x + 0.1], [y - 0.1, y + 0.1], color="tab:red", lw=2, zorder=4)
                ax.plot([x - 0.1, x + 0.1], [y + 0.1, y - 0.1], color="tab:red", lw=2, zorder=4)
    ax.set_title(title, fontsize=10)
    ax.text(1.0, -1.5, footer, ha="center", va="top", fontsize=8.5)
    ax.set_xlim(-0.4, 2.4)
    ax.set_ylim(-2.55, 1.55)
    ax.set_aspect("equal")
    ax.axis("off")


def _circle(xy, kept, colour):
    from matplotlib.patches import Circle

    if kept:
        return Circle(xy, 0.13, facecolor=colour, edgecolor="black", lw=1.0, zorder=3)
    return Circle(xy, 0.13, facecolor="0.9", edgecolor="0.6", lw=1.0, ls="--", zorder=3)


def draw_thinned_networks(masks=DEFAULT_MASKS, p_in=0.2, p_hidden=0.5):
    """Draw the full network, one panel per thinned network in ``masks`` and the test-time
    network; returns the matplotlib Figure (nothing is measured)."""
    import matplotlib.pyplot as plt

    n = len(masks)
    fig, axes = plt.subplots(1, n + 2, figsize=(2.45 * (n + 2), 3.6))
    full_in, full_hid = (1,) * LAYERS[0], (1,) * LAYERS[1]
    n_thinned = 2 ** (LAYERS[0] + LAYERS[1])
    _draw_net(axes[0], full_in, full_hid, "the full network",
              f"inputs: p = {p_in:g}\nhidden: p = {p_hidden:g}\n{n_thinned} thinned nets")
    for k, (m_in, m_hid) in enumerate(masks, start=1):
        footer = f"mask: inputs {''.join(map(str, m_in))}, hidden {''.join(map(str, m_hid))}"
        _draw_net(axes[k], m_in, m_hid, f"training, thinned #{k}", footer)
        axes[k].text(1.0, -2.05, probability_label(m_in, m_hid, p_in, p_hidden), ha="center",
                     va="top", fontsize=9)
    _draw_net(axes[-1], full_in, full_hid, "test time (standard)",
              "all units present; weights out\nof a unit × its keep probability\n(inverted: weights as trained;\nsurvivors ÷ keep in training)",
              weight_labels=(f"W1 × {1 - p_in:g}", f"W2 × {1 - p_hidden:g}"))
    fig.text(0.01, 0.995, "inputs (green), hidden (orange), outputs (purple); "
             "dropped units crossed out with their edges removed", fontsize=9, va="top")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.84, bottom=0.0, wspace=0.08)
    return fig
