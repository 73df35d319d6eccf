# One entry point for the whole course. Every target creates the virtual
# environment first when it is missing or older than requirements.txt.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv book test test-fast student grade bench clean system-deps

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: it comes from the local CPU wheel, never from CUDA wheels.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Debian packages the sandbox and the browser test need (bubblewrap, chromium).
# Skipped with a message where there is no root or no apt-get.
system-deps:
	./scripts/install-system-deps.sh

## The website: jupyter-book build, warnings are errors, every page kept going.
book: venv
	$(PY) -m scripts.build_book

## Every test, the book build and the browser test included.
test: venv system-deps
	$(PY) -m pytest -n 2 --dist loadfile -q

## Regenerate the student notebooks chapters/*/exercises.ipynb from solutions/.
student: venv
	$(PY) -m scripts.generate_student

## Grade the bundled example submissions; also writes grading/class_report.html and the LMS exports.
grade: venv system-deps
	$(PY) -m autograder.examples grading/examples
	$(PY) -m autograder grade grading/examples --out grading --jobs 2

## Speed: notebook execution times, then plain nbgrader vs this grader.
bench: venv system-deps
	$(PY) -m bench.notebooks
	$(PY) -m bench.run

clean:
	rm -rf _build grading
