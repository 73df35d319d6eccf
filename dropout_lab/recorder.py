"""The recorder that hidden tests call. It records; it decides nothing.

A hidden test cell in a graded notebook is just::

    from dropout_lab.recorder import record
    record("dropout_forward", dropout_forward)

While grading, the grader sets ``DROPOUT_LAB_RECORD_DIR`` (a writable folder
inside the sandbox) and ``DROPOUT_LAB_SEED`` (a secret per-run seed). ``record``
then runs the *probe* for that grade_id (``dropout_lab.probes``): it calls the
student's function on inputs drawn from the seed and saves every output to
``<dir>/<grade_id>.json`` + ``<grade_id>.npz``. The trusted scorer, outside the
sandbox, runs the very same probe on the hidden reference and compares.

Outside grading (a student running the notebook) ``record`` does nothing.

Because student code runs in the same kernel, a recording is hostile data to
the scorer: it is loaded without pickle and validated before use. Patching
this module can only make a recording wrong or missing, never earn points.
"""
from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np

RECORD_DIR_ENV = "DROPOUT_LAB_RECORD_DIR"
SEED_ENV = "DROPOUT_LAB_SEED"
FORMAT_VERSION = 1
#: Outputs larger than this many elements are not stored (the scorer reports it).
MAX_OUTPUT_ELEMENTS = 4_000_000
_NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex: no objects, no pickle


def probe_seed(seed: int, grade_id: str) -> int:
    """The seed one probe uses: the run's secret seed mixed with the grade_id,
    so that different functions see unrelated inputs."""
    return int(np.random.SeedSequence([int(seed) % 2**63, zlib.crc32(grade_id.encode())]).generate_state(1)[0])


def _to_array(value):
    """(kind, array-or-None, type_name) for one returned value."""
    if value is None:
        return "none", None, "NoneType"
    type_name = type(value).__module__.split(".")[0] + "." + type(value).__name__
    torch = _torch_module()
    if torch is not None and isinstance(value, torch.Tensor):
        arr = value.detach().cpu()
        arr = arr.resolve_conj().resolve_neg().numpy() if arr.dtype != torch.bfloat16 else arr.float().numpy()
        return "array", np.array(arr, copy=True), "torch.Tensor:" + str(value.dtype).replace("torch.", "")
    if isinstance(value, (np.ndarray, np.generic, bool, int, float)):
        arr = np.asarray(value)  # drops ndarray subclasses (and their __eq__)
        if arr.dtype.kind not in _NUMERIC_KINDS:
            return "other", None, type_name
        return "array", np.array(arr, copy=True), type_name
    return "other", None, type_name


def _torch_module():
    import sys

    return sys.modules.get("torch")


def _snapshot(value):
    """A copy of an array-like argument, to detect in-place modification."""
    torch = _torch_module()
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return None


def _unchanged(before, after) -> bool:
    torch = _torch_module()
    if torch is not None and isinstance(before, torch.Tensor):
        return before.shape == after.shape and bool(torch.equal(before, after.detach()))
    return before.shape == after.shape and np.array_equal(before, after, equal_nan=True)


class Recording:
    """The outputs of the calls one probe makes, keyed by a call name.

    Each entry: ``status`` ("ok" or "error"), ``error_type``/``error_message``
    for errors, ``outputs`` (a list with one item per returned value:
    ``{"kind": "array"|"none"|"other"|"dict"|"too_large", "type": ...}`` plus
    the arrays), and ``mutated`` (indices of array arguments changed in place).
    """

    def __init__(self, grade_id: str, seed: int):
        self.grade_id = grade_id
        self.seed = int(seed)
        self.entries: dict[str, dict] = {}
        self.arrays: dict[str, np.ndarray] = {}

    # -- recording -----------------------------------------------------------
    def call(self, key: str, fn, *args, **kwargs):
        """Call ``fn(*args, **kwargs)`` and record what it returned or raised.

        Returns the raw result, or None when the call raised. Every exception
        is caught (SystemExit included), so one failing call never stops the
        probe. Array arguments are snapshotted to detect in-place changes.
        """
        snapshots = [(i, _snapshot(a)) for i, a in enumerate(args)]
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.entries[key] = {"status": "error", "error_type": type(exc).__name__,
                                 "error_message": str(exc)[:500]}
            return None
        mutated = [i for i, snap in snapshots if snap is not None and not _unchanged(snap, args[i])]
        values = list(result) if isinstance(result, (tuple, list)) else [result]
        self.entries[key] = {"status": "ok", "mutated": mutated, "n_returned": len(values),
                             "is_tuple": isinstance(result, (tuple, list)),
                             "outputs": [self._store(f"{key}#{i}", v) for i, v in enumerate(values)]}
        return result

    def _store(self, name: str, value) -> dict:
        if isinstance(value, dict):
            items = {}
            for k, v in value.items():
                items[str(k)] = self._store(f"{name}.{k}", v)
            return {"kind": "dict", "type": "dict", "items": items}
        kind, arr, type_name = _to_array(value)
        if kind == "array" and arr.size > MAX_OUTPUT_ELEMENTS:
            return {"kind": "too_large", "type": type_name, "shape": list(arr.shape)}
        entry = {"kind": kind, "type": type_name}
        if kind == "array":
            ref = f"a{len(self.arrays)}"
            self.arrays[ref] = arr
            entry.update(ref=ref, dtype=arr.dtype.str, shape=list(arr.shape))
        return entry

    # -- persistence -----------------------------------------------------------
    def save(self, directory) -> Path:
        """Write ``<grade_id>.npz`` then ``<grade_id>.json`` (the json last, so a
        half-written recording is never mistaken for a whole one)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / f"{self.grade_id}.npz", **self.arrays)
        manifest = {"format": FORMAT_VERSION, "grade_id": self.grade_id, "seed": self.seed,
                    "entries": self.entries}
        tmp = directory / f".{self.grade_id}.json.tmp"
        tmp.write_text(json.dumps(manifest))
        tmp.replace(directory / f"{self.grade_id}.json")
        return directory / f"{self.grade_id}.json"


def run_probe(grade_id: str, fn, seed: int) -> Recording:
    """Run the probe of ``grade_id`` on ``fn`` and return the recording.

    Used by :func:`record` in the kernel and by the trusted scorer on the
    hidden reference, so both sides see identical inputs.
    """
    from .probes import get_probe

    probe = get_probe(grade_id)
    rec = Recording(grade_id, seed)
    probe(fn, rec, np.random.default_rng(probe_seed(seed, grade_id)))
    return rec


def record(grade_id: str, fn) -> None:
    """Hidden-test entry point: record ``fn``'s behaviour while grading."""
    from .probes import get_probe

    get_probe(grade_id)  # a typo in a hidden cell fails loudly, even outside grading
    directory = os.environ.get(RECORD_DIR_ENV)
    if not directory:
        return
    seed = int(os.environ.get(SEED_ENV, "0"))
    run_probe(grade_id, fn, seed).save(directory)
