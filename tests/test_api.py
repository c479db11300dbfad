"""The public API: every exported name is the documented object, and every API the README names works."""

from __future__ import annotations

import importlib
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import synthetic, write_csv

import grutext

# name -> an import path that keeps working (issue 12 keeps the old paths as re-exports)
STABLE = {
    "Config": "grutext.config",
    "DataConfig": "grutext.config",
    "ModelConfig": "grutext.config",
    "TrainConfig": "grutext.config",
    "load_config": "grutext.config",
    "GrutextError": "grutext.errors",
    "DataError": "grutext.errors",
    "ConfigError": "grutext.errors",
    "ArtifactError": "grutext.errors",
    "NotFittedError": "grutext.errors",
    "TextDataset": "grutext.data.readers",
    "read_dataset": "grutext.data.readers",
    "load_named": "grutext.data.readers",
    "Tokenizer": "grutext.data.tokenizers",
    "GRU": "grutext.nn.gru",
    "make_encoder": "grutext.nn.cells",
    "TextClassifier": "grutext.models.classifier",
    "fit": "grutext.train.loop",
    "train_classifier": "grutext.pipeline",
    "evaluate_classifier": "grutext.pipeline",
    "save_model": "grutext.artifact",
    "load_model": "grutext.artifact",
    "Predictor": "grutext.infer.predict",
    "model_summary": "grutext.summary",
    "pipeline_trace": "grutext.summary",
    "GRUTextClassifier": "grutext.estimator",
    "explain": "grutext.explain",
    "explain_lm": "grutext.explain",
    "training_report": "grutext.explain",
    "LanguageModel": "grutext.models.language_model",
    "LMConfig": "grutext.lm",
    "train_language_model": "grutext.lm",
    "evaluate_language_model": "grutext.lm",
    "Generator": "grutext.infer.generate",
    "generate": "grutext.infer.generate",
    "Suggester": "grutext.infer.suggest",
    "next_words": "grutext.infer.suggest",
}


def test_every_export_is_the_documented_object():
    assert set(STABLE) | {"__version__"} <= set(grutext.__all__)
    for name, module in STABLE.items():
        if name == "explain":  # shadowed by its own package once that is imported: see the test below
            continue
        assert getattr(grutext, name) is getattr(importlib.import_module(module), name), name
    for name in ("DataError", "ConfigError", "ArtifactError", "NotFittedError"):
        assert issubclass(getattr(grutext, name), grutext.GrutextError), name
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1) == grutext.__version__
    assert set(STABLE) <= set(dir(grutext))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = grutext.no_such_name


def test_explain_export_survives_importing_its_package(tmp_path):
    import grutext.explain.core  # noqa: F401  (what the CLI and the report do)

    # the attribute is now the package (Python binds it on import); calling it must still explain
    assert callable(grutext.explain)
    texts, labels = synthetic(60)
    out = tmp_path / "m"
    grutext.train_classifier(
        grutext.Config(
            grutext.DataConfig(train=str(write_csv(tmp_path / "t.csv", texts, labels)), min_freq=1),
            grutext.ModelConfig(embed_dim=8, hidden_size=8),
            grutext.TrainConfig(epochs=1, threads=1, out=str(out)),
        ),
        verbose=False,
    )
    ex = grutext.explain(grutext.load_model(out), "the movie")
    assert isinstance(ex, sys.modules["grutext.explain.core"].Explanation) and ex.tokens == ["the", "movie"]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    from tests.conftest import write_csv

    d = tmp_path_factory.mktemp("api")
    texts, labels = synthetic(120)
    write_csv(d / "train.csv", texts, labels)
    run = grutext.train_classifier(
        grutext.Config(
            grutext.DataConfig(train=str(d / "train.csv"), min_freq=1),
            grutext.ModelConfig(embed_dim=8, hidden_size=8),
            grutext.TrainConfig(epochs=1, batch_size=16, out=str(d / "model")),
        ),
        verbose=False,
    )
    assert run.labels == ["neg", "pos"] and run.out_dir == d / "model"
    return d / "model", texts, labels


def test_readme_classifier_api(classifier_dir):
    out, texts, labels = classifier_dir
    p = grutext.Predictor.load(out)
    (row,) = p.predict(["a wonderful film"])
    assert row["label"] in ("neg", "pos") and set(row["probabilities"]) == {"neg", "pos"}
    assert row["probability"] == pytest.approx(max(row["probabilities"].values()), abs=1e-6)
    loaded = grutext.load_model(out)
    rep = grutext.evaluate_classifier(loaded, grutext.TextDataset(texts[:20], labels[:20], "part"))
    assert rep["n"] == 20 and 0.0 <= rep["accuracy"] <= 1.0
    from grutext.explain import explain  # grutext.explain itself: see the xfail above

    ex = explain(loaded, "the movie was wonderful")
    assert ex.tokens == ["the", "movie", "was", "wonderful"] and ex.importance.shape == (4,)
    assert ex.predicted == p.predict(["the movie was wonderful"])[0]["label"]
    assert len(ex.rows()) > 0
    n_params = sum(q.numel() for q in loaded.model.parameters())
    assert f"Total params: {n_params:,}" in grutext.model_summary(loaded.model)
    assert "probabilities" in grutext.pipeline_trace(loaded, "a great film")


def test_readme_estimator_api():
    texts, labels = synthetic(80)
    clf = grutext.GRUTextClassifier(embed_dim=8, hidden_size=8, epochs=1, min_freq=1, batch_size=16)
    assert clf.fit(texts, labels) is clf
    pred = clf.predict(["another great text", "an awful one"])
    assert len(pred) == 2 and set(pred) <= {"neg", "pos"}
    score = clf.score(texts[:20], labels[:20])
    assert score == pytest.approx(float(np.mean(clf.predict(texts[:20]) == np.array(labels[:20]))))


def test_readme_gru_layer_api():
    gru = grutext.GRU(10, 6, num_layers=2, bidirectional=True, batch_first=True)
    ref = torch.nn.GRU(10, 6, num_layers=2, bidirectional=True, batch_first=True)
    ref.load_state_dict(gru.state_dict())  # torch.nn.GRU's weights
    x = torch.randn(3, 5, 10)
    out, h_n = gru(x, torch.tensor([5, 5, 5]))
    torch.testing.assert_close(out, ref(x)[0], rtol=1e-5, atol=1e-6)
    assert h_n.shape == (4, 3, 6)
    out, h_n, gates = gru(x, torch.tensor([5, 3, 1]), return_gates=True)
    assert len(gates) == 2 and set(gates[0]) >= {"r", "z", "n", "h"}
    assert out[2, 1:].abs().max() == 0  # exact for padded batches


def test_readme_language_model_api(tmp_path):
    rng = np.random.default_rng(0)
    words = ["the", "cat", "dog", "sat", "on", "mat", "ran", "far"]
    lines = [" ".join(rng.choice(words, size=int(rng.integers(4, 9)))) for _ in range(150)]
    out = tmp_path / "lm"
    run = grutext.train_language_model(
        grutext.Config(
            grutext.DataConfig(min_freq=1),
            grutext.ModelConfig(embed_dim=8, hidden_size=8, num_layers=1),
            grutext.TrainConfig(epochs=1, batch_size=4, out=str(out)),
        ),
        lm=grutext.LMConfig(bptt=10),
        train_lines=lines,
        verbose=False,
    )
    assert isinstance(run.model, grutext.LanguageModel)
    gen = grutext.Generator.load(out)
    text = gen.generate("the cat", max_tokens=6, top_p=0.9, temperature=0.8, seed=0)
    assert isinstance(text, str) and text.strip()
    assert text == gen.generate("the cat", max_tokens=6, top_p=0.9, temperature=0.8, seed=0)  # seeded
    assert "".join(gen.stream("the cat", max_tokens=6, top_p=0.9, temperature=0.8, seed=0)) == text
    assert grutext.generate(out, "the cat", max_tokens=6, top_p=0.9, temperature=0.8, seed=0) == text
    beams = gen.beam_search("the cat", beam=3, max_tokens=4)
    assert len(beams) == 3 and [s for _, s in beams] == sorted((s for _, s in beams), reverse=True)
    rows = grutext.Suggester.load(out).suggest("the ", 3)
    assert len(rows) == 3 and all(w in words for w, _ in rows)
    probs = [q for _, q in rows]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert grutext.next_words(out, "the ", 3) == rows
    scores = grutext.evaluate_language_model(grutext.load_model(out), lines[:30])
    assert scores["perplexity"] == pytest.approx(math.exp(scores["loss"]))
