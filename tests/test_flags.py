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


# Fragments that make a backtracking pattern restart at every repetition: the
# chain of attributes behind finding 2 of issue 7 ("# " + "np." * k took 23 s at
# 48 KB and grew 4x per doubling), plus the first tokens of every other pattern.
ADVERSARIAL = ["np.", "numpy.a", "torch.x ", "np.a =", "setattr(", "setattr( ", "def ", "def  __eq",
               "glob ", "glob.glob(", "**", "'/", "\"../", "os.listdir( ", " ", "\t=", "recorder",
               "socket", "a" * 7 + ".", "np.np", "glob *"]


@pytest.mark.parametrize("fragment", ADVERSARIAL)
def test_scanning_is_linear_time_on_adversarial_code(fragment):
    """600 KB of one repeated fragment (and of it mixed with a second) scans in
    well under a second; the old patterns needed minutes at this size."""
    import time

    for text in (fragment * (600_000 // len(fragment)),
                 (fragment + "np.glob ") * (600_000 // (len(fragment) + 8))):
        started = time.perf_counter()
        scan_sources(["# " + text])
        assert time.perf_counter() - started < 1.5, f"{fragment!r} took too long"


def test_oversized_code_is_capped_and_flagged():
    from autograder.flags import MAX_SCAN_CHARS, TOO_LARGE

    assert TOO_LARGE in scan_sources(["x = 1\n" * (MAX_SCAN_CHARS // 6 + 10)])
    assert TOO_LARGE not in scan_sources(["x = 1\n" * 1000])


def test_each_pattern_still_finds_what_it_is_for():
    cases = {
        "np.random.seed = 3": "monkeypatching", "torch . x = 1": None, "np.allclose == f": None,
        "setattr( np, 'x', 1)": "setattr", "get_ipython().set_custom_exc(())": "hook",
        "import glob\nglob.glob('/**/x', recursive=True)": "file system",
        "glob.glob('*.py')\nx = 2 ** 3": None, "open('/etc/passwd')": "outside",
        "open('.recordings/f.json', 'w')": "grader files", "def __eq__(self, o): pass": "protocol",
    }
    for code, word in cases.items():
        found = " ".join(scan_sources([code]))
        assert (word in found) if word else not found, (code, found)
