"""Grading a class: execute in the sandbox, score, store, report.

Workers (one process per job) execute and score one submission each and
return a plain dict; only the parent writes the gradebook and the results
journal, so parallel grading needs no database locking. Each finished
submission is written to ``OUT/results/<assignment>/<student>.json``
atomically, after its gradebook write; a killed run restarted with the same
``OUT`` skips submissions whose result exists for the same file contents,
and regrading one overwrites its rows (no duplicates, no losses).
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .flags import scan_sources, student_code
from .gradebook_io import NOTEBOOK_ID, grade_cells, open_gradebook, save_scores
from .nbgrader_setup import REPO_ROOT, generate_assignment
from .registry import CHAPTER_MODULES
from .scoring import NOT_RUN, score_recording
from .submissions import Submission, discover

RESULT_VERSION = 1


@dataclass
class GradeRun:
    """Settings of one grading run."""

    out: Path
    db_url: str
    jobs: int = 1
    cell_timeout: int = 60
    progress: bool = True
    regrade: bool = False  # ignore the journal of finished submissions
    secret: int = field(default_factory=lambda: secrets.randbits(62))


def submission_seed(secret: int, sub: Submission) -> int:
    """Per-submission seed: unpredictable without the run's secret, different
    for every student so recordings cannot be shared."""
    digest = hashlib.sha256(f"{secret}:{sub.assignment}:{sub.student}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return "unreadable"
    return h.hexdigest()


def function_of(cell_name: str) -> str:
    """grade cell ``test_F`` grades function ``F``."""
    return cell_name[len("test_"):] if cell_name.startswith("test_") else cell_name


# -- worker side ---------------------------------------------------------------

def kernel_policy():
    """Sandbox policy for student kernels: the public package is the only
    part of this repository they can see (read-only)."""
    from .sandbox import SandboxPolicy

    return SandboxPolicy(readonly_paths=(str(REPO_ROOT / "dropout_lab"),))


def grade_one(sub: Submission, run: GradeRun, cells: dict) -> dict:
    """Execute and score one submission; never raises (errors become rows)."""
    from .execute import execute_submission

    seed = submission_seed(run.secret, sub)
    # A short private folder: the kernel's ipc sockets live in it, and a Unix
    # socket path may not exceed about 107 bytes, whatever --out is.
    workdir = Path(tempfile.mkdtemp(prefix="dropout-grade-"))
    result = {"version": RESULT_VERSION, "student": sub.student, "assignment": sub.assignment,
              "source": str(sub.path), "digest": file_digest(sub.path), "flags": [], "functions": []}
    try:
        ex = execute_submission(sub.path, workdir, db_url=run.db_url, assignment_id=sub.assignment,
                                notebook_id=NOTEBOOK_ID, student_id=sub.student, seed=seed,
                                cell_timeout=run.cell_timeout, policy=kernel_policy())
        result.update(status=ex.status, messages=list(ex.messages), sandboxed=ex.sandboxed)
        if ex.notebook is not None:
            result["flags"] = scan_sources(student_code(_original(sub.path)))
            _save_notebook(ex.notebook, run.out / "autograded" / sub.student / sub.assignment)
        for cell_name, max_score in cells.items():
            fn = function_of(cell_name)
            # The solution cell's own error (a SyntaxError, say) is the root cause of a test cell's NameError.
            cell_error = ex.cell_errors.get(fn) or ex.cell_errors.get(cell_name)
            if ex.notebook is None:
                row = _not_run(fn, max_score, ex.messages)
            else:
                row = score_recording(fn, ex.record_dir, seed, max_score, cell_error).as_row()
                if row["status"] == NOT_RUN and not cell_error and ex.status != "ok" and ex.messages:
                    # The notebook stopped before this test ran: say why, not just "no recording".
                    row["messages"] = [f"not graded: {ex.messages[0]}"]
            row["cell"] = cell_name
            result["functions"].append(row)
    except Exception as exc:  # noqa: BLE001 - one broken submission must not stop the class
        result.update(status="grader_error", messages=[f"the grader failed on this submission: "
                                                       f"{type(exc).__name__}: {exc}"],
                      trace=traceback.format_exc()[-4000:])
        result["functions"] = [dict(_not_run(function_of(c), m, result["messages"]), cell=c)
                               for c, m in cells.items()]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _original(path: Path):
    import nbformat

    try:
        return nbformat.read(str(path), as_version=4)
    except Exception:  # noqa: BLE001 - already reported by execution
        return None


def _save_notebook(nb, folder: Path) -> None:
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / f"{NOTEBOOK_ID}.ipynb"))


def _not_run(fn: str, max_score: float, messages: list) -> dict:
    why = messages[0] if messages else "the notebook could not be run"
    return {"grade_id": fn, "score": 0.0, "max_score": max_score, "status": NOT_RUN,
            "messages": [f"not graded: {why}"], "checks": []}


# -- parent side ---------------------------------------------------------------

def result_path(out: Path, sub: Submission) -> Path:
    return out / "results" / sub.assignment / f"{sub.student}.json"


def _is_done(out: Path, sub: Submission) -> bool:
    path = result_path(out, sub)
    try:
        done = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return done.get("version") == RESULT_VERSION and done.get("digest") == file_digest(sub.path)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def prepare_assignments(assignments: list, db_url: str, out: Path) -> dict:
    """Record every assignment in the gradebook; returns assignment -> grade cells."""
    cells = {}
    for assignment in assignments:
        generate_assignment(assignment, db_url, out / "release" / assignment)
        cells[assignment] = grade_cells(db_url, assignment)
    return cells


def known_grade_ids() -> dict:
    """assignment -> grade_ids of its source notebook (to recognise submissions)."""
    import nbformat

    known = {}
    for assignment in CHAPTER_MODULES:
        nb_path = REPO_ROOT / "solutions" / assignment / f"{NOTEBOOK_ID}.ipynb"
        if nb_path.is_file():
            nb = nbformat.read(str(nb_path), as_version=4)
            known[assignment] = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}
    return known


def store(run: GradeRun, gb, result: dict) -> None:
    """Gradebook first, then the journal: a crash in between regrades, never loses."""
    if result["functions"]:
        save_scores(gb, result["assignment"], result["student"],
                    {row["cell"]: row["score"] for row in result["functions"]})
    sub = Submission(result["student"], result["assignment"], Path(result["source"]))
    _write_atomic(result_path(run.out, sub), json.dumps(result, indent=1))


def grade_class(root, run: GradeRun, assignment: str | None = None, log=print) -> list:
    """Grade every submission under ``root``; returns all result dicts (this
    run's and earlier runs' kept by resume)."""
    known = known_grade_ids()
    if assignment is not None and assignment not in known:
        raise ValueError(f"unknown assignment {assignment!r}; known: {', '.join(sorted(known))}")
    subs, problems = discover(root, known, only=assignment)
    run.out.mkdir(parents=True, exist_ok=True)
    cells = prepare_assignments(sorted({s.assignment for s in subs}), run.db_url, run.out)
    todo = [s for s in subs if run.regrade or not _is_done(run.out, s)]
    if len(todo) < len(subs):
        log(f"resuming: {len(subs) - len(todo)} submission(s) already graded in {run.out}")
    _run_all(todo, run, cells)
    results = []
    for sub in subs:
        try:
            results.append(json.loads(result_path(run.out, sub).read_text()))
        except (OSError, ValueError):
            log(f"warning: no result for {sub.key}")
    results += [_problem_result(student, asg, msg) for student, asg, msg in problems]
    return results


def _run_all(todo: list, run: GradeRun, cells: dict) -> None:
    if not todo:
        return
    bar = _progress(len(todo), run.progress)
    gb = open_gradebook(run.db_url)
    try:
        if run.jobs <= 1:
            for sub in todo:
                store(run, gb, grade_one(sub, run, cells[sub.assignment]))
                bar.update(1)
            return
        with ProcessPoolExecutor(max_workers=run.jobs) as pool:
            futures = {pool.submit(grade_one, sub, run, cells[sub.assignment]): sub for sub in todo}
            for future in as_completed(futures):
                sub = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - a dead worker costs one row, not the class
                    result = {"version": RESULT_VERSION, "student": sub.student, "assignment": sub.assignment,
                              "source": str(sub.path), "digest": file_digest(sub.path), "flags": [],
                              "status": "grader_error",
                              "messages": [f"the grading worker failed: {type(exc).__name__}: {exc}"],
                              "functions": [dict(_not_run(function_of(c), m, ["the grading worker failed"]), cell=c)
                                            for c, m in cells[sub.assignment].items()]}
                store(run, gb, result)
                bar.update(1)
    finally:
        gb.close()
        bar.close()


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="grading", unit="nb", file=sys.stderr)


def _problem_result(student: str, assignment: str, message: str) -> dict:
    return {"version": RESULT_VERSION, "student": student, "assignment": assignment, "source": "",
            "digest": "", "flags": [], "status": "invalid", "messages": [message],
            "functions": [{"grade_id": "(submission)", "cell": "", "score": 0.0, "max_score": 0.0,
                           "status": NOT_RUN, "messages": [message], "checks": []}]}
