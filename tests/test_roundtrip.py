"""Every processing setting survives save/load: a model directory predicts exactly as the model did
before it was saved, on inputs that the setting changes (mixed case, texts beyond max_len, each
truncation mode, char and BPE tokenizers, word-tokenizer options, architecture fields, label order).

Each test also shows that its probes are sensitive: changing the setting changes the predictions,
so a loader that dropped the setting (falling back to a default) would be caught.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import FILLER, synthetic

from grutext import TextClassifier
from grutext.artifact import LoadedModel, load_model
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.data.batching import truncate
from grutext.data.readers import TextDataset
from grutext.infer.predict import Predictor
from grutext.pipeline import Splits, train_classifier


def mixed_case(texts: list[str], seed: int = 0) -> list[str]:
    """Each word as it is, Capitalised or UPPER, at random."""
    rng = random.Random(seed)
    return [" ".join(rng.choice((w, w.capitalize(), w.upper())) for w in t.split()) for t in texts]


def long_text(n: int, seed: int, head: str, tail: str) -> str:
    """`n` filler words with a class word first and another last: head and tail truncation see different words."""
    rng = random.Random(seed)
    return " ".join([head, *(rng.choice(FILLER) for _ in range(n - 2)), tail])


MIXED_PROBES = [
    "The Movie was GREAT",
    "the movie was great",
    "AWFUL Boring plot",
    "awful boring plot",
    "A Wonderful FILM about the City at Night",
    "OKAY",
]
LONG_PROBES = [long_text(30, s, h, t) for s, (h, t) in enumerate([("great", "awful"), ("boring", "wonderful")] * 2)]
PROBES = MIXED_PROBES + LONG_PROBES


def train_and_save(out: Path, data: dict[str, Any], model: dict[str, Any] | None = None, classes=("pos", "neg")):
    texts, labels = synthetic(90, classes=classes, seed=1, max_len=20)
    texts = mixed_case(texts)
    tr, va = TextDataset(texts[:72], labels[:72], "train"), TextDataset(texts[72:], labels[72:], "valid")
    cfg = Config(
        DataConfig(min_freq=1, **data),
        # blend off: these probes test the network's own processing (the n-gram model lower-cases and
        # reads every word whatever the settings, which would hide a dropped setting); test_blend.py
        # round-trips the blend
        ModelConfig(embed_dim=8, hidden_size=8, **{"blend": "off", **(model or {})}),
        TrainConfig(epochs=1, batch_size=16, out=str(out)),
    )
    return train_classifier(cfg, splits=Splits(tr, va, None), verbose=False)


def before_save(run) -> Predictor:
    """The trained model as it was in memory, before it was written."""
    return Predictor(LoadedModel(run.model, run.tokenizer, run.config, "classifier", run.labels, ngrams=run.ngrams))


def changed(p: Predictor, data: dict[str, Any] | None = None, model: dict[str, Any] | None = None) -> Predictor:
    """The same network and tokenizer with some settings changed (what a loader dropping them would give)."""
    cfg = p.loaded.config
    cfg = replace(cfg, data=replace(cfg.data, **(data or {})), model=replace(cfg.model, **(model or {})))
    return Predictor(replace(p.loaded, config=cfg))


def assert_same_predictions(a: Predictor, b: Predictor, texts: list[str]) -> None:
    assert a.labels == b.labels
    ra, rb = a.predict(texts), b.predict(texts)
    assert [r.get("label") for r in ra] == [r.get("label") for r in rb]
    np.testing.assert_allclose(a.predict_proba(texts), b.predict_proba(texts), rtol=0, atol=1e-6)


def differs(a: Predictor, b: Predictor, texts: list[str]) -> bool:
    return not np.allclose(a.predict_proba(texts), b.predict_proba(texts), rtol=0, atol=1e-6)


@pytest.mark.parametrize("lowercase", [True, False])
def test_lowercase_survives_save_and_load(tmp_path, lowercase):
    run = train_and_save(tmp_path / "m", {"lowercase": lowercase})
    loaded = Predictor.load(tmp_path / "m")
    tok = loaded.loaded.tokenizer
    assert tok.lowercase is lowercase and loaded.loaded.config.data.lowercase is lowercase
    for text in PROBES:
        assert tok.tokens(text) == run.tokenizer.tokens(text), text
        assert tok.encode(text) == run.tokenizer.encode(text), text
    assert_same_predictions(before_save(run), loaded, PROBES)
    # the setting is live after loading: case matters exactly when lowercase is off
    assert (tok.encode("The Movie was GREAT") == tok.encode("the movie was great")) is lowercase
    assert (tok.tokens("GREAT Film") == ["great", "film"]) is lowercase
    upper, lower = loaded.predict_proba(["The Movie was GREAT"]), loaded.predict_proba(["the movie was great"])
    assert np.array_equal(upper, lower) is lowercase


@pytest.mark.parametrize("truncation", ["head", "tail", "head+tail"])
def test_max_len_and_truncation_survive_save_and_load(tmp_path, truncation):
    run = train_and_save(tmp_path / "m", {"max_len": 8, "truncation": truncation})
    loaded = Predictor.load(tmp_path / "m")
    d = loaded.loaded.config.data
    assert (d.max_len, d.truncation) == (8, truncation)
    assert_same_predictions(before_save(run), loaded, PROBES)
    # the saved truncation is applied: a long text predicts as the 8 words it keeps
    for text in LONG_PROBES:
        words = text.split()
        kept = " ".join(words[i] for i in truncate(list(range(len(words))), 8, truncation))
        np.testing.assert_allclose(loaded.predict_proba([text]), loaded.predict_proba([kept]), rtol=0, atol=1e-6)
    # the probes see the settings: another max_len or another truncation mode predicts differently
    assert differs(loaded, changed(loaded, {"max_len": 400}), LONG_PROBES)
    for other in {"head", "tail", "head+tail"} - {truncation}:
        assert differs(loaded, changed(loaded, {"truncation": other}), LONG_PROBES), other


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_char_and_bpe_tokenizers_survive_save_and_load(tmp_path, kind):
    lowercase = kind == "bpe"  # char: case-sensitive, so a loader that lower-cases shows
    run = train_and_save(
        tmp_path / "m", {"tokenizer": kind, "bpe_vocab_size": 300, "max_len": 60, "lowercase": lowercase}
    )
    loaded = Predictor.load(tmp_path / "m")
    tok = loaded.loaded.tokenizer
    assert tok.kind == kind and tok.vocab_size == run.tokenizer.vocab_size
    assert tok.meta == run.tokenizer.meta
    for text in PROBES + ["naïve Café ¿qué? 123"]:
        assert tok.encode(text) == run.tokenizer.encode(text), text
    assert_same_predictions(before_save(run), loaded, PROBES)
    assert tok.lowercase is lowercase
    assert (tok.encode("GREAT") == tok.encode("great")) is lowercase
    assert differs(loaded, changed(loaded, {"max_len": 400}), LONG_PROBES)  # 60 characters/pieces of 150+


def test_word_options_and_architecture_survive_save_and_load(tmp_path):
    data = {"split_contractions": False, "strip_html": False, "lowercase": False}
    model = {"bidirectional": False, "pooling": "mean", "cell": "lstm", "num_layers": 2}
    run = train_and_save(tmp_path / "m", data, model, classes=("pos", "neg", "mid"))
    loaded = Predictor.load(tmp_path / "m")
    cfg = loaded.loaded.config
    for key, value in data.items():
        assert getattr(cfg.data, key) == value, key
    for key, value in model.items():
        assert getattr(cfg.model, key) == value, key
    tok = loaded.loaded.tokenizer
    assert tok.normalize("It doesn't<br />") == "It doesn't<br />"  # no lower-casing, no HTML stripping
    pieces = [w for w, _ in tok.hf.pre_tokenizer.pre_tokenize_str("it doesn't")]
    assert pieces == ["it", "doesn", "'", "t"]  # not the Treebank split "does n't"
    probes = PROBES + ["It doesn't seem GREAT<br />at all"]
    for text in probes:
        assert tok.encode(text) == run.tokenizer.encode(text), text
    assert_same_predictions(before_save(run), loaded, probes)
    # mean pooling has no weights, so only the predictions show a loader that rebuilt the default (max)
    other = TextClassifier.from_config(replace(cfg.model, pooling="max"))
    other.load_state_dict(loaded.loaded.model.state_dict())
    assert differs(loaded, Predictor(replace(loaded.loaded, model=other.eval())), probes)


def test_label_order_survives_save_and_load(tmp_path):
    run = train_and_save(tmp_path / "m", {}, classes=("pos", "neg", "mid"))
    assert run.labels == ["mid", "neg", "pos"]
    loaded = Predictor.load(tmp_path / "m")
    assert loaded.labels == run.labels
    assert json.loads((tmp_path / "m" / "labels.json").read_text()) == run.labels
    rows, ref = loaded.predict(PROBES), before_save(run).predict(PROBES)
    assert [r["label"] for r in rows] == [r["label"] for r in ref]
    assert [r["probabilities"] for r in rows] == [r["probabilities"] for r in ref]
    assert len({r["label"] for r in rows}) > 1  # the probes are not all one class: an order swap shows
    lm = load_model(tmp_path / "m")
    assert lm.labels == run.labels and lm.config.model.num_classes == 3
