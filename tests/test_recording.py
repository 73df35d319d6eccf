"""The recorder writes what the scorer can read, and the scorer treats a
recording as hostile: malformed, oversized, pickled or mismatched files give a
RecordingError, never a crash or code execution."""
import json

import numpy as np
import pytest
import torch

from autograder.recording import RecordingError, load_recording, view_of
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


def test_in_process_alembic_head_matches_nbgrader():
    """The cached schema head the grader uses equals what nbgrader asks alembic for."""
    import nbgrader.api as api

    from autograder import nbgrader_setup

    original = api.get_alembic_version
    if getattr(original, "_dropout_cached", False):
        pytest.skip("already patched in this process")
    assert nbgrader_setup._alembic_head() == original()
