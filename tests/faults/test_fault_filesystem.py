"""Full and read-only file systems, injected as an OSError at each write (no tmpfs is mountable
here): one line and exit 1, no half-written model or checkpoint, the previous one kept."""

from __future__ import annotations

import errno
import json
import os
import pathlib

import pytest
from tests.faults.conftest import CLF_FLAGS
from tests.faults.util import fails, run, snapshot


def _fail_writes_to(monkeypatch, name: str, err: int = errno.ENOSPC) -> None:
    """Every write of a file called `name` (text, or safetensors) raises OSError(err)."""
    import safetensors.torch

    real_write_text = pathlib.Path.write_text
    real_save_file = safetensors.torch.save_file

    def write_text(self, *args, **kwargs):
        if self.name == name:
            raise OSError(
                err, "injected: " + ("No space left on device" if err == errno.ENOSPC else "Read-only"), str(self)
            )
        return real_write_text(self, *args, **kwargs)

    def save_file(tensors, filename, *args, **kwargs):
        if pathlib.Path(filename).name == name:
            raise OSError(err, "injected: No space left on device", str(filename))
        return real_save_file(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    monkeypatch.setattr(safetensors.torch, "save_file", save_file)


MODEL_FILES = ["config.json", "tokenizer.json", "model.safetensors", "labels.json", "metrics.json", "manifest.json"]


@pytest.mark.parametrize("name", MODEL_FILES)
def test_disk_full_at_each_model_file_leaves_the_old_model(clf, tmp_path, monkeypatch, name):
    """save_model over an existing model: the write of `name` fails; the old model is intact, no temporary left."""
    import shutil

    from grutext.artifact import load_model, save_model

    target = tmp_path / "model"
    shutil.copytree(clf, target)
    before = snapshot(tmp_path)
    loaded = load_model(clf)
    _fail_writes_to(monkeypatch, name)
    with pytest.raises(OSError, match="No space left"):
        save_model(target, loaded.model, loaded.tokenizer, loaded.config, labels=loaded.labels, metrics=loaded.metrics)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    load_model(target)  # still verifies


def test_train_disk_full_at_the_model_is_one_line(data_dir, tmp_path, capsys, monkeypatch):
    _fail_writes_to(monkeypatch, "model.safetensors")
    r = fails(capsys, ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS], "No space left", code=1)
    assert "--debug shows the traceback" in r.err
    assert not (tmp_path / "m").exists()
    assert not list(tmp_path.glob(".m.tmp-*"))


def test_disk_full_in_a_checkpoint_keeps_the_previous_one(data_dir, tmp_path, capsys, monkeypatch):
    """Epoch 2's checkpoint cannot be written: the run stops in one line, epoch 1's checkpoint is
    complete (its manifest verifies) and --resume finishes the run."""
    import safetensors.torch

    from grutext.manifest import verify_manifest

    real = safetensors.torch.save_file
    calls = {"n": 0}

    def save_file(tensors, filename, *args, **kwargs):
        if pathlib.Path(filename).name == "optimizer.safetensors":
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.ENOSPC, "injected: No space left on device", str(filename))
        return real(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    out = tmp_path / "m"
    fails(capsys, ["train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--epochs", "3"], "No space", code=1)
    monkeypatch.undo()
    ckpt = tmp_path / "m.ckpt"
    assert json.loads((ckpt / "state.json").read_text())["epoch"] == 1
    assert verify_manifest(ckpt) is not None
    assert not list(tmp_path.glob(".m.ckpt.tmp-*")) and not out.exists()
    r = run(capsys, "train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--epochs", "3", "--resume")
    assert r.code == 0 and "resumed from" in r.out and "after epoch 1" in r.out
    assert (out / "manifest.json").is_file()


def test_read_only_output_folder_is_refused_before_training(data_dir, tmp_path, capsys, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    before = snapshot(tmp_path)
    fails(capsys, ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS], "cannot write in", code=2)
    assert snapshot(tmp_path) == before


def _read_only_temp_files(monkeypatch) -> None:
    import tempfile

    def mkstemp(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize(
    "argv",
    [
        lambda m, out: ["report", m, "--out", out / "report.html"],
        lambda m, out: ["explain", m, "a great film", "--html", out / "ex.html"],
        lambda m, out: ["explain", m, "a great film", "--png", out / "ex.png"],
    ],
    ids=["report", "explain-html", "explain-png"],
)
def test_outputs_to_a_read_only_place_are_one_line(clf, tmp_path, capsys, monkeypatch, argv):
    pytest.importorskip("matplotlib")
    out = tmp_path / "ro"
    out.mkdir()
    before = snapshot(tmp_path)
    _read_only_temp_files(monkeypatch)
    fails(capsys, argv(clf, out), "Read-only file system", code=1)
    assert snapshot(tmp_path) == before


def test_a_failed_output_write_leaves_no_temporary(clf, tmp_path, capsys, monkeypatch):
    """The page is written to a temporary file first; when that write fails, neither it nor the target remain."""
    _fail_writes_to(monkeypatch, "x", errno.ENOSPC)  # nothing named x: only the real writes below
    real = pathlib.Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.startswith(".page.html."):
            real(self, "partial")
            raise OSError(errno.ENOSPC, "injected: No space left on device", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    fails(capsys, ["explain", clf, "a great film", "--html", tmp_path / "page.html"], "No space left", code=1)
    assert list(tmp_path.iterdir()) == []


def test_too_little_free_space_is_refused_before_training(data_dir, tmp_path, capsys, monkeypatch):
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=10_000))
    before = snapshot(tmp_path)
    argv = ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS]
    r = fails(capsys, argv, "MB free in", "training needs about", code=2)
    assert "epoch" not in r.out  # not a single epoch ran
    assert snapshot(tmp_path) == before
