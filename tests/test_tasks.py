"""The task table, the decisions written once in tasks/language_model/config.py, and the artifact's
all-or-nothing writes and consistency checks."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from grutext.errors import ArtifactError

LEGACY = Path(__file__).parent / "fixtures" / "legacy"


def test_the_table_maps_the_stored_kinds_to_their_tasks():
    from grutext.tasks import CLASSIFICATION, LANGUAGE_MODEL, TAGGING, TASKS, task_for

    assert TASKS == {"classifier": CLASSIFICATION, "language_model": LANGUAGE_MODEL, "tagger": TAGGING}
    assert task_for("language_model") is LANGUAGE_MODEL
    with pytest.raises(
        ArtifactError, match="unknown model kind 'parser'; expected one of classifier, language_model, tagger"
    ):
        task_for("parser")


def test_tasks_answer_for_their_artifacts():
    from grutext.artifact import load_model
    from grutext.tasks import task_for

    lm = load_model(LEGACY / "lm")
    settings = task_for(lm.kind).settings(lm.config, lm.meta)
    assert settings["bptt"] == 5 and "pooling" not in settings  # an LM reports its own settings
    clf = load_model(LEGACY / "classifier")
    task = task_for(clf.kind)
    assert task.has_labels and task.members(clf.config) == 1 and "bptt" not in task.settings(clf.config, clf.meta)


def test_add_eos_and_perplexity_are_decided_once():
    from grutext.tasks.language_model.config import PERPLEXITY_CLAMP, perplexity, resolve_add_eos

    assert resolve_add_eos("word") and resolve_add_eos("bpe") and not resolve_add_eos("char")
    assert resolve_add_eos("char", True) and not resolve_add_eos("word", False)
    assert perplexity(2.0) == pytest.approx(math.exp(2.0))
    assert perplexity(60.0) == pytest.approx(math.exp(60.0))  # no clamp at 50 any more
    assert perplexity(1e6) == math.exp(PERPLEXITY_CLAMP)  # no OverflowError


def _resave(src: Path, out: Path, **kw):
    from grutext.artifact import load_model, save_model

    loaded = load_model(src)
    return save_model(out, loaded.model, loaded.tokenizer, loaded.config, kind=loaded.kind, labels=loaded.labels, **kw)


def test_a_failed_save_leaves_no_directory_and_keeps_the_old_one(tmp_path):
    def broken(path):
        raise RuntimeError("disk full")

    out = tmp_path / "m"
    with pytest.raises(RuntimeError):
        _resave(LEGACY / "classifier", out, extra={"curves.png": broken})
    assert not out.exists() and list(tmp_path.iterdir()) == []
    _resave(LEGACY / "classifier", out, metrics={"run": 1})
    with pytest.raises(RuntimeError):
        _resave(LEGACY / "classifier", out, metrics={"run": 2}, extra={"curves.png": broken})
    assert json.loads((out / "metrics.json").read_text()) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_language_model_settings_are_written_with_the_directory(tmp_path):
    from grutext.artifact import load_model
    from grutext.tasks.language_model.config import LMConfig
    from grutext.tasks.language_model.train import save_language_model

    loaded = load_model(LEGACY / "lm")
    lm = LMConfig(bptt=7)
    out = save_language_model(tmp_path / "lm", loaded.model, loaded.tokenizer, loaded.config, lm)
    meta = json.loads((out / "config.json").read_text())
    assert meta["lm"]["bptt"] == 7 and list(meta)[-1] == "lm"
    assert load_model(out).meta["lm"]["bptt"] == 7


def test_the_loader_names_a_labels_mismatch(tmp_path):
    from grutext.artifact import load_model

    out = tmp_path / "clf"
    shutil.copytree(LEGACY / "classifier", out)
    (out / "labels.json").write_text(json.dumps(["neg", "pos"]))
    with pytest.raises(ArtifactError, match=r"labels.json \['neg', 'pos'\] does not match config.json's labels"):
        load_model(out)


def test_save_refuses_an_unknown_kind(tmp_path):
    with pytest.raises(ArtifactError, match="unknown model kind 'parser'"):
        _resave_kind(tmp_path, "parser")
    assert not (tmp_path / "x").exists()


def _resave_kind(tmp_path: Path, kind: str):
    from grutext.artifact import load_model, save_model

    loaded = load_model(LEGACY / "classifier")
    return save_model(tmp_path / "x", loaded.model, loaded.tokenizer, loaded.config, kind=kind)
