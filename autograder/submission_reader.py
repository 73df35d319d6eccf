"""Reading a submitted notebook defensively, once.

A submission is whatever file a student handed in: empty, truncated, not
JSON, an old nbformat, a huge file, a symbolic link, a FIFO. Reading is two
steps: :func:`read_submission_bytes` takes the bytes (never following a link,
never opening a special file, never more than :data:`MAX_NOTEBOOK_BYTES`) and
:func:`parse_submission` turns them into a valid v4 notebook or raises
:class:`InvalidNotebook` with a message a student can act on; no library
traceback gets through, whatever the bytes.

The grader reads each submission once, with :func:`load_submission`: the
notebook it returns is the one executed, scanned for flags and saved, and its
``digest`` (of the very bytes parsed) keys the results journal.
:func:`read_submission` (path in, notebook out) is both steps in one.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
from dataclasses import dataclass

import nbformat
from nbformat.notebooknode import NotebookNode

from .names import display
from .safe_files import UnsafeFile, read_regular_file

#: the largest submission we read (bytes).
MAX_NOTEBOOK_BYTES = 20 * 2**20
#: the most cells a submission may have.
MAX_CELLS = 2000
#: the deepest nesting of JSON arrays and objects a submission may have (nbformat,
#: jsonschema and nbconvert recurse on it; real notebooks stay far below).
MAX_DEPTH = 100


class InvalidNotebook(Exception):
    """The submission cannot be read as a Jupyter notebook."""


def _repair_cells(nbdict: dict) -> dict:
    """Keep only the keys nbformat 4 allows on cells (outputs are cleared anyway)."""
    cells = []
    for cell in nbdict.get("cells", []):
        if not isinstance(cell, dict):
            continue
        ctype = cell.get("cell_type")
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(s) for s in source)
        if not isinstance(source, str):
            source = str(source)
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        if ctype == "code":
            new = nbformat.v4.new_code_cell(source=source, metadata=metadata)
        elif ctype == "markdown":
            new = nbformat.v4.new_markdown_cell(source=source, metadata=metadata)
        elif ctype == "raw":
            new = nbformat.v4.new_raw_cell(source=source, metadata=metadata)
        else:
            continue
        if isinstance(cell.get("id"), str):
            new["id"] = cell["id"]
        cells.append(new)
    nb = nbformat.v4.new_notebook(cells=cells)
    md = nbdict.get("metadata")
    if isinstance(md, dict):
        nb.metadata.update(md)
    return nb



def _sentence(message: str) -> str:
    return message if message.endswith(".") else message + "."


def read_submission_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a submitted file, or InvalidNotebook when it is a link, a
    special file, missing, unreadable or over :data:`MAX_NOTEBOOK_BYTES`."""
    try:
        return read_regular_file(path, MAX_NOTEBOOK_BYTES)
    except UnsafeFile as exc:
        raise InvalidNotebook(_sentence(exc.message)) from None


def _too_deep(data, limit: int) -> bool:
    """True when arrays and objects nest deeper than ``limit`` (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        obj, depth = stack.pop()
        if depth > limit:
            return True
        children = obj.values() if isinstance(obj, dict) else obj
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_submission(raw: bytes, name: str = "the submission") -> NotebookNode:
    """A valid v4 notebook from a submission's bytes, or InvalidNotebook with a
    plain message (``name``, the file's name, is shown in it, displayed safely).
    Never raises anything else on hostile bytes (deep nesting, huge numbers...)."""
    name = display(name)
    try:
        return _parse(raw, name)
    except (RecursionError, MemoryError):
        raise InvalidNotebook(f"{name} is nested too deeply or is too large to read as a notebook.") from None


def _parse(raw: bytes, name: str) -> NotebookNode:
    if not raw:
        raise InvalidNotebook(f"{name} is empty (0 bytes).")
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise InvalidNotebook(
            f"{name} is {len(raw) / 2**20:.1f} MB; the limit is {MAX_NOTEBOOK_BYTES // 2**20} MB. Clear the "
            "outputs (Kernel > Restart & Clear Output) and submit again.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidNotebook(f"{name} is not a text file (not UTF-8), so not a notebook.") from None
    if not text.strip():
        raise InvalidNotebook(f"{name} is empty.")
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidNotebook(f"{name} nests its JSON deeper than any notebook Jupyter writes; re-download it "
                              "from Jupyter and submit again.") from None
    except ValueError as exc:
        raise InvalidNotebook(
            f"{name} is not valid JSON, so Jupyter cannot open it ({display(exc, 200)}). It may have "
            "been truncated or edited by hand; re-download it from Jupyter and submit again.") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise InvalidNotebook(f"{name} is JSON but not a Jupyter notebook (no 'nbformat' field).")
    major = data.get("nbformat")
    if not isinstance(major, int) or isinstance(major, bool) or major < 3 or major > 4:
        raise InvalidNotebook(
            f"{name} has notebook format version {display(repr(major), 40)}; only versions 3 and 4 can be graded.")
    if _too_deep(data, MAX_DEPTH):
        raise InvalidNotebook(f"{name} nests its JSON more than {MAX_DEPTH} levels deep, deeper than any "
                              "notebook Jupyter writes; re-download it from Jupyter and submit again.")
    if not isinstance(data.get("metadata", {}), dict):
        # top-level metadata [] or a string: nbformat cannot even upgrade that; it carries nothing we use
        data["metadata"] = {}
        text = json.dumps(data)
    try:
        nb = nbformat.reads(text, as_version=4, capture_validation_error={})
    except Exception as exc:  # nbformat raises many kinds on malformed input
        if major == 4:
            try:
                nb = _repair_cells(data)
            except Exception:
                raise InvalidNotebook(f"{name} is not a readable notebook ({_first_line(exc)}).") from None
        else:
            raise InvalidNotebook(f"{name} could not be upgraded from format 3 ({_first_line(exc)}).") from None
    try:
        nbformat.validate(nb)
    except Exception:
        try:
            nb = _repair_cells(nb if isinstance(nb, dict) else data)
            nbformat.validate(nb)
        except Exception as exc:
            raise InvalidNotebook(f"{name} is not a valid notebook: {_first_line(exc)}") from None
    if not nb.cells:
        raise InvalidNotebook(f"{name} has no cells.")
    if len(nb.cells) > MAX_CELLS:
        raise InvalidNotebook(f"{name} has {len(nb.cells)} cells; the limit is {MAX_CELLS}.")
    return nb


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return display(text.splitlines()[0], 300) if text else type(exc).__name__


def read_submission(path: str | os.PathLike) -> NotebookNode:
    """Read a submitted notebook or raise InvalidNotebook with a plain message."""
    return parse_submission(read_submission_bytes(path), pathlib.Path(path).name)


@dataclass
class LoadedSubmission:
    """A submission read once: what every later step (execution, flag scan,
    the results journal) uses instead of the file.

    ``notebook`` is the parsed, repaired v4 notebook, or None when the file is
    not a gradable notebook; ``error`` then says why (the InvalidNotebook
    message). ``digest`` identifies exactly what was read: the SHA-256 hex of
    the bytes, or, when nothing was read, a stable tag: ``link:<sha256 of the
    link's target text>``, ``special`` (FIFO, device, socket), ``directory``,
    ``too-large:<size>``, ``unreadable`` (missing or no permission).
    ``size`` is the number of bytes read (the file's size for ``too-large``).
    """

    notebook: NotebookNode | None
    digest: str
    error: str | None
    size: int


def _unsafe_digest(exc: UnsafeFile) -> str:
    if exc.kind == "link":
        if exc.target is None:
            return "link"
        return "link:" + hashlib.sha256(os.fsencode(exc.target)).hexdigest()
    if exc.kind == "too_large":
        return f"too-large:{exc.size}"
    if exc.kind in ("special", "directory"):
        return exc.kind
    return "unreadable"


def load_submission(path: str | os.PathLike) -> LoadedSubmission:
    """Read and parse ``path`` once; never raises on anything the file holds
    (a link, a FIFO, a device, hostile bytes): problems become ``error``."""
    name = pathlib.Path(path).name
    try:
        raw = read_regular_file(path, MAX_NOTEBOOK_BYTES)
    except UnsafeFile as exc:
        return LoadedSubmission(None, _unsafe_digest(exc), _sentence(exc.message), exc.size or 0)
    digest = hashlib.sha256(raw).hexdigest()
    try:
        return LoadedSubmission(parse_submission(raw, name), digest, None, len(raw))
    except InvalidNotebook as exc:
        return LoadedSubmission(None, digest, str(exc), len(raw))
    except Exception as exc:  # noqa: BLE001 - hostile bytes must never raise past here
        return LoadedSubmission(None, digest, f"{display(name)} could not be read ({type(exc).__name__}).",
                                len(raw))


def submission_digest(path: str | os.PathLike) -> str:
    """The ``digest`` :func:`load_submission` gives the same file, without
    parsing it (for the parent's resume check); never raises."""
    try:
        return hashlib.sha256(read_regular_file(path, MAX_NOTEBOOK_BYTES)).hexdigest()
    except UnsafeFile as exc:
        return _unsafe_digest(exc)
