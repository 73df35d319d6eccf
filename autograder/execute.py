"""Execute one submitted notebook the way ``nbgrader autograde`` does, but safely.

The path of a submission, one step each (in ``execute_submission``):

1. ``_read``: the notebook, already read once by the caller, or read here
   defensively (:mod:`autograder.submission_reader`);
2. ``_sanitize``: nbgrader's ClearOutput, DeduplicateIds, OverwriteKernelspec,
   OverwriteCells (locked and test cells come back from the gradebook),
   RestoreMissingCells (ours) and CheckCellMetadata
   (:mod:`autograder.restore_cells`);
3. ``KernelWorkspace``: the kernel's work folder, its unprivileged uid, its
   environment and its sandboxed kernel manager (:mod:`autograder.sandbox`);
4. ``_execute``: nbgrader's Execute preprocessor, cell by cell, with a per-cell
   timeout, a wall-clock budget for the whole notebook that does not grow with
   the number of cells, a cap on the output kept per cell, a disk guard and a
   watchdog; after every cell the :class:`~autograder.harvest.RecordingHarvester`
   takes the recording a hidden test just made out of the sandbox's reach;
5. ``_finish``: nbgrader's LimitOutput and a message per failing cell.

Nothing here decides a score: hidden test cells only record, and the scorer
reads the harvested recordings from ``ExecutionResult.record_dir`` afterwards.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode

from . import sandbox
from .harvest import RecordingHarvester
from .restore_cells import sanitize
from .sandbox import AsyncSandboxedKernelManager, SandboxPolicy, UidLease, chown_tree, kernel_env
from .submission_reader import MAX_NOTEBOOK_BYTES, InvalidNotebook, read_submission  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

#: output kept per cell during execution (bytes); the rest is dropped as it arrives.
MAX_OUTPUT_BYTES_PER_CELL = 256 * 2**10
#: default wall-clock budget of one whole notebook (seconds). Fixed: a student
#: who adds cells does not get more time (a solution notebook grades in ~20 s).
DEFAULT_NOTEBOOK_SECONDS = 300
#: ename used for a cell that ran out of time.
TIMEOUT_ENAME = "CellTimeout"


@dataclass
class ExecutionResult:
    notebook: NotebookNode | None
    status: str  # "ok" | "invalid" | "kernel_died" | "timeout" | "error"
    messages: list[str] = field(default_factory=list)
    cell_errors: dict[str, str] = field(default_factory=dict)
    sandboxed: bool = False
    #: host folder (outside the sandbox) holding the recordings harvested after each hidden test.
    record_dir: pathlib.Path = field(default_factory=pathlib.Path)
    #: what was found in the kernel's recordings folder that no hidden test wrote.
    tampering: list[str] = field(default_factory=list)
    #: grade_id -> why its recording could not be taken out of the sandbox.
    refused_recordings: dict[str, str] = field(default_factory=dict)
    #: seconds: kernel start (until ready) and the whole execution step.
    timings: dict[str, float] = field(default_factory=dict)
    #: the unprivileged uid the kernel ran as (None: the grader's own uid).
    sandbox_uid: int | None = None


class NotebookTimeout(Exception):
    """The whole-notebook wall-clock budget ran out."""


# --------------------------------------------------------------------------- cells


def _grade_id(cell) -> str | None:
    md = cell.metadata.get("nbgrader", {})
    return md.get("grade_id") if isinstance(md, dict) else None


def records_of(cell) -> str | None:
    """The grade_id a cell's hidden test records: ``F`` for the grade cell
    ``test_F`` (its source comes from the gradebook, so this is trusted)."""
    md = cell.metadata.get("nbgrader", {})
    if cell.cell_type != "code" or not isinstance(md, dict) or not md.get("grade") or md.get("solution"):
        return None
    gid = md.get("grade_id") or ""
    return gid[len("test_"):] if gid.startswith("test_") else None


def _cell_label(nb: NotebookNode, index: int | None) -> str:
    if index is None or not (0 <= index < len(nb.cells)):
        return "a cell"
    gid = _grade_id(nb.cells[index])
    code_no = sum(1 for c in nb.cells[: index + 1] if c.cell_type == "code")
    return f"cell '{gid}' (code cell {code_no})" if gid else f"code cell {code_no} (cell {index + 1} of the notebook)"


# --------------------------------------------------------------------------- nbgrader's Execute


def _make_execute_class():
    from nbgrader.preprocessors import Execute

    class SandboxExecute(Execute):
        """nbgrader's Execute with a notebook budget, output caps, a hook run
        after every cell and bookkeeping of where execution stopped."""

        def __init__(self, *args: Any, budget_s: float, max_output_bytes: int, after_cell=None, **kw: Any):
            super().__init__(*args, **kw)
            self.budget_s = float(budget_s)
            self.max_output_bytes = int(max_output_bytes)
            self.after_cell = after_cell
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
            if cell.cell_type != "code":
                return cell, resources
            if self.deadline and time.monotonic() >= self.deadline:
                raise NotebookTimeout(index)
            try:
                return super().preprocess_cell(cell, resources, index)
            finally:
                if self.after_cell is not None:
                    self.after_cell(cell, index)

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


# --------------------------------------------------------------------------- step 1 and 2


def _read(submission, result: ExecutionResult) -> NotebookNode | None:
    """The notebook to grade: ``submission`` itself when it is already a
    notebook, else the file read defensively. None (with a message) if invalid."""
    if isinstance(submission, NotebookNode):
        return submission
    try:
        return read_submission(submission)
    except InvalidNotebook as exc:
        result.status = "invalid"
        result.messages.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - hostile bytes must never raise past here
        result.status = "invalid"
        result.messages.append(f"The submission could not be read ({type(exc).__name__}).")
    return None


def _sanitize(nb: NotebookNode, resources: dict, result: ExecutionResult) -> NotebookNode | None:
    """nbgrader's sanitising preprocessors; None (with a message) on failure."""
    try:
        nb, resources = sanitize(nb, resources)
    except Exception as exc:  # noqa: BLE001 - reported as a row
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
            result.messages.append(f"Preparing the notebook for grading {what}: {type(exc).__name__}: {exc}")
        log.exception("sanitising failed")
        return None
    for name in resources.get("restored_cells", []):
        result.messages.append(f"cell '{name}' was missing and has been restored from the original.")
    return nb


# --------------------------------------------------------------------------- step 3


class KernelWorkspace:
    """The kernel's side of the host: its work folder (the only host folder
    it can write), the recordings folder inside it, an unprivileged uid, its
    environment and kernel manager, and a log file for its stdout/stderr.
    ``close()`` gives the uid back and removes the kernel's files from the host
    side (the caller removes the work folder itself)."""

    def __init__(self, workdir: pathlib.Path, *, seed: int, policy: SandboxPolicy, extra_env: dict | None):
        self.workdir = workdir
        self.record_dir = workdir / ".recordings"
        self.use_bwrap = sandbox.bwrap_available()
        if not self.use_bwrap:
            log.warning("!" * 70 + "\nbubblewrap (bwrap) is NOT available: the student's kernel runs "
                        "UNSANDBOXED with rlimits only. It can read and write anything this user can "
                        "(the gradebook included). Install bubblewrap on Linux.\n" + "!" * 70)
        self.lease = UidLease() if self.use_bwrap else None
        self.uid = self.lease.uid if self.lease else None
        # beside the work folder (outside the sandbox, inside the run's scratch
        # folder, so a killed worker leaves nothing elsewhere on the host)
        self.kernel_log = str(workdir.with_name(workdir.name + ".kernel.log"))
        self.km = None
        workdir.mkdir(parents=True, exist_ok=True)
        if self.record_dir.is_symlink() or (self.record_dir.exists() and not self.record_dir.is_dir()):
            self.record_dir.unlink()  # a planted link would point the harvester at host files
        self.record_dir.mkdir(exist_ok=True)
        chown_tree(workdir, self.uid)  # a fresh folder: nothing deep in it yet
        env = kernel_env(workdir, seed=seed, policy=policy, extra_env=extra_env)
        env.setdefault("IPYTHONDIR", "/tmp/.ipython" if self.use_bwrap else str(workdir / ".ipython"))
        self.km = AsyncSandboxedKernelManager(
            workdir=str(workdir), policy=policy, sandbox_env=env, use_bwrap=self.use_bwrap,
            sandbox_uid=self.uid, kernel_log=self.kernel_log, kernel_name="python3")

    def kill(self) -> None:
        """SIGKILL the kernel's whole process group (bwrap and all it started)."""
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        if proc is not None:
            try:
                if proc.poll() is None:
                    os.killpg(proc.pid, 9)
            except OSError:
                pass

    def log_tail(self, n: int = 2000) -> str:
        try:
            with open(self.kernel_log, "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - n))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self) -> None:
        self.kill()
        if self.km is not None:
            self.km.close_log()
        if self.lease is not None:
            self.lease.release()
        try:
            os.unlink(self.kernel_log)
        except OSError:
            pass
        for leftover in self.workdir.glob(".kernel-*"):
            try:
                if leftover.is_file() or leftover.is_socket():
                    leftover.unlink()
            except OSError:
                pass


# --------------------------------------------------------------------------- step 4


def _execute(nb: NotebookNode, resources: dict, ws: KernelWorkspace, harvester: RecordingHarvester,
             result: ExecutionResult, *, cell_timeout: int, notebook_timeout: float,
             max_output_bytes: int, policy: SandboxPolicy):
    """Run every code cell; returns the Execute preprocessor (for bookkeeping)."""
    SandboxExecute = _make_execute_class()
    ex = SandboxExecute(
        budget_s=notebook_timeout, max_output_bytes=max_output_bytes,
        after_cell=lambda cell, index: harvester.after_cell(_cell_label(nb, index), records_of(cell)),
        timeout=int(cell_timeout), allow_errors=True, interrupt_on_timeout=True,
        raise_on_iopub_timeout=True, iopub_timeout=10, startup_timeout=60,
        shutdown_kernel="immediate", record_timing=False,
        error_on_timeout={"ename": TIMEOUT_ENAME,
                          "evalue": f"cell took longer than {int(cell_timeout)} s",
                          "traceback": [f"{TIMEOUT_ENAME}: cell took longer than {int(cell_timeout)} s "
                                        "and was interrupted"]},
    )

    def watchdog_kill():
        log.error("watchdog: killing the kernel")
        ws.kill()

    # the watchdog kills the kernel if nbclient itself ever hangs past the budget
    watchdog = threading.Timer(notebook_timeout + 60 + 30, watchdog_kill)
    watchdog.daemon = True
    disk_guard = sandbox.DiskGuard(ws.workdir, policy.max_workdir_bytes, policy.max_workdir_files, watchdog_kill)
    watchdog.start()
    disk_guard.start()
    t0 = time.monotonic()
    try:
        ex.preprocess(nb, resources, km=ws.km)
        result.status = "ok"
    except NotebookTimeout as exc:
        idx = exc.args[0] if exc.args else None
        result.status = "timeout"
        result.messages.append(
            f"The notebook ran out of its total time budget ({int(notebook_timeout)} s) before "
            f"{_cell_label(nb, idx)}; the cells from there on were not run.")
    except Exception as exc:  # noqa: BLE001 - every way a kernel can fail becomes a status
        _explain_failure(exc, ex, nb, ws, result, cell_timeout)
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
        except Exception:  # noqa: BLE001
            log.debug("kernel cleanup failed", exc_info=True)
        ws.kill()
        if ex.kernel_ready_s is not None:
            result.timings["kernel_start_s"] = ex.kernel_ready_s
    return ex


def _explain_failure(exc, ex, nb, ws: KernelWorkspace, result: ExecutionResult, cell_timeout: int) -> None:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    idx = ex.current_index
    if isinstance(exc, DeadKernelError):
        result.status = "kernel_died"
        _mark_cell(nb, idx, "KernelDied", "the Python kernel died while running this cell "
                   "(out of memory, os._exit, a crash, or a resource limit)", result.cell_errors)
        result.messages.append(
            f"The Python kernel died while running {_cell_label(nb, idx)} (it ran out of memory, "
            "called os._exit, crashed, or hit a resource limit). The cells after it were not run.")
        tail = ws.log_tail(600)
        if "MemoryError" in tail or "Cannot allocate memory" in tail:
            result.messages.append("The kernel's last words mention running out of memory.")
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
        log.error("kernel start failed; kernel log:\n%s", ws.log_tail())
    else:
        result.status = "error"
        result.messages.append(
            f"Running the notebook failed at {_cell_label(nb, idx)}: {type(exc).__name__}: {exc}")
        log.exception("executing the notebook failed")


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


# --------------------------------------------------------------------------- step 5


def _finish(nb: NotebookNode, resources: dict, ex, result: ExecutionResult) -> None:
    """Name budget-clipped timeouts, cap outputs, and list every failing cell."""
    for i in ex.budget_clipped:
        if i is not None and 0 <= i < len(nb.cells) and nb.cells[i].cell_type == "code":
            for o in nb.cells[i].get("outputs", []):
                if o.get("output_type") == "error" and o.get("ename") == TIMEOUT_ENAME:
                    o["evalue"] = "the notebook's total time budget ran out during this cell"
    from nbgrader.preprocessors import LimitOutput
    try:
        nb, resources = LimitOutput().preprocess(nb, resources)
    except Exception:  # pragma: no cover - defensive
        log.exception("LimitOutput failed")
    _collect_errors(nb, result.cell_errors, result.messages,
                    skip=ex.current_index if result.status in ("kernel_died", "timeout") else None)


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


# --------------------------------------------------------------------------- the whole path


def harvest_dir_for(workdir: pathlib.Path) -> pathlib.Path:
    """Where the recordings of the kernel working in ``workdir`` are kept: a
    sibling folder, outside everything the sandbox can see."""
    return workdir.with_name(workdir.name + "-recorded")


def execute_submission(submission, workdir, *, db_url: str, assignment_id: str, notebook_id: str,
                       student_id: str, seed: int, cell_timeout: int = 60,
                       policy: SandboxPolicy = SandboxPolicy(), extra_env: dict | None = None,
                       notebook_timeout: float | None = None,
                       max_output_bytes: int = MAX_OUTPUT_BYTES_PER_CELL) -> ExecutionResult:
    """Sanitise, restore and execute one submitted notebook in the sandbox.

    ``submission`` is the notebook already read (a NotebookNode) or a path.
    ``workdir`` becomes the kernel's folder; the recordings end up in
    ``harvest_dir_for(workdir)``. Never raises for anything a student can
    cause; grader-side problems give status "error" with a message.
    ``notebook_timeout`` defaults to DEFAULT_NOTEBOOK_SECONDS, whatever the
    number of cells.
    """
    workdir = pathlib.Path(workdir).resolve()
    result = ExecutionResult(notebook=None, status="error", record_dir=harvest_dir_for(workdir))
    nb = _read(submission, result)
    if nb is None:
        return result
    resources: dict[str, Any] = {
        "unique_key": notebook_id,
        "metadata": {"path": str(workdir)},
        "nbgrader": {"student": student_id, "assignment": assignment_id,
                     "notebook": notebook_id, "db_url": db_url},
    }
    nb = _sanitize(nb, resources, result)
    if nb is None:
        return result
    ws = harvester = None
    try:
        ws = KernelWorkspace(workdir, seed=seed, policy=policy, extra_env=extra_env)
        result.sandboxed, result.sandbox_uid = ws.use_bwrap, ws.uid
        harvester = RecordingHarvester(ws.record_dir, result.record_dir)
        ex = _execute(nb, resources, ws, harvester, result, cell_timeout=cell_timeout,
                      notebook_timeout=notebook_timeout or DEFAULT_NOTEBOOK_SECONDS,
                      max_output_bytes=max_output_bytes, policy=policy)
        _finish(nb, resources, ex, result)
    except Exception as exc:  # noqa: BLE001 - anything unexpected on the grader side
        log.exception("executing the submission failed")
        result.status = "error"
        result.messages.append(f"Grading failed on the grader's side: {type(exc).__name__}: {exc}")
    finally:
        if ws is not None:
            ws.close()
        if harvester is not None:
            harvester.finish()
            result.tampering = list(harvester.tampering)
            result.refused_recordings = dict(harvester.refused)
    result.notebook = nb
    return result
