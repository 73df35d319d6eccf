"""The worker scheduler: a dead worker costs a retry, never a final zero; a
stuck worker is stopped at its deadline; results come back whole."""
import os
import time

import pytest

from autograder.workers import Job, run_jobs


def _target(mode, marker):
    """A grading job: 'ok' returns, 'die_once' dies the first time it runs,
    'die' always dies, 'hang' never returns."""
    if mode == "die_once" and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(137)
    if mode == "die":
        os._exit(137)
    if mode == "hang":
        time.sleep(3600)
    return {"mode": mode, "pid": os.getpid(), "big": "x" * 200_000}


def _run(tmp_path, modes, **kw):
    results, failures = {}, {}
    jobs = [Job(f"j{i}", (m, str(tmp_path / f"marker{i}")), deadline_s=kw.pop("deadline", 30))
            for i, m in enumerate(modes)]
    run_jobs(jobs, _target, lambda j, r: results.__setitem__(j.key, r),
             lambda j, why: failures.__setitem__(j.key, why), parallel=2, **kw)
    return results, failures, jobs


def test_results_come_back_and_each_job_has_its_own_process(tmp_path):
    results, failures, _ = _run(tmp_path, ["ok", "ok", "ok"])
    assert not failures and sorted(results) == ["j0", "j1", "j2"]
    assert len({r["pid"] for r in results.values()}) == 3 and os.getpid() not in {r["pid"] for r in results.values()}
    assert all(len(r["big"]) == 200_000 for r in results.values())


def test_a_worker_that_dies_is_replaced_and_its_job_graded_again(tmp_path):
    results, failures, jobs = _run(tmp_path, ["die_once", "ok"])
    assert not failures and results["j0"]["mode"] == "die_once"
    assert jobs[0].attempts == 2


def test_a_job_that_always_kills_its_worker_is_a_failure_not_a_result(tmp_path):
    results, failures, _ = _run(tmp_path, ["die", "ok"])
    assert "j0" not in results and "died 2 times" in failures["j0"] and "next run" in failures["j0"]
    assert results["j1"]["mode"] == "ok"


def test_a_stuck_worker_is_stopped_at_its_deadline(tmp_path):
    started = time.monotonic()
    results, failures, _ = _run(tmp_path, ["hang", "ok"], deadline=2)
    assert time.monotonic() - started < 15
    assert "longer than 2 s" in failures["j0"] and results["j1"]["mode"] == "ok"


@pytest.mark.parametrize("parallel", [1, 2])
def test_no_worker_outlives_the_run(tmp_path, parallel):
    results = {}
    jobs = [Job(f"j{i}", ("ok", str(tmp_path / "m")), 30) for i in range(3)]
    run_jobs(jobs, _target, lambda j, r: results.__setitem__(j.key, r), lambda j, w: None, parallel=parallel)
    for r in results.values():
        assert not os.path.exists(f"/proc/{r['pid']}") or open(f"/proc/{r['pid']}/stat").read().split()[2] == "Z"
