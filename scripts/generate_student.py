"""Generate the student notebooks ``chapters/NN-*/`` from ``solutions/NN-*/``.

Run as ``.venv/bin/python -m scripts.generate_student`` (``make student``).

For every chapter folder ``solutions/NN-name/``, nbgrader's ``generate_assignment``
runs in a TEMPORARY course directory (a copy of that one folder as the source, a
temporary release folder and a temporary gradebook): ``--force`` wipes the whole release
folder, which in the real tree would delete the prose pages kept in ``chapters/``, and
the real ``grading/gradebook.db`` must not be touched. Only the generated notebooks are
then copied into ``chapters/NN-name/``.

``--check`` generates into a temporary folder instead and exits 1 if ``chapters/`` differs
from what generation gives (cell types and sources compared; execution counts and
nbgrader checksums are ignored).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = "solutions"
CHAPTERS = "chapters"


def chapter_dirs(root: Path = REPO_ROOT) -> list[Path]:
    """``solutions/NN-*/`` folders that hold at least one notebook."""
    base = root / SOLUTIONS
    return sorted(
        d for d in base.glob("[0-9][0-9]-*")
        if d.is_dir() and any(d.rglob("*.ipynb"))
    )


def _notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def generate(chapter_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Run nbgrader on ``chapter_dir`` (a ``solutions/NN-name`` folder) and write the
    generated student notebooks into ``out_dir``. Returns the written paths.

    Nothing outside a temporary directory is read or written except ``chapter_dir``
    (read) and the notebooks in ``out_dir`` (written); other files in ``out_dir``, such
    as the prose page ``index.md``, are left alone.
    """
    from autograder.nbgrader_setup import generate_assignment

    chapter_dir = Path(chapter_dir).resolve()
    # A throwaway gradebook: never the real one in grading/.
    with tempfile.TemporaryDirectory(prefix="gen-student-") as tmp:
        return generate_assignment(chapter_dir.name, f"sqlite:///{Path(tmp) / 'gradebook.db'}",
                                   Path(out_dir), solutions_root=chapter_dir.parent)


def normalise(nb: dict) -> list[tuple[str, str, dict]]:
    """What must match between a committed and a fresh student notebook: per cell its
    type, its source and its nbgrader flags (not checksums, not execution counts)."""
    cells = []
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        meta = dict(cell.get("metadata", {}).get("nbgrader", {}))
        meta.pop("checksum", None)
        cells.append((cell.get("cell_type"), source, meta))
    return cells


def compare(expected_dir: Path, actual_dir: Path) -> list[str]:
    """Differences between freshly generated notebooks and committed ones."""
    problems = []
    for fresh in _notebooks(expected_dir):
        rel = fresh.relative_to(expected_dir)
        committed = actual_dir / rel
        if not committed.is_file():
            problems.append(f"{committed}: missing (run `make student`)")
            continue
        a = normalise(json.loads(fresh.read_text(encoding="utf-8")))
        b = normalise(json.loads(committed.read_text(encoding="utf-8")))
        if a != b:
            first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            problems.append(
                f"{committed}: differs from what nbgrader generates from solutions/ "
                f"(first difference at cell {first}; {len(b)} cells committed, {len(a)} "
                f"generated); run `make student`"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*",
                        help="chapter folder names (default: every solutions/NN-*)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if chapters/ is out of date")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    dirs = chapter_dirs(root)
    if args.chapters:
        wanted = set(args.chapters)
        dirs = [d for d in dirs if d.name in wanted]
        missing = wanted - {d.name for d in dirs}
        if missing:
            parser.error(f"no such chapter under {SOLUTIONS}/: {sorted(missing)}")
    problems: list[str] = []
    for chapter in dirs:
        target = root / CHAPTERS / chapter.name
        if args.check:
            with tempfile.TemporaryDirectory(prefix="student-check-") as tmp:
                generate(chapter, tmp)
                problems += compare(Path(tmp), target)
        else:
            for path in generate(chapter, target):
                print(f"wrote {path.relative_to(root)}")
    if args.check:
        if problems:
            print("\n".join(problems))
            return 1
        print(f"chapters/ is up to date with solutions/ ({len(dirs)} chapter(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
