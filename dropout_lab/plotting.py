"""One plotting style for every figure in the course."""
import warnings

import matplotlib
import numpy as np

COURSE_STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
}


def use_course_style() -> None:
    """Apply the course's matplotlib rc settings."""
    matplotlib.rcParams.update(COURSE_STYLE)


def mean_and_band(ax, x, runs, label, color=None):
    """Plot the mean over runs (rows of ``runs``, shape (n_seeds, len(x))) with a
    +-1 standard deviation band; returns the line.

    A run that diverged (NaN or inf somewhere) is never hidden: the mean is
    taken over the finite values and the label says how many runs diverged."""
    runs = np.atleast_2d(np.asarray(runs, dtype=float))
    finite = np.isfinite(runs)
    if not finite.all():
        n_bad = int((~finite).any(axis=1).sum())
        label = f"{label} ({n_bad} of {len(runs)} run{'s' if len(runs) != 1 else ''} diverged)"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # columns where every run diverged
        clean = np.where(finite, runs, np.nan)
        mean, std = np.nanmean(clean, axis=0), np.nanstd(clean, axis=0)
    (line,) = ax.plot(x, mean, label=label, color=color)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    return line


def _finite_y(ax) -> np.ndarray:
    values = [np.asarray(line.get_ydata(), dtype=float).ravel() for line in ax.get_lines()]
    for coll in ax.collections:
        for path in coll.get_paths():
            values.append(np.asarray(path.vertices, dtype=float)[:, 1])
    data = np.concatenate(values) if values else np.empty(0)
    return data[np.isfinite(data)]


def ylim_including_data(ax, preferred=(0.8, 1.005), min_span=0.05, margin=0.03):
    """Set the y-limits to ``preferred`` widened to include every finite value
    plotted on ``ax`` (so a diverged run is never cut off), at least
    ``min_span`` tall. Returns the limits."""
    lo, hi = preferred
    data = _finite_y(ax)
    if data.size:
        d_lo, d_hi = float(data.min()), float(data.max())
        pad = margin * max(d_hi - d_lo, min_span)
        if d_lo < lo:
            lo = d_lo - pad
        if d_hi > hi:
            hi = d_hi + pad
    if hi - lo < min_span:
        lo = hi - min_span
    ax.set_ylim(lo, hi)
    return lo, hi
