"""Chapter 03 schematic: a co-adapted pair of hidden units against two redundant copies,
under every deletion pattern that dropout can draw for them.

Both pairs compute the same output ``y = t`` when both units are present:

* **co-adapted**: unit A responds to the signal plus a nuisance, ``a = t + e``; unit B
  responds to the nuisance alone, ``b = e``; the output weights are (+1, -1), so B
  cancels A's mistake. Each unit is useless, or harmful, without its partner.
* **redundant**: both units respond to the signal, ``a = b = t``, with output weights
  (1/2, 1/2). Either one alone carries the whole signal (half of it before rescaling).

:func:`thinned_outputs` computes the output for each of the four masks when units are
deleted at test time, with or without rescaling the survivors; :func:`training_squared_error`
averages the squared error over the masks that inverted dropout draws in training. Nothing is measured on
a trained network here: this is the idealised picture the chapter's experiments test.
"""
from __future__ import annotations

import numpy as np

#: The two pairs: name -> (activation of A, activation of B, output weights), as
#: functions of the signal t and the nuisance e.
PAIRS = {
    "co-adapted": (lambda t, e: t + e, lambda t, e: e, (1.0, -1.0)),
    "redundant": (lambda t, e: t, lambda t, e: t, (0.5, 0.5)),
}

#: The four masks of two units (1 = kept), in drawing order.
MASKS = ((1, 1), (1, 0), (0, 1), (0, 0))


def thinned_outputs(kind: str, t: float = 1.0, e: float = 1.0, rescale: bool = False) -> dict:
    """Output of the pair ``kind`` for every mask, units deleted at test time: {mask: y}.

    With ``rescale`` the survivors are multiplied by 1 / (1 - fraction deleted), that is
    2 when one of the two units is deleted (nothing survives the mask 00: y = 0).
    """
    if kind not in PAIRS:
        raise ValueError(f"kind must be one of {sorted(PAIRS)}, got {kind!r}")
    fa, fb, (wa, wb) = PAIRS[kind]
    out = {}
    for m in MASKS:
        scale = len(m) / sum(m) if rescale and sum(m) else 1.0
        out[m] = scale * (m[0] * wa * fa(t, e) + m[1] * wb * fb(t, e))
    return out


def mask_probability(mask, p: float = 0.5) -> float:
    """Probability that dropout with drop probability p draws this mask of two units."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p}")
    kept = int(np.sum(mask))
    return (1.0 - p) ** kept * p ** (len(mask) - kept)


def training_squared_error(kind: str, t: float = 1.0, e: float = 1.0, p: float = 0.5) -> float:
    """Expected (y - t)^2 over the masks of inverted dropout with drop probability p
    (survivors multiplied by 1/(1-p), whatever the mask), for the pair ``kind``: the
    part of the training loss that random deletion adds. Its mean over masks is t for
    both pairs; only the spread differs."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must lie in [0, 1), got {p}")
    raw = thinned_outputs(kind, t, e, rescale=False)
    return float(sum(mask_probability(m, p) * (y / (1.0 - p) - t) ** 2 for m, y in raw.items()))


def _unit(ax, xy, kept, text, colour):
    from matplotlib.patches import Circle

    face = colour if kept else "0.92"
    ax.add_patch(Circle(xy, 0.23, facecolor=face, edgecolor="black" if kept else "0.6",
                        ls="-" if kept else "--", lw=1.0, zorder=3))
    ax.text(xy[0], xy[1], text, ha="center", va="center", fontsize=8, zorder=4,
            color="black" if kept else "0.55")
    if not kept:
        for s in (1, -1):
            ax.plot([xy[0] - 0.16, xy[0] + 0.16], [xy[1] - 0.16 * s, xy[1] + 0.16 * s],
                    color="tab:red", lw=2, zorder=5)


def _panel(ax, kind, mask, t, e):
    _, _, (wa, wb) = PAIRS[kind]
    labels = {"co-adapted": ("t+e", "e"), "redundant": ("t", "t")}[kind]
    a_xy, b_xy, y_xy = (0.0, 0.55), (0.0, -0.55), (1.3, 0.0)
    for kept, xy, w in ((mask[0], a_xy, wa), (mask[1], b_xy, wb)):
        if kept:
            ax.plot([xy[0], y_xy[0]], [xy[1], y_xy[1]], color="0.4", lw=1.2, zorder=1)
            ax.text((xy[0] + y_xy[0]) / 2, (xy[1] + y_xy[1]) / 2 + 0.2 * np.sign(xy[1]), f"{w:+g}",
                    ha="center", va="center", fontsize=8.5, color="tab:blue")
    _unit(ax, a_xy, mask[0], labels[0], "tab:orange")
    _unit(ax, b_xy, mask[1], labels[1], "tab:orange")
    _unit(ax, y_xy, True, "y", "tab:purple")
    ax.text(-0.3, 0.55, "A", ha="right", va="center", fontsize=9)
    ax.text(-0.3, -0.55, "B", ha="right", va="center", fontsize=9)
    plain = thinned_outputs(kind, t, e)[mask]
    scaled = thinned_outputs(kind, t, e, rescale=True)[mask]
    if sum(mask) == len(mask):
        lines = [(f"full network: y = {plain:g}", plain)]
    elif sum(mask) == 0:
        lines = [(f"nothing left: y = {plain:g}", plain)]
    else:
        lines = [(f"not rescaled: y = {plain:g}", plain)]
        lines.append((f"rescaled ×2: y = {scaled:g}", scaled))
    for k, (text, y) in enumerate(lines):
        ax.text(0.65, -1.0 - 0.3 * k, text, ha="center", va="top", fontsize=8.5,
                color="tab:green" if np.isclose(y, t) else "tab:red")
    ax.set_xlim(-0.55, 1.85)
    ax.set_ylim(-1.75, 0.85)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_coadaptation(t: float = 1.0, e: float = 1.0, p: float = 0.5):
    """Two rows (co-adapted pair, redundant copies) by four masks; returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(MASKS), figsize=(10, 6.0))
    descriptions = {"co-adapted": "Co-adapted pair: B detects the nuisance e and cancels it from A",
                    "redundant": "Redundant copies: A and B both detect the signal t"}
    fig.text(0.99, 0.995, f"squared error averaged over the masks of dropout with p = {p:g}\n"
             f"(survivors ×{1 / (1 - p):g} in training): co-adapted "
             f"{training_squared_error('co-adapted', t, e, p):g}, redundant "
             f"{training_squared_error('redundant', t, e, p):g}", fontsize=9, ha="right", va="top")
    for r, kind in enumerate(PAIRS):
        for c, mask in enumerate(MASKS):
            _panel(axes[r, c], kind, mask, t, e)
            deleted = " and ".join(u for u, k in zip("AB", mask) if not k) or "nothing"
            axes[r, c].set_title(f"mask {mask[0]}{mask[1]}: {deleted} deleted", fontsize=9.5)
        fig.text(0.01, 0.935 - 0.47 * r, descriptions[kind], fontsize=10.5, va="bottom")
    fig.text(0.01, 0.005, f"t = {t:g} (the signal the output should equal), e = {e:g}; "
             "green: y = t, red: y is wrong", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.04, wspace=0.05, hspace=0.42)
    return fig
