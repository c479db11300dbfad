"""A tiny classifier trained for a few seconds on a planted-trigger task, shared by the explain tests.

Class "yes" texts contain the word "zebra" at a random position among filler words; "no" texts
do not. Any sound importance method must rank "zebra" first for class "yes".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.explain.zebra_data import zebra_texts


@pytest.fixture(scope="session")
def zebra_model_dir(tmp_path_factory) -> Path:
    """Train (once per session, a few seconds) and save a BiGRU with attention pooling."""
    import torch

    from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
    from grutext.data.readers import TextDataset
    from grutext.pipeline import Splits, train_classifier

    out = tmp_path_factory.mktemp("zebra") / "model"
    torch.manual_seed(0)
    train = TextDataset(*zebra_texts(320, 0), "zebra-train")
    valid = TextDataset(*zebra_texts(100, 1), "zebra-valid")
    cfg = Config(
        DataConfig(train="zebra-train.csv", min_freq=1, max_len=64),
        ModelConfig(embed_dim=16, hidden_size=16, pooling="attention", dropout=0.0, embed_dropout=0.0),
        TrainConfig(epochs=4, batch_size=32, lr=1e-2, patience=1, seed=0, out=str(out)),
    )
    result = train_classifier(cfg, splits=Splits(train, valid, None), save=True, verbose=False, progress=False)
    assert result.valid_report["accuracy"] > 0.95, result.valid_report
    return out


@pytest.fixture(scope="session")
def zebra(zebra_model_dir):
    from grutext.artifact import load_model

    return load_model(zebra_model_dir)
