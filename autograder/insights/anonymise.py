"""Stable pseudonyms for sharing a class report.

A student id becomes ``student-`` and 8 characters of an HMAC-SHA256 of the
id under a secret key kept in the output folder (``OUT/pseudonym.key``,
created once, readable by its owner only). The same id gets the same
pseudonym in every report written to that folder, while nobody without the
key can test a guessed name against a pseudonym (as they could with a plain
hash of the name).

:func:`anonymise` rewrites a whole report (any JSON value): every
occurrence of a student id in any string (a file name ``ada/04-scaling/...``,
a message quoting one) is replaced, where it is not part of a longer word
(letters and digits around it), longest ids first, in one pass; run folders
and gradebook URLs are dropped (they are the lecturer's paths). Lists of
students are then sorted by pseudonym, so that no order betrays the names.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

PREFIX = "student-"
DIGEST_CHARS = 8
KEY_FILE = "pseudonym.key"
#: keys whose values are the lecturer's paths, not data about students.
DROPPED_KEYS = ("folder", "gradebook", "earlier", "later")


def load_key(folder: Path) -> bytes:
    """The folder's pseudonym key, created (0600) on first use."""
    path = Path(folder) / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


def _digest(key: bytes, student: str, length: int) -> str:
    mac = hmac.new(key, student.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii").lower()[:length]


def pseudonyms(students, key: bytes) -> dict:
    """``{student id: pseudonym}``, distinct for distinct ids (a digest
    collision lengthens the colliding pseudonyms)."""
    students = sorted({s for s in students if s})  # an empty id names nobody
    length = DIGEST_CHARS
    while True:
        names = {s: PREFIX + _digest(key, s, length) for s in students}
        if len(set(names.values())) == len(names):
            return names
        length += 2


def _replacer(names: dict):
    if not names:
        return lambda text: text
    alternatives = "|".join(re.escape(s) for s in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])")
    return lambda text: pattern.sub(lambda m: names[m.group(0)], text)


def anonymise(value, names: dict):
    """``value`` with every student id replaced by its pseudonym (see the module docstring)."""
    replace = _replacer(names)
    pseudos = set(names.values())

    def walk(v):
        if isinstance(v, str):
            return replace(v)
        if isinstance(v, dict):
            return {replace(k): walk(x) for k, x in v.items() if k not in DROPPED_KEYS}
        if isinstance(v, list):
            items = [walk(x) for x in v]
            if items and all(isinstance(x, str) and x in pseudos for x in items):
                return sorted(items)
            if items and all(isinstance(x, dict) and x.get("student") in pseudos for x in items):
                return sorted(items, key=lambda x: x["student"])
            return items
        return v

    return walk(value)
