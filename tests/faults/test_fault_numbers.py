"""Numbers that cannot be NaN in silence: a non-finite loss or gradient stops training in one line
(the last good checkpoint kept), vectors files with NaN/Infinity or pickled objects are refused
with file and line, and every JSON output parses under a strict parser."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch
from tests.faults.conftest import CLF_FLAGS
from tests.faults.util import fails, run, snapshot

from grutext.safeio import dumps, loads_strict


def _nan_at(monkeypatch, epoch_step: int) -> None:
    """The classifier's training loss becomes NaN at overall step `epoch_step` (1-based)."""
    from grutext.tasks.classification.evaluate import ClassificationTask

    real = ClassificationTask.step
    seen = {"n": 0}

    def step(self, model, batch):
        out = real(self, model, batch)
        seen["n"] += 1
        if seen["n"] == epoch_step:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(ClassificationTask, "step", step)


def test_nan_loss_stops_training_and_keeps_the_checkpoint(data_dir, tmp_path, capsys, monkeypatch):
    # 81 training rows (after the valid carve), batch 16: 6 steps an epoch; step 8 is epoch 2, step 2
    _nan_at(monkeypatch, 8)
    out = tmp_path / "m"
    argv = ["train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--epochs", "3"]
    r = fails(capsys, argv, "epoch 2, step 2/6", "the training loss is nan", "learning rate", "--pretrained", code=2)
    assert "last good checkpoint" in r.err and "after epoch 1" in r.err
    assert not out.exists()  # no model saved from NaN weights
    state = json.loads((tmp_path / "m.ckpt" / "state.json").read_text())
    assert state["epoch"] == 1


def test_nan_loss_in_the_first_epoch_saves_nothing(data_dir, tmp_path, capsys, monkeypatch):
    _nan_at(monkeypatch, 1)
    r = fails(
        capsys, ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS], "epoch 1, step 1/", code=2
    )
    assert "no model is saved" in r.err
    assert not (tmp_path / "m").exists()


def test_infinite_gradient_stops_training(data_dir, tmp_path, capsys, monkeypatch):
    real = torch.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def clip(params, max_norm, *a, **k):
        calls["n"] += 1
        norm = real(params, max_norm, *a, **k)
        return torch.tensor(float("inf")) if calls["n"] == 3 else norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    argv = ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS]
    fails(capsys, argv, "epoch 1, step 3/", "the gradient norm is inf", code=2)
    assert not (tmp_path / "m").exists()


def _glove(tmp_path, bad_value: str):
    p = tmp_path / "vec.txt"
    p.write_text(f"great 0.1 0.2 0.3 0.4\nawful 0.5 {bad_value} 0.1 0.2\nfilm 0.3 0.3 0.3 0.3\n", encoding="utf-8")
    return p


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity", "1e50"])
def test_text_vectors_with_non_finite_values_are_refused(data_dir, tmp_path, capsys, bad):
    vec = _glove(tmp_path, bad)
    before = snapshot(tmp_path)
    argv = ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS, "--pretrained", vec]
    fails(capsys, argv, "vec.txt line 2", "'awful'", "NaN" if "nan" in bad else "Infinity", code=2)
    assert snapshot(tmp_path) == before


def test_word2vec_binary_with_nan_is_refused(data_dir, tmp_path, capsys):
    p = tmp_path / "vec.bin"
    body = b"2 3\n" + b"great " + struct.pack("<3f", 0.1, 0.2, 0.3) + b"\nawful "
    body += struct.pack("<3f", 0.1, float("nan"), 0.3) + b"\n"
    p.write_bytes(body)
    argv = ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS, "--pretrained", p]
    fails(capsys, argv, "vec.bin: vector 2", "'awful'", "NaN", code=2)


def test_npy_vectors_with_nan_name_the_row(data_dir, tmp_path, capsys):
    np.save(tmp_path / "vec.npy", np.array([[0.1, 0.2], [np.nan, 0.0]], dtype=np.float32))
    (tmp_path / "vec.vocab").write_text("great\nawful\n")
    argv = ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS, "--pretrained", tmp_path / "vec.npy"]
    fails(capsys, argv, "vec.npy row 1", "'awful'", code=2)


def test_npy_of_python_objects_is_one_line(data_dir, tmp_path, capsys):
    arr = np.empty((2, 2), dtype=object)
    arr[:] = [[{"a": 1}, "x"], [None, 3]]
    np.save(tmp_path / "vec.npy", arr, allow_pickle=True)
    (tmp_path / "vec.vocab").write_text("great\nawful\n")
    argv = ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS, "--pretrained", tmp_path / "vec.npy"]
    fails(capsys, argv, "vec.npy: not a plain numeric .npy matrix", "never loads pickled", code=2)


def test_dumps_writes_null_and_says_so(capsys):
    text = dumps({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32("-inf"), "d": 2}, what="probe")
    assert loads_strict(text) == {"a": None, "b": [1.0, None], "c": None, "d": 2}
    err = capsys.readouterr().err
    assert "note: probe: 3 non-finite value(s) written as null (a, b[1], c)" in err


def test_json_standard_library_would_have_written_nan():
    """The strict parser is not hollow: plain json.dumps output with NaN is refused by it."""
    with pytest.raises(ValueError, match="NaN"):
        loads_strict(json.dumps({"x": float("nan")}))


def _strict_lines(text: str) -> list:
    return [loads_strict(line) for line in text.splitlines() if line.strip()]


def test_every_json_output_parses_strictly(clf, lm, data_dir, capsys):
    outputs = {
        "predict": run(capsys, "predict", clf, "--json", "a great film", "awful"),
        "evaluate": run(capsys, "evaluate", clf, data_dir / "test.csv", "--json"),
        "explain": run(capsys, "explain", clf, "a great film", "--json"),
        "lm-evaluate": run(capsys, "evaluate", lm, data_dir / "lm.txt", "--json"),
        "lm-explain": run(capsys, "explain", lm, "the cat sat", "--json"),
        "next-word": run(capsys, "next-word", lm, "--prompt", "the cat ", "--json"),
    }
    for name, r in outputs.items():
        assert r.code == 0, (name, r.err)
        assert _strict_lines(r.out), name
    for folder in (clf, lm):
        for name in ("config.json", "metrics.json", "manifest.json"):
            loads_strict((folder / name).read_text())


def test_lm_explain_first_token_is_null_not_nan(lm, capsys):
    """The first token has no surprisal (nothing before it): null in JSON, with a note, never NaN."""
    r = run(capsys, "explain", lm, "the cat sat", "--json")
    doc = loads_strict(r.out)
    flat = json.dumps(doc)
    assert "NaN" not in flat and "Infinity" not in flat
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in _walk(doc))


def _walk(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _walk(v)
    elif isinstance(x, list):
        for v in x:
            yield from _walk(v)
    else:
        yield x


def test_checkpoint_state_is_strict_json(data_dir, tmp_path, capsys):
    out = tmp_path / "m"
    r = run(capsys, "train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--keep-checkpoint")
    assert r.code == 0
    for name in ("state.json", "manifest.json"):
        loads_strict((tmp_path / "m.ckpt" / name).read_text())
