"""dropout_lab: the helpers students import in the course notebooks.

Everything here is public: data loading, small reference-free networks,
a training loop, seeding, a plotting style, the grading-mode switch and the
recorder that hidden tests use. Nothing in this package knows the solutions.
"""
from .grading_mode import is_grading, scaled
from .seeding import seed_everything, make_rng, make_generator

__all__ = ["is_grading", "scaled", "seed_everything", "make_rng", "make_generator"]
__version__ = "0.1.0"
