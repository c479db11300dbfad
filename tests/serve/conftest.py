"""Tiny models for the server tests, trained once per session (a few seconds in all): a classifier
with planted class words, a word language model and a chunk tagger."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tests.conftest import synthetic

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "in", "mat", "park"]
DETS = ["the", "a", "this"]
NOUNS = ["dog", "cat", "house", "car"]
VERBS = ["sees", "likes", "wants"]


def _tag_corpus(path: Path, n: int, seed: int) -> Path:
    """`word X tag` lines: NP VP NP . sentences (CoNLL-2000 style)."""
    rng = random.Random(seed)
    lines: list[str] = []
    for _ in range(n):
        sent = [(rng.choice(DETS), "B-NP"), (rng.choice(NOUNS), "I-NP"), (rng.choice(VERBS), "B-VP")]
        sent += [(rng.choice(DETS), "B-NP"), (rng.choice(NOUNS), "I-NP"), (".", "O")]
        lines += [f"{w} X {t}" for w, t in sent] + [""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
    from grutext.data.readers import TextDataset
    from grutext.tasks.classification.data import Splits
    from grutext.tasks.classification.train import train_classifier
    from grutext.tasks.language_model.config import LMConfig
    from grutext.tasks.language_model.train import train_language_model
    from grutext.tasks.tagging.config import TagConfig
    from grutext.tasks.tagging.train import train_tagger

    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("serve-models")
    texts, labels = synthetic(240, classes=("pos", "neg", "mid"))
    ds = TextDataset(texts, labels, "synthetic")
    train_classifier(
        Config(
            DataConfig(train="synthetic.csv", min_freq=1),
            ModelConfig(embed_dim=16, hidden_size=16),
            TrainConfig(epochs=4, batch_size=16, lr=1e-2, seed=0, threads=1, out=str(root / "clf")),
        ),
        splits=Splits(ds, ds, None),
        verbose=False,
        progress=False,
    )
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(100)]
    train_language_model(
        Config(
            DataConfig(tokenizer="word", min_freq=1),
            ModelConfig(embed_dim=8, hidden_size=8, num_layers=1),
            TrainConfig(epochs=1, batch_size=4, seed=0, threads=1, out=str(root / "lm")),
        ),
        lm=LMConfig(bptt=8),
        verbose=False,
        train_lines=lines,
    )
    train = _tag_corpus(root / "tag-train.txt", 120, 0)
    cfg = Config()
    train_tagger(
        replace(
            cfg,
            data=replace(cfg.data, train=str(train)),
            model=replace(cfg.model, hidden_size=16, embed_dim=8),
            train=replace(cfg.train, epochs=3, batch_size=8, lr=1e-2, threads=1, seed=0, out=str(root / "tag")),
        ),
        TagConfig(char_hidden=4, char_dim=4),
        verbose=False,
        progress=False,
    )
    return {"clf": root / "clf", "lm": root / "lm", "tag": root / "tag"}
