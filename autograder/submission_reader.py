"""Reading a submitted notebook defensively.

A submission is whatever file a student handed in: empty, truncated, not
JSON, an old nbformat, a huge file. :func:`read_submission` returns a valid
v4 notebook or raises :class:`InvalidNotebook` with a message a student can
act on; it never lets a library traceback through.
"""
from __future__ import annotations

import json
import os
import pathlib

import nbformat
from nbformat.notebooknode import NotebookNode

#: the largest submission we read (bytes).
MAX_NOTEBOOK_BYTES = 20 * 2**20
#: the most cells a submission may have.
MAX_CELLS = 2000


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


def read_submission(path: str | os.PathLike) -> NotebookNode:
    """Read a submitted notebook or raise InvalidNotebook with a plain message."""
    path = pathlib.Path(path)
    try:
        if path.is_symlink() or not path.is_file():
            raise InvalidNotebook(f"{path.name} is not a regular file.")
        size = path.stat().st_size
        if size == 0:
            raise InvalidNotebook(f"{path.name} is empty (0 bytes).")
        if size > MAX_NOTEBOOK_BYTES:
            raise InvalidNotebook(
                f"{path.name} is {size / 2**20:.1f} MB; the limit is "
                f"{MAX_NOTEBOOK_BYTES // 2**20} MB. Clear the outputs (Kernel > Restart & Clear "
                "Output) and submit again.")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as exc:
        raise InvalidNotebook(f"{path.name} could not be read: {exc.strerror or exc}.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidNotebook(f"{path.name} is not a text file (not UTF-8), so not a notebook.") from None
    if not text.strip():
        raise InvalidNotebook(f"{path.name} is empty.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidNotebook(
            f"{path.name} is not valid JSON, so Jupyter cannot open it ({exc}). It may have "
            "been truncated or edited by hand; re-download it from Jupyter and submit again.") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise InvalidNotebook(f"{path.name} is JSON but not a Jupyter notebook (no 'nbformat' field).")
    major = data.get("nbformat")
    if not isinstance(major, int) or major < 3 or major > 4:
        raise InvalidNotebook(
            f"{path.name} has notebook format version {major!r}; only versions 3 and 4 can be graded.")
    try:
        nb = nbformat.reads(text, as_version=4, capture_validation_error={})
    except Exception as exc:  # nbformat raises many kinds on malformed input
        if major == 4:
            try:
                nb = _repair_cells(data)
            except Exception:
                raise InvalidNotebook(f"{path.name} is not a readable notebook ({exc}).") from None
        else:
            raise InvalidNotebook(f"{path.name} could not be upgraded from format 3 ({exc}).") from None
    try:
        nbformat.validate(nb)
    except Exception:
        try:
            nb = _repair_cells(nb if isinstance(nb, dict) else data)
            nbformat.validate(nb)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidNotebook(f"{path.name} is not a valid notebook: {first}") from None
    if not nb.cells:
        raise InvalidNotebook(f"{path.name} has no cells.")
    if len(nb.cells) > MAX_CELLS:
        raise InvalidNotebook(f"{path.name} has {len(nb.cells)} cells; the limit is {MAX_CELLS}.")
    return nb
