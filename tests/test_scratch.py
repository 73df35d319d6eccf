"""Host folders a kernel wrote into are measured and removed whatever the
kernel did to them (issue 7, finding 3: a deep folder tree made relative to an
open folder handle made os.walk and shutil.rmtree raise RecursionError)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autograder.scratch import RunScratch, remove_tree, tree_usage


def make_deep_tree(root: Path, depth: int = 1500) -> None:
    """``depth`` nested folders (deeper than PATH_MAX allows by path), made as
    the attack did: each relative to the handle of its parent."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d" * 20, dir_fd=fd)
        nxt = os.open("d" * 20, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    with open(os.open("deep-secret", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "w") as fh:
        fh.write("x" * 1000)
    os.close(fd)


def make_hostile_tree(root: Path, outside: Path) -> None:
    (root / "a").mkdir()
    make_deep_tree(root / "a")
    (root / "link-out").symlink_to(outside)              # must not be followed
    (root / "link-dir").symlink_to(outside.parent)
    os.mkfifo(root / "fifo")
    locked = root / "locked" / "inner"
    locked.mkdir(parents=True)
    (locked / "f").write_text("x")
    os.chmod(locked, 0)
    os.chmod(root / "locked", 0)


def test_deep_hostile_tree_is_removed_and_nothing_outside_is_touched(tmp_path):
    outside = tmp_path / "host-file"
    outside.write_text("keep me")
    work = tmp_path / "work"
    work.mkdir()
    make_hostile_tree(work, outside)
    started = time.perf_counter()
    assert remove_tree(work)
    assert time.perf_counter() - started < 10
    assert not work.exists() and outside.read_text() == "keep me" and tmp_path.exists()


def test_usage_counts_folders_and_flags_deep_trees(tmp_path):
    make_deep_tree(tmp_path, depth=100)
    used, entries, too_deep = tree_usage(tmp_path, max_entries=10_000)
    assert too_deep and entries >= 64
    shallow = tmp_path / "shallow"
    shallow.mkdir()
    (shallow / "f").write_bytes(b"x" * 5000)
    used, entries, too_deep = tree_usage(shallow, max_entries=10_000)
    assert (used, entries, too_deep) == (5000, 1, False)


def test_remove_tree_of_a_file_a_link_and_nothing(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    assert remove_tree(f) and remove_tree(link) and remove_tree(tmp_path / "missing")
    assert target.is_dir()


def test_a_killed_process_leaves_no_scratch_folder(tmp_path):
    """The reaper removes a run's folder when its owner is killed with SIGKILL."""
    code = ("import sys, time, os\nsys.path.insert(0, %r)\n"
            "from autograder.scratch import RunScratch\n"
            "s = RunScratch()\nf = s.new_folder()\n(f / 'x').write_text('x')\nos.mkdir(f / 'locked')\n"
            "os.chmod(f / 'locked', 0)\nprint(s.root, flush=True)\ntime.sleep(60)\n"
            % str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    root = Path(proc.stdout.readline().strip())
    assert root.is_dir()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while root.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not root.exists()


def test_run_scratch_closes_cleanly():
    with RunScratch() as scratch:
        folder = scratch.new_folder()
        make_deep_tree(folder, depth=300)
    assert not scratch.root.exists()
