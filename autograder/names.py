"""File and student names are data, never markup, formulas or paths.

A submissions folder is made by students (or by a git or tar collection of
their work), so its names can hold anything a file system allows: bytes that
are not UTF-8 (``os.listdir`` returns them as surrogate escapes, which cannot
be written to a UTF-8 file), terminal escape codes, carriage returns,
right-to-left overrides, a leading ``=`` that a spreadsheet runs as a formula,
or ``..`` and ``/``. Three helpers turn any name into something safe for one
purpose each:

* :func:`display`: printable, terminal-safe, UTF-8-encodable text for the
  terminal, CSV, JSON and HTML (escape what is not printable, cap the length);
* :func:`csv_safe`: a CSV cell a spreadsheet shows as text (the usual
  leading-quote rule);
* :func:`slug`: one file-system path component for output folders, which
  cannot climb out of its folder and never collides for two different names.
"""
from __future__ import annotations

import hashlib
import unicodedata

#: default cap (characters) of :func:`display`; a file name has at most 255 bytes.
DISPLAY_LIMIT = 160
ELLIPSIS = "\u2026"
#: characters a spreadsheet treats as the start of a formula (and their full-width forms).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: punctuation :func:`slug` keeps (never first); ``~`` is reserved for the hash suffix.
SLUG_PUNCTUATION = "._-+@"
SLUG_MAX_CHARS = 64
SLUG_MAX_BYTES = 120
#: the longest path component :func:`is_safe_component` accepts, in UTF-8 bytes.
COMPONENT_MAX_BYTES = 200


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def _escape(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): show the byte
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def display(name, limit: int | None = DISPLAY_LIMIT, *, multiline: bool = False) -> str:
    """A printable, terminal-safe, UTF-8-encodable form of ``name``.

    Printable characters (any script: "josé", "李雷") are kept. Everything
    else is escaped: control characters (ESC, CR, LF, DEL...), format
    characters such as the bidi overrides U+202E, separators other than the
    space, and lone surrogates; a surrogate escape of a non-UTF-8 byte is shown
    as that byte, ``\\xNN``. With ``multiline`` newlines and tabs are kept
    (for messages shown in HTML). The result has at most ``limit`` characters
    (``None``: no cap), ending with an ellipsis when cut. ``bytes`` are decoded
    with surrogate escapes; anything else goes through ``str()``.
    """
    text = _text(name)
    pieces, length = [], 0
    budget = None if limit is None else max(int(limit), 1)
    for ch in text:
        if ch.isprintable() or (multiline and ch in "\n\t"):
            piece = ch
        else:
            piece = _escape(ch)
        if budget is not None and length + len(piece) > budget:
            # cut: drop whole pieces until the ellipsis fits
            while pieces and length + 1 > budget:
                length -= len(pieces.pop())
            pieces.append(ELLIPSIS)
            return "".join(pieces)
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces)


def csv_safe(value):
    """``value`` as a CSV cell a spreadsheet shows as text: a string starting
    with ``=``, ``+``, ``-``, ``@``, TAB or CR (or LF, or a full-width form of
    the first four) gets a leading single quote. Numbers are returned as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _slug_char(ch: str) -> bool:
    return ch.isalnum() or ch in SLUG_PUNCTUATION


def slug(name) -> str:
    """A file-system-safe path component for ``name`` (any string, bytes, even
    surrogate escapes).

    Unicode letters and digits and ``. _ - + @`` are kept (the first
    character is a letter, a digit or ``_``); anything else becomes ``_``; the
    result is cut to 64 characters (120 UTF-8 bytes). When anything was
    changed, ``~`` and 16 hex digits of the SHA-256 of the original name are
    appended: ``~`` is never kept from a name, so a changed name cannot collide
    with an unchanged one, nor (short of a SHA-256 collision) with another
    changed one. The result is never empty, ``.``, ``..``, never starts with
    ``.`` or ``-`` and never holds ``/``, a NUL byte or a surrogate.
    """
    raw = _text(name)
    text = unicodedata.normalize("NFC", raw)
    out = "".join(ch if _slug_char(ch) else "_" for ch in text)
    if not out or not (out[0].isalnum() or out[0] == "_"):
        out = "_" + out
    out = out[:SLUG_MAX_CHARS]
    while len(out.encode("utf-8")) > SLUG_MAX_BYTES:
        out = out[:-1]
    if out != raw:
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        out = f"{out}~{digest}"
    return out


def is_safe_component(name) -> bool:
    """True when ``name`` can be used as a path component as it is: what
    :func:`slug` or a student id accepted by discovery produces, with ``~``
    (``Submission.slug`` joins a student id and a slug with it)."""
    if not isinstance(name, str) or not name or name[0] in ".-~" or not (name[0].isalnum() or name[0] == "_"):
        return False
    try:
        if len(name.encode("utf-8")) > COMPONENT_MAX_BYTES:
            return False
    except UnicodeEncodeError:  # lone surrogates
        return False
    return all(ch.isalnum() or ch in SLUG_PUNCTUATION or ch == "~"
               or unicodedata.category(ch) in ("Mn", "Mc") for ch in name)


def component(name) -> str:
    """``name`` itself when it is a safe path component, else :func:`slug` of it."""
    return name if is_safe_component(name) else slug(name)
