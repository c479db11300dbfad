"""Model directories saved by the pre-redesign code (tests/fixtures/legacy/) still load and predict the same.

The classifier was trained on mixed-case texts with a short ``max_len`` and truncation, so a loader that
dropped the tokenizer's lowercase setting or the saved truncation would change its probabilities.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

LEGACY = Path(__file__).parent / "fixtures" / "legacy"


def _expected(name: str) -> dict:
    return json.loads((LEGACY / f"{name}_expected.json").read_text())


def test_legacy_classifier_predicts_the_same():
    from grutext import Predictor

    exp = _expected("classifier")
    pred = Predictor.load(LEGACY / "classifier")
    probs = pred.predict_proba(exp["texts"])  # (N, C)
    want = np.array([[row[label] for label in pred.labels] for row in exp["probs"]])
    np.testing.assert_allclose(probs, want, atol=1e-5)
    got = pred.predict(exp["texts"])
    assert [g["label"] for g in got] == [p["label"] for p in exp["predictions"]]
    for g, p in zip(got, exp["predictions"], strict=True):
        assert g["probability"] == pytest.approx(p["probability"], abs=1e-5)


def test_legacy_classifier_keeps_its_processing_settings():
    from grutext.artifact import load_model

    loaded = load_model(LEGACY / "classifier")
    assert loaded.kind == "classifier" and loaded.labels == ["0", "1"]
    exp = _expected("classifier")
    long_text = exp["texts"][2]
    assert len(loaded.tokenizer.encode(long_text)) > loaded.config.data.max_len  # the truncation matters here
    tok = loaded.tokenizer
    assert loaded.config.data.lowercase is False  # trained case-sensitive: "Great" and "great" differ
    mixed, lower = tok.encode("The Movie was Great"), tok.encode("the movie was great")
    assert tok.unk_id not in mixed and mixed != lower  # the saved lowercase setting is applied


def test_legacy_language_model_scores_and_generates_the_same():
    from grutext.artifact import load_model
    from grutext.infer.generate import Generator
    from grutext.tasks.language_model.data import encode_stream
    from grutext.tasks.language_model.evaluate import score_stream

    exp = _expected("lm")
    loaded = load_model(LEGACY / "lm")
    assert loaded.kind == "language_model"
    ids = encode_stream(loaded.tokenizer, ["the cat sat on the log"])
    scores = score_stream(loaded.model, ids, loaded.tokenizer.kind == "char")
    assert scores.keys() == exp["scores"].keys()
    for key, value in exp["scores"].items():
        assert scores[key] == pytest.approx(value, rel=1e-6, abs=1e-6)
    gen = Generator.load(LEGACY / "lm")
    assert gen.generate(exp["prompt"], max_tokens=5, seed=0) == exp["generated"]
