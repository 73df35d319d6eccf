"""Grading a class: execute in the sandbox, score, store, report.

Each submission is graded in a worker process of its own
(:mod:`autograder.workers`) that returns a plain dict; only the parent writes
the gradebook and the results journal, so parallel grading needs no database
locking. Each finished submission is written to
``OUT/results/<assignment>/<slug>.json`` atomically, after its gradebook
write; a killed run restarted with the same ``OUT`` skips submissions whose
result exists for the same file contents, and regrading one overwrites its
rows (no duplicates, no losses). Only results the grader could produce are
journalled: a submission whose worker died or ran out of time is reported
but graded again on the next run.

All host folders of a run live under one :class:`~autograder.scratch.RunScratch`,
removed at the end however the run ends.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .flags import scan_sources, student_code
from .gradebook_io import NOTEBOOK_ID, grade_cells, open_gradebook, save_scores, written_cells
from .names import component
from .nbgrader_setup import REPO_ROOT, generate_assignment
from .registry import CHAPTER_MODULES
from .safe_files import write_atomic
from .scoring import NOT_RUN, score_recording
from .scratch import RunScratch, remove_tree
from .submission_reader import load_submission, submission_digest
from .submissions import Submission, discover
from .workers import Interrupted, Job, run_jobs  # noqa: F401 (Interrupted re-exported for the CLI)

RESULT_VERSION = 3  # 3: written answer rows
#: seconds a worker may take beyond the notebook budget (kernel start, scoring).
WORKER_MARGIN_S = 240


@dataclass
class GradeRun:
    """Settings of one grading run."""

    out: Path
    db_url: str
    jobs: int = 1
    cell_timeout: int = 60
    notebook_timeout: int = 300
    progress: bool = True
    regrade: bool = False  # ignore the journal of finished submissions
    secret: int = field(default_factory=lambda: secrets.randbits(62))


def submission_seed(secret: int, sub: Submission) -> int:
    """Per-submission seed: unpredictable without the run's secret, different
    for every student so recordings cannot be shared."""
    digest = hashlib.sha256(f"{secret}:{sub.assignment}:{sub.student}:{sub.path.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def function_of(cell_name: str) -> str:
    """grade cell ``test_F`` grades function ``F``."""
    return cell_name[len("test_"):] if cell_name.startswith("test_") else cell_name


# -- worker side ---------------------------------------------------------------

def kernel_policy():
    """Sandbox policy for student kernels: the public package is the only
    part of this repository they can see (read-only)."""
    from .sandbox import SandboxPolicy

    return SandboxPolicy(readonly_paths=(str(REPO_ROOT / "dropout_lab"),))


def _base_result(sub: Submission, digest: str) -> dict:
    return {"version": RESULT_VERSION, "student": sub.student, "assignment": sub.assignment,
            "slug": sub.slug, "file": sub.file, "conflict": list(sub.conflict),
            "source": str(sub.path), "digest": digest, "flags": [], "functions": []}


def grade_one(sub: Submission, run: GradeRun, cells: dict, folder: Path) -> dict:
    """Read (once), execute and score one submission in ``folder``; never
    raises (errors become rows). Runs in a worker process."""
    from .execute import execute_submission

    started = time.monotonic()
    seed = submission_seed(run.secret, sub)
    loaded = load_submission(sub.path)
    result = _base_result(sub, loaded.digest)
    try:
        if loaded.notebook is None:
            return _ungraded(result, cells, "invalid", loaded.error)
        belongs_to = other_assignment(loaded.notebook, sub.assignment, known_grade_ids())
        if belongs_to:
            return _ungraded(result, cells, "wrong_assignment",
                             f"this is the exercise notebook of {belongs_to}, not of {sub.assignment}: "
                             f"submit your {sub.assignment} notebook here (and this one under {belongs_to})")
        edited = edited_locked_cells(loaded.notebook, _originals(run.out, sub.assignment))
        ex = execute_submission(loaded.notebook, folder / "work", db_url=run.db_url,
                                assignment_id=sub.assignment, notebook_id=NOTEBOOK_ID,
                                student_id=sub.student, seed=seed, cell_timeout=run.cell_timeout,
                                notebook_timeout=run.notebook_timeout, policy=kernel_policy())
        result.update(status=ex.status, messages=list(ex.messages), sandboxed=ex.sandboxed)
        if ex.notebook is not None:
            # flags come from the code that actually ran, whatever the file's metadata said
            result["flags"] = scan_sources(student_code(ex.notebook))
            _save_notebook(ex.notebook, run.out / "autograded" / component(sub.slug) / sub.assignment)
        restored = [m for m in ex.messages if "was missing and has been restored" in m]
        if edited or restored:
            result["flags"].append("locked cells edited or deleted (the originals were restored): "
                                   + ", ".join(edited + [m.split("'")[1] for m in restored]))
        if edited:
            result["messages"].append(f"cells you may not edit were changed and have been restored from the "
                                      f"original: {', '.join(edited)}")
        if ex.tampering:
            result["flags"].append("wrote to the grader's recordings outside a hidden test (ignored)")
            result["messages"] += [f"ignored: {t}" for t in ex.tampering[:5]]
        for cell_name, max_score in cells.items():
            result["functions"].append(dict(_score_cell(cell_name, max_score, ex, seed), cell=cell_name))
    except Exception as exc:  # noqa: BLE001 - one broken submission must not stop the class
        result.update(status="grader_error", messages=[f"the grader failed on this submission: "
                                                       f"{type(exc).__name__}: {exc}"],
                      trace=traceback.format_exc()[-4000:])
        result["functions"] = [dict(_not_run(function_of(c), m, result["messages"]), cell=c)
                               for c, m in cells.items()]
    finally:
        remove_tree(folder)
        # wall-clock seconds of this submission in its worker: reading, kernel, execution, scoring
        result["seconds"] = round(time.monotonic() - started, 2)
    return result


def _ungraded(result: dict, cells: dict, status: str, message: str) -> dict:
    """A result whose functions were not graded, for one reason."""
    result.update(status=status, messages=[message])
    result["functions"] = [dict(_not_run(function_of(c), m, [message]), cell=c) for c, m in cells.items()]
    return result


def grade_ids_of(nb) -> set:
    ids = set()
    for cell in getattr(nb, "cells", []):
        md = cell.get("metadata", {}).get("nbgrader", {})
        if isinstance(md, dict) and isinstance(md.get("grade_id"), str):
            ids.add(md["grade_id"])
    return ids


def other_assignment(nb, assignment: str, known: dict) -> str | None:
    """The assignment a notebook belongs to when it shares no grade_id with
    ``assignment`` but does with another one (a 05 notebook in a 04 folder)."""
    ids = grade_ids_of(nb)

    def own(a):  # the grade_ids only assignment ``a`` has ("setup" is everyone's)
        return known[a] - set().union(*(known[b] for b in known if b != a))

    if not ids or assignment not in known or ids & own(assignment):
        return None
    best = max(sorted(known), key=lambda a: len(ids & own(a)), default=None)
    return best if best and ids & own(best) else None


def _originals(out: Path, assignment: str) -> list:
    """The notebooks a locked cell may legitimately come from: the student
    version released in this run and the instructor's source (its test cells
    hold the hidden tests, e.g. in a solution handed in as a test)."""
    import nbformat

    found = []
    for path in (out / "release" / assignment / f"{NOTEBOOK_ID}.ipynb",
                 REPO_ROOT / "solutions" / assignment / f"{NOTEBOOK_ID}.ipynb"):
        try:
            found.append(nbformat.read(str(path), as_version=4))
        except Exception:  # noqa: BLE001 - only the edited-cell note depends on it
            continue
    return found


def edited_locked_cells(nb, originals: list) -> list:
    """grade_ids of locked cells whose source the student changed (nbgrader
    restores them; the lecturer should know): a cell equal to its version in
    none of ``originals``, ignoring surrounding whitespace."""
    locked: dict = {}
    for original in originals:
        for cell in original.cells:
            md = cell.metadata.get("nbgrader", {})
            if md.get("locked") and not md.get("solution") and md.get("grade_id"):
                locked.setdefault(md["grade_id"], set()).add(cell.source.strip())
    edited = []
    for cell in getattr(nb, "cells", []):
        md = cell.get("metadata", {}).get("nbgrader", {})
        gid = md.get("grade_id") if isinstance(md, dict) else None
        if gid in locked and str(cell.get("source", "")).strip() not in locked[gid] and gid not in edited:
            edited.append(gid)
    return edited


def _score_cell(cell_name: str, max_score: float, ex, seed: int) -> dict:
    fn = function_of(cell_name)
    # The solution cell's own error (a SyntaxError, say) is the root cause of a test cell's NameError.
    cell_error = ex.cell_errors.get(fn) or ex.cell_errors.get(cell_name)
    if ex.notebook is None:
        return _not_run(fn, max_score, ex.messages)
    if fn in ex.refused_recordings:
        return _not_run(fn, max_score, [ex.refused_recordings[fn]])
    row = score_recording(fn, ex.record_dir, seed, max_score, cell_error).as_row()
    if row["status"] == NOT_RUN and not cell_error and ex.status != "ok" and ex.messages:
        # The notebook stopped before this test ran: say why, not just "no recording".
        row["messages"] = [f"not graded: {ex.messages[0]}"]
    return row


def _save_notebook(nb, folder: Path) -> None:
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / f"{NOTEBOOK_ID}.ipynb"))


def _not_run(fn: str, max_score: float, messages: list) -> dict:
    why = messages[0] if messages else "the notebook could not be run"
    return {"grade_id": fn, "score": 0.0, "max_score": max_score, "status": NOT_RUN,
            "messages": [f"not graded: {why}"], "checks": []}


# -- parent side ---------------------------------------------------------------

def job_key(sub: Submission) -> str:
    return f"{sub.assignment}/{sub.slug}"


def result_path(out: Path, sub: Submission) -> Path:
    return out / "results" / component(sub.assignment) / f"{component(sub.slug)}.json"


def file_digest(path: Path) -> str:
    """The digest :func:`load_submission` gives the same file, without parsing it."""
    return submission_digest(path)


def _is_done(out: Path, sub: Submission) -> bool:
    path = result_path(out, sub)
    try:
        done = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return done.get("version") == RESULT_VERSION and done.get("digest") == file_digest(sub.path)


def prepare_assignments(assignments: list, db_url: str, out: Path) -> tuple[dict, dict]:
    """Record every assignment in the gradebook; returns (assignment -> code
    grade cells the grader scores, assignment -> written answer cells)."""
    cells, written = {}, {}
    for assignment in assignments:
        generate_assignment(assignment, db_url, out / "release" / assignment)
        cells[assignment] = grade_cells(db_url, assignment)
        written[assignment] = written_cells(db_url, assignment)
    return cells, written


#: what a student and a lecturer read about a written answer.
WRITTEN_MESSAGE = "written answer: awaits manual grading by your instructor (not included in the score above)"


def written_rows(written: dict, result: dict) -> list:
    """One row per written answer cell of a submission the grader could read
    (an unreadable file or another assignment's notebook has none to grade)."""
    if result.get("status") in ("invalid", "wrong_assignment") or result.get("student") is None:
        return []
    return [{"grade_id": name, "cell": name, "score": None, "max_score": points, "status": "manual",
             "messages": [WRITTEN_MESSAGE]} for name, points in written.items()]


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
    """Gradebook first, then the journal: a crash in between regrades, never
    loses. Two files that claim the same student and assignment go to the
    journal and the reports, not to the gradebook: the lecturer decides."""
    if result["functions"] and not result.get("conflict"):
        save_scores(gb, result["assignment"], result["student"],
                    {row["cell"]: row["score"] for row in result["functions"]},
                    written=tuple(row["cell"] for row in result.get("written", [])))
    write_atomic(run.out / "results" / component(result["assignment"]) / f"{component(result['slug'])}.json",
                  json.dumps(result, indent=1))


def grade_class(root, run: GradeRun, assignment: str | None = None, log=print) -> list:
    """Grade every submission under ``root``; returns all result dicts (this
    run's and earlier runs' kept by resume). Raises workers.Interrupted on
    Ctrl-C after keeping everything finished."""
    known = known_grade_ids()
    if assignment is not None and assignment not in known:
        raise ValueError(f"unknown assignment {assignment!r}; known: {', '.join(sorted(known))}")
    ignored: list = []
    subs, problems = discover(root, known, only=assignment, ignored=ignored)
    if ignored:
        log(f"not graded, not notebooks: {', '.join(ignored[:10])}" + (" ..." if len(ignored) > 10 else ""))
    run.out.mkdir(parents=True, exist_ok=True)
    cells, written = prepare_assignments(sorted({s.assignment for s in subs}), run.db_url, run.out)
    todo = [s for s in subs if run.regrade or not _is_done(run.out, s)]
    if len(todo) < len(subs):
        log(f"resuming: {len(subs) - len(todo)} submission(s) already graded in {run.out}")
    failed = _run_all(todo, run, cells, written)
    results = []
    for sub in subs:
        if job_key(sub) in failed:
            results.append(failed[job_key(sub)])
            continue
        try:
            results.append(json.loads(result_path(run.out, sub).read_text()))
        except (OSError, ValueError):
            results.append(_failure_result(sub, cells.get(sub.assignment, {}), "no result was produced"))
    results += [_problem_result(student, asg, msg) for student, asg, msg in problems]
    return results


def preload() -> None:
    """Import once, in the parent, what every worker needs (nbgrader's
    preprocessors, the kernel client, numpy, torch and the references): each
    worker is forked from this process, so it starts with them loaded instead
    of paying seconds of imports per submission."""
    import nbclient  # noqa: F401
    import nbgrader.preprocessors  # noqa: F401

    from . import execute  # noqa: F401
    from .registry import graded_functions

    graded_functions()


def _run_all(todo: list, run: GradeRun, cells: dict, written: dict) -> dict:
    """Grade ``todo`` in worker processes; returns the failures (not journalled)."""
    failed: dict = {}
    if not todo:
        return failed
    preload()
    bar = _progress(len(todo), run.progress)
    gb = open_gradebook(run.db_url)
    scratch = RunScratch()
    by_key = {job_key(sub): sub for sub in todo}
    deadline = run.notebook_timeout + WORKER_MARGIN_S
    jobs = [Job(job_key(sub), (sub, run, cells[sub.assignment], scratch.new_folder()), deadline) for sub in todo]

    def on_result(job, result):
        result["written"] = written_rows(written.get(result.get("assignment"), {}), result)
        store(run, gb, result)
        bar.update(1)

    def on_failure(job, reason):
        sub = by_key[job.key]
        failed[job.key] = _failure_result(sub, cells[sub.assignment], reason)
        bar.update(1)

    try:
        run_jobs(jobs, grade_one, on_result, on_failure, parallel=run.jobs,
                 log_path=str(run.out / "grading.log"))
    finally:
        gb.close()
        bar.close()
        scratch.close()
    return failed


def _failure_result(sub: Submission, cells: dict, reason: str) -> dict:
    result = _base_result(sub, "")
    result.update(status="grader_error", messages=[reason])
    result["functions"] = [dict(_not_run(function_of(c), m, [reason]), cell=c) for c, m in cells.items()]
    return result


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
