"""Grading submissions in worker processes, one process per submission.

Each submission is graded in a child process of its own (forked, so it starts
in milliseconds with everything the parent imported). That child is the
parent of the student's sandboxed kernel, so:

* a worker that dies (the kernel's OOM killer, a crash) costs nothing but a
  retry of its own submission: nothing is journalled for it and it is graded
  again by a fresh process (at most ``attempts`` times; then it is reported,
  still not journalled, so the next run tries again);
* a worker that outlives its deadline is killed with its kernel: every step
  that touches student bytes is bounded, and this is the last bound;
* a worker dies with the grading process (PR_SET_PDEATHSIG), and its kernel
  dies with the worker (bwrap --die-with-parent): ``kill -9`` of the CLI
  leaves no process behind;
* Ctrl-C reaches only the parent (workers ignore SIGINT and kernels run in
  their own session): the parent stops the workers and raises
  :class:`Interrupted`, keeping what was finished.

Workers send their result back as JSON over a pipe; their stdout, stderr and
log records go to the run's log file, each line prefixed with the job's key
(``[assignment/student]``), never to the lecturer's terminal.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Callable

log = logging.getLogger(__name__)

#: the largest result a worker may send back (bytes of JSON).
MAX_RESULT_BYTES = 32 * 2**20


class Interrupted(Exception):
    """Ctrl-C: the workers were stopped; ``done`` results were handed over."""

    def __init__(self, done: int, total: int):
        super().__init__(f"interrupted after {done} of {total}")
        self.done, self.total = done, total


@dataclass
class Job:
    key: str
    args: tuple
    deadline_s: float
    attempts: int = 0


@dataclass
class _Running:
    job: Job
    process: multiprocessing.Process
    reader: object
    started: float = field(default_factory=time.monotonic)


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the reaper still cleans the files
        pass


def _log_to_file(log_path: str, prefix: str) -> threading.Thread:
    """Send this process's stdout, stderr and log records to ``log_path``,
    every line prefixed with ``prefix`` (the submission), so nothing a
    library prints reaches the lecturer's terminal and the log says whose
    line each one is."""
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():  # lines written straight to fd 1/2 (C code, handlers made before the fork)
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                os.write(fd, prefix.encode() + b" " + line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    handler = logging.StreamHandler(os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8",
                                              errors="backslashreplace"))
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(process)d {prefix} %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    return thread


def _flush_log(thread) -> None:
    """Close fd 1 and 2 so the pump sees the end of its pipe, and let it finish."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os.close(1)
    os.close(2)
    thread.join(timeout=5)


def _child(target: Callable, args: tuple, writer, log_path: str | None, log_prefix: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent()
    pump = _log_to_file(log_path, log_prefix) if log_path else None
    result = target(*args)
    data = json.dumps(result).encode()
    writer.send_bytes(data)
    writer.close()
    if pump is not None:
        _flush_log(pump)


def run_jobs(jobs: list[Job], target: Callable, on_result: Callable, on_failure: Callable, *,
             parallel: int, attempts: int = 2, log_path: str | None = None) -> None:
    """Run ``target(*job.args)`` for every job in its own process, at most
    ``parallel`` at a time. ``on_result(job, result)`` receives each result;
    ``on_failure(job, reason)`` a job whose worker died ``attempts`` times or
    outlived its deadline. Raises :class:`Interrupted` on Ctrl-C."""
    ctx = multiprocessing.get_context("fork")
    queue = list(reversed(jobs))
    running: list[_Running] = []
    done = 0
    try:
        while queue or running:
            while queue and len(running) < parallel:
                job = queue.pop()
                job.attempts += 1
                running.append(_start(ctx, job, target, log_path))
            ready = wait([r.reader for r in running] + [r.process.sentinel for r in running], timeout=1.0)
            now = time.monotonic()
            for r in list(running):
                result, reason = None, None
                if r.reader in ready:
                    try:
                        result = json.loads(r.reader.recv_bytes(MAX_RESULT_BYTES))
                    except (EOFError, OSError, ValueError):
                        reason = "died"
                elif r.process.sentinel in ready:
                    reason = "died"
                elif now - r.started > r.job.deadline_s:
                    reason = "deadline"
                else:
                    continue
                running.remove(r)
                _stop(r)
                if result is not None:
                    done += 1
                    on_result(r.job, result)
                elif reason == "died" and r.job.attempts < attempts:
                    log.warning("the worker grading %s died (exit code %s); grading it again",
                                r.job.key, r.process.exitcode)
                    queue.append(r.job)
                else:
                    done += 1
                    on_failure(r.job, _reason_text(reason, r))
    except KeyboardInterrupt:
        for r in running:
            _stop(r)
        raise Interrupted(done, len(jobs)) from None


def _start(ctx, job: Job, target: Callable, log_path: str | None) -> _Running:
    reader, writer = ctx.Pipe(duplex=False)
    # SIGINT is blocked across the fork so a Ctrl-C at that instant cannot
    # reach the child before it ignores SIGINT.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process = ctx.Process(target=_child, args=(target, job.args, writer, log_path, f"[{job.key}]"),
                              daemon=True)
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    writer.close()
    return _Running(job, process, reader)


def _stop(r: _Running) -> None:
    """Kill the worker (its kernel dies with it) and reap it."""
    if r.process.is_alive():
        try:
            os.kill(r.process.pid, signal.SIGKILL)
        except OSError:
            pass
    r.process.join(timeout=10)
    try:
        r.reader.close()
    except OSError:
        pass


def _reason_text(reason: str | None, r: _Running) -> str:
    if reason == "deadline":
        return (f"grading this submission took longer than {int(r.job.deadline_s)} s and was stopped "
                "(it is graded again on the next run)")
    return (f"the grading process died {r.job.attempts} times on this submission (exit code "
            f"{r.process.exitcode}); it is graded again on the next run")
