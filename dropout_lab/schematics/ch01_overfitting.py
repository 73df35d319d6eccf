"""Schematic for chapter 01: why an L1 penalty gives sparse weights and L2 small ones.

Two panels, the same quadratic loss in two weights w = (w1, w2) with its unconstrained
minimum w*. Left: the L2 ball ||w||_2 <= t; right: the L1 ball ||w||_1 <= t of the same
radius. The constrained minimum is where the smallest loss contour that reaches the ball
touches it: a smooth point of the circle (both weights non-zero) and a corner of the
diamond (w2 = 0 exactly). The touching points are computed, not placed by hand.
"""
from __future__ import annotations

import numpy as np

#: The quadratic loss L(w) = 1/2 (w - W_STAR)^T A (w - W_STAR) and the ball radius.
W_STAR = np.array([2.0, 0.6])
A = np.array([[1.0, 0.3], [0.3, 1.2]])
RADIUS = 1.0


def loss(w1, w2):
    """The quadratic loss on arrays of w1 and w2 (broadcast)."""
    d1, d2 = w1 - W_STAR[0], w2 - W_STAR[1]
    return 0.5 * (A[0, 0] * d1 * d1 + 2 * A[0, 1] * d1 * d2 + A[1, 1] * d2 * d2)


def ball_boundary(kind: str, n: int = 20001):
    """Points (n, 2) on the boundary of the L1 or L2 ball of radius RADIUS."""
    theta = np.linspace(0, 2 * np.pi, n)
    c, s = np.cos(theta), np.sin(theta)
    if kind == "l2":
        return RADIUS * np.stack([c, s], axis=1)
    if kind == "l1":
        return RADIUS * np.stack([c, s], axis=1) / (np.abs(c) + np.abs(s))[:, None]
    raise ValueError(f"kind must be 'l1' or 'l2', got {kind!r}")


def constrained_minimum(kind: str):
    """The point of the ball's boundary with the lowest loss (W_STAR lies outside the ball,
    so the constrained minimum is on the boundary)."""
    pts = ball_boundary(kind)
    return pts[np.argmin(loss(pts[:, 0], pts[:, 1]))]


def l1_vs_l2_balls():
    """The figure: L2 ball (left) and L1 ball (right) with the loss contours; returns the Figure."""
    import matplotlib.pyplot as plt

    g = np.linspace(-1.6, 2.6, 400)
    G1, G2 = np.meshgrid(g, g)
    Z = loss(G1, G2)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    titles = {"l2": "L2 penalty: small weights", "l1": "L1 penalty: sparse weights"}
    for ax, kind in zip(axes, ("l2", "l1")):
        w = constrained_minimum(kind)
        level = loss(*w)
        ax.contour(G1, G2, Z, levels=level * np.array([0.15, 0.4, 0.7]), colors="0.6", linewidths=1)
        ax.contour(G1, G2, Z, levels=[level], colors="C3", linewidths=2)
        b = ball_boundary(kind)
        ax.fill(b[:, 0], b[:, 1], color="C0", alpha=0.25)
        ax.plot(b[:, 0], b[:, 1], color="C0", lw=2)
        ax.plot(*W_STAR, "k*", ms=13)
        ax.annotate("w*: minimum of the\nunpenalised loss", W_STAR, xytext=(0.9, 2.1), fontsize=9,
                    arrowprops=dict(arrowstyle="->", color="0.3"))
        ax.plot(*w, "o", color="C3", ms=9, zorder=5)
        where = "a corner: w2 = 0 exactly" if kind == "l1" else "a smooth point: w1, w2 both ≠ 0"
        ax.annotate(f"penalised minimum\n({w[0]:.2f}, {w[1]:.2f}),\n{where}", w,
                    xytext=(-1.5, -1.45), fontsize=9, arrowprops=dict(arrowstyle="->", color="C3"))
        ax.axhline(0, color="0.3", lw=0.8)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_aspect("equal")
        ax.set_xlim(-1.6, 2.6)
        ax.set_ylim(-1.6, 2.6)
        ax.set_xlabel("weight w1")
        ax.set_ylabel("weight w2")
        name = "$\\|w\\|_2 \\leq t$" if kind == "l2" else "$\\|w\\|_1 \\leq t$"
        ax.set_title(f"{titles[kind]} ({name})")
    fig.tight_layout()
    return fig
