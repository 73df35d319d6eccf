"""Names are data (issue 7, finding 6): display(), csv_safe() and slug()."""
import os
import unicodedata

import pytest

from autograder.names import component, csv_safe, display, is_safe_component, slug

ESCAPES = "\x1b[2J\x1b[Hfake"


def test_display_never_lets_a_control_or_bidi_character_through():
    shown = display(ESCAPES)
    assert "\x1b" not in shown and shown == "\\x1b[2J\\x1b[Hfake"
    for ch, escaped in [("\r", "\\x0d"), ("\n", "\\x0a"), ("\x7f", "\\x7f"), ("\u202e", "\\u202e"),
                        ("\u200f", "\\u200f"), ("\u2028", "\\u2028"), ("\x00", "\\x00"), ("\U000e0001", "\\U000e0001")]:
        assert display(f"a{ch}b") == f"a{escaped}b"
    # every character left is printable, so a terminal shows it as text
    nasty = "".join(chr(c) for c in range(0, 0x3000, 7)) + "\udce9\ud800\u202e"
    assert display(nasty, limit=None).isprintable()


def test_display_keeps_names_in_any_script_and_shows_non_utf8_bytes():
    assert display("josé") == "josé" and display("李雷_04-scaling.ipynb") == "李雷_04-scaling.ipynb"
    latin1 = os.fsdecode(b"jos\xe9_04-scaling.ipynb")  # what os.listdir gives for a Latin-1 name
    assert display(latin1) == "jos\\xe9_04-scaling.ipynb"
    assert display(b"jos\xe9") == "jos\\xe9"
    for name in (latin1, "\ud800x", ESCAPES):
        display(name).encode("utf-8")  # never raises


def test_display_caps_the_length_with_an_ellipsis():
    assert display("x" * 1000, limit=20) == "x" * 19 + "\u2026"
    shown = display("\x1b" * 100, limit=10)
    assert len(shown) <= 10 and shown.endswith("\u2026") and "\\x1b\\x1b" in shown
    assert display("short") == "short" and display("x" * 100, limit=None) == "x" * 100


def test_multiline_display_keeps_newlines_only():
    assert display("a\nb\tc\x1b", multiline=True) == "a\nb\tc\\x1b"


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://x","y")', "+cmd", "-2+3", "@SUM(A1:A2)", "\tx", "\rx",
                                  "\uff1dcmd"])
def test_csv_safe_quotes_what_a_spreadsheet_would_run(cell):
    assert csv_safe(cell) == "'" + cell


def test_csv_safe_leaves_text_and_numbers_alone():
    assert csv_safe("alice") == "alice" and csv_safe("") == ""
    assert csv_safe(-1.5) == -1.5 and csv_safe(3) == 3


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "../../etc/passwd", "/abs", ".hidden", "-rf",
                                  "a\x00b", "~", "jos\udce9", ESCAPES, "x" * 300, "李" * 200, "a\\b"])
def test_slug_cannot_escape_the_output_folder(tmp_path, name):
    s = slug(name)
    assert s not in ("", ".", "..") and "/" not in s and "\x00" not in s and not s.startswith((".", "-"))
    assert len(s.encode("utf-8")) <= 200 and is_safe_component(s)
    page = tmp_path / s / "04-scaling.html"
    page.parent.mkdir()
    page.write_text("x", encoding="utf-8")
    assert page.resolve().parent.parent == tmp_path.resolve()


def test_slug_keeps_safe_names_and_never_collides():
    assert slug("alice") == "alice" and slug("alice_04-scaling.ipynb") == "alice_04-scaling.ipynb"
    assert slug("josé") == "josé"
    names = ["a/b", "a_b", "a?b", "a b", "a\x1bb", "..", "._", "_..", "jos\udce9", "jos\udce8", "jos_",
             unicodedata.normalize("NFD", "josé"), "josé", "~", "_~"]
    names.append(slug("a/b"))  # a name made to look like another name's slug
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(names), dict(zip(names, slugs))
    assert slug("a/b") == slug("a/b")  # stable across calls (the journal relies on it)


def test_component_keeps_submission_slugs_and_slugs_anything_else():
    assert component("alice~alice.ipynb") == "alice~alice.ipynb"
    assert component("alice") == "alice"
    for bad in ("..", "a/b", "", "\x1b"):
        assert component(bad) == slug(bad)
