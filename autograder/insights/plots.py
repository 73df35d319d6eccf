"""The class report's figures: matplotlib in the course's style, as PNG data URIs.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg
canvas (no pyplot, no global state, no display needed) inside the course's
rc settings (:data:`dropout_lab.plotting.COURSE_STYLE`), and returned as
``data:image/png;base64,...`` strings so the page needs no other file.
"""
from __future__ import annotations

import base64
import io

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from dropout_lab.plotting import COURSE_STYLE

BAR_COLOR = "#4c72b0"
FULL_COLOR = "#1a7f37"
PNG_DPI = 110


def _label(text: str) -> str:
    """Plain text for matplotlib (a ``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def to_data_uri(fig: Figure) -> str:
    """``fig`` as a PNG data URI."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def assignment_figure(summary: dict) -> str | None:
    """Left: the histogram of automatic scores of the graded submissions.
    Right: per function, the mean score as a share of its points (bar) and the
    share of students at full marks (dot). None when nothing was graded."""
    if not summary["graded"] or not summary["histogram"]["counts"]:
        return None
    functions = summary["functions"]
    with matplotlib.rc_context(COURSE_STYLE):
        fig = Figure(figsize=(9.0, max(2.8, 0.42 * len(functions) + 1.3)))
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})
        edges, counts = summary["histogram"]["bin_edges"], summary["histogram"]["counts"]
        widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
        left.bar(edges[:-1], counts, width=widths, align="edge", color=BAR_COLOR, edgecolor="white")
        left.set_xlim(0, edges[-1])
        left.set_xlabel(f"automatic score (points of {summary['auto_points']:g})")
        left.set_ylabel("students")
        left.yaxis.set_major_locator(MaxNLocator(integer=True))
        left.set_title(f"scores of {summary['graded']} graded submission{'s' if summary['graded'] != 1 else ''}")
        left.grid(axis="x", visible=False)

        names = [_label(f["grade_id"]) for f in functions][::-1]
        means = [(f["mean_share"] or 0.0) for f in functions][::-1]
        fulls = [f["full_share"] for f in functions][::-1]
        positions = range(len(functions))
        right.barh(positions, means, color=BAR_COLOR, height=0.6, label="mean score (share of its points)")
        right.plot(fulls, positions, "o", color=FULL_COLOR, label="students at full marks")
        right.set_yticks(list(positions), names)
        right.set_xlim(0, 1.02)
        right.xaxis.set_major_formatter(PercentFormatter(1.0))
        right.set_xlabel("share")
        right.set_title("per function")
        right.grid(axis="y", visible=False)
        right.legend(loc="lower center", bbox_to_anchor=(0.5, 1.1), ncol=2, fontsize=9)
        fig.tight_layout()
        return to_data_uri(fig)
