"""The website in a real browser: headless Chromium (Debian's) driven by Playwright.

Serves ``_build/html`` on 127.0.0.1, opens every page of ``_toc.yml`` and asserts: no
console error, no uncaught exception, no failed request, no HTTP status >= 400, no
request leaving 127.0.0.1 (no CDN), MathJax rendered wherever there is maths and no raw
TeX delimiter left in the visible text, every image loaded. Saves a full-page screenshot
of the intro to ``_build/screenshots/intro.png``.

The lecturer's class report (``class_report.html``, a self-contained file) is opened by
:func:`open_standalone`: here on a synthetic class whose names and messages carry markup
(screenshot ``_build/screenshots/class_report_synthetic.png``), and in
tests/test_grading_e2e.py on the graded example class (``class_report.png``).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.book_fixtures import HTML_DIR, SCREENSHOT_DIR, build_book_once, toc_docnames

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
MATHJAX_TIMEOUT_MS = 30_000

# Runs in the page. Resolves once MathJax 2 has emptied its queue (typesetting done).
WAIT_FOR_MATHJAX_JS = """
(timeoutMs) => new Promise((resolve) => {
  const start = Date.now();
  const poll = () => {
    const mj = window.MathJax;
    if (mj && mj.Hub && mj.Hub.Queue && mj.isReady) {
      mj.Hub.Queue(() => resolve({ready: true}));
    } else if (Date.now() - start > timeoutMs) {
      resolve({ready: false});
    } else {
      setTimeout(poll, 50);
    }
  };
  poll();
})
"""

# Runs in the page: the maths found, what MathJax made of it, and the visible text
# outside code blocks (where a raw TeX delimiter would mean maths left unrendered).
INSPECT_MATH_JS = """
() => {
  const article = document.querySelector('article') || document.body;
  const OUT = '.MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_SVG_Display, .MathJax_CHTML, mjx-container';
  // Sphinx writes maths as span/div "math notranslate nohighlight"; MathJax's own
  // output reuses the class "math" (without "notranslate"), so it is not counted.
  const mathSources = Array.from(
    article.querySelectorAll('span.math.notranslate, div.math.notranslate'))
    .filter((el) => !el.closest(OUT)).length;
  const rendered = article.querySelectorAll(OUT).length;
  // MathJax 2 turns each formula into <script type="math/tex"> plus an output frame
  // with id "<script id>-Frame"; a script without its frame was never rendered.
  const scripts = Array.from(article.querySelectorAll('script[type^="math/tex"]'));
  const unrendered = scripts.filter((sc) => !document.getElementById(sc.id + '-Frame'))
    .map((sc) => sc.textContent.slice(0, 80));
  const errors = Array.from(article.querySelectorAll('.MathJax_Error, merror, .noError'))
    .map((e) => e.textContent.slice(0, 120));
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => {
      for (let el = node.parentElement; el && el !== article; el = el.parentElement) {
        const tag = el.tagName;
        if (tag === 'PRE' || tag === 'CODE' || tag === 'SCRIPT' || tag === 'STYLE' ||
            tag === 'TEXTAREA' || el.classList.contains('highlight')) {
          return NodeFilter.FILTER_REJECT;
        }
        if (getComputedStyle(el).display === 'none') return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    }
  });
  const raw = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const t = n.nodeValue;
    if (t.includes('\\\\(') || t.includes('\\\\[') || t.includes('$$')) raw.push(t.trim().slice(0, 120));
  }
  return {mathSources, rendered, texScripts: scripts.length, unrendered, errors, raw};
}
"""

# Runs in the page: load lazy images, wait for all, report the broken ones.
BROKEN_IMAGES_JS = """
async () => {
  const imgs = Array.from(document.images);
  imgs.forEach((img) => { if (img.loading === 'lazy') img.loading = 'eager'; });
  await Promise.all(imgs.map((img) => img.complete ? null :
    new Promise((r) => { img.addEventListener('load', r); img.addEventListener('error', r);
                         setTimeout(r, 10000); })));
  return imgs.filter((img) => !(img.complete && img.naturalWidth > 0))
             .map((img) => img.currentSrc || img.src);
}
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".svg": "image/svg+xml",
        ".woff": "font/woff",
        ".js": "text/javascript",
    }

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


@pytest.fixture(scope="module")
def site():
    result = build_book_once()
    assert result.returncode == 0, f"the book does not build:\n{result.tail()}"
    handler = functools.partial(_QuietHandler, directory=str(HTML_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # the OS picks a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: install Debian's `chromium` "
                    "(make system-deps) to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    # Playwright must not try to download or look for its own browsers.
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _visit(browser, site: str, docname: str, screenshot: Path | None = None) -> dict:
    """Open one page, collect every problem, return a report."""
    origin = urlparse(site).netloc
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = context.new_page()

    def on_route(route):
        if urlparse(route.request.url).netloc == origin:
            route.continue_()
        elif route.request.url.startswith("data:"):
            route.continue_()
        else:
            problems.append(f"request leaving the site (CDN?): {route.request.url}")
            route.abort()

    page.route("**/*", on_route)
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text} @ {msg.location}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"uncaught exception: {exc}"))
    page.on("requestfailed", lambda req: problems.append(
        f"request failed: {req.url} ({req.failure})"))
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status}: {resp.url}")
            if resp.status >= 400 else None)
    try:
        page.goto(f"{site}/{docname}.html", wait_until="load")
        has_mathjax = page.evaluate("() => !!document.querySelector('script[src*=\"MathJax.js\"]')")
        sources = page.evaluate(INSPECT_MATH_JS)["mathSources"]
        if sources and not has_mathjax:
            problems.append(f"{sources} maths elements but the page does not load MathJax")
        if has_mathjax:
            state = page.evaluate(WAIT_FOR_MATHJAX_JS, MATHJAX_TIMEOUT_MS)
            if not state["ready"]:
                problems.append(f"MathJax did not finish within {MATHJAX_TIMEOUT_MS} ms")
        math = page.evaluate(INSPECT_MATH_JS)
        math["mathSources"] = sources
        if sources:
            if math["rendered"] < 1 or math["texScripts"] < 1:
                problems.append(f"{sources} maths elements but no MathJax output")
            if math["unrendered"]:
                problems.append(f"formulas left unrendered: {math['unrendered'][:5]}")
            if math["errors"]:
                problems.append(f"TeX errors rendered by MathJax: {math['errors']}")
        if math["raw"]:
            problems.append(f"raw TeX delimiters left in visible text: {math['raw'][:5]}")
        broken = page.evaluate(BROKEN_IMAGES_JS)
        problems.extend(f"image not loaded: {src}" for src in broken)
        page.wait_for_load_state("networkidle")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    return {"problems": problems, "math": math}


def _docnames():
    return toc_docnames()


@pytest.mark.parametrize("docname", _docnames())
def test_page_loads_cleanly(browser, site, docname):
    report = _visit(browser, site, docname)
    assert not report["problems"], f"{docname}.html:\n  " + "\n  ".join(report["problems"])


def test_intro_renders_maths_and_screenshot(browser, site):
    shot = SCREENSHOT_DIR / "intro.png"
    if shot.exists():
        shot.unlink()
    report = _visit(browser, site, "intro", screenshot=shot)
    assert not report["problems"], "intro.html:\n  " + "\n  ".join(report["problems"])
    # The intro has inline maths, display maths and a {math} block: all rendered.
    math = report["math"]
    assert math["mathSources"] >= 5, math
    assert math["texScripts"] >= math["mathSources"], math
    assert not math["unrendered"], math
    assert shot.is_file() and shot.stat().st_size > 10_000


def open_standalone(browser, path: Path, screenshot: Path | None = None) -> dict:
    """Open a self-contained page from the file system and report: ``problems`` (console
    errors, uncaught exceptions, dialogs, failed requests, any request that is not the file
    itself or a data URI, images that did not load), ``images`` (how many loaded),
    ``scripts`` (script elements) and ``text`` (the visible text)."""
    problems: list[str] = []
    url = path.resolve().as_uri()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = context.new_page()
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"uncaught exception: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url[:80]} ({req.failure})"))
    page.on("request", lambda req: None if req.url == url or req.url.startswith("data:")
            else problems.append(f"request leaving the page: {req.url[:120]}"))

    def on_dialog(dialog):
        problems.append(f"a dialog opened (script ran): {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        page.goto(url, wait_until="load")
        broken = page.evaluate(BROKEN_IMAGES_JS)
        problems.extend(f"image not loaded: {src[:80]}" for src in broken)
        facts = page.evaluate("() => ({images: document.images.length, scripts: document.scripts.length, "
                              "text: document.body.innerText})")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    return {"problems": problems, "images": facts["images"] - len(broken), "scripts": facts["scripts"],
            "text": facts["text"]}


def test_class_report_with_hostile_names_opens_cleanly(browser, tmp_path):
    from autograder.insights import write_insights
    from tests.insights_helpers import HOSTILE, HOSTILE_MESSAGE, graded_class

    written = write_insights(graded_class(tmp_path / "run"))
    shot = SCREENSHOT_DIR / "class_report_synthetic.png"
    report = open_standalone(browser, written["html"], screenshot=shot)
    assert not report["problems"], "\n".join(report["problems"])
    assert report["images"] == 2 and report["scripts"] == 0  # two figures; markup in names stayed text
    assert HOSTILE in report["text"] and HOSTILE_MESSAGE in report["text"]
    assert shot.is_file() and shot.stat().st_size > 10_000
