"""The bubblewrap sandbox and the rlimit launcher (autograder.sandbox)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.sandbox import (SandboxPolicy, SandboxedKernelManager, UidLease, chown_tree,
                                kernel_env, run_sandboxed)

REPO = Path(__file__).resolve().parents[1]
needs_bwrap = pytest.mark.skipif(not sandbox.bwrap_available(),
                                 reason="bubblewrap (bwrap) is not installed or cannot create namespaces")
PY = sys.executable


def py(code: str, workdir: Path, **kw) -> subprocess.CompletedProcess:
    return run_sandboxed([PY, "-c", code], workdir, capture_output=True, text=True, **kw)


def test_policy_defaults_and_rlimits():
    p = SandboxPolicy()
    assert p.memory_bytes == 3 * 2**30 and p.cpu_seconds == 300 and p.max_processes == 64
    assert p.rlimits()["RLIMIT_FSIZE"] == 64 * 2**20 and p.rlimits()["RLIMIT_CORE"] == 0


def test_bwrap_can_be_forced_off(monkeypatch):
    monkeypatch.setenv("DROPOUT_LAB_NO_SANDBOX", "1")
    assert sandbox.bwrap_available() is False


def test_kernel_env_is_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    env = kernel_env(tmp_path, seed=7, extra_env={"FOO": 1})
    assert "AWS_SECRET_ACCESS_KEY" not in env and "JPY_PARENT_PID" not in env
    assert env["HOME"] == str(tmp_path.resolve())
    assert env["DROPOUT_LAB_SEED"] == "7" and env["FOO"] == "1"
    assert env["DROPOUT_LAB_RECORD_DIR"] == str(tmp_path.resolve() / ".recordings")
    assert env["MPLBACKEND"] == "Agg" and env["NBGRADER_EXECUTION"] == "autograde"
    assert env["OMP_NUM_THREADS"] == "1"


def test_rlimits_without_bwrap(tmp_path):
    policy = SandboxPolicy(memory_bytes=2**30, cpu_seconds=17, max_file_bytes=2**20)
    code = ("import resource as r, json\n"
            "print(json.dumps([r.getrlimit(getattr(r, n))[0] for n in "
            "('RLIMIT_AS', 'RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_CORE')]))\n"
            "try:\n    open('f', 'wb').write(b'0' * (2 * 2**20))\nexcept OSError as e:\n    print('EFBIG', e.errno)\n"
            "try:\n    bytearray(2 * 2**30)\nexcept MemoryError:\n    print('MemoryError')\n")
    out = py(code, tmp_path, policy=policy, use_bwrap=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert json.loads(lines[0]) == [2**30, 17, 2**20, 0]
    assert "EFBIG 27" in out.stdout and "MemoryError" in out.stdout


def test_cpu_limit_kills_a_spinning_process(tmp_path):
    out = py("while True: pass", tmp_path, policy=SandboxPolicy(cpu_seconds=1), use_bwrap=False, timeout=30)
    assert out.returncode in (-9, -24, 137, 152)  # SIGXCPU (24) then SIGKILL


def test_chown_tree_never_follows_links(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    target = tmp_path / "host-file"
    target.write_text("x")
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "sub" / "f").write_text("y")
    (work / "link").symlink_to(target)
    chown_tree(work, 123456)
    assert (work / "sub" / "f").stat().st_uid == 123456
    assert os.lstat(work / "link").st_uid == 123456
    assert target.stat().st_uid == 0


def test_uid_leases_are_distinct():
    if os.geteuid() != 0:
        pytest.skip("uids are only leased when the grader runs as root")
    a, b = UidLease(), UidLease()
    try:
        assert a.uid != b.uid and a.uid >= sandbox.SANDBOX_UID_BASE
    finally:
        a.release()
        b.release()


@needs_bwrap
def test_filesystem_view(tmp_path):
    pkg = tmp_path / "pub" / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 41\n")
    work = tmp_path / "work"
    work.mkdir()
    policy = SandboxPolicy(readonly_paths=(str(pkg),))
    code = f"""
import json, os, sys
import mypkg
r = {{'value': mypkg.VALUE + 1, 'uid': os.getuid(), 'pid': os.getpid(), 'cwd': os.getcwd(),
     'repo': sorted(os.listdir({str(REPO)!r})), 'tmp_parent': sorted(os.listdir({str(tmp_path)!r})),
     'prefix': sys.prefix}}
def w(p):
    try:
        open(p, 'w').write('x'); return True
    except OSError:
        return False
r['w_pkg'] = w({str(pkg / 'evil.py')!r})
r['w_work'] = w('ok.txt')
r['w_tmp'] = w('/tmp/ok.txt')
r['w_root'] = w('/evil')
print(json.dumps(r))
"""
    out = py(code, work, policy=policy)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["value"] == 42
    assert r["pid"] < 10 and r["cwd"] == str(work.resolve())
    assert r["repo"] == [".venv"]            # autograder/, solutions/, gradebooks are not there
    assert r["tmp_parent"] == ["pub", "work"]
    assert r["prefix"] == sys.prefix
    assert (r["w_pkg"], r["w_work"], r["w_tmp"], r["w_root"]) == (False, True, True, False)
    if os.geteuid() == 0:
        assert r["uid"] >= sandbox.SANDBOX_UID_BASE
    assert not (pkg / "evil.py").exists()


@needs_bwrap
def test_no_network(tmp_path):
    code = ("import socket\nres = []\nfor h, p in [('127.0.0.1', 22), ('1.1.1.1', 53)]:\n"
            "    s = socket.socket(); s.settimeout(2)\n"
            "    try:\n        s.connect((h, p)); res.append('open')\n"
            "    except OSError as e:\n        res.append(type(e).__name__)\n"
            "print(res)\nimport os\nprint(sorted(os.listdir('/sys/class/net')) if os.path.exists('/sys/class/net') else 'nosys')")
    out = py(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "open" not in out.stdout


@needs_bwrap
def test_private_tmp_is_capped(tmp_path):
    if not sandbox._bwrap_probe()[1]:
        pytest.skip("this bwrap has no --size")
    code = ("try:\n    open('/tmp/big', 'wb').write(b'0' * (8 * 2**20))\n    print('wrote')\n"
            "except OSError as e:\n    print('ENOSPC', e.errno)")
    out = py(code, tmp_path, policy=SandboxPolicy(tmp_bytes=2**20))
    assert "ENOSPC 28" in out.stdout, out.stdout + out.stderr


@needs_bwrap
def test_process_limit(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("RLIMIT_NPROC counts all processes of a non-root user; checked as root only")
    code = ("import threading, time\nn = 0\ntry:\n    for _ in range(1000):\n"
            "        threading.Thread(target=time.sleep, args=(5,), daemon=True).start(); n += 1\n"
            "except RuntimeError:\n    pass\nprint(n)")
    out = py(code, tmp_path, policy=SandboxPolicy(max_processes=20))
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 20


@pytest.mark.slow
@needs_bwrap
def test_fork_bomb_dies_with_the_sandbox(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (RLIMIT_NPROC is only reliable with a dedicated uid)")
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    lease = UidLease()
    try:
        t0 = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired):
            py(code, tmp_path, timeout=3, uid=lease.uid)
        assert time.monotonic() - t0 < 15
        for _ in range(50):  # the pid namespace dies with bwrap; give the kernel a moment
            uids = subprocess.run(["ps", "-eo", "uid="], capture_output=True, text=True).stdout.split()
            if str(lease.uid) not in uids:
                break
            time.sleep(0.1)
        assert str(lease.uid) not in uids
    finally:
        lease.release()
    # the host can still start processes
    assert subprocess.run(["true"]).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("use_bwrap", [True, False])
def test_kernel_manager_starts_fast_and_interrupts(tmp_path, use_bwrap):
    if use_bwrap and not sandbox.bwrap_available():
        pytest.skip("bubblewrap (bwrap) is not available")
    lease = UidLease() if use_bwrap else None
    uid = lease.uid if lease else None
    chown_tree(tmp_path, uid)
    km = SandboxedKernelManager(workdir=str(tmp_path), use_bwrap=use_bwrap, sandbox_uid=uid,
                                sandbox_env=kernel_env(tmp_path, seed=1))
    t0 = time.monotonic()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        start = time.monotonic() - t0
        print(f"kernel start (bwrap={use_bwrap}): {start:.2f} s")
        # ~1.0 s measured on a 2-core CI box (bench/ measures it against the 1.5 s design
        # budget); this only catches a start that hangs, not one that is a little slow
        assert start < 15
        assert km.connection_file.startswith(str(tmp_path.resolve()))
        reply = kc.execute_interactive("import os; x = os.getpid()", timeout=10)
        assert reply["content"]["status"] == "ok"
        loop_id = kc.execute("while True:\n    pass", stop_on_error=False)
        # an idle kernel ignores SIGINT: interrupt only once the loop is running
        while True:
            msg = kc.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") == loop_id and msg["msg_type"] == "execute_input":
                break
        time.sleep(0.2)
        km.interrupt_kernel()
        msg = kc.get_shell_msg(timeout=10)
        assert msg["content"]["ename"] == "KeyboardInterrupt"
        assert kc.execute_interactive("y = 1", timeout=10)["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        if lease:
            lease.release()
    assert not list(tmp_path.glob(".kernel-*"))


def test_process_limit_counts_only_the_kernels_own_tasks(monkeypatch):
    """A dedicated uid gets exactly max_processes; a shared uid gets the user's
    current tasks plus a headroom on top, so other programs cannot starve it."""
    policy = SandboxPolicy(max_processes=64)

    def nproc(cmd):
        return json.loads(cmd[-1])["rlimits"]["RLIMIT_NPROC"]

    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    assert nproc(sandbox.launcher_command(["true"], policy, uid=70001)) == 64
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sandbox, "_count_tasks", lambda uid: 37)
    assert nproc(sandbox.launcher_command(["true"], policy)) == 64 + 37 + sandbox.SHARED_UID_TASK_HEADROOM
    monkeypatch.setattr(sandbox, "_count_tasks", lambda uid: None)  # no /proc: no limit we could trust
    assert "RLIMIT_NPROC" not in json.loads(sandbox.launcher_command(["true"], policy)[-1])["rlimits"]


@needs_bwrap
def test_sandbox_root_is_read_only_even_for_the_graders_own_uid(tmp_path):
    """Without a leased uid (a non-root grader) the kernel owns bwrap's root tmpfs;
    it must still not write there (found running the suite as a non-root user)."""
    code = ("def w(p):\n    try:\n        open(p, 'w').write('x'); return True\n"
            "    except OSError:\n        return False\n"
            "print(w('/evil'), w('/etc/evil'), w('/tmp/ok'), w('ok'))")
    proc = subprocess.run(sandbox.bwrap_command([PY, "-I", "-c", code], tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False", "True", "True"]


def _fake_bwrap(monkeypatch, outcomes: list):
    """bwrap 'runs' return the exit codes in ``outcomes`` in turn; returns the commands run."""
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        code = outcomes.pop(0) if outcomes else 0
        return subprocess.CompletedProcess(cmd, code, stdout=None, stderr=b"bwrap: Creating new namespace failed")

    monkeypatch.setattr(sandbox, "_bwrap_path", lambda: "/usr/bin/bwrap")
    monkeypatch.setattr(sandbox.subprocess, "run", fake_run)
    monkeypatch.setattr(sandbox, "PROBE_PAUSE_S", 0.0)
    sandbox._bwrap_probe.cache_clear()
    return calls


def test_a_probe_failing_once_does_not_downgrade_the_run(monkeypatch, caplog):
    """Seen in full test runs: one failed namespace creation on a loaded host sent a whole grading
    run to the rlimit-only fallback. The probe is tried again before giving up."""
    monkeypatch.delenv("DROPOUT_LAB_NO_SANDBOX", raising=False)
    try:
        _fake_bwrap(monkeypatch, [1, 0, 0])
        with caplog.at_level("WARNING"):
            assert sandbox.bwrap_available() is True
        assert "probe 1 of 3 failed: exit code 1: bwrap: Creating new namespace failed" in caplog.text
    finally:
        sandbox._bwrap_probe.cache_clear()


def test_a_probe_that_always_fails_falls_back_and_says_why(monkeypatch, caplog):
    monkeypatch.delenv("DROPOUT_LAB_NO_SANDBOX", raising=False)
    try:
        calls = _fake_bwrap(monkeypatch, [1, 1, 1])
        with caplog.at_level("WARNING"):
            assert sandbox.bwrap_available() is False
        assert len(calls) == sandbox.PROBE_ATTEMPTS == 3
        assert "probe 3 of 3 failed" in caplog.text
    finally:
        sandbox._bwrap_probe.cache_clear()
