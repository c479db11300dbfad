"""`grutext export`: the folder, its refusals (one line, exit 2, nothing written or replaced), int8's
measured accuracy change, and the language model's perplexity change."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.conftest import synthetic  # noqa: E402
from tests.export.helpers import save_classifier, save_lm  # noqa: E402

from grutext import runtime  # noqa: E402
from grutext.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    save_classifier(root / "clf", pooling="attention")
    save_lm(root / "lm")
    texts, labels = synthetic(60, classes=("pos", "neg", "mid"), seed=9)
    with open(root / "test.csv", "w") as f:
        f.write("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in zip(texts, labels, strict=True)))
    (root / "lm-test.txt").write_text("\n".join(texts) + "\n")
    return root


def test_export_writes_a_folder_the_runtime_loads(models, tmp_path, capsys):
    out = tmp_path / "onnx"
    assert main(["export", str(models / "clf"), str(out), "--opset", "18"]) == 0
    assert "parity: model.onnx vs torch" in capsys.readouterr().out
    info = runtime.read_manifest(out)
    assert info["opset"] == 18 and info["kind"] == "classifier"
    assert runtime.load(out).predict(["a great film"])[0]["label"] in info["labels"]


def test_int8_prints_the_measured_accuracy_change(models, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["export", str(models / "clf"), str(out), "--int8", "--test", str(models / "test.csv")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("int8:"))
    q = runtime.read_manifest(out)["int8"]
    assert q["n"] == 60 and f"{q['accuracy_int8']:.2f}%" in line and f"{q['accuracy_fp32']:.2f}%" in line
    # the measured fp32 accuracy is the runtime's own, recomputed here from the labels
    texts, labels = synthetic(60, classes=("pos", "neg", "mid"), seed=9)
    rt = runtime.load(out, int8=True)
    pred = [r["label"] for r in rt.predict(texts)]
    assert abs(100 * sum(p == y for p, y in zip(pred, labels, strict=True)) / 60 - q["accuracy_int8"]) < 1e-3


def test_int8_language_model_reports_perplexity(models, tmp_path, capsys):
    out = tmp_path / "lmq"
    assert main(["export", str(models / "lm"), str(out), "--int8", "--test", str(models / "lm-test.txt")]) == 0
    q = runtime.read_manifest(out)["int8"]
    assert q["tokens"] > 100 and q["perplexity_fp32"] > 1 and q["perplexity_int8"] > 1
    assert "int8: perplexity" in capsys.readouterr().out
    assert runtime.load(out, int8=True).generate("the movie", max_tokens=3, greedy=True)


def refused(argv, capsys, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_refusals(models, tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    refused(["export", str(models / "clf"), str(user)], capsys, "is not a grutext export folder")
    refused(["export", str(models / "clf"), str(user), "--overwrite"], capsys, "is not a grutext export folder")
    assert (user / "notes.txt").read_text() == "keep me" and len(list(user.iterdir())) == 1
    refused(["export", str(models / "clf"), str(tmp_path / "x"), "--test", "t.csv"], capsys, "applies only with --int8")
    refused(["export", str(models / "lm"), str(tmp_path / "y"), "--int8"], capsys, "pass --test FILE")
    refused(["export", str(tmp_path / "nothing"), str(tmp_path / "z")], capsys, "model directory not found")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists() and not (tmp_path / "z").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary folders left behind


def test_existing_export_needs_overwrite(models, tmp_path, capsys):
    out = tmp_path / "e"
    assert main(["export", str(models / "clf"), str(out)]) == 0
    before = json.loads((out / "grutext-export.json").read_text())
    refused(["export", str(models / "lm"), str(out)], capsys, "pass --overwrite")
    assert json.loads((out / "grutext-export.json").read_text()) == before
    assert main(["export", str(models / "lm"), str(out), "--overwrite"]) == 0
    assert runtime.read_manifest(out)["kind"] == "language_model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]


def test_non_gru_cell_is_refused(tmp_path, capsys):
    from tests.export.helpers import tokenizer

    from grutext.artifact import save_model
    from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
    from grutext.tasks.classification.model import build_classifier

    tok = tokenizer()
    m = ModelConfig(cell="lstm", embed_dim=4, hidden_size=4, vocab_size=tok.vocab_size, num_classes=2, task="binary")
    cfg = Config(DataConfig(min_freq=1), m, TrainConfig(out=str(tmp_path / "m")))
    save_model(tmp_path / "m", build_classifier(m), tok, cfg, labels=["a", "b"])
    refused(["export", str(tmp_path / "m"), str(tmp_path / "o")], capsys, "supports cell 'gru'")


def test_export_leaves_the_process_as_it_was(models, tmp_path):
    import torch

    from grutext.export.exporter import export_model

    assert torch.is_grad_enabled()
    export_model(models / "clf", tmp_path / "o", log=lambda s: None)
    assert torch.is_grad_enabled()
