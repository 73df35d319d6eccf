"""The website: it builds with -W, has every toc page, and leaks nothing.

Builds the book once (``scripts.build_book`` into ``_build``, warm builds are cached)
and inspects ``_build/html``. Set ``DROPOUT_BOOK_ROOT`` to test another copy.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.book_fixtures import (
    BOOK_ROOT,
    CDN_RE,
    FORBIDDEN_STRINGS,
    HTML_DIR,
    build_book_once,
    iter_site_files,
    sentinels_in,
    solution_notebooks,
    toc_docnames,
    toc_source,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def build():
    result = build_book_once()
    assert result.returncode == 0, (
        f"`python -m scripts.build_book` failed with exit code {result.returncode} "
        f"(warnings are errors). Last lines of its output:\n{result.tail()}"
    )
    return result



def pages_matching(pattern) -> dict:
    """built page (relative path) -> sorted distinct matches of ``pattern``; pages without any are left out."""
    offenders = {}
    for page in HTML_DIR.rglob("*.html"):
        found = set(pattern.findall(page.read_text(encoding="utf-8", errors="replace")))
        if found:
            offenders[str(page.relative_to(HTML_DIR))] = sorted(found)
    return offenders


def test_build_succeeds(build):
    assert (HTML_DIR / "index.html").is_file()
    # The build announces its wall time (make book relies on it).
    assert "[build_book] jupyter-book build ok in" in build.output


def test_every_toc_page_is_built(build):
    names = toc_docnames()
    assert names[0] == "intro", "the toc root must be intro.md"
    missing_src = [n for n in names if toc_source(n) is None]
    assert not missing_src, f"_toc.yml lists pages with no source file: {missing_src}"
    missing = [n for n in names if not (HTML_DIR / f"{n}.html").is_file()]
    assert not missing, f"pages listed in _toc.yml but not built: {missing}"


def test_no_sources_copied(build):
    assert not (HTML_DIR / "_sources").exists(), (
        "_build/html/_sources exists: html_copy_source must be false (it would publish "
        "the raw notebooks)"
    )
    # No page may link to a copy of its source or offer a download of it.
    for page in HTML_DIR.rglob("*.html"):
        text = page.read_text(encoding="utf-8", errors="replace")
        assert "_sources/" not in text, f"{page.relative_to(HTML_DIR)} links into _sources/"


def test_no_launch_or_repository_buttons(build):
    patterns = re.compile(
        r"mybinder\.org|colab\.research\.google\.com|deepnote\.com|launch-buttons|"
        r"repository-button|edit-this-page|download-source-button|download-notebook-button|"
        r"thebe-launch|THEBE_JS_URL",
    )
    offenders = pages_matching(patterns)
    assert not offenders, f"launch/repository/download buttons on the site: {offenders}"


def test_no_solution_or_hidden_test_text(build):
    hits = []
    for path in iter_site_files():
        data = path.read_bytes()
        for needle in FORBIDDEN_STRINGS:
            if needle.encode() in data:
                hits.append(f"{path.relative_to(HTML_DIR)}: {needle!r}")
    assert not hits, "solution or hidden-test text reached the website:\n" + "\n".join(hits)


def has_written_answers(path) -> bool:
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    return any(c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution") for c in nb.cells)


def test_solution_sentinels_never_reach_the_site(build):
    notebooks = solution_notebooks()
    if not notebooks:
        pytest.skip("no solutions/*/exercises.ipynb yet: nothing to check sentinels against")
    sentinels: set[str] = set()
    problems = []
    for nb in notebooks:
        found = sentinels_in(nb)
        chapter = nb.parent.name
        kinds = {s.split("-")[1] for s in found}
        # ANSWER: the answer keys of written questions (markdown solution cells)
        needed = ("SOLUTION", "HIDDEN") + (("ANSWER",) if has_written_answers(nb) else ())
        for kind in needed:
            if kind not in kinds:
                problems.append(
                    f"{nb.relative_to(BOOK_ROOT)} has no `SENTINEL-{kind}-{chapter}` comment "
                    f"(every solution region, hidden-test block and answer key must carry one)"
                )
        sentinels |= found
    assert not problems, "\n".join(problems)

    hits = []
    for path in iter_site_files():
        text = path.read_bytes().decode("utf-8", errors="replace")
        for sentinel in sentinels:
            if sentinel in text:
                hits.append(f"{path.relative_to(HTML_DIR)}: {sentinel}")
    assert not hits, "solution/hidden-test sentinels found on the website:\n" + "\n".join(hits)


def test_no_cdn_references(build):
    offenders = pages_matching(CDN_RE)
    assert not offenders, f"pages refer to a CDN (the site must work offline): {offenders}"


def test_mathjax_is_served_locally(build):
    intro = (HTML_DIR / "intro.html").read_text(encoding="utf-8")
    assert 'src="_static/mathjax/MathJax.js?config=' in intro, "intro.html does not load the local MathJax"
    assert (HTML_DIR / "_static" / "mathjax" / "MathJax.js").is_file()
    assert (HTML_DIR / "_static" / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    # Jupyter Book would turn every .js below ./_static into a <script> on every page.
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', intro)
    extra = [s for s in scripts if "_static/mathjax/" in s and "MathJax.js" not in s]
    assert not extra, f"MathJax internals loaded as page scripts: {extra[:5]}"


def test_favicon_present(build):
    intro = (HTML_DIR / "intro.html").read_text(encoding="utf-8")
    match = re.search(r'<link rel="icon" href="([^"]+)"', intro)
    assert match, "no favicon <link> in intro.html (browsers then log a 404)"
    assert (HTML_DIR / match.group(1)).is_file()


def _exercise_docnames():
    return [n for n in toc_docnames() if n.endswith("/exercises")]


def test_exercise_notebooks_are_shown_unexecuted(build):
    names = _exercise_docnames()
    if not names:
        pytest.skip("no exercise notebook in _toc.yml yet")
    for name in names:
        page = (HTML_DIR / f"{name}.html").read_text(encoding="utf-8")
        assert "cell_output" not in page, (
            f"{name}.html shows cell outputs: exercise notebooks must be excluded from "
            "execution (execute.exclude_patterns) and committed without outputs"
        )
        assert "NotImplementedError" in page, f"{name}.html does not show the stubs"
        src = json.loads((BOOK_ROOT / f"{name}.ipynb").read_text(encoding="utf-8"))
        executed = [i for i, c in enumerate(src["cells"])
                    if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
        assert not executed, f"{name}.ipynb is committed with outputs in cells {executed}"


def test_prose_pages_are_executed(build):
    """A prose page with code cells shows their outputs (executed at build, cached)."""
    for name in toc_docnames():
        if name.endswith("/exercises") or name == "intro":
            continue
        page = (HTML_DIR / f"{name}.html").read_text(encoding="utf-8")
        if "cell_input" in page:
            assert "cell_output" in page, f"{name}.html has code cells but no outputs: not executed?"
