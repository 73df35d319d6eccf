"""Acceptance bounds for statistical checks.

Every statistical check is two-sided with total false-failure probability
``ALPHA = 1e-10`` for a correct implementation, which is below the 1e-9 per
check the design asks for. Bounds come from exact binomial quantiles or from
Gaussian tails with a stated, conservative z.
"""
from __future__ import annotations

import math

from scipy import stats

#: False-failure probability of one statistical check (two-sided total).
ALPHA = 1e-10
#: z with P(|Z| > z) = ALPHA for a standard normal: about 6.47.
Z_ALPHA = float(stats.norm.isf(ALPHA / 2))


def binomial_bounds(n: int, prob: float, alpha: float = ALPHA) -> tuple[int, int]:
    """Acceptance interval [lo, hi] for a Binomial(n, prob) count with
    P(count outside) <= alpha."""
    if prob <= 0:
        return 0, 0
    if prob >= 1:
        return n, n
    lo = int(stats.binom.ppf(alpha / 2, n, prob))
    hi = int(stats.binom.isf(alpha / 2, n, prob)) + 1
    return max(lo, 0), min(hi, n)


def mean_bound(std: float, n: int, z: float = Z_ALPHA) -> float:
    """Half-width z * std / sqrt(n) for a sample mean; by the CLT the mean of
    n i.i.d. draws with this std leaves it with probability about ALPHA. Callers
    use n >= 1000 so the Gaussian approximation is sound, and pass a bounded
    std (an upper bound, not an estimate) to stay conservative."""
    return z * std / math.sqrt(n)
