"""Loading a recording written inside the sandbox: hostile data.

The kernel that wrote it ran student code, so nothing in the files is
trusted, not even the grader's host copies of them. Every step is bounded in
time and memory before it runs:

* both files are opened without following links and without blocking
  (``O_NOFOLLOW | O_NONBLOCK``), must be regular files, and are read up to a
  cap (the manifest has its own, much smaller one);
* the JSON manifest is parsed with a nesting limit (a too-deep document is a
  RecordingError, never a RecursionError) and caps on entries and outputs;
* the ``.npz`` is never handed to ``np.load``. Its central directory is
  inspected first (member count, names, duplicates, declared sizes); members
  must be stored, as the recorder's ``np.savez`` writes them: a compressed
  member is refused without inflating a byte, so a small file can never
  become a large array. Each member's ``.npy`` header is read and checked
  (numeric dtype only, shape whose byte count equals the member's size, total
  over all members capped) and only then is the array built, from the
  CRC-checked bytes. No pickle, ever.

A bad recording becomes a :class:`RecordingError` with a plain message; it
never raises anything else and never crashes the grader.
"""
from __future__ import annotations

import io
import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dropout_lab.recorder import FORMAT_VERSION, Recording

from .safe_files import UnsafeFile, read_regular_file

#: Both files together, on disk (the harvester copies at most this much of each).
MAX_RECORDING_BYTES = 64 * 2**20
#: The JSON manifest. The largest real one (probes of chapters 04 and 05 on the
#: references) is 4.3 KB; 1 MiB leaves 250x room and bounds parsing to a few
#: tens of MB of Python objects.
MAX_MANIFEST_BYTES = 2**20
#: Nesting of the manifest: a real one is 6 deep (plus 2 per level of dict output).
MAX_JSON_DEPTH = 32
#: Probe calls per recording (real: at most 16) and returned values per call.
MAX_ENTRIES = 256
MAX_OUTPUTS_PER_ENTRY = 16
#: Keys of one returned dict (real: 4), dicts within dicts, and outputs in all.
MAX_DICT_ITEMS = 64
MAX_DICT_DEPTH = 4
MAX_OUTPUTS = 4096
#: ``mutated`` lists indices of arguments; a shape has at most this many axes.
MAX_MUTATED = 64
MAX_NDIM = 32
#: Members of the .npz (real: at most 33) and their array data in all (real:
#: at most 0.9 MB). Every member is stored, so the data can never exceed the
#: file; the cap also bounds members that share bytes.
MAX_MEMBERS = 256
MAX_ARRAY_BYTES = MAX_RECORDING_BYTES
#: Before zipfile reads the central directory, the number of central-directory
#: signatures anywhere in the file bounds how many entries it can build.
_MAX_DIRECTORY_SIGNATURES = 4 * MAX_MEMBERS
_MEMBER_NAME = re.compile(r"[A-Za-z0-9_]{1,64}\.npy")
_NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex
_CHUNK = 2**20
_KINDS = {"array", "none", "other", "dict", "too_large"}
_NOT_MADE = "no recording was made (the hidden test did not run to the end)"
_TOO_LARGE = f"the recording is larger than the grader accepts ({MAX_RECORDING_BYTES // 2**20} MiB)"


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


def _printable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, control characters (terminal
    escapes, newlines) replaced: it ends up in messages and reports."""
    return "".join(c if c.isprintable() else " " if c.isspace() else "?" for c in text[:limit])


class _Budget:
    """Outputs still allowed in one recording (dicts count their items)."""

    def __init__(self):
        self.outputs = MAX_OUTPUTS

    def take(self, where: str) -> None:
        self.outputs -= 1
        if self.outputs < 0:
            raise RecordingError(f"the recording holds more than {MAX_OUTPUTS} outputs (at {where})")


def _shape_of(value, where: str):
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_NDIM \
            or not all(type(n) is int and 0 <= n < 2**63 for n in value):
        raise RecordingError(f"malformed shape at {where}")
    return tuple(value)


def _output_from(meta, arrays, where: str, budget: _Budget | None = None, depth: int = 0) -> Output:
    budget = budget or _Budget()
    budget.take(where)
    if not isinstance(meta, dict) or not isinstance(meta.get("kind"), str) or meta["kind"] not in _KINDS \
            or not isinstance(meta.get("type", ""), str):
        raise RecordingError(f"malformed output description at {where}")
    kind, type_name = meta["kind"], _printable(meta.get("type", ""), 100)
    if kind == "dict":
        items = meta.get("items")
        if not isinstance(items, dict) or len(items) > MAX_DICT_ITEMS or depth >= MAX_DICT_DEPTH:
            raise RecordingError(f"malformed dict output at {where}")
        return Output("dict", {str(k)[:100]: _output_from(v, arrays, f"{where}[{str(k)[:40]!r}]", budget, depth + 1)
                               for k, v in items.items()}, type_name)
    if kind == "array":
        ref = meta.get("ref")
        if not isinstance(ref, str) or ref not in arrays:
            raise RecordingError(f"array missing for {where}")
        arr, shape = arrays[ref], meta.get("shape")
        if not isinstance(shape, (list, tuple)) or list(arr.shape) != list(shape) or arr.dtype.str != meta.get("dtype"):
            raise RecordingError(f"array for {where} does not match its description")
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise RecordingError(f"non-numeric array for {where}")
        return Output("array", arr, type_name, tuple(arr.shape))
    return Output(kind, None, type_name, _shape_of(meta.get("shape"), where))


def _entry_from(meta, arrays, key, budget: _Budget | None = None) -> Entry:
    budget = budget or _Budget()
    shown = repr(str(key)[:100])
    if not isinstance(meta, dict) or meta.get("status") not in ("ok", "error"):
        raise RecordingError(f"malformed entry {shown}")
    if meta["status"] == "error":
        error_type, error_message = meta.get("error_type", ""), meta.get("error_message", "")
        if not isinstance(error_type, str) or not isinstance(error_message, str):
            raise RecordingError(f"malformed entry {shown}")
        return Entry("error", error_type=_printable(error_type, 100), error_message=_printable(error_message, 500))
    outputs = meta.get("outputs")
    if not isinstance(outputs, list) or len(outputs) > MAX_OUTPUTS_PER_ENTRY:
        raise RecordingError(f"malformed outputs for {shown}")
    mutated = meta.get("mutated", [])
    if not isinstance(mutated, list) or len(mutated) > MAX_MUTATED or not all(isinstance(i, int) for i in mutated):
        raise RecordingError(f"malformed entry {shown}")
    return Entry("ok", [_output_from(o, arrays, f"{shown}[{i}]", budget) for i, o in enumerate(outputs)],
                 mutated=tuple(mutated), is_tuple=bool(meta.get("is_tuple", False)))


# -- reading the files ----------------------------------------------------------

def _read_regular(path: Path, limit: int, too_large: str) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; a link
    or special file is refused before it is read and never blocks
    (:func:`autograder.safe_files.read_regular_file`)."""
    try:
        return read_regular_file(path, limit)
    except UnsafeFile as exc:
        if exc.kind == "missing":
            raise RecordingError(_NOT_MADE) from None
        if exc.kind == "too_large":
            raise RecordingError(too_large) from None
        if exc.kind in ("link", "special", "directory"):
            raise RecordingError(f"the recording's {path.suffix} file is not a regular file "
                                 "(a link or a special file); it was not read") from None
        raise RecordingError(f"the recording's {path.suffix} file could not be opened") from None


def _too_deep(value, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests lists/dicts more than ``limit``
    deep. Iterative, so a deep document cannot exhaust the stack here."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _parse_manifest(data: bytes):
    """The parsed manifest. ``json`` itself stops at the interpreter's
    recursion limit (a RecursionError, caught); what parses is then held to
    MAX_JSON_DEPTH, so nothing downstream meets a deep structure."""
    too_deep = RecordingError(f"the recording's manifest is malformed (nested more than {MAX_JSON_DEPTH} "
                              "levels deep)")
    try:
        manifest = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise too_deep from None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RecordingError("the recording's manifest is not valid JSON") from None
    if _too_deep(manifest, MAX_JSON_DEPTH):
        raise too_deep
    return manifest



def _unreadable(why: str) -> RecordingError:
    return RecordingError(f"the recording's arrays could not be read: {why}")


def _check_directory(infos, file_size: int) -> None:
    """Refuse a zip whose central directory is not what ``np.savez`` writes:
    before any member is opened, let alone decompressed."""
    if len(infos) > MAX_MEMBERS:
        raise _unreadable(f"the .npz holds {len(infos)} members, more than the {MAX_MEMBERS} accepted")
    names = set()
    for info in infos:
        name = info.filename
        if not _MEMBER_NAME.fullmatch(name):
            raise _unreadable(f"the .npz member {name[:40]!r} is not named <ref>.npy")
        if name in names:
            raise _unreadable(f"the .npz holds two members named {name!r}")
        names.add(name)
        if info.compress_type != zipfile.ZIP_STORED:
            raise _unreadable(f"{name} is compressed; the grader accepts only the uncompressed .npz "
                              "the recorder writes")
        if info.flag_bits & 0x1:
            raise _unreadable(f"{name} is encrypted")
        if info.file_size != info.compress_size or info.file_size > file_size:
            raise _unreadable(f"{name} declares {info.file_size} bytes, which the file does not hold")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list) -> np.ndarray:
    """One stored ``.npy`` member, header checked before its array is built."""
    name = info.filename
    with zf.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise _unreadable(f"{name} has .npy format version {version}, not 1.0 or 2.0")
        if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.names is not None \
                or dtype.subdtype is not None:
            raise _unreadable(f"{name} holds non-numeric values (objects, text or records), not numbers")
        if len(shape) > MAX_NDIM or any(n < 0 for n in shape):
            raise _unreadable(f"{name} has a malformed shape")
        n_bytes = math.prod(shape) * dtype.itemsize
        held = info.file_size - member.tell()
        if n_bytes != held:
            raise _unreadable(f"the header of {name} describes {n_bytes} bytes of data "
                              f"(shape {shape[:8]}, dtype {dtype.str}) but the member holds {held}")
        budget[0] -= n_bytes
        if budget[0] < 0:
            raise _unreadable(f"the arrays hold more than {MAX_ARRAY_BYTES // 2**20} MiB of data")
        flat = np.empty(n_bytes, dtype=np.uint8)
        view, done = memoryview(flat), 0
        while done < n_bytes:  # bounded chunks; zipfile checks the CRC at the end
            got = member.readinto(view[done:done + _CHUNK])
            if not got:
                raise _unreadable(f"{name} is truncated")
            done += got
        if member.read(1):
            raise _unreadable(f"{name} holds more bytes than its header describes")
    return flat.view(dtype).reshape(shape, order="F" if fortran_order else "C")


def _arrays_from_npz(data: bytes) -> dict:
    if data.count(b"PK\x01\x02") > _MAX_DIRECTORY_SIGNATURES:
        raise _unreadable(f"the .npz holds more than {MAX_MEMBERS} members")
    budget = [MAX_ARRAY_BYTES]  # bytes of array data still allowed, shared by the members
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            _check_directory(infos, len(data))
            return {info.filename[:-len(".npy")]: _read_member(zf, info, budget) for info in infos}
    except RecordingError:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile bytes: whatever zipfile or numpy raise is a bad file
        detail = _printable(str(exc), 120)
        raise _unreadable(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__) from None


def load_recording(directory, grade_id: str, expected_seed: int) -> View:
    """Read and validate ``<directory>/<grade_id>.{json,npz}``; a RecordingError otherwise."""
    directory = Path(directory)
    manifest_path, arrays_path = directory / f"{grade_id}.json", directory / f"{grade_id}.npz"
    manifest_bytes = _read_regular(manifest_path, MAX_MANIFEST_BYTES, "the recording's manifest is larger than "
                                   f"the grader accepts ({MAX_MANIFEST_BYTES // 2**20} MiB)")
    arrays_bytes = _read_regular(arrays_path, MAX_RECORDING_BYTES - len(manifest_bytes), _TOO_LARGE)
    manifest = _parse_manifest(manifest_bytes)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION \
            or manifest.get("grade_id") != grade_id or not isinstance(manifest.get("entries"), dict):
        raise RecordingError("the recording's manifest is malformed")
    if len(manifest["entries"]) > MAX_ENTRIES:
        raise RecordingError(f"the recording's manifest is malformed (more than {MAX_ENTRIES} entries)")
    seed = manifest.get("seed")
    if type(seed) is not int or seed != expected_seed:
        raise RecordingError("the recording was not made with this run's seed")
    arrays = _arrays_from_npz(arrays_bytes)
    budget = _Budget()
    entries = {k: _entry_from(v, arrays, k, budget) for k, v in manifest["entries"].items()}
    return View(grade_id, expected_seed, entries)


def view_of(recording: Recording) -> View:
    """A View of an in-memory Recording (the reference side), through the same
    validation path as a file, so both sides are read identically."""
    budget = _Budget()
    entries = {k: _entry_from(v, recording.arrays, k, budget) for k, v in recording.entries.items()}
    return View(recording.grade_id, recording.seed, entries)
