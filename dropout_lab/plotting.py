"""One plotting style for every figure in the course."""
import matplotlib

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
    +-1 standard deviation band; returns the line."""
    import numpy as np

    runs = np.asarray(runs, dtype=float)
    mean, std = runs.mean(axis=0), runs.std(axis=0)
    (line,) = ax.plot(x, mean, label=label, color=color)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    return line
