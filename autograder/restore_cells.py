"""Sanitising a submission with nbgrader's own preprocessors, in the order
``nbgrader autograde`` uses, plus RestoreMissingCells (ours): locked and test
cells come back from the gradebook, deleted grade cells are re-inserted.
"""
from __future__ import annotations

import logging

import nbformat
from nbformat.notebooknode import NotebookNode

from .nbgrader_setup import speed_up_gradebook

log = logging.getLogger(__name__)


def _nbgrader_preprocessors():
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds,
                                        LimitOutput, OverwriteCells, OverwriteKernelspec)
    return CheckCellMetadata, ClearOutput, DeduplicateIds, LimitOutput, OverwriteCells, OverwriteKernelspec


def _make_restore_missing():
    from nbgrader.api import Gradebook
    from nbgrader.nbgraderformat import MetadataValidator
    from nbgrader.preprocessors import NbGraderPreprocessor

    class RestoreMissingCells(NbGraderPreprocessor):
        """Put back grade cells and locked cells that the student deleted.

        nbgrader 0.9.6 has ``OverwriteCells.add_missing_cells`` (off by default),
        but it raises KeyError when the cell before a missing one is itself
        missing or is a plain locked cell, so we do it here. A missing cell goes
        after its anchor: for ``test_F`` the solution cell ``F`` (the course's
        convention), otherwise the nearest earlier cell of the source notebook
        still present; with no anchor, at the start (if it was the first source
        cell) or at the end. It also turns cells that carry nbgrader metadata but
        no grade_id (OverwriteCells removes unknown ids) into plain cells.
        """

        def preprocess(self, nb, resources):
            for cell in nb.cells:
                md = cell.metadata.get("nbgrader")
                if md is not None and not md.get("grade_id") and (
                        md.get("grade") or md.get("solution") or md.get("locked") or md.get("task")):
                    del cell.metadata["nbgrader"]
            nbg = resources["nbgrader"]
            with Gradebook(nbg["db_url"]) as gb:
                source_nb = gb.find_notebook(nbg["notebook"], nbg["assignment"])
                source_cells = list(source_nb.source_cells)
                points = {c.name: c.max_score for c in source_nb.grade_cells}
                solution_ids = {c.name for c in source_nb.solution_cells}
                task_ids = {c.name for c in source_nb.task_cells}
                order = [c.name for c in source_cells]
                present = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}
                restored = resources.setdefault("restored_cells", [])
                for sc in source_cells:
                    name = sc.name
                    if name in present or name in task_ids:
                        continue
                    is_grade = name in points
                    if not (is_grade or sc.locked):
                        continue  # a deleted solution cell is not put back
                    cell = self._cell(sc, points.get(name), name in solution_ids, MetadataValidator)
                    idx = self._position(nb, name, order, present)
                    nb.cells.insert(idx, cell)
                    present.add(name)
                    restored.append(name)
                    self.log.warning("restored missing cell %s at position %d", name, idx)
            return nb, resources

        @staticmethod
        def _index_of(nb, grade_id):
            for i, c in enumerate(nb.cells):
                if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
                    return i
            return None

        def _position(self, nb, name, order, present):
            if name.startswith("test_"):
                i = self._index_of(nb, name[len("test_"):])
                if i is not None:
                    return i + 1
            pos = order.index(name)
            for prev in reversed(order[:pos]):
                if prev in present:
                    i = self._index_of(nb, prev)
                    if i is not None:
                        return i + 1
            return 0 if pos == 0 else len(nb.cells)

        @staticmethod
        def _cell(sc, max_score, is_solution, validator_cls):
            md = {
                "grade": max_score is not None,
                "grade_id": sc.name,
                "locked": bool(sc.locked),
                "checksum": sc.checksum,
                "solution": bool(is_solution),
                "schema_version": 3,
            }
            if max_score is not None:
                md["points"] = float(max_score)
            meta = {"nbgrader": md}
            if not is_solution:
                meta.update({"deletable": False, "editable": False})
            if sc.cell_type == "code":
                cell = nbformat.v4.new_code_cell(source=sc.source or "", metadata=meta)
            else:
                cell = nbformat.v4.new_markdown_cell(source=sc.source or "", metadata=meta)
            return validator_cls().upgrade_cell_metadata(cell)

    return RestoreMissingCells


def sanitize(nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
    """nbgrader autograde's sanitising step, plus restoring deleted cells."""
    speed_up_gradebook()
    (CheckCellMetadata, ClearOutput, DeduplicateIds, _LimitOutput, OverwriteCells,
     OverwriteKernelspec) = _nbgrader_preprocessors()
    RestoreMissingCells = _make_restore_missing()
    for pp in (ClearOutput(), DeduplicateIds(), OverwriteKernelspec(),
               OverwriteCells(add_missing_cells=False), RestoreMissingCells(), CheckCellMetadata()):
        nb, resources = pp.preprocess(nb, resources)
    return nb, resources
