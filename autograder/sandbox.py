"""Run a student's Jupyter kernel in a bubblewrap sandbox with resource limits.

The kernel sees a minimal file system: the system directories (``/usr``, the
``/lib*`` links, a few files from ``/etc``), the Python installation that runs
the grader (``sys.base_prefix`` and ``sys.prefix``, both read-only), the paths
listed in :attr:`SandboxPolicy.readonly_paths` (read-only), its own work
directory (read-write) and a private ``/tmp``. Nothing else exists inside: not
the gradebook, not ``autograder/``, not ``solutions/``, not another student's
work directory. There is no network (a fresh network namespace), the kernel is
PID 2 in its own PID namespace, it runs as an unprivileged uid chosen for this
run (when the grader runs as root), and rlimits cap its memory, CPU time,
processes and file sizes.

Where bwrap is missing or cannot start (macOS, a locked-down container) the
kernel runs unsandboxed with the rlimits only, and a loud warning is logged.

The client talks to the kernel over ZeroMQ ``ipc`` sockets that live in the
work directory: TCP on the host's loopback is unreachable from inside a new
network namespace, by design.
"""
from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client import AsyncKernelManager, KernelManager
from jupyter_client.utils import run_sync
from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Unicode, default
from traitlets.config import LoggingConfigurable

log = logging.getLogger(__name__)

#: uids handed to sandboxed kernels when the grader runs as root. Each running
#: kernel gets its own uid, so RLIMIT_NPROC (counted per uid) of one kernel never
#: starves another kernel graded in parallel.
SANDBOX_UID_BASE = 200_000
SANDBOX_UID_COUNT = 4096

#: files from /etc the kernel may need (dynamic linker, users, time zone, TLS
#: roots, fonts); the rest of /etc stays invisible.
ETC_FILES = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
    "/etc/localtime", "/etc/timezone", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
    "/etc/hosts", "/etc/host.conf", "/etc/os-release", "/etc/mime.types", "/etc/fonts",
    "/etc/ssl/certs", "/etc/ca-certificates", "/etc/matplotlibrc", "/etc/gai.conf",
)


@dataclass(frozen=True)
class SandboxPolicy:
    """Limits and extra mounts for one sandboxed kernel."""

    #: RLIMIT_AS (address space) of the kernel. torch + numpy + matplotlib peak at
    #: about 1.0 GiB of address space; 3 GiB leaves room for real work.
    memory_bytes: int = 3 * 2**30
    #: RLIMIT_CPU of the kernel process (seconds of CPU, not wall time).
    cpu_seconds: int = 300
    #: RLIMIT_NPROC (processes AND threads of the kernel's uid).
    max_processes: int = 64
    #: RLIMIT_FSIZE: the largest file the kernel may write.
    max_file_bytes: int = 64 * 2**20
    #: extra host paths bound read-only at the same place (e.g. the public
    #: package directory). A directory holding ``__init__.py`` is importable:
    #: its parent is put on the kernel's PYTHONPATH.
    readonly_paths: tuple[str, ...] = ()
    #: size of the private /tmp (a tmpfs in memory).
    tmp_bytes: int = 256 * 2**20
    #: total bytes and files the kernel may keep in its work dir; RLIMIT_FSIZE
    #: caps one file only, so a loop of big files is stopped by DiskGuard.
    max_workdir_bytes: int = 512 * 2**20
    max_workdir_files: int = 5000

    def rlimits(self) -> dict[str, int]:
        return {
            "RLIMIT_AS": int(self.memory_bytes),
            "RLIMIT_CPU": int(self.cpu_seconds),
            "RLIMIT_NPROC": int(self.max_processes),
            "RLIMIT_FSIZE": int(self.max_file_bytes),
            "RLIMIT_CORE": 0,
        }


# --------------------------------------------------------------------------- bwrap


def _bwrap_path() -> str | None:
    return shutil.which("bwrap")


#: Attempts of the bwrap probe: a namespace creation that fails once on a loaded host (seen in
#: full test runs, never alone) must not silently downgrade a whole run to the rlimit fallback.
PROBE_ATTEMPTS = 3
PROBE_PAUSE_S = 0.5


@functools.lru_cache(maxsize=1)
def _bwrap_probe() -> tuple[bool, bool]:
    """(bwrap works with our namespaces, bwrap accepts --size). A failing probe is tried again
    (``PROBE_ATTEMPTS`` in all) before the fallback; its last error is logged."""
    exe = _bwrap_path()
    if not sys.platform.startswith("linux") or exe is None:
        return False, False
    base = [exe, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--unshare-ipc",
            "--die-with-parent"]
    for attempt in range(1, PROBE_ATTEMPTS + 1):
        works, why = _bwrap_runs(base + ["--", "true"])
        if works:
            return True, _bwrap_runs(base + ["--size", str(2**20), "--tmpfs", "/tmp", "--", "true"])[0]
        log.warning("bubblewrap probe %d of %d failed: %s", attempt, PROBE_ATTEMPTS, why)
        if attempt < PROBE_ATTEMPTS:
            time.sleep(PROBE_PAUSE_S * attempt)
    return False, False


def _bwrap_runs(cmd: list) -> tuple[bool, str]:
    """(``cmd`` exited 0, why not: its exit code and the end of its stderr)."""
    try:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    why = f"exit code {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[-300:]}"
    return proc.returncode == 0, why


def bwrap_available() -> bool:
    """True when bubblewrap is installed and can create the namespaces we use.

    The environment variable ``DROPOUT_LAB_NO_SANDBOX=1`` forces False (the
    rlimit-only fallback), for debugging only.
    """
    if os.environ.get("DROPOUT_LAB_NO_SANDBOX") == "1":
        return False
    return _bwrap_probe()[0]


# --------------------------------------------------------------------------- uids


class UidLease:
    """An unprivileged uid reserved for one kernel (a lock file held open).

    Only meaningful when the grader runs as root; otherwise the kernel keeps the
    grader's uid and ``uid`` is None.
    """

    def __init__(self) -> None:
        self.uid: int | None = None
        self._fd: int | None = None
        if os.geteuid() != 0:
            return
        lock_dir = Path(tempfile.gettempdir()) / f"dropout-sandbox-uids-{os.geteuid()}"
        lock_dir.mkdir(mode=0o700, exist_ok=True)
        start = (os.getpid() * 7) % SANDBOX_UID_COUNT
        for i in range(SANDBOX_UID_COUNT):
            uid = SANDBOX_UID_BASE + (start + i) % SANDBOX_UID_COUNT
            fd = os.open(lock_dir / f"{uid}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise RuntimeError("no free sandbox uid")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.release()
        except Exception:
            pass


def chown_tree(root: Path, uid: int | None, gid: int | None = None) -> None:
    """Give ``root`` and everything below it to ``uid`` without following links.

    Student folders may hold symbolic links to anywhere on the host: lchown
    changes the link itself, never its target.
    """
    if uid is None:
        return
    gid = uid if gid is None else gid
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            try:
                os.lchown(os.path.join(dirpath, name), uid, gid)
            except FileNotFoundError:
                pass


# --------------------------------------------------------------------------- commands

#: Runs first inside the sandbox (python -I -S, so it starts in ~10 ms): applies
#: the rlimits, drops to the sandbox uid, and execs the real kernel command.
_LAUNCHER = r"""
import json, os, resource, signal, sys
spec = json.loads(sys.argv[1])
for name, value in spec["rlimits"].items():
    lim = getattr(resource, name, None)
    if lim is None:
        continue
    try:
        hard = resource.getrlimit(lim)[1]
        if hard != resource.RLIM_INFINITY and value > hard:
            value = hard
        resource.setrlimit(lim, (value, value))
    except (ValueError, OSError) as exc:
        sys.stderr.write("sandbox: cannot set %s: %s\n" % (name, exc))
uid = spec.get("uid")
if uid is not None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        sys.exit("sandbox: failed to drop privileges")
signal.signal(signal.SIGINT, signal.SIG_DFL)
try:  # die with the process that started us, even if it is SIGKILLed
    import ctypes
    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
except Exception:
    pass
os.umask(0o077)
argv = spec["argv"]
os.execv(argv[0], argv)
"""


#: extra tasks allowed when the kernel shares the user's uid (see launcher_command).
SHARED_UID_TASK_HEADROOM = 512


def _count_tasks(uid: int) -> int | None:
    """Processes and threads of ``uid`` now (Linux /proc), None where unknown."""
    if not os.path.isdir("/proc/self/task"):
        return None
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                n += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return n


def launcher_command(argv: list[str], policy: SandboxPolicy, uid: int | None = None,
                     python: str | None = None) -> list[str]:
    """Wrap ``argv`` so that it runs with the policy's rlimits (and as ``uid``).

    RLIMIT_NPROC counts every task of a uid on the host. With a dedicated uid
    (root grader) that is exactly the kernel's; otherwise the user's current
    task count plus a headroom is added, because the user's other programs
    (another grading worker, a browser) keep starting threads under the same
    uid after this snapshot and must not starve the kernel. The fork bomb is
    then held by the pid namespace and the CPU limit. Without /proc (macOS)
    RLIMIT_NPROC is left alone."""
    rlimits = policy.rlimits()
    if uid is None and os.geteuid() != 0:
        count = _count_tasks(os.getuid())
        if count is None:
            rlimits.pop("RLIMIT_NPROC")
        else:
            rlimits["RLIMIT_NPROC"] += count + SHARED_UID_TASK_HEADROOM
    spec = {"rlimits": rlimits, "uid": uid, "argv": list(argv)}
    return [python or sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(spec)]


def python_roots() -> list[str]:
    """Host directories holding the Python installation that runs the grader."""
    roots: list[str] = []
    for p in (sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))):
        rp = os.path.realpath(p)
        if os.path.basename(rp) == "bin" and p not in (sys.base_prefix, sys.prefix):
            rp = os.path.dirname(rp)
        if not any(rp == r or rp.startswith(r + os.sep) for r in roots) and rp != "/":
            roots = [r for r in roots if not r.startswith(rp + os.sep)] + [rp]
    return [r for r in roots if not (r == "/usr" or r.startswith("/usr/"))]


def kernel_env(workdir: str | os.PathLike, seed: int | None = None,
               policy: SandboxPolicy = SandboxPolicy(),
               extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a sandboxed kernel: nothing comes from the host."""
    wd = os.path.realpath(workdir)
    venv_bin = os.path.join(sys.prefix, "bin")
    env = {
        "PATH": os.pathsep.join([venv_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": wd,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "NBGRADER_EXECUTION": "autograde",
        "DROPOUT_LAB_RECORD_DIR": os.path.join(wd, ".recordings"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "TQDM_DISABLE": "1",
    }
    if seed is not None:
        env["DROPOUT_LAB_SEED"] = str(int(seed))
    pkg_parents = []
    for p in policy.readonly_paths:
        rp = os.path.realpath(p)
        if os.path.isfile(os.path.join(rp, "__init__.py")):
            parent = os.path.dirname(rp)
            if parent not in pkg_parents:
                pkg_parents.append(parent)
    if pkg_parents:
        env["PYTHONPATH"] = os.pathsep.join(pkg_parents)
    for k, v in (extra_env or {}).items():
        env[str(k)] = str(v)
    return env


def _parents(path: str) -> list[str]:
    out = []
    p = os.path.dirname(path)
    while p not in ("/", ""):
        out.append(p)
        p = os.path.dirname(p)
    return out[::-1]


def bwrap_command(argv: list[str], workdir: str | os.PathLike, *,
                  policy: SandboxPolicy = SandboxPolicy(), env: dict[str, str] | None = None,
                  uid: int | None = None) -> list[str]:
    """The bwrap command line that runs ``argv`` (already wrapped by the launcher
    or not) in the sandbox with ``workdir`` as the only writable host folder."""
    exe = _bwrap_path()
    if exe is None:
        raise RuntimeError("bwrap is not installed")
    wd = os.path.realpath(workdir)
    args = [exe, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent",
            "--new-session"]
    args += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for f in ETC_FILES:
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    args += ["--proc", "/proc", "--dev", "/dev"]
    if _bwrap_probe()[1]:
        args += ["--size", str(int(policy.tmp_bytes))]
    args += ["--perms", "1777", "--tmpfs", "/tmp"]

    made: set[str] = {"/usr", "/tmp", "/proc", "/dev", "/etc"}

    def mkdirs(path: str) -> None:
        for parent in _parents(path):
            if parent in made or any(parent.startswith(m + "/") for m in ("/usr", "/proc", "/dev")):
                continue
            args.extend(["--perms", "0755", "--dir", parent])
            made.add(parent)

    ro = python_roots() + [os.path.realpath(p) for p in policy.readonly_paths]
    for p in ro:
        if not os.path.exists(p):
            log.warning("sandbox: read-only path %s does not exist; not bound", p)
            continue
        mkdirs(p)
        args += ["--ro-bind", p, p]
        made.add(p)
    mkdirs(wd)
    args += ["--bind", wd, wd]
    # bwrap's root is a tmpfs that an unprivileged (user-namespace) caller owns:
    # without this, a non-root grader's kernel could write /etc/x or fill RAM
    # under /. /tmp and the work dir are separate mounts and stay writable.
    args += ["--remount-ro", "/", "--chdir", wd]
    args += ["--clearenv"]
    for k, v in (env or {}).items():
        args += ["--setenv", k, v]
    args += ["--"] + list(argv)
    return args


def sandboxed_command(argv: list[str], workdir: str | os.PathLike, *,
                      policy: SandboxPolicy = SandboxPolicy(), env: dict[str, str] | None = None,
                      uid: int | None = None, use_bwrap: bool | None = None) -> list[str]:
    """Full command: bwrap (when available) around the rlimit launcher around argv."""
    if use_bwrap is None:
        use_bwrap = bwrap_available()
    inner = launcher_command(argv, policy, uid=uid if use_bwrap else None)
    if not use_bwrap:
        return inner
    return bwrap_command(inner, workdir, policy=policy, env=env, uid=uid)


def run_sandboxed(argv: list[str], workdir: str | os.PathLike, *,
                  policy: SandboxPolicy = SandboxPolicy(), env: dict[str, str] | None = None,
                  use_bwrap: bool | None = None, timeout: float = 60, uid: int | None = None,
                  **popen_kw: Any) -> subprocess.CompletedProcess:
    """Run one command in the sandbox (used by tests and for probing).

    ``uid``: run as this uid (root only); by default a fresh one is leased."""
    if use_bwrap is None:
        use_bwrap = bwrap_available()
    lease = UidLease() if (use_bwrap and uid is None) else None
    if lease:
        uid = lease.uid
    elif not use_bwrap:
        uid = None
    try:
        chown_tree(Path(workdir), uid)
        env = env if env is not None else kernel_env(workdir, policy=policy)
        cmd = sandboxed_command(argv, workdir, policy=policy, env=env, uid=uid,
                                use_bwrap=use_bwrap)
        return subprocess.run(cmd, env=env if not use_bwrap else {"PATH": "/usr/bin:/bin"},
                              cwd=str(workdir), timeout=timeout, start_new_session=True,
                              **popen_kw)
    finally:
        if lease:
            lease.release()


# --------------------------------------------------------------------------- kernel manager


class _SandboxMixin(LoggingConfigurable):
    """Overrides shared by the sync and async kernel managers."""

    workdir = Unicode("", help="Host folder the kernel runs in (its only writable folder).").tag(config=True)
    policy = AnyTrait(SandboxPolicy(), help="A SandboxPolicy.")
    sandbox_env = Dict(help="The kernel's whole environment (see kernel_env).")
    use_bwrap = Bool(True, help="False: rlimits only (no bwrap).").tag(config=True)
    sandbox_uid = AnyTrait(None, help="uid the kernel runs as (root only); None keeps ours.")
    kernel_log = Unicode("", help="Host file that receives the kernel's stdout/stderr.")

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("connection_file")
    def _default_connection_file(self) -> str:
        return os.path.join(os.path.realpath(self.workdir or "."),
                            f".kernel-{uuid.uuid4().hex[:12]}.json")

    @property
    def ipykernel(self) -> bool:  # nbclient adds --HistoryManager.hist_file=:memory:
        return True

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)  # type: ignore[misc]
        if self.use_bwrap and self.sandbox_uid is not None:
            os.chown(self.connection_file, self.sandbox_uid, self.sandbox_uid)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f",
                os.path.realpath(self.connection_file)] + list(extra_arguments or [])
        env = self.sandbox_env or kernel_env(self.workdir, policy=self.policy)
        return sandboxed_command(argv, self.workdir, policy=self.policy, env=env,
                                 uid=self.sandbox_uid, use_bwrap=self.use_bwrap)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        env = dict(self.sandbox_env or kernel_env(self.workdir, policy=self.policy))
        if self.use_bwrap:
            env = {"PATH": "/usr/bin:/bin"}  # bwrap --clearenv sets the kernel's own
        kw["env"] = env
        kw["cwd"] = os.path.realpath(self.workdir)
        # Never hand the kernel our terminal (TIOCSTI, escape sequences): its
        # stdout/stderr go to a log file on the host side.
        if self.kernel_log:
            self._kernel_log_fh = open(self.kernel_log, "ab")
            kw["stdout"] = kw["stderr"] = self._kernel_log_fh
        else:
            kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
        await super()._async_launch_kernel(kernel_cmd, **kw)  # type: ignore[misc]

    async def _async_interrupt_kernel(self) -> None:
        if self.use_bwrap and self.has_kernel:  # type: ignore[attr-defined]
            # SIGINT to the process group would hit bwrap itself: ask the kernel
            # (control channel) to interrupt itself instead.
            msg = self.session.msg("interrupt_request", content={})  # type: ignore[attr-defined]
            self._connect_control_socket()  # type: ignore[attr-defined]
            self.session.send(self._control_socket, msg)  # type: ignore[attr-defined]
            return
        await super()._async_interrupt_kernel()  # type: ignore[misc]

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)  # type: ignore[misc]
        self.close_log()

    def close_log(self) -> None:
        fh = getattr(self, "_kernel_log_fh", None)
        if fh is not None:
            fh.close()
            self._kernel_log_fh = None


class SandboxedKernelManager(_SandboxMixin, KernelManager):
    """A KernelManager whose ipykernel runs inside bwrap (see module doc)."""

    interrupt_kernel = run_sync(_SandboxMixin._async_interrupt_kernel)
    cleanup_resources = run_sync(_SandboxMixin._async_cleanup_resources)


class AsyncSandboxedKernelManager(_SandboxMixin, AsyncKernelManager):
    """The asyncio flavour, which nbgrader's Execute preprocessor expects."""

    interrupt_kernel = _SandboxMixin._async_interrupt_kernel  # type: ignore[assignment]
    cleanup_resources = _SandboxMixin._async_cleanup_resources  # type: ignore[assignment]


class DiskGuard(threading.Thread):
    """Watches a kernel's work dir and calls ``kill`` once it holds more than
    ``max_bytes`` or ``max_files`` (files and folders), or folders nested
    deeper than :data:`autograder.scratch.MAX_DEPTH`; ``tripped`` then says
    what was exceeded."""

    def __init__(self, root, max_bytes: int, max_files: int, kill, interval: float = 0.5):
        super().__init__(daemon=True, name="disk-guard")
        self.root, self.max_bytes, self.max_files = root, max_bytes, max_files
        self.kill, self.interval = kill, interval
        self.tripped: str | None = None
        self._stopped = threading.Event()

    def run(self) -> None:
        from .scratch import MAX_DEPTH, tree_usage

        while not self._stopped.wait(self.interval):
            used, files, too_deep = tree_usage(self.root, self.max_files)
            if too_deep:
                self.tripped = (f"the notebook nested folders more than {MAX_DEPTH} deep in its folder, "
                                "which the grader does not allow")
            elif used > self.max_bytes or files > self.max_files:
                self.tripped = (f"the notebook filled its folder past the grader's limit "
                                f"({used / 2**20:.0f} MiB in {files} files and folders; the limit is "
                                f"{self.max_bytes / 2**20:.0f} MiB and {self.max_files} files)")
            else:
                continue
            self.kill()
            return

    def stop(self) -> None:
        self._stopped.set()
