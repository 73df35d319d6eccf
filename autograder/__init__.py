"""The trusted side of the course: hidden references, checks, scorer,
sandbox and the grading CLI (``python -m autograder``).

Nothing in this package is importable from a student's kernel: the sandbox
does not mount it.
"""
import os
import sys
from pathlib import Path

# nbgrader runs the `alembic` executable from PATH when it creates a
# gradebook; make the interpreter's own bin folder (the venv's) findable even
# when it was started as `.venv/bin/python` without activating the venv.
_bin = str(Path(sys.executable).parent)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")
