"""The recorder writes what the scorer can read, and the scorer treats a
recording as hostile: malformed, oversized, pickled or mismatched files give a
RecordingError, never a crash or code execution."""
import json
import os
import signal
import time
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from autograder import recording, safe_files
from autograder.recording import RecordingError, load_recording, view_of
from bench.recording_bomb import measure, npy_bytes, npy_header, write_bomb_recording, write_zip
from autograder.scoring import NOT_RUN, score_recording
from dropout_lab.recorder import Recording, record, run_probe
from autograder.reference.ch04_scaling import dropout_forward

SEED = 42


def _recorded(tmp_path):
    rec = run_probe("dropout_forward", dropout_forward, SEED)
    rec.save(tmp_path)
    return rec


def test_roundtrip_matches_in_memory_view(tmp_path):
    rec = _recorded(tmp_path)
    loaded, direct = load_recording(tmp_path, "dropout_forward", SEED), view_of(rec)
    assert loaded.entries.keys() == direct.entries.keys()
    for key, entry in direct.entries.items():
        other = loaded.entries[key]
        assert other.status == entry.status and len(other.outputs) == len(entry.outputs)
        for a, b in zip(entry.outputs, other.outputs):
            if a.kind == "array":
                np.testing.assert_array_equal(a.value, b.value)


def test_recorder_captures_errors_types_and_mutation():
    rec = Recording("x", 0)
    rec.call("raises", lambda: (_ for _ in ()).throw(ValueError("bad p")))
    rec.call("exits", lambda: exec("import sys; sys.exit(3)"))
    rec.call("torch", lambda: torch.ones(2, dtype=torch.float32))
    rec.call("object", lambda: object())
    rec.call("dict", lambda: (1.5, {"W": np.ones(2)}))
    x = np.zeros(3)

    def mutate(a):
        a += 1
        return a

    rec.call("mutates", mutate, x)
    view = view_of(rec)
    assert view.entries["raises"].error_type == "ValueError"
    assert view.entries["exits"].error_type == "SystemExit"
    assert view.entries["torch"].outputs[0].type == "torch.Tensor:float32"
    assert view.entries["object"].outputs[0].kind == "other"
    assert view.entries["dict"].outputs[1].kind == "dict"
    assert view.entries["mutates"].mutated == (0,)


def test_record_is_a_no_op_outside_grading(monkeypatch, tmp_path):
    monkeypatch.delenv("DROPOUT_LAB_RECORD_DIR", raising=False)
    record("dropout_forward", dropout_forward)
    with pytest.raises(KeyError, match="no probe"):
        record("not_a_function", dropout_forward)
    monkeypatch.setenv("DROPOUT_LAB_RECORD_DIR", str(tmp_path))
    monkeypatch.setenv("DROPOUT_LAB_SEED", str(SEED))
    record("dropout_forward", dropout_forward)
    assert load_recording(tmp_path, "dropout_forward", SEED).entries


@pytest.mark.parametrize("tamper, message", [
    (lambda d: (d / "dropout_forward.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "dropout_forward.json").write_text("[]"), "malformed"),
    (lambda d: (d / "dropout_forward.npz").write_bytes(b"PK\x03\x04garbage"), "could not be read"),
    (lambda d: (d / "dropout_forward.npz").unlink(), "no recording"),
    (lambda d: np.savez(d / "dropout_forward.npz", a0=np.array([object()], dtype=object)), "could not be read"),
    (lambda d: _rewrite(d, lambda m: m.update(seed=1)), "seed"),
    (lambda d: _rewrite(d, lambda m: m["entries"]["eval"]["outputs"][0].update(shape=[1, 2])), "does not match"),
    (lambda d: _rewrite(d, lambda m: m["entries"]["eval"]["outputs"][0].update(ref="zz")), "array missing"),
    (lambda d: _rewrite(d, lambda m: m["entries"].update(bogus={"status": "weird"})), "malformed entry"),
    (lambda d: (d / "dropout_forward.npz").write_bytes(b"\0" * (65 * 2**20)), "larger than"),
])
def test_malformed_recordings_are_rejected_with_a_message(tmp_path, tamper, message):
    _recorded(tmp_path)
    tamper(tmp_path)
    with pytest.raises(RecordingError, match=message):
        load_recording(tmp_path, "dropout_forward", SEED)
    # ... and the scorer turns it into a zero with that message, not a crash.
    result = score_recording("dropout_forward", tmp_path, SEED, 3.0)
    assert result.score == 0 and result.status == NOT_RUN and message in result.messages[0]


def test_a_symlinked_recording_is_refused(tmp_path):
    _recorded(tmp_path)
    target = tmp_path / "elsewhere.json"
    (tmp_path / "dropout_forward.json").rename(target)
    (tmp_path / "dropout_forward.json").symlink_to(target)
    with pytest.raises(RecordingError):
        load_recording(tmp_path, "dropout_forward", SEED)


def _rewrite(directory, change):
    path = directory / "dropout_forward.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


# -- hostile files: every step bounded in time and memory (issue 7, finding 4) ------------------

def _refused(directory, message):
    """The recording in ``directory`` gives a RecordingError matching ``message``,
    quickly, and the scorer turns it into a zero with that message."""
    t0 = time.perf_counter()
    with _deadline(10), pytest.raises(RecordingError, match=message) as caught:
        load_recording(directory, "dropout_forward", SEED)
    assert time.perf_counter() - t0 < 5
    result = score_recording("dropout_forward", directory, SEED, 3.0)
    assert result.score == 0 and result.status == NOT_RUN
    return str(caught.value)


class _Blocked(BaseException):
    """Not an OSError, so no handler in the loader can swallow it."""


@contextmanager
def _deadline(seconds):
    def expire(signum, frame):
        raise _Blocked(f"load_recording was still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_deflate_bomb_is_refused_without_inflating_it(tmp_path):
    """A 1.8 MB .npz whose deflated member inflates to 1 GiB. Before the fix it
    was accepted and loading it raised the peak RSS by 1025 MiB (2298 MiB
    through the scorer). Measured in a fresh interpreter, before and after
    the load (VmHWM on Linux: ru_maxrss there starts at this process's size)."""
    write_bomb_recording(tmp_path)
    on_disk = (tmp_path / "dropout_forward.npz").stat().st_size
    assert on_disk < 4 * 2**20
    r = measure(tmp_path, "load", timeout=120)
    print(f"\ndeflate bomb ({on_disk / 2**20:.2f} MiB on disk, 1 GiB inflated): ru_maxrss {r['before_kb']} -> "
          f"{r['after_kb']}, VmHWM {r['hwm_before_kb']} -> {r['hwm_after_kb']} (KiB): peak +"
          f"{r['peak_increase_mib']:.1f} MiB in {r['seconds']:.2f} s: {r['outcome']}")
    assert r["outcome"].startswith("RecordingError") and "compressed" in r["outcome"], r["outcome"]
    assert r["peak_increase_mib"] < 100
    assert r["seconds"] < 5
    _refused(tmp_path, "compressed")


def _members(rec, replace=None, extra=()):
    """The recording's members as (name, payload) for ``write_zip``, some replaced."""
    replace = replace or {}
    members = [(f"{ref}.npy", replace.get(ref, npy_bytes(arr))) for ref, arr in rec.arrays.items()]
    return members + list(extra)


def _eval_ref(rec):
    return rec.entries["eval"]["outputs"][0]["ref"]


def _describe_eval(directory, shape, dtype="<f8"):
    _rewrite(directory, lambda m: m["entries"]["eval"]["outputs"][0].update(shape=list(shape), dtype=dtype))


def _npz(directory, members):
    write_zip(directory / "dropout_forward.npz", members)


def _lying_header(d, rec, shape):
    """eval's member keeps its 80,000 data bytes under a header that claims ``shape``;
    the manifest agrees with the header, so only the member size tells."""
    _npz(d, _members(rec, {_eval_ref(rec): npy_header(shape) + rec.arrays[_eval_ref(rec)].tobytes()}))
    _describe_eval(d, shape)


def _flip_a_data_byte(d):
    path = d / "dropout_forward.npz"
    data = bytearray(path.read_bytes())
    data[data.index(b"\x93NUMPY") + 1000] ^= 0xFF
    path.write_bytes(bytes(data))


def _numeric_named(d, rec, name, payload=None):
    ref = _eval_ref(rec)
    members = [(n, p) for n, p in _members(rec) if n != f"{ref}.npy"]
    _npz(d, members + [(name, payload if payload is not None else npy_bytes(rec.arrays[ref]))])


def _replace_eval_array(d, rec, arr):
    _npz(d, _members(rec, {_eval_ref(rec): npy_bytes(arr)}))
    _describe_eval(d, arr.shape, arr.dtype.str)


@pytest.mark.parametrize("tamper, message", [
    # compression is refused outright (the recorder's np.savez stores), even when small
    (lambda d, rec: np.savez_compressed(d / "dropout_forward.npz", **rec.arrays), "is compressed"),
    # a header that lies about its shape, either way
    (lambda d, rec: _lying_header(d, rec, (10**6,)), "describes 8000000 bytes"),
    (lambda d, rec: _lying_header(d, rec, (100,)), "describes 800 bytes"),
    (lambda d, rec: _lying_header(d, rec, (2**40,)), "describes 8796093022208 bytes"),
    # names and structure of the zip
    (lambda d, rec: _npz(d, _members(rec, extra=[(f"{_eval_ref(rec)}.npy", npy_bytes(np.ones(3)))])),
     "two members named"),
    (lambda d, rec: _numeric_named(d, rec, _eval_ref(rec), b"not an array"), "not named <ref>.npy"),
    (lambda d, rec: _numeric_named(d, rec, f"../{_eval_ref(rec)}.npy"), "not named <ref>.npy"),
    (lambda d, rec: _npz(d, _members(rec, {_eval_ref(rec): ("declare", npy_bytes(rec.arrays[_eval_ref(rec)]),
                                                            2**40)})), "declares 1099511627776 bytes"),
    (lambda d, rec: _npz(d, _members(rec, extra=[(f"x{i}.npy", npy_bytes(np.zeros(1))) for i in range(300)])),
     r"\d+ members, more than the 256"),
    (lambda d, rec: _npz(d, [(f"x{i}.npy", b"") for i in range(2000)]), "more than 256 members"),
    (lambda d, rec: (d / "dropout_forward.npz").write_bytes((d / "dropout_forward.npz").read_bytes()[:400_000]),
     "could not be read"),
    (lambda d, rec: _flip_a_data_byte(d), "Bad CRC-32"),
    # only plain numbers: no objects, text or records, even described as such in the manifest
    (lambda d, rec: _replace_eval_array(d, rec, np.array(["x"] * 3)), "non-numeric"),
    (lambda d, rec: _replace_eval_array(d, rec, np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")])), "non-numeric"),
    (lambda d, rec: _npz(d, _members(rec, {_eval_ref(rec): npy_header((1,), "|O") + b"\x80\x04N."})),
     "non-numeric"),
])
def test_a_hostile_npz_is_refused_before_any_array_is_built(tmp_path, tamper, message):
    rec = _recorded(tmp_path)
    tamper(tmp_path, rec)
    shown = _refused(tmp_path, message)
    assert shown.startswith("the recording's arrays could not be read"), shown


def _deep_dict(depth):
    node = {"kind": "none", "type": "NoneType"}
    for _ in range(depth):
        node = {"kind": "dict", "type": "dict", "items": {"k": node}}
    return node


@pytest.mark.parametrize("tamper, message", [
    (lambda d: (d / "dropout_forward.json").write_text("[" * 100_000), "nested more than"),
    (lambda d: (d / "dropout_forward.json").write_text("[" * 100_000 + "]" * 100_000), "nested more than"),
    (lambda d: _rewrite(d, lambda m: m["entries"]["eval"]["outputs"].__setitem__(1, _deep_dict(300))),
     "nested more than"),
    (lambda d: _rewrite(d, lambda m: m["entries"]["eval"]["outputs"].__setitem__(1, _deep_dict(6))),
     "malformed dict output"),
    (lambda d: _rewrite(d, lambda m: m.update(padding="x" * (2 * 2**20))), "manifest is larger than"),
    (lambda d: _rewrite(d, lambda m: m["entries"].update({f"e{i}": {"status": "error"} for i in range(300)})),
     "more than 256 entries"),
    (lambda d: _rewrite(d, lambda m: m["entries"]["eval"]["outputs"].__setitem__(1, {"kind": ["array"]})),
     "malformed output description"),
    (lambda d: _rewrite(d, lambda m: m["entries"]["eval"]["outputs"].__setitem__(
        1, {"kind": "too_large", "type": "x", "shape": list(range(10_000))})), "malformed shape"),
    (lambda d: _rewrite(d, lambda m: m["entries"]["eval"].update(outputs=[{"kind": "none"}] * 17)),
     "malformed outputs"),
    (lambda d: _rewrite(d, lambda m: m["entries"].update(
        bogus={"status": "error", "error_type": {"not": "a string"}})), "malformed entry"),
])
def test_a_hostile_manifest_is_refused(tmp_path, tamper, message):
    _recorded(tmp_path)
    tamper(tmp_path)
    _refused(tmp_path, message)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
@pytest.mark.parametrize("make", ["fifo", "link to /dev/zero", "link to a copy", "folder"])
def test_links_and_special_files_are_refused_without_blocking(tmp_path, suffix, make):
    _recorded(tmp_path)
    path = tmp_path / f"dropout_forward{suffix}"
    copy = tmp_path / f"copy{suffix}"
    path.rename(copy)
    if make == "fifo":
        os.mkfifo(path)  # opening it for reading without O_NONBLOCK waits for a writer forever
    elif make == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif make == "link to a copy":
        path.symlink_to(copy)
    else:
        path.mkdir()
    _refused(tmp_path, "not a regular file")


@pytest.mark.parametrize("make", ["fifo", "link"])
def test_the_open_handle_is_checked_too(tmp_path, monkeypatch, make):
    """A file swapped for a FIFO or a link between the lstat and the open:
    O_NONBLOCK and O_NOFOLLOW keep the open from blocking or following it,
    and fstat on the handle refuses it."""
    (tmp_path / "regular").write_bytes(b"{}")
    regular = os.lstat(tmp_path / "regular")
    path = tmp_path / "dropout_forward.npz"
    if make == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(tmp_path / "regular")
    with monkeypatch.context() as patched:
        # the swap happens after the first look (safe_files.read_regular_file's os.stat)
        patched.setattr(safe_files.os, "stat", lambda *args, **kwargs: regular)
        with _deadline(10), pytest.raises(RecordingError, match="not a regular file"):
            recording._read_regular(path, 1000, "too large")


def test_array_data_is_capped_in_total(tmp_path, monkeypatch):
    _recorded(tmp_path)
    monkeypatch.setattr(recording, "MAX_ARRAY_BYTES", 100_000)
    _refused(tmp_path, "arrays hold more than")


def test_fortran_order_and_every_numeric_dtype_still_load(tmp_path):
    """What the recorder legitimately writes: np.array(x.T, copy=True) keeps
    Fortran order, and outputs may be bool, int, float or complex."""
    rec = Recording("dropout_forward", SEED)
    x = np.arange(12.0).reshape(3, 4)
    values = {"fortran": x.T, "bool": x > 3, "int8": x.astype(np.int8), "uint64": x.astype(np.uint64),
              "float32": x.astype(np.float32), "complex": x + 1j, "scalar": np.float64(2.5), "empty": np.zeros((0, 3))}
    for key, value in values.items():
        rec.call(key, lambda v=value: v)
    rec.save(tmp_path)
    view = load_recording(tmp_path, "dropout_forward", SEED)
    for key, value in values.items():
        got = view.entries[key].outputs[0].value
        assert got.dtype == np.asarray(value).dtype and got.flags.writeable
        np.testing.assert_array_equal(got, value)
    assert view.entries["fortran"].outputs[0].value.flags.f_contiguous


def test_in_process_alembic_head_matches_nbgrader():
    """The cached schema head the grader uses equals what nbgrader asks alembic for."""
    import nbgrader.api as api

    from autograder import nbgrader_setup

    original = api.get_alembic_version
    if getattr(original, "_dropout_cached", False):
        pytest.skip("already patched in this process")
    assert nbgrader_setup._alembic_head() == original()
