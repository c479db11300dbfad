"""Truncated, corrupted, edited and mismatched model folders: every command that reads one answers
with one line naming the file or field, and changes nothing (the folder is snapshotted)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.faults.util import copy_model, fails, run, snapshot

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


def _edit_config(folder: Path, change) -> None:
    meta = json.loads((folder / "config.json").read_text())
    change(meta)
    (folder / "config.json").write_text(json.dumps(meta, indent=2))


def flip_byte(folder: Path) -> None:
    p = folder / "model.safetensors"
    raw = bytearray(p.read_bytes())
    raw[len(raw) - 20] ^= 0x5A  # inside the last tensor's data: same size, the header still parses
    p.write_bytes(bytes(raw))


def truncate_weights(folder: Path) -> None:
    p = folder / "model.safetensors"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def pooling_mean(folder: Path) -> None:
    _edit_config(folder, lambda m: m["config"]["model"].update(pooling="mean"))


def fewer_labels(folder: Path) -> None:
    def change(m):
        m["labels"] = m["labels"][:-1]
        m["config"]["model"]["num_classes"] -= 1

    _edit_config(folder, change)
    (folder / "labels.json").write_text(json.dumps(json.loads((folder / "config.json").read_text())["labels"]))


def cell_lstm(folder: Path) -> None:
    _edit_config(folder, lambda m: m["config"]["model"].update(cell="lstm"))


def edit_lr(folder: Path) -> None:
    _edit_config(folder, lambda m: m["config"]["train"].update(lr=0.5))


def nan_weights_consistent_manifest(folder: Path) -> None:
    """A hostile folder: NaN weights and a manifest rewritten to match them."""
    import torch
    from safetensors.torch import load_file, save_file

    from grutext.manifest import depends_of, write_manifest

    state = load_file(str(folder / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name][0] = float("nan")
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"), {"format": "pt"})
    meta = json.loads((folder / "config.json").read_text())
    (folder / "manifest.json").unlink()
    write_manifest(folder, config=meta["config"], depends=depends_of(meta))
    assert torch.isnan(load_file(str(folder / "model.safetensors"))[name]).any()


def no_tokenizer(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()


def tokenizer_appended(folder: Path) -> None:
    with open(folder / "tokenizer.json", "a") as fh:
        fh.write(" ")


def labels_renamed(folder: Path) -> None:
    labels = json.loads((folder / "labels.json").read_text())
    (folder / "labels.json").write_text(json.dumps(list(reversed(labels)), indent=1))


def manifest_not_json(folder: Path) -> None:
    (folder / "manifest.json").write_text("{broken")


def manifest_traversal(folder: Path) -> None:
    doc = json.loads((folder / "manifest.json").read_text())
    doc["files"]["../../etc/passwd"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(doc))


def config_not_json(folder: Path) -> None:
    (folder / "config.json").write_text("{not json")


def newer_format(folder: Path) -> None:
    _edit_config(folder, lambda m: m.update(format_version=99))


def metrics_missing(folder: Path) -> None:
    (folder / "metrics.json").unlink()


def weights_symlink(folder: Path) -> None:
    target = folder.parent / "elsewhere.safetensors"
    shutil.copy(folder / "model.safetensors", target)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").symlink_to(target)


CORRUPTIONS = {
    "flip_byte": (flip_byte, ["model.safetensors", "contents do not match manifest.json"]),
    "truncate": (truncate_weights, ["model.safetensors", "manifest.json"]),
    "pooling_mean": (pooling_mean, ["model.pooling is 'mean'", "saved with 'max'"]),
    "fewer_labels": (fewer_labels, ["config.json: labels is"]),
    "cell_lstm": (cell_lstm, ["model.cell is 'lstm'"]),
    "edit_lr": (edit_lr, ["config differs from the one saved"]),
    "nan_weights": (nan_weights_consistent_manifest, ["model.safetensors", "non-finite"]),
    "no_tokenizer": (no_tokenizer, ["missing tokenizer.json"]),
    "tokenizer_appended": (tokenizer_appended, ["tokenizer.json: contents do not match"]),
    "labels_renamed": (labels_renamed, ["labels.json: contents do not match"]),
    "manifest_not_json": (manifest_not_json, ["manifest.json: not valid JSON"]),
    "manifest_traversal": (manifest_traversal, ["not a plain name"]),
    "config_not_json": (config_not_json, ["config.json: not valid JSON"]),
    "newer_format": (newer_format, ["newer than this"]),
    "metrics_missing": (metrics_missing, ["metrics.json: listed in manifest.json but missing"]),
    "weights_symlink": (weights_symlink, ["model.safetensors: is a symbolic link"]),
}


def _broken(clf: Path, tmp_path: Path, name: str) -> tuple[Path, list[str]]:
    change, needles = CORRUPTIONS[name]
    folder = copy_model(clf, tmp_path / "model")
    change(folder)
    return folder, needles


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_predict_on_a_broken_folder_is_one_line(clf, tmp_path, capsys, name):
    folder, needles = _broken(clf, tmp_path, name)
    before = snapshot(tmp_path)
    fails(capsys, ["predict", folder, "a great film"], *needles, code=2)
    assert snapshot(tmp_path) == before


COMMANDS = {
    "evaluate": lambda m, data: ["evaluate", m, data / "test.csv", "--json"],
    "summary": lambda m, data: ["summary", m],
    "trace": lambda m, data: ["trace", m, "a great film"],
    "explain": lambda m, data: ["explain", m, "a great film", "--json"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("name", ["flip_byte", "pooling_mean", "fewer_labels", "nan_weights"])
def test_every_command_checks_the_folder(clf, data_dir, tmp_path, capsys, command, name):
    folder, needles = _broken(clf, tmp_path, name)
    before = snapshot(tmp_path)
    fails(capsys, COMMANDS[command](folder, data_dir), *needles, code=2)
    assert snapshot(tmp_path) == before


def test_report_on_a_corrupted_folder_writes_nothing(clf, tmp_path, capsys):
    folder, needles = _broken(clf, tmp_path, "flip_byte")
    before = snapshot(tmp_path)
    fails(capsys, ["report", folder], *needles, code=2)
    assert snapshot(tmp_path) == before  # no report.html half-written into the folder


def test_untouched_copy_and_extra_files_still_load(clf, tmp_path, capsys):
    folder = copy_model(clf, tmp_path / "model")
    (folder / "notes.txt").write_text("my notes")  # files the manifest does not list are not grutext's concern
    r = run(capsys, "predict", folder, "--json", "a great film")
    assert r.code == 0 and json.loads(r.out.splitlines()[0])["label"]


@pytest.mark.parametrize("kind", ["classifier", "lm"])
def test_legacy_folders_without_manifest_still_load(kind):
    from grutext.artifact import load_model

    assert not (LEGACY / kind / "manifest.json").exists()
    assert load_model(LEGACY / kind).kind in ("classifier", "language_model")


def test_manifest_names_every_file_and_the_version(clf):
    import hashlib

    from grutext.version import __version__

    doc = json.loads((clf / "manifest.json").read_text())
    listed = set(doc["files"])
    on_disk = {p.name for p in clf.iterdir() if p.name != "manifest.json"}
    assert listed == on_disk
    for name, digest in doc["files"].items():
        assert hashlib.sha256((clf / name).read_bytes()).hexdigest() == digest
    assert doc["grutext_version"] == __version__ and len(doc["config_sha256"]) == 64
    assert doc["depends"]["model.pooling"] == "max" and doc["depends"]["labels"] == ["mid", "neg", "pos"]


def test_non_finite_weights_are_never_saved(tmp_path):
    import torch

    from grutext.artifact import save_model
    from grutext.config import Config
    from grutext.data.tokenizers import Tokenizer
    from grutext.errors import ArtifactError

    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    tok = Tokenizer.train(["a b"], kind="word", min_freq=1)
    with pytest.raises(ArtifactError, match="weight weight holds 1 non-finite"):
        save_model(tmp_path / "m", model, tok, Config())
    assert list(tmp_path.iterdir()) == []  # no folder, no temporary left


def test_a_save_interrupted_between_its_renames_points_at_the_previous_model(clf, tmp_path, capsys):
    """The state `kill -9` between save_model's two renames leaves: the old model set aside, no new one."""
    copy_model(clf, tmp_path / ".model.old-999999")
    before = snapshot(tmp_path)
    fails(capsys, ["predict", tmp_path / "model", "a film"], "interrupted", ".model.old-999999", code=2)
    assert snapshot(tmp_path) == before
