"""Adversarial submissions earn nothing they did not solve, leave the
gradebook and the host untouched, and are flagged.

Every attacker submits the untouched stubs plus one attack cell, graded in one
class run next to an honest full solution that must keep its full marks.
"""
import sqlite3
from pathlib import Path

import pytest

from tests.grading_helpers import (ASSIGNMENT, insert_after_setup, rows_by, run_grader, solution_nb,
                                   student_version, write)

pytestmark = pytest.mark.slow

HOST_MARKER = Path("/tmp/dropout-course-attack-marker")

ATTACKS = {
    "patch_numpy": "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
                   "np.isclose = lambda a, b, **k: np.ones(np.shape(a), bool)\n",
    "patch_torch": "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n",
    "patch_recorder": "import dropout_lab.recorder as r\nr.record = lambda *a, **k: None\n",
    "forge_recording": (
        "import os, json, numpy as np\n"
        "d = os.environ.get('DROPOUT_LAB_RECORD_DIR', '.')\n"
        "os.makedirs(d, exist_ok=True)\n"
        "import dropout_lab.recorder as r\n"
        "def fake(grade_id, fn):\n"
        "    np.savez(os.path.join(d, grade_id + '.npz'), a0=np.zeros(3))\n"
        "    json.dump({'format': 1, 'grade_id': grade_id, 'seed': int(os.environ.get('DROPOUT_LAB_SEED', 0)),\n"
        "               'entries': {'train p=0.5': {'status': 'ok', 'outputs': [{'kind': 'array', 'ref': 'a0',\n"
        "               'dtype': '<f8', 'shape': [3], 'type': 'x'}], 'mutated': []}}}, open(os.path.join(d, grade_id + '.json'), 'w'))\n"
        "r.record = fake\n"),
    "always_equal": (
        "import numpy as np\n"
        "class Yes(np.ndarray):\n"
        "    def __eq__(self, other): return True\n"
        "    def __array_ufunc__(self, *a, **k): return True\n"
        "def dropout_forward(x, p, rng, training=True):\n"
        "    return np.zeros_like(x).view(Yes), np.ones(x.shape).view(Yes)\n"),
    "import_reference": (
        "import sys\nsys.path[:0] = ['/work/main', '" + str(Path(__file__).resolve().parents[1]) + "']\n"
        "from autograder.reference.ch04_scaling import *\n"),
    "read_reference_file": (
        "import glob\nsrc = ''\n"
        "for p in glob.glob('/work/**/autograder/reference/*.py', recursive=True) + glob.glob('/**/ch04_scaling.py', recursive=True):\n"
        "    try: src += open(p).read()\n    except OSError: pass\n"
        "if 'def dropout_forward' in src and 'rng.random' in src: exec(src)\n"),
    "read_gradebook": (
        "import glob, sqlite3\n"
        "for p in glob.glob('/**/gradebook.db', recursive=True):\n"
        "    try: print(sqlite3.connect(p).execute('select source from source_cell').fetchall()[:1])\n"
        "    except Exception as e: print('no', e)\n"),
    "write_gradebook": (
        "import glob, sqlite3\n"
        "for p in glob.glob('/**/gradebook.db', recursive=True) + ['../../gradebook.db', '../../../gradebook.db']:\n"
        "    try:\n"
        "        db = sqlite3.connect(p); db.execute(\"update grade set auto_score = 999, manual_score = 999\"); db.commit()\n"
        "    except Exception as e: print('no', e)\n"),
    "read_other_students": (
        "import glob\n"
        "for p in glob.glob('../../**/*.ipynb', recursive=True) + glob.glob('/**/submitted/**/*.ipynb', recursive=True):\n"
        "    try: print(p, len(open(p).read()))\n    except OSError as e: print('no', e)\n"),
    "network": (
        "import socket\n"
        "for host in [('127.0.0.1', 22), ('8.8.8.8', 53), ('1.1.1.1', 443)]:\n"
        "    try: socket.create_connection(host, timeout=2); print('CONNECTED', host)\n"
        "    except OSError as e: print('no', e)\n"),
    "hide_errors": (
        "import sys\nsys.excepthook = lambda *a: None\n"
        "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"),
    "write_outside": (
        f"for p in ['{HOST_MARKER}', '/work/main/PWNED', '/root/PWNED', '../../PWNED']:\n"
        "    try: open(p, 'w').write('x'); print('wrote', p)\n    except OSError as e: print('no', e)\n"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    subs = root / "subs"
    stub = student_version(ASSIGNMENT, root / "scratch")
    write(solution_nb(), subs / f"honest_{ASSIGNMENT}.ipynb")
    for name, code in ATTACKS.items():
        write(insert_after_setup(stub, code), subs / f"{name}_{ASSIGNMENT}.ipynb")
    out = root / "out"
    HOST_MARKER.unlink(missing_ok=True)
    proc = run_grader(subs, out, "--jobs", "2", "--timeout", "30")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_earns_nothing_and_is_flagged(graded, attack):
    rows = [r for (s, _), r in rows_by(graded).items() if s == attack]
    assert rows, f"no rows for {attack}"
    assert all(r["score"] == 0 for r in rows), [(r["grade_id"], r["score"]) for r in rows]
    assert rows[0]["flags"], f"{attack} was not flagged"


def test_honest_student_beside_attackers_keeps_full_marks(graded):
    rows = [r for (s, _), r in rows_by(graded).items() if s == "honest"]
    assert rows and all(r["score"] == r["max_score"] for r in rows), [r["messages"] for r in rows]


def test_gradebook_and_host_untouched(graded):
    db = sqlite3.connect(graded / "gradebook.db")
    scores = db.execute("select auto_score, manual_score from grade").fetchall()
    assert all(m is None for _, m in scores), "a manual score appeared: the gradebook was written from a kernel"
    assert all(a is None or a <= 4 for a, _ in scores)
    assert not HOST_MARKER.exists()
    assert not Path("/work/main/PWNED").exists() and not Path("/root/PWNED").exists()
    assert not (graded / "PWNED").exists() and not Path("/PWNED").exists()
    # Work dirs are private temp folders, removed after each submission.
    import tempfile

    assert not any(p.name == "PWNED" for p in Path(tempfile.gettempdir()).glob("*/PWNED"))
