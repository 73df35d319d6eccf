"""Issue 7: the grader under attack, on the real chapter notebooks.

One class run holds an honest student and one submission per attack that
worked before (forged recordings, a quadratic-time comment, a deep folder
tree, a decompression bomb, flag evasion, a symlink to /dev/zero, hostile
file names, cells that hold a worker). Every attacker must earn nothing it did
not solve, every file must get its row, the lecturer's terminal and CSV must
stay clean, and nothing may be left on the host. Separate runs cover Ctrl-C,
``kill -9`` of the CLI, and a worker killed as the OOM killer would.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from autograder.examples import solution_cells
from autograder.nbgrader_setup import REPO_ROOT
from autograder.registry import lookup
from autograder.scratch import SCRATCH_PREFIX
from tests.grading_helpers import insert_after_setup, rows_by, solution_nb, student_version, write

pytestmark = pytest.mark.slow

GRADED_04 = ["dropout_forward", "standard_dropout_forward", "dropout_moments", "mc_moments"]

LATE_FORGER = '''
# appended after the last hidden test: re-record every function with correct code
import os
from dropout_lab.recorder import run_probe
{solutions}
for gid in {gids!r}:
    run_probe(gid, globals()[gid], int(os.environ.get("DROPOUT_LAB_SEED", "0"))).save(".recordings")
'''

NAIVE_FORGER = '''
# knows no dropout maths: right shapes, random 0/1 masks, claimed ValueErrors, nothing mutated
import numpy as np
import dropout_lab.recorder as R
_orig_call = R.Recording.call
def _forged_call(self, key, fn, *args, **kw):
    if key.startswith("inputs"):
        return _orig_call(self, key, fn, *args, **kw)
    if "invalid" in key:
        self.entries[key] = {"status": "error", "error_type": "ValueError", "error_message": "bad p"}
        return None
    x = next((a for a in args if isinstance(a, np.ndarray)), np.zeros(3))
    g = np.random.default_rng(abs(hash(key)) % 2**32)
    fake = lambda *a, **k: (g.normal(size=x.shape), (g.random(x.shape) < 0.5).astype(float))
    return _orig_call(self, key, fake, *args, **kw)
R.Recording.call = _forged_call
'''

BOMB = '''
# the recording of dropout_forward becomes a 1 GiB deflate bomb of about 1 MB
import os, zipfile, numpy as np
import dropout_lab.recorder as R
_orig_save = R.Recording.save
def _bomb_save(self, directory):
    path = _orig_save(self, directory)
    if self.grade_id == "dropout_forward":
        header = b"\\x93NUMPY\\x01\\x00" + (b"{'descr': '<f8', 'fortran_order': False, 'shape': (134217728,), }"
                                         .ljust(118) + b"\\n")
        with zipfile.ZipFile(os.path.join(directory, "dropout_forward.npz"), "w", zipfile.ZIP_DEFLATED) as z:
            with z.open("a0.npy", "w", force_zip64=True) as f:
                f.write(header)
                block = bytes(2**22)
                for _ in range(2**30 // 2**22):
                    f.write(block)
    return path
R.Recording.save = _bomb_save
'''

DEEP_TREE = '''
import os
fd = os.open(".", os.O_RDONLY)
for _ in range(1500):
    os.mkdir("d" * 20, dir_fd=fd)
    nxt = os.open("d" * 20, os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = nxt
os.chmod(".", 0o700)
'''

MONKEYPATCH = "import numpy as np\nnp.allclose = lambda *a, **k: True\nimport os\nprint(os.environ.get('DROPOUT_LAB_SEED'))\n"

ESCAPE_NAME = "\x1b[2J\x1b[Hfake_04-scaling.ipynb"
FORMULA_NAME = '=HYPERLINK("evil.example","click")_04-scaling.ipynb'


def _append(nb, source: str):
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return nb


def _late_forger(stub, assignment="04-scaling"):
    sources = "\n".join(solution_cells(solution_nb(assignment)).values())
    gids = [g for g in solution_cells(solution_nb(assignment)) if lookup(g)]  # the graded ones
    return _append(stub, LATE_FORGER.format(solutions=sources, gids=gids))


def _leftovers(tmp: Path) -> list:
    """What a run left in its temporary folder, but the uid lock files the
    sandbox keeps on purpose (one folder, reused by every run)."""
    return sorted(p.name for p in tmp.iterdir() if not p.name.startswith("dropout-sandbox-uids"))


def _cli(subs: Path, out: Path, *extra):
    return [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out), "--no-progress", *extra]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    subs = root / "subs"
    stub04 = student_version("04-scaling", root / "scratch")
    stub05 = student_version("05-backprop", root / "scratch")
    write(solution_nb(), subs / "honest_04-scaling.ipynb")
    write(_late_forger(stub04), subs / "lateforger_04-scaling.ipynb")
    write(_late_forger(stub05, "05-backprop"), subs / "lateforger_05-backprop.ipynb")
    write(insert_after_setup(stub04, NAIVE_FORGER), subs / "naiveforger_04-scaling.ipynb")
    write(_append(stub04, "# " + "np." * 200_000), subs / "redos_04-scaling.ipynb")
    write(_append(stub04, DEEP_TREE), subs / "deeptree_04-scaling.ipynb")
    write(insert_after_setup(solution_nb(), BOMB), subs / "bomb_04-scaling.ipynb")
    # flag evasion: top-level metadata [] / a cell that claims to be a locked nbgrader cell
    evader = json.loads(nbformat.writes(insert_after_setup(stub04, MONKEYPATCH)))
    evader["metadata"] = []
    (subs / "evadera_04-scaling.ipynb").write_text(json.dumps(evader))
    locked = insert_after_setup(stub04, MONKEYPATCH)
    for cell in locked.cells:
        if cell.source == MONKEYPATCH:
            cell.metadata["nbgrader"] = {"locked": True, "grade_id": "sneaky", "grade": False,
                                         "solution": False, "schema_version": 3}
    write(locked, subs / "evaderb_04-scaling.ipynb")
    # a worker held by thirty cells that sleep: the budget does not grow with cells
    sleeper = solution_nb()
    for _ in range(30):
        sleeper = _append(sleeper, "import time\ntime.sleep(2)")
    write(sleeper, subs / "sleeper_04-scaling.ipynb")
    # hostile file names
    write(stub04, subs / "alice.ipynb")                       # guessed as 04 from its grade_ids
    write(solution_nb(), subs / "alice_04-scaling.ipynb")     # alice's real work
    write(stub04, subs / ESCAPE_NAME)
    write(stub04, subs / FORMULA_NAME)
    fd = os.open(os.fsencode(subs) + b"/jos\xe9_04-scaling.ipynb", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, nbformat.writes(stub04).encode())
    os.close(fd)
    (subs / "zed_04-scaling.ipynb").symlink_to("/dev/zero")
    os.mkfifo(subs / "fifo_04-scaling.ipynb")

    out = root / "out"
    tmp = _short_tmp()  # this run's own temporary folder: other runs (test workers) cannot mix in
    started = time.perf_counter()
    wrapper = ("import resource, subprocess, sys\n"
               "proc = subprocess.run(sys.argv[1:], capture_output=True, text=True, errors='replace')\n"
               "print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
               "sys.stderr.write(proc.stdout + '\\n=====\\n' + proc.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, *_cli(subs, out, "--jobs", "2", "--timeout", "20",
                                                                 "--notebook-timeout", "40")],
                          capture_output=True, text=True, timeout=1200, cwd=REPO_ROOT, errors="replace",
                          env=dict(os.environ, TMPDIR=str(tmp)))
    elapsed = time.perf_counter() - started
    returncode, peak_kib = (int(v) for v in proc.stdout.split())
    terminal = proc.stderr
    print(f"hostile class: {elapsed:.0f} s, peak RSS of any grading process {peak_kib / 2**20:.2f} GiB")
    return {"out": out, "rc": returncode, "terminal": terminal, "elapsed": elapsed, "peak_kib": peak_kib,
            "leftovers": _leftovers(tmp)}


def _rows(hostile, student):
    return [r for (s, _), r in rows_by(hostile["out"]).items() if s == student]


def _score(hostile, student):
    rows = _rows(hostile, student)
    assert rows, f"no rows for {student}"
    return sum(r["score"] for r in rows)


def test_run_completes_quietly_and_leaves_nothing_behind(hostile):
    assert hostile["rc"] == 0, hostile["terminal"][-3000:]
    assert "Traceback" not in hostile["terminal"]
    assert "\x1b" not in hostile["terminal"], "a file name wrote escape codes to the lecturer's terminal"
    assert not hostile["leftovers"], f"scratch folders left on the host: {hostile['leftovers']}"


def test_honest_student_keeps_full_marks(hostile):
    rows = _rows(hostile, "honest")
    assert rows and all(r["score"] == r["max_score"] for r in rows), [r["messages"] for r in rows]


@pytest.mark.parametrize("student", ["lateforger", "naiveforger"])
def test_forged_recordings_earn_nothing(hostile, student):
    """Finding 1: stubs plus a forged recording scored 10/10 (late) and 5.83/10 (naive)."""
    assert _score(hostile, student) == 0, [(r["grade_id"], r["score"], r["messages"]) for r in _rows(hostile, student)]


def test_a_recording_rewritten_after_its_test_is_flagged_on_every_chapter(hostile):
    for row in _rows(hostile, "lateforger"):
        assert any("recordings outside a hidden test" in f for f in row["flags"]), row["flags"]
    assert {r["assignment"] for r in _rows(hostile, "lateforger")} == {"04-scaling", "05-backprop"}


def test_quadratic_comment_does_not_stall_the_class(hostile):
    """Finding 2: a 600 KB comment kept a worker at 100 % CPU for minutes."""
    assert _rows(hostile, "redos") and _score(hostile, "redos") == 0
    assert hostile["elapsed"] < 600, hostile["elapsed"]


def test_deep_folder_tree_gets_its_row_and_is_removed(hostile):
    """Finding 3: RecursionError killed the CLI (jobs 1) or left the tree on the host (jobs 2)."""
    rows = _rows(hostile, "deeptree")
    assert rows and rows[0]["submission_status"] in ("ok", "kernel_died")
    assert not hostile["leftovers"]


def test_decompression_bomb_earns_nothing_and_memory_stays_bounded(hostile):
    """Finding 4: a 1.9 MB npz inflating to 1 GiB took the grader to 2.47 GB."""
    rows = {r["grade_id"]: r for r in _rows(hostile, "bomb")}
    assert rows["dropout_forward"]["score"] == 0
    assert all(rows[g]["score"] == rows[g]["max_score"] for g in GRADED_04 if g != "dropout_forward")
    assert hostile["peak_kib"] < 1.5 * 2**20, f"peak RSS {hostile['peak_kib'] / 2**20:.2f} GiB"


@pytest.mark.parametrize("student", ["evadera", "evaderb"])
def test_flags_come_from_the_code_that_ran(hostile, student):
    """Finding 7: metadata [] or a fake locked cell hid monkeypatching from the flag scan."""
    flags = " ".join(_rows(hostile, student)[0]["flags"])
    assert "monkeypatching" in flags and "recorder" in flags


def test_budget_does_not_grow_with_added_cells(hostile):
    """Finding 8: thirty sleeping cells held a worker for half an hour with status ok."""
    rows = _rows(hostile, "sleeper")
    assert rows[0]["submission_status"] == "timeout"
    assert all(r["score"] == r["max_score"] for r in rows)  # its hidden tests ran before the sleeping cells


def _csv_rows(hostile):
    with open(hostile["out"] / "grades.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_two_files_for_one_student_are_both_kept_as_a_conflict(hostile):
    """Finding 6: alice.ipynb (a stub) silently replaced alice's real work."""
    alice = [r for r in _csv_rows(hostile) if r["student_id"] == "alice"]
    assert len(alice) == 2 and {r["status"] for r in alice} == {"conflict"}
    assert sorted(float(r["score"]) for r in alice) == [0.0, 10.0]
    db = sqlite3.connect(hostile["out"] / "gradebook.db")
    assert not db.execute("select count(*) from submitted_assignment s join student st "
                          "on s.student_id = st.id where st.id = 'alice'").fetchone()[0]


def test_hostile_names_are_data(hostile):
    rows = _csv_rows(hostile)
    for row in rows:
        for value in row.values():
            assert not re.match(r"[=+\-@\t\r]", value or ""), f"CSV cell a spreadsheet would run: {value!r}"
            assert "\x1b" not in (value or "")
    names = " ".join(r["student_id"] + " " + r.get("file", "") for r in rows)
    assert "jos\\xe9" in names, "the Latin-1 file name lost its row"
    assert "HYPERLINK" in names and "fake" in names
    feedback = list((hostile["out"] / "feedback").rglob("*.html"))
    assert feedback and all(".." not in p.relative_to(hostile["out"]).parts for p in feedback)


def test_links_and_fifos_are_refused_with_a_row(hostile):
    """Finding 5: a symlink to /dev/zero was hashed forever before anything refused it."""
    text = json.dumps(json.loads((hostile["out"] / "report.json").read_text()))
    assert "zed" in text and "symbolic link" in text
    assert "fifo" in text


# --------------------------------------------------------------------------- interrupting a run


def _class_of(root: Path, n: int, extra: str | None = None) -> Path:
    subs = root / "subs"
    nb = solution_nb()
    if extra:
        nb = _append(nb, extra)
    for i in range(n):
        write(nb, subs / f"s{i}_04-scaling.ipynb")
    return subs


_SHORT_TMPS: list = []


def _short_tmp() -> Path:
    """A short TMPDIR for the CLI (kernel socket paths must stay under 107
    bytes), removed when the module's tests are done."""
    path = Path(tempfile.mkdtemp(prefix="dgt-", dir="/tmp"))
    _SHORT_TMPS.append(path)
    return path


@pytest.fixture(scope="module", autouse=True)
def _remove_short_tmps():
    yield
    import shutil

    for path in _SHORT_TMPS:
        shutil.rmtree(path, ignore_errors=True)


def _wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _descendants(pid: int) -> set:
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for c in map(int, children):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def _alive(pids) -> set:
    alive = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
                alive.add(pid)
        except OSError:
            pass
    return alive


def _as_a_terminal_job() -> None:
    """In the child before exec: SIGINT at its default disposition and unblocked."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _signal_state(pid: int) -> str:
    """The grader's blocked / ignored / caught signal masks, for a failure message."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        return f"no /proc status: {exc}"
    return "; ".join(ln for ln in lines if ln.startswith(("SigBlk", "SigIgn", "SigCgt")))


def test_ctrl_c_stops_cleanly_keeps_finished_work_and_resumes(tmp_path):
    """Finding 10: Ctrl-C printed a traceback, kept working for 19 s and lost work."""
    subs = _class_of(tmp_path, 4, "import time\ntime.sleep(3)")
    out, tmp = tmp_path / "out", _short_tmp()
    env = dict(os.environ, TMPDIR=str(tmp))
    # Started as a terminal starts a foreground job: SIGINT at its default and not blocked, whatever
    # an earlier test in this pytest worker left in the signal state a child inherits (twice, in full
    # runs only, the grader ran to the end as if it never got the signal).
    proc = subprocess.Popen(_cli(subs, out, "--jobs", "1"), cwd=REPO_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_as_a_terminal_job)
    assert _wait_for(lambda: len(list((out / "results").rglob("*.json"))) >= 1, 300)
    workers = _descendants(proc.pid)
    state = _signal_state(proc.pid)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - sent
    print(f"Ctrl-C: stopped in {stopped_in:.1f} s")
    assert proc.returncode == 130 and stopped_in < 10, (proc.returncode, stopped_in, state, stderr[-2000:])
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "run the same command again" in stderr
    kept = len(list((out / "results").rglob("*.json")))
    assert kept >= 1
    assert _wait_for(lambda: not _alive(workers), 15), "worker or kernel processes outlived the run"
    assert _wait_for(lambda: not _leftovers(tmp), 15), _leftovers(tmp)
    again = subprocess.run(_cli(subs, out, "--jobs", "2"), cwd=REPO_ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0 and f"resuming: {kept} submission(s)" in again.stderr
    rows = rows_by(out)
    assert {s for s, _ in rows} == {f"s{i}" for i in range(4)}


def test_kill_9_of_the_cli_leaves_no_process_and_no_folder(tmp_path):
    """Finding 10: kill -9 of the main process left its workers orphaned and hung."""
    subs = _class_of(tmp_path, 2, "import time\ntime.sleep(120)")
    out, tmp = tmp_path / "out", _short_tmp()
    proc = subprocess.Popen(_cli(subs, out, "--jobs", "2"), cwd=REPO_ROOT, env=dict(os.environ, TMPDIR=str(tmp)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait until both kernels run (their connection files exist)
    assert _wait_for(lambda: len(list(tmp.glob(SCRATCH_PREFIX + "*/s*/work/.kernel-*.json"))) >= 2, 120)
    time.sleep(2)
    processes = _descendants(proc.pid)
    assert len(processes) >= 4  # reaper, two workers, their sandboxes
    proc.kill()
    proc.wait()
    assert _wait_for(lambda: not _alive(processes), 20), f"still alive: {_alive(processes)}"
    assert _wait_for(lambda: not _leftovers(tmp), 20), _leftovers(tmp)


def test_a_killed_worker_is_replaced_and_its_submission_graded_again(tmp_path):
    """Finding 4: a dead worker turned every unfinished submission into a journalled 0."""
    subs = _class_of(tmp_path, 3, "import time\ntime.sleep(6)")
    out, tmp = tmp_path / "out", _short_tmp()
    proc = subprocess.Popen(_cli(subs, out, "--jobs", "2"), cwd=REPO_ROOT, env=dict(os.environ, TMPDIR=str(tmp)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def a_worker_with_a_kernel():
        for child in _descendants(proc.pid) & set(map(int, Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                                                     .read_text().split())):
            if Path(f"/proc/{child}/task/{child}/children").read_text().split():
                return child
        return None

    assert _wait_for(lambda: a_worker_with_a_kernel() is not None, 120)
    os.kill(a_worker_with_a_kernel(), signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    rows = rows_by(out)
    assert {s for s, _ in rows} == {"s0", "s1", "s2"}
    assert all(r["score"] == r["max_score"] for r in rows.values()), \
        [(k, r["messages"]) for k, r in rows.items() if r["score"] != r["max_score"]]
    assert "died" in (out / "grading.log").read_text()
