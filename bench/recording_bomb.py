"""Measure what loading a compressed-recording bomb costs the grader.

Finding 4 of issue 7: a ~1 MB ``.npz`` whose deflated member inflates to
1 GiB. This script writes a real ``dropout_forward`` recording, replaces the
array of its ``eval`` output with such a member (a ``.npy`` header for a
``(2**27,)`` float64 array followed by 1 GiB of zeros, deflated) and makes the
manifest describe it, so that a loader that trusts the zip inflates it all.
Then, in a fresh subprocess, it loads the recording and prints the peak RSS
(``ru_maxrss``) before and after, the time taken and the outcome.

Run: ``.venv/bin/python -m bench.recording_bomb`` (``--score`` to go through
``score_recording`` as the grader does, not only ``load_recording``;
``--control`` to measure the honest recording instead; ``--root DIR`` to load
with the ``autograder`` package of another checkout, e.g. the code before a
change).

Measured (Linux, Python 3.11, numpy 2.4), peak RSS increase of the load:
before the fix 1025 MiB in 4.8 s, accepted (2298 MiB in 7.2 s and a score of
2.77/3 through ``--score``); after it 1.6 MiB in under 0.01 s, a
RecordingError (through ``--score``: 249 MiB, the scorer's own imports, the
same as for the honest recording).

The bomb is built in well under a second without holding 1 GiB: the deflate
stream of a 1 MiB block of zeros, ended by a full flush (which resets the
compressor's history), is the same bytes every time, so it is computed once
and written 1024 times.
"""
from __future__ import annotations

import argparse
import io
import json
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

GRADE_ID = "dropout_forward"
SEED = 42
BOMB_ELEMENTS = 2**27  # float64: 1 GiB once inflated

_BLOCK = 2**20


def npy_header(shape, descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def _deflated_zeros(n_bytes: int, prefix: bytes):
    """(crc32, compressed bytes iterator) of ``prefix + b"\\0" * n_bytes`` as a raw deflate stream."""
    assert n_bytes % _BLOCK == 0
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(_BLOCK)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(n_bytes // _BLOCK):
        crc = zlib.crc32(zeros, crc)

    def chunks():
        yield head
        for _ in range(n_bytes // _BLOCK):
            yield block
        yield tail

    return crc, chunks


def write_zip(path, members) -> None:
    """Write a zip by hand. ``members``: list of (name, payload) where payload
    is ``bytes`` (stored), ``("deflate", crc, size, chunks_fn)``, or
    ``("declare", data, size)``: ``data`` stored, but the central directory
    declares ``size`` bytes through a zip64 extra field. Nothing is validated:
    this writes what an attacker would."""
    with open(path, "wb") as out:
        central = []
        for name, payload in members:
            offset = out.tell()
            fname = name.encode()
            declared = None
            if isinstance(payload, tuple) and payload[0] == "declare":
                payload, declared = payload[1], payload[2]
            if isinstance(payload, bytes):
                method, crc, size, pieces = 0, zlib.crc32(payload), len(payload), [payload]
            else:
                _, crc, size, chunks_fn = payload
                method, pieces = 8, None
            # local header; sizes patched after writing a deflated member
            out.write(struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, method, 0, 0x21,
                                  crc, 0, size, len(fname), 0) + fname)
            start = out.tell()
            for piece in (pieces if pieces is not None else chunks_fn()):
                out.write(piece)
            csize = out.tell() - start
            out.seek(offset + 18)
            out.write(struct.pack("<L", csize))
            out.seek(0, 2)
            extra = b""
            if declared is not None:
                extra = struct.pack("<HHQQ", 1, 16, declared, declared)
                csize = size = 0xFFFFFFFF
            central.append(struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 45 if extra else 20, 0, 0,
                                       method, 0, 0x21, crc, csize, size, len(fname), len(extra), 0, 0, 0,
                                       0o600 << 16, offset) + fname + extra)
        cd_offset = out.tell()
        for record in central:
            out.write(record)
        cd_size = out.tell() - cd_offset
        out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), cd_size, cd_offset, 0))


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def write_bomb_recording(directory, n_elements: int = BOMB_ELEMENTS) -> Path:
    """A real dropout_forward recording whose ``eval`` output is a deflate bomb
    of ``n_elements`` float64 zeros, described as such in the manifest."""
    from autograder.reference.ch04_scaling import dropout_forward
    from dropout_lab.recorder import run_probe

    directory = Path(directory)
    rec = run_probe(GRADE_ID, dropout_forward, SEED)
    rec.save(directory)
    out = rec.entries["eval"]["outputs"][0]
    bomb_ref = out["ref"]
    out.update(dtype="<f8", shape=[n_elements])
    crc, chunks = _deflated_zeros(8 * n_elements, npy_header((n_elements,)))
    members = [(f"{ref}.npy", ("deflate", crc, len(npy_header((n_elements,))) + 8 * n_elements, chunks)
                if ref == bomb_ref else npy_bytes(arr)) for ref, arr in rec.arrays.items()]
    write_zip(directory / f"{GRADE_ID}.npz", members)
    manifest = {"format": 1, "grade_id": GRADE_ID, "seed": SEED, "entries": rec.entries}
    (directory / f"{GRADE_ID}.json").write_text(json.dumps(manifest))
    return directory


_CHILD = r"""
import json, resource, sys, time
from autograder.recording import RecordingError, load_recording
from autograder.scoring import score_recording
import autograder.checks  # import what scoring needs before the baseline
directory, mode = sys.argv[1], sys.argv[2]

def hwm_kb():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None

before, hwm_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm_kb()
t0 = time.perf_counter()
try:
    if mode == "score":
        r = score_recording("dropout_forward", directory, 42, 3.0)
        outcome = f"score {r.score}/{r.max_score} {r.status}: {r.messages[0][:100]}"
    else:
        load_recording(directory, "dropout_forward", 42)
        outcome = "loaded"
except RecordingError as exc:
    outcome = f"RecordingError: {exc}"
except BaseException as exc:
    outcome = f"{type(exc).__name__}: {exc}"
seconds = time.perf_counter() - t0
after, hwm_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm_kb()
print(json.dumps({"before_kb": before, "after_kb": after, "increase_kb": after - before,
                  "hwm_before_kb": hwm_before, "hwm_after_kb": hwm_after,
                  "seconds": seconds, "outcome": outcome}))
"""


def measure(directory, mode: str = "load", timeout: float = 300, root=None) -> dict:
    """Load the recording in ``directory`` in a fresh interpreter (importing
    ``autograder`` from ``root``, default this checkout) and return its peak-RSS
    figures, seconds and outcome.

    ``before_kb``/``after_kb``: ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    On Linux it starts at the RSS of the process that spawned the child (the
    kernel carries the peak over the exec), so a large parent hides growth
    below its own size; ``hwm_*_kb`` (``VmHWM`` from /proc/self/status, KiB,
    None elsewhere) is the peak of the child's own image and is exact.
    ``peak_increase_mib`` uses VmHWM where it exists."""
    root = Path(root) if root else Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", _CHILD, str(directory), mode], cwd=root,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    if r["hwm_before_kb"] is not None:
        r["peak_increase_mib"] = (r["hwm_after_kb"] - r["hwm_before_kb"]) / 2**10
    else:
        r["peak_increase_mib"] = r["increase_kb"] / (2**20 if sys.platform == "darwin" else 2**10)
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--score", action="store_true", help="go through score_recording")
    parser.add_argument("--elements", type=int, default=BOMB_ELEMENTS)
    parser.add_argument("--root", help="load with the autograder package of this checkout (e.g. a copy of "
                        "the code before a change)")
    parser.add_argument("--control", action="store_true",
                        help="measure the real recording instead (no bomb), for comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.control:
            from autograder.reference.ch04_scaling import dropout_forward
            from dropout_lab.recorder import run_probe

            run_probe(GRADE_ID, dropout_forward, SEED).save(tmp)
        else:
            write_bomb_recording(tmp, args.elements)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        r = measure(tmp, "score" if args.score else "load", root=args.root)
    print(f"recording on disk: {size / 2**20:.2f} MiB" + ("" if args.control else
          f"; member inflates to {8 * args.elements / 2**30:.2f} GiB"))
    unit = 2**20 if sys.platform == "darwin" else 2**10
    print(f"ru_maxrss before load: {r['before_kb'] / unit:.0f} MiB, after: {r['after_kb'] / unit:.0f} MiB, "
          f"increase: {r['increase_kb'] / unit:.0f} MiB")
    if r["hwm_before_kb"] is not None:
        print(f"VmHWM before load: {r['hwm_before_kb'] / 2**10:.0f} MiB, after: {r['hwm_after_kb'] / 2**10:.0f} MiB, "
              f"increase: {r['peak_increase_mib']:.1f} MiB")
    print(f"time: {r['seconds']:.2f} s")
    print(f"outcome: {r['outcome']}")


if __name__ == "__main__":
    main()
