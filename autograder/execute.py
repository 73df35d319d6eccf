"""Execute one submitted notebook the way ``nbgrader autograde`` does, but safely.

Pipeline (nbgrader 0.9.6's own preprocessors, in ``Autograde``'s order):

1. read the file defensively (:mod:`autograder.submission_reader`: size cap,
   JSON, nbformat upgrade + validation);
2. sanitise (:mod:`autograder.restore_cells`): ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells
   (restores locked and test cells, cell types and points from the gradebook),
   RestoreMissingCells (ours: puts back grade and locked cells the student
   deleted), CheckCellMetadata;
3. execute with nbgrader's Execute preprocessor in a sandboxed kernel
   (:mod:`autograder.sandbox`), per-cell timeout, errors allowed, a wall-clock
   budget for the whole notebook and a cap on the output kept per cell;
4. LimitOutput (lines and traceback length).

Nothing here decides a score: hidden test cells only record, and the scorer
reads the recordings from ``ExecutionResult.record_dir`` afterwards.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode

from . import sandbox
from .restore_cells import sanitize
from .submission_reader import MAX_NOTEBOOK_BYTES, InvalidNotebook, read_submission  # noqa: F401 (re-exported)
from .sandbox import AsyncSandboxedKernelManager, SandboxPolicy, UidLease, chown_tree, kernel_env

log = logging.getLogger(__name__)

#: output kept per cell during execution (bytes); the rest is dropped as it arrives.
MAX_OUTPUT_BYTES_PER_CELL = 256 * 2**10
#: hard cap on the wall-clock budget of one notebook (seconds).
MAX_NOTEBOOK_SECONDS = 30 * 60
#: ename used for a cell that ran out of time.
TIMEOUT_ENAME = "CellTimeout"


@dataclass
class ExecutionResult:
    notebook: NotebookNode | None
    status: str  # "ok" | "invalid" | "kernel_died" | "timeout" | "error"
    messages: list[str] = field(default_factory=list)
    cell_errors: dict[str, str] = field(default_factory=dict)
    sandboxed: bool = False
    record_dir: pathlib.Path = field(default_factory=pathlib.Path)
    #: seconds: kernel start (until ready) and the whole execution step.
    timings: dict[str, float] = field(default_factory=dict)
    #: the unprivileged uid the kernel ran as (None: the grader's own uid).
    sandbox_uid: int | None = None


# --------------------------------------------------------------------------- execution


class NotebookTimeout(Exception):
    """The whole-notebook wall-clock budget ran out."""


def _make_execute_class():
    from nbgrader.preprocessors import Execute

    class SandboxExecute(Execute):
        """nbgrader's Execute with a notebook budget, output caps and bookkeeping."""

        def __init__(self, *args: Any, budget_s: float, max_output_bytes: int, **kw: Any):
            super().__init__(*args, **kw)
            self.budget_s = float(budget_s)
            self.max_output_bytes = int(max_output_bytes)
            self.deadline = None
            self.current_index: int | None = None
            self.budget_clipped: set[int] = set()
            self._out_bytes: dict[int, int] = {}
            self._truncated: set[int] = set()
            self.kernel_ready_s: float | None = None
            self.timeout_func = self._timeout_for

        def _timeout_for(self, cell):
            remaining = self.deadline - time.monotonic() if self.deadline else self.timeout
            t = float(self.timeout)
            if remaining < t:
                self.budget_clipped.add(self.current_index)
                # never round down: a clipped cell that times out must leave the
                # clock past the deadline, so the next code cell is refused
                # even if the interrupt lands late (after this cell finished)
                t = max(1.0, remaining)
            return t

        def start_new_kernel(self, **kw):
            self._t_start = time.monotonic()
            return super().start_new_kernel(**kw)

        def start_new_kernel_client(self):
            kc = super().start_new_kernel_client()
            self.kernel_ready_s = time.monotonic() - getattr(self, "_t_start", time.monotonic())
            # the notebook budget starts when the kernel is ready
            self.deadline = time.monotonic() + self.budget_s
            return kc

        def preprocess_cell(self, cell, resources, index):
            self.current_index = index
            if cell.cell_type == "code" and self.deadline and time.monotonic() >= self.deadline:
                raise NotebookTimeout(index)
            return super().preprocess_cell(cell, resources, index)

        def output(self, outs, msg, display_id, cell_index):
            msg_type = msg.get("msg_type")
            if msg_type == "error":
                return super().output(outs, msg, display_id, cell_index)
            content = msg.get("content", {})
            if msg_type == "stream":
                size = len(content.get("text", ""))
            else:
                try:
                    size = sum(len(v) if isinstance(v, str) else len(json.dumps(v))
                               for v in content.get("data", {}).values())
                except Exception:
                    size = self.max_output_bytes
            used = self._out_bytes.get(cell_index, 0)
            if used + size > self.max_output_bytes:
                room = self.max_output_bytes - used
                if msg_type == "stream" and room > 0:
                    content["text"] = content.get("text", "")[:room]
                    self._out_bytes[cell_index] = self.max_output_bytes
                    super().output(outs, msg, display_id, cell_index)
                if cell_index not in self._truncated:
                    self._truncated.add(cell_index)
                    self._out_bytes[cell_index] = self.max_output_bytes
                    outs.append(nbformat.v4.new_output(
                        "stream", name="stdout",
                        text=f"\n... output truncated by the grader (more than "
                             f"{self.max_output_bytes // 1024} KB) ...\n"))
                return None
            self._out_bytes[cell_index] = used + size
            return super().output(outs, msg, display_id, cell_index)

    return SandboxExecute


def _cell_label(nb: NotebookNode, index: int | None) -> str:
    if index is None or not (0 <= index < len(nb.cells)):
        return "a cell"
    gid = nb.cells[index].metadata.get("nbgrader", {}).get("grade_id")
    code_no = sum(1 for c in nb.cells[: index + 1] if c.cell_type == "code")
    return f"cell '{gid}' (code cell {code_no})" if gid else f"code cell {code_no} (cell {index + 1} of the notebook)"


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _collect_errors(nb: NotebookNode, cell_errors: dict, messages: list[str], limit: int = 20,
                    skip: int | None = None) -> None:
    n = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or i == skip:
            continue
        errs = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if not errs:
            continue
        chosen = next((o for o in errs if o.get("ename") == TIMEOUT_ENAME), errs[0])
        text = f"{chosen.get('ename', 'Error')}: {chosen.get('evalue', '')}".strip()
        gid = _grade_id(cell)
        if gid and gid not in cell_errors:
            cell_errors[gid] = text
        if n < limit:
            messages.append(f"{_cell_label(nb, i)} raised {text}")
        n += 1
    if n > limit:
        messages.append(f"... and {n - limit} more cells raised errors.")


def _mark_cell(nb: NotebookNode, index: int | None, ename: str, evalue: str, cell_errors: dict) -> None:
    if index is None or not (0 <= index < len(nb.cells)):
        return
    cell = nb.cells[index]
    if cell.cell_type == "code":
        if not any(o.get("output_type") == "error" and o.get("ename") == ename for o in cell.outputs):
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]))
    gid = _grade_id(cell)
    if gid:
        cell_errors[gid] = f"{ename}: {evalue}"


def _tail(path: str, n: int = 2000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - n))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _scrub_record_dir(record_dir: pathlib.Path) -> None:
    """Delete symbolic links and special files (FIFOs, sockets, devices) the
    kernel may have left among its recordings: the scorer runs outside the
    sandbox, where a link would reach host files and a FIFO would block it."""
    import stat
    try:
        if record_dir.is_symlink():
            record_dir.unlink()
            return
        if not record_dir.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(record_dir, followlinks=False):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                try:
                    mode = os.lstat(p).st_mode
                    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                        os.unlink(p)
                        log.warning("removed non-regular file %s from the recordings", p)
                except OSError:
                    pass
    except OSError:
        log.warning("could not scrub %s", record_dir, exc_info=True)


def execute_submission(notebook_path, workdir, *, db_url: str, assignment_id: str, notebook_id: str,
                       student_id: str, seed: int, cell_timeout: int = 60,
                       policy: SandboxPolicy = SandboxPolicy(), extra_env: dict | None = None,
                       notebook_timeout: float | None = None,
                       max_output_bytes: int = MAX_OUTPUT_BYTES_PER_CELL) -> ExecutionResult:
    """Sanitise, restore and execute one submitted notebook in the sandbox.

    Never raises for anything a student can cause; grader-side problems (no such
    notebook in the gradebook, ...) give status "error" with a message.
    ``notebook_timeout`` defaults to ``cell_timeout`` times the number of code
    cells plus 30 s, capped at 30 minutes.
    """
    workdir = pathlib.Path(workdir).resolve()
    record_dir = workdir / ".recordings"
    result = ExecutionResult(notebook=None, status="error", record_dir=record_dir)

    try:
        nb = read_submission(notebook_path)
    except InvalidNotebook as exc:
        result.status = "invalid"
        result.messages.append(str(exc))
        return result
    except Exception as exc:  # pragma: no cover - defensive
        result.status = "invalid"
        result.messages.append(f"The submission could not be read ({type(exc).__name__}: {exc}).")
        return result

    resources: dict[str, Any] = {
        "unique_key": notebook_id,
        "metadata": {"path": str(workdir)},
        "nbgrader": {"student": student_id, "assignment": assignment_id,
                     "notebook": notebook_id, "db_url": db_url},
    }
    try:
        nb, resources = sanitize(nb, resources)
    except Exception as exc:
        from nbgrader.api import MissingEntry
        from nbgrader.nbgraderformat import ValidationError as NbgValidationError
        if isinstance(exc, NbgValidationError):
            result.status = "invalid"
            result.notebook = nb
            result.messages.append(
                "The notebook's grading metadata is corrupted (cells were copied or their "
                "metadata edited); start from a fresh copy of the exercise notebook.")
        else:
            result.status = "error"
            what = "not in the gradebook" if isinstance(exc, MissingEntry) else "failed"
            result.messages.append(
                f"Preparing the notebook for grading {what}: {type(exc).__name__}: {exc}")
        log.exception("sanitising %s failed", notebook_path)
        return result
    for name in resources.get("restored_cells", []):
        result.messages.append(f"cell '{name}' was missing and has been restored from the original.")

    # --- work directory, uid, environment
    use_bwrap = sandbox.bwrap_available()
    result.sandboxed = use_bwrap
    if not use_bwrap:
        log.warning("!" * 70 + "\nbubblewrap (bwrap) is NOT available: the student's kernel runs "
                    "UNSANDBOXED with rlimits only. It can read and write anything this user can "
                    "(the gradebook included). Install bubblewrap on Linux.\n" + "!" * 70)
    lease = UidLease() if use_bwrap else None
    uid = lease.uid if lease else None
    result.sandbox_uid = uid
    log_fd, kernel_log = tempfile.mkstemp(prefix="dropout-kernel-", suffix=".log")
    os.close(log_fd)
    km = None
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        if record_dir.is_symlink() or (record_dir.exists() and not record_dir.is_dir()):
            record_dir.unlink()  # a planted link would point the scorer at host files
        record_dir.mkdir(exist_ok=True)
        chown_tree(workdir, uid)
        env = kernel_env(workdir, seed=seed, policy=policy, extra_env=extra_env)
        env.setdefault("IPYTHONDIR", "/tmp/.ipython" if use_bwrap else str(workdir / ".ipython"))
        km = AsyncSandboxedKernelManager(
            workdir=str(workdir), policy=policy, sandbox_env=env, use_bwrap=use_bwrap,
            sandbox_uid=uid, kernel_log=kernel_log, kernel_name="python3")

        n_code = sum(1 for c in nb.cells if c.cell_type == "code")
        if notebook_timeout is None:
            notebook_timeout = min(cell_timeout * max(1, n_code) + 30, MAX_NOTEBOOK_SECONDS)
        SandboxExecute = _make_execute_class()
        ex = SandboxExecute(
            budget_s=notebook_timeout, max_output_bytes=max_output_bytes,
            timeout=int(cell_timeout), allow_errors=True, interrupt_on_timeout=True,
            raise_on_iopub_timeout=True, iopub_timeout=10, startup_timeout=60,
            shutdown_kernel="immediate", record_timing=False,
            error_on_timeout={"ename": TIMEOUT_ENAME,
                              "evalue": f"cell took longer than {int(cell_timeout)} s",
                              "traceback": [f"{TIMEOUT_ENAME}: cell took longer than {int(cell_timeout)} s "
                                            "and was interrupted"]},
        )
        # watchdog: kill the kernel if nbclient itself ever hangs past the budget
        hard_limit = notebook_timeout + 60 + 30

        def _watchdog_kill():
            log.error("watchdog: killing the kernel of %s", notebook_path)
            proc = getattr(getattr(km, "provisioner", None), "process", None)
            if proc is not None:
                try:
                    os.killpg(proc.pid, 9)
                except OSError:
                    pass

        watchdog = threading.Timer(hard_limit, _watchdog_kill)
        watchdog.daemon = True
        watchdog.start()
        disk_guard = sandbox.DiskGuard(workdir, policy.max_workdir_bytes, policy.max_workdir_files,
                                       _watchdog_kill)
        disk_guard.start()
        t0 = time.monotonic()
        try:
            nb, resources = ex.preprocess(nb, resources, km=km)
            result.status = "ok"
        except NotebookTimeout as exc:
            idx = exc.args[0] if exc.args else None
            result.status = "timeout"
            result.messages.append(
                f"The notebook ran out of its total time budget ({int(notebook_timeout)} s) before "
                f"{_cell_label(nb, idx)}; the cells from there on were not run.")
        except Exception as exc:
            from nbclient.exceptions import CellTimeoutError, DeadKernelError
            idx = ex.current_index
            if isinstance(exc, DeadKernelError):
                result.status = "kernel_died"
                _mark_cell(nb, idx, "KernelDied", "the Python kernel died while running this cell "
                           "(out of memory, os._exit, a crash, or a resource limit)", result.cell_errors)
                result.messages.append(
                    f"The Python kernel died while running {_cell_label(nb, idx)} (it ran out of memory, "
                    "called os._exit, crashed, or hit a resource limit). The cells after it were not run.")
            elif isinstance(exc, CellTimeoutError):
                result.status = "timeout"
                _mark_cell(nb, idx, TIMEOUT_ENAME, f"cell took longer than {int(cell_timeout)} s and "
                           "could not be interrupted", result.cell_errors)
                result.messages.append(
                    f"{_cell_label(nb, idx)} took longer than {int(cell_timeout)} s and did not stop when "
                    "interrupted; the kernel was stopped and the cells after it were not run.")
            elif ex.kernel_ready_s is None:
                result.status = "error"
                result.messages.append(f"The grading kernel could not be started: {type(exc).__name__}: {exc}")
                log.error("kernel start failed; kernel log:\n%s", _tail(kernel_log))
            else:
                result.status = "error"
                result.messages.append(
                    f"Running the notebook failed at {_cell_label(nb, idx)}: {type(exc).__name__}: {exc}")
                log.exception("executing %s failed", notebook_path)
        finally:
            watchdog.cancel()
            disk_guard.stop()
            if disk_guard.tripped:
                result.status = "kernel_died"
                result.messages.insert(0, f"The kernel was stopped: {disk_guard.tripped}. "
                                          "The cells after that point were not run.")
            result.timings["execute_s"] = time.monotonic() - t0
            try:  # we passed km, so nbclient leaves the kernel to us
                ex._cleanup_kernel()
            except Exception:
                log.debug("kernel cleanup failed", exc_info=True)
            if ex.kernel_ready_s is not None:
                result.timings["kernel_start_s"] = ex.kernel_ready_s
            # make sure nothing of the kernel survives
            try:
                proc = getattr(getattr(km, "provisioner", None), "process", None)
                if proc is not None and proc.poll() is None:
                    os.killpg(proc.pid, 9)
            except Exception:
                pass
        for i, cell in enumerate(nb.cells):
            if ex.budget_clipped and i in ex.budget_clipped and cell.cell_type == "code":
                for o in cell.get("outputs", []):
                    if o.get("output_type") == "error" and o.get("ename") == TIMEOUT_ENAME:
                        o["evalue"] = "the notebook's total time budget ran out during this cell"
        if result.status == "kernel_died":
            tail = _tail(kernel_log, 600).strip()
            if "MemoryError" in tail or "Cannot allocate memory" in tail:
                result.messages.append("The kernel's last words mention running out of memory.")

        # --- output limits (nbgrader's LimitOutput: lines and traceback length)
        from nbgrader.preprocessors import LimitOutput
        try:
            nb, resources = LimitOutput().preprocess(nb, resources)
        except Exception:  # pragma: no cover - defensive
            log.exception("LimitOutput failed")
        _collect_errors(nb, result.cell_errors, result.messages,
                        skip=ex.current_index if result.status in ("kernel_died", "timeout") else None)
        result.notebook = nb
    except Exception as exc:  # anything unexpected on the grader side
        log.exception("executing %s failed", notebook_path)
        result.status = "error"
        result.messages.append(f"Grading failed on the grader's side: {type(exc).__name__}: {exc}")
        if result.notebook is None:
            result.notebook = nb
    finally:
        if km is not None:
            km.close_log()
        if lease is not None:
            lease.release()
        try:
            os.unlink(kernel_log)
        except OSError:
            pass
        _scrub_record_dir(record_dir)
        # hand the work dir back to the grader's uid (never following links)
        if uid is not None:
            try:
                chown_tree(workdir, os.getuid(), os.getgid())
            except OSError:
                log.warning("could not chown %s back", workdir)
        for leftover in workdir.glob(".kernel-*"):
            try:
                if leftover.is_file() or leftover.is_socket():
                    leftover.unlink()
            except OSError:
                pass
    return result
