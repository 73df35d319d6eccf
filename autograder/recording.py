"""Loading a recording written inside the sandbox: hostile data.

The kernel that wrote it ran student code, so nothing in the files is
trusted: JSON and ``.npz`` only (``allow_pickle=False``), a size cap, and
every entry's structure, dtype and shape validated against the manifest.
A bad recording becomes a :class:`RecordingError` with a plain message; it
never crashes the grader.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dropout_lab.recorder import FORMAT_VERSION, Recording

MAX_RECORDING_BYTES = 64 * 2**20
_KINDS = {"array", "none", "other", "dict", "too_large"}


class RecordingError(Exception):
    """The recording is missing or malformed; the message is for the student."""


@dataclass
class Output:
    """One returned value: ``kind`` is array/none/other/dict/too_large; ``value``
    is an ndarray (array), a dict of Outputs (dict) or None; ``type`` the type
    name the recorder saw (e.g. ``numpy.ndarray``, ``torch.Tensor:float32``)."""

    kind: str
    value: object
    type: str
    shape: tuple | None = None

    @property
    def is_torch(self) -> bool:
        return self.type.startswith("torch.Tensor")


@dataclass
class Entry:
    status: str
    outputs: list = field(default_factory=list)
    error_type: str = ""
    error_message: str = ""
    mutated: tuple = ()
    is_tuple: bool = False


@dataclass
class View:
    """A validated recording: ``entries[call_name] -> Entry``."""

    grade_id: str
    seed: int
    entries: dict


def _output_from(meta, arrays, where: str) -> Output:
    if not isinstance(meta, dict) or meta.get("kind") not in _KINDS:
        raise RecordingError(f"malformed output description at {where}")
    kind, type_name = meta["kind"], str(meta.get("type", ""))[:100]
    if kind == "dict":
        items = meta.get("items")
        if not isinstance(items, dict) or len(items) > 64:
            raise RecordingError(f"malformed dict output at {where}")
        return Output("dict", {str(k): _output_from(v, arrays, f"{where}.{k}") for k, v in items.items()}, type_name)
    if kind == "array":
        ref = meta.get("ref")
        if not isinstance(ref, str) or ref not in arrays:
            raise RecordingError(f"array missing for {where}")
        arr = arrays[ref]
        if list(arr.shape) != list(meta.get("shape", [])) or arr.dtype.str != meta.get("dtype"):
            raise RecordingError(f"array for {where} does not match its description")
        if arr.dtype.kind not in "biufc":
            raise RecordingError(f"non-numeric array for {where}")
        return Output("array", arr, type_name, tuple(arr.shape))
    shape = meta.get("shape")
    return Output(kind, None, type_name, tuple(shape) if isinstance(shape, list) else None)


def _entry_from(meta, arrays, key) -> Entry:
    if not isinstance(meta, dict) or meta.get("status") not in ("ok", "error"):
        raise RecordingError(f"malformed entry {key!r}")
    if meta["status"] == "error":
        return Entry("error", error_type=str(meta.get("error_type", ""))[:100],
                     error_message=str(meta.get("error_message", ""))[:500])
    outputs = meta.get("outputs")
    if not isinstance(outputs, list) or len(outputs) > 16:
        raise RecordingError(f"malformed outputs for {key!r}")
    mutated = meta.get("mutated", [])
    if not isinstance(mutated, list) or not all(isinstance(i, int) for i in mutated):
        raise RecordingError(f"malformed entry {key!r}")
    return Entry("ok", [_output_from(o, arrays, f"{key}[{i}]") for i, o in enumerate(outputs)],
                 mutated=tuple(mutated), is_tuple=bool(meta.get("is_tuple", False)))


def load_recording(directory, grade_id: str, expected_seed: int) -> View:
    """Read and validate ``<directory>/<grade_id>.{json,npz}``."""
    directory = Path(directory)
    manifest_path, arrays_path = directory / f"{grade_id}.json", directory / f"{grade_id}.npz"
    for path in (manifest_path, arrays_path):
        if path.is_symlink() or not path.is_file():
            raise RecordingError("no recording was made (the hidden test did not run to the end)")
    if manifest_path.stat().st_size + arrays_path.stat().st_size > MAX_RECORDING_BYTES:
        raise RecordingError("the recording is larger than the grader accepts")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise RecordingError("the recording's manifest is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION \
            or manifest.get("grade_id") != grade_id or not isinstance(manifest.get("entries"), dict):
        raise RecordingError("the recording's manifest is malformed")
    if manifest.get("seed") != expected_seed:
        raise RecordingError("the recording was not made with this run's seed")
    try:
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise RecordingError(f"the recording's arrays could not be read ({type(exc).__name__})") from None
    entries = {str(k): _entry_from(v, arrays, k) for k, v in manifest["entries"].items()}
    return View(grade_id, expected_seed, entries)


def view_of(recording: Recording) -> View:
    """A View of an in-memory Recording (the reference side), through the same
    validation path as a file, so both sides are read identically."""
    entries = {k: _entry_from(v, recording.arrays, k) for k, v in recording.entries.items()}
    return View(recording.grade_id, recording.seed, entries)
