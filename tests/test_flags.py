"""Flags mark suspicious code for review without touching honest code."""
import pytest

from autograder.flags import scan_sources
from tests.test_attacks import ATTACKS


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_in_the_corpus_is_flagged(name):
    assert scan_sources([ATTACKS[name]]), name


def test_honest_dropout_code_is_not_flagged():
    honest = [
        "def dropout_forward(x, p, rng, training=True):\n"
        "    if not 0 <= p <= 1:\n        raise ValueError(f'p={p}')\n"
        "    if not training:\n        return x, None\n"
        "    mask = rng.random(x.shape) >= p\n"
        "    out = np.zeros_like(x) if p == 1 else x * mask / (1 - p)\n    return out, mask\n",
        "import numpy as np\nx = np.ones(3)\nassert np.allclose(x, 1)\nplt.plot(x)\n",
    ]
    assert scan_sources(honest) == []
