"""Build the course website: ``.venv/bin/python -m scripts.build_book``.

Steps:

1. Stage MathJax 2.7 (shipped by the ``jupyter_server_mathjax`` package) under
   ``_build/mathjax/_static/mathjax`` when it is missing or stale. ``_config.yml`` lists
   ``_build/mathjax`` in ``html_extra_path``, so Sphinx merges it into
   ``_build/html/_static/mathjax`` and the site renders maths without any CDN.
   (It is deliberately not staged under ``./_static``: Jupyter Book adds every ``*.js``
   file below ``_static`` to every page as a ``<script>`` tag.)
2. Run ``jupyter-book build <root> -W --keep-going`` with the jupyter-book of the
   running interpreter's environment, stream its output, print the wall time and exit
   with its exit code.

Options: ``--root DIR`` builds another copy of the book (used by the tests),
``--all`` forces a full rebuild of every page (the execution cache still applies).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import filecmp
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MATHJAX_STAGE = Path("_build") / "mathjax"          # listed in html_extra_path
MATHJAX_SUBDIR = Path("_static") / "mathjax"        # where it lands in the site
STAMP_NAME = ".mathjax-stamp.json"


def mathjax_source() -> Path:
    """Directory of the MathJax 2.7 copy that ``jupyter_server_mathjax`` ships."""
    try:
        import jupyter_server_mathjax
    except ImportError as exc:  # pragma: no cover - requirements.txt installs it
        raise SystemExit(
            "jupyter_server_mathjax is not installed; run `make venv` "
            "(it provides the local MathJax the book uses)"
        ) from exc
    src = Path(jupyter_server_mathjax.__file__).resolve().parent / "static"
    if not (src / "MathJax.js").is_file():
        raise SystemExit(f"MathJax.js not found under {src}")
    return src


def _fingerprint(src: Path) -> str:
    """Cheap identity of a MathJax tree: relative paths, sizes and mtimes."""
    h = hashlib.sha256()
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(src).as_posix()}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


def stage_mathjax(root: Path, *, verbose: bool = True) -> Path:
    """Copy MathJax into ``root/_build/mathjax/_static/mathjax`` if missing or stale.

    Returns the staged directory. Staleness is judged by a fingerprint of the source
    tree stored next to the copy, plus a spot check that MathJax.js is identical.
    """
    src = mathjax_source()
    dest = root / MATHJAX_STAGE / MATHJAX_SUBDIR
    stamp = root / MATHJAX_STAGE / STAMP_NAME
    fingerprint = _fingerprint(src)
    fresh = (
        stamp.is_file()
        and (dest / "MathJax.js").is_file()
        and json.loads(stamp.read_text()).get("fingerprint") == fingerprint
        and filecmp.cmp(src / "MathJax.js", dest / "MathJax.js", shallow=False)
    )
    if fresh:
        return dest
    if verbose:
        print(f"[build_book] staging MathJax: {src} -> {dest}", flush=True)
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.py", "*.pyc"))
    stamp.write_text(json.dumps({"source": str(src), "fingerprint": fingerprint}))
    return dest


def jupyter_book_command() -> list[str]:
    """The jupyter-book of this interpreter's environment (the venv's, under `make`)."""
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    # jupyter_book exposes its click CLI as a module as well.
    return [sys.executable, "-m", "jupyter_book.cli.main"]


def build(root: Path = REPO_ROOT, *, full: bool = False, extra_args: list[str] | None = None) -> int:
    """Stage MathJax and build the book under ``root``; return jupyter-book's exit code."""
    root = root.resolve()
    stage_mathjax(root)
    cmd = jupyter_book_command() + ["build", str(root), "-W", "--keep-going"]
    if full:
        cmd.append("--all")
    cmd += list(extra_args or [])
    print("[build_book] " + " ".join(cmd), flush=True)
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Prose pages import the course's public package from the book root.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    # The kernels must use Jupyter's inline matplotlib backend: an inherited
    # MPLBACKEND=Agg would silently drop every figure from the executed pages.
    env.pop("MPLBACKEND", None)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
    rc = proc.wait()
    wall = time.perf_counter() - start
    status = "ok" if rc == 0 else f"FAILED (exit code {rc})"
    print(f"[build_book] jupyter-book build {status} in {wall:.1f} s; site: {root / '_build' / 'html'}",
          flush=True)
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO_ROOT,
                        help="book root (default: the repository root)")
    parser.add_argument("--all", action="store_true", dest="full",
                        help="rebuild every page (execution cache still used)")
    args, extra = parser.parse_known_args(argv)
    with build_lock(args.root):
        return build(args.root, full=args.full, extra_args=extra)


@contextlib.contextmanager
def build_lock(root: Path):
    """One build of a book root at a time: two builds (two test workers, or a
    test run beside `make book`) would race on _build/ and the MathJax copy.
    A second build waits, then finds everything cached."""
    with file_lock(root / "_build" / ".build.lock"):
        yield


@contextlib.contextmanager
def file_lock(lock_path: Path):
    """An exclusive flock on ``lock_path`` (created with its folder), across processes."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


if __name__ == "__main__":
    sys.exit(main())
