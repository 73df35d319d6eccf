"""Shared helpers for the book tests (test_book.py, test_browser.py).

Not a conftest: the test modules import what they need from here. The book is built
once per test run by ``scripts.build_book`` into the real ``_build``; when the two
modules run in two xdist workers, the second reuses the first one's build
(see ``build_book_once``).

``DROPOUT_BOOK_ROOT=/some/copy`` points every book test at another copy of the
repository (used to check that the tests fail on a broken copy).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from scripts.build_book import file_lock

REPO_ROOT = Path(__file__).resolve().parent.parent
BOOK_ROOT = Path(os.environ.get("DROPOUT_BOOK_ROOT", REPO_ROOT)).resolve()
HTML_DIR = BOOK_ROOT / "_build" / "html"
SCREENSHOT_DIR = BOOK_ROOT / "_build" / "screenshots"

# Strings that must never reach the website.
FORBIDDEN_STRINGS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "from autograder")
SENTINEL_RE = re.compile(r"SENTINEL-[A-Z]+-[0-9A-Za-z-]+")
CDN_RE = re.compile(r"cdn\.jsdelivr|cdnjs|unpkg\.com|unpkg|mathjax\.org", re.IGNORECASE)


@dataclass
class BuildResult:
    returncode: int
    output: str
    seconds: float

    def tail(self, n: int = 80) -> str:
        return "\n".join(self.output.splitlines()[-n:])


_BUILD: BuildResult | None = None


def build_book_once() -> BuildResult:
    """Build the book once per test run via ``python -m scripts.build_book``.

    Under xdist the two book modules may land in two workers. The first one
    builds and stores the result under ``_build/``, keyed by the run's id; the
    second waits on the lock and reuses it, so no build ever rewrites pages
    while another worker's tests read or serve them.
    """
    global _BUILD
    if _BUILD is not None:
        return _BUILD
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        _BUILD = _run_build()
        return _BUILD
    build_dir = BOOK_ROOT / "_build"
    stamp = build_dir / f".test-build-{run_id}.json"
    # not build_book's own lock file: the build subprocess takes that one
    with file_lock(build_dir / ".test-build.lock"):
        if stamp.is_file():
            _BUILD = BuildResult(**json.loads(stamp.read_text()))
        else:
            _BUILD = _run_build()
            for old in build_dir.glob(".test-build-*.json"):
                old.unlink()
            stamp.write_text(json.dumps(asdict(_BUILD)))
    return _BUILD


def _run_build() -> BuildResult:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.build_book", "--root", str(BOOK_ROOT)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=900,
    )
    return BuildResult(proc.returncode, proc.stdout, time.perf_counter() - start)


def toc_docnames(toc_path: Path | None = None) -> list[str]:
    """Every document listed in ``_toc.yml`` (root first), without suffix."""
    toc = yaml.safe_load((toc_path or BOOK_ROOT / "_toc.yml").read_text())
    names: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(_strip_suffix(node["file"]))
            for key in ("parts", "chapters", "sections", "subtrees", "entries"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    names.append(_strip_suffix(toc["root"]))
    walk(toc)
    return names


def _strip_suffix(name: str) -> str:
    for suffix in (".md", ".ipynb", ".rst"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def toc_source(docname: str) -> Path | None:
    """The source file of a toc entry, whatever its suffix."""
    for suffix in (".md", ".ipynb", ".rst"):
        path = BOOK_ROOT / f"{docname}{suffix}"
        if path.is_file():
            return path
    return None


def solution_notebooks() -> list[Path]:
    return sorted((BOOK_ROOT / "solutions").glob("*/exercises.ipynb"))


def sentinels_in(path: Path) -> set[str]:
    return set(SENTINEL_RE.findall(path.read_text(encoding="utf-8", errors="replace")))


def iter_site_files():
    for path in sorted(HTML_DIR.rglob("*")):
        if path.is_file():
            yield path


__all__ = [
    "BOOK_ROOT", "HTML_DIR", "SCREENSHOT_DIR", "REPO_ROOT", "FORBIDDEN_STRINGS",
    "SENTINEL_RE", "CDN_RE", "BuildResult", "build_book_once", "toc_docnames",
    "toc_source", "solution_notebooks", "sentinels_in", "iter_site_files",
]
