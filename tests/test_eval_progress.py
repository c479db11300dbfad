"""Evaluation is not minutes of silence: validation and test scoring report progress (plain lines
when stderr is not a terminal, as under pytest), quiet runs print nothing; language-model
validation during training runs on parallel streams and says how that differs from batch 1;
training's test report shows the top confusions above 15 classes."""

from __future__ import annotations

import random

import pytest
import torch

from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.data.readers import TextDataset
from grutext.tasks.classification.data import Splits
from grutext.tasks.classification.train import train_classifier
from grutext.tasks.language_model.config import EVAL_STREAMS, LMConfig
from grutext.tasks.language_model.data import encode_stream
from grutext.tasks.language_model.evaluate import score_stream
from grutext.tasks.language_model.train import train_language_model
from grutext.train import trace

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "in", "mat", "park", "big", "small", "red", "blue", "and"]
WORDS.append("then")


def lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))) for _ in range(n)]


def lm_run(verbose: bool, batch_size: int = 4, lm: LMConfig | None = None, **kw):
    cfg = Config(
        DataConfig(tokenizer="word", min_freq=1),
        ModelConfig(embed_dim=8, hidden_size=8, num_layers=1, dropout=0.0),
        TrainConfig(epochs=1, batch_size=batch_size, lr=3e-3, seed=0),
    )
    return train_language_model(
        cfg, lm=lm or LMConfig(bptt=8), save=False, verbose=verbose, train_lines=lines(120, 0),
        valid_lines=lines(60, 1), test_lines=lines(30, 2), **kw,
    )  # fmt: skip


@pytest.fixture
def every_step(monkeypatch):
    """Plain progress lines after every step (the 30 s interval made 0)."""
    monkeypatch.setattr(trace, "PLAIN_INTERVAL_S", 0.0)


def test_lm_training_reports_validation_and_test_progress(every_step, capsys):
    lm_run(verbose=True)
    err = capsys.readouterr().err
    assert "validation 1/1: 1/" in err, err  # fit's validation of epoch 1
    assert "test: 1/" in err, err  # the final batch-1 test scoring
    assert "\r" not in err


def test_quiet_runs_print_nothing_even_with_progress_on(every_step, capsys):
    lm_run(verbose=False, progress=True)
    assert capsys.readouterr() == ("", "")
    clf_run(verbose=False, progress=True, n_classes=2)
    assert capsys.readouterr() == ("", "")


def test_batched_validation_is_the_best_epochs_row_and_is_explained(capsys):
    res = lm_run(verbose=True, batch_size=12)
    out = capsys.readouterr().out
    streams = res.fit.history[0]
    assert res.valid["loss"] == streams["val_loss"]
    # what scoring the validation stream again on the same streams gives (the final weights are the best)
    valid_ids = encode_stream(res.tokenizer, lines(60, 1), True)
    again = score_stream(res.model, valid_ids, False, batch_size=12, bptt=8, progress=False)
    assert res.valid == pytest.approx(again, rel=1e-6)
    batch1 = score_stream(res.model, valid_ids, False, batch_size=1, bptt=8, progress=False)
    assert batch1["tokens"] > res.valid["tokens"]  # batch 1 scores every token after the first
    assert "validation: 12 parallel stream(s) x bptt 8" in out and "batch-1 figure" in out, out
    assert "valid (12 parallel streams):" in out and "test (batch 1, every token scored):" in out


def test_eval_streams_default_follows_the_training_batch():
    assert LMConfig().eval_streams(4) == EVAL_STREAMS == 10
    assert LMConfig().eval_streams(32) == 32
    assert LMConfig(eval_batch_size=3).eval_streams(32) == 3
    with pytest.raises(Exception, match="lm.eval_batch_size"):
        LMConfig(eval_batch_size=0).check()


def clf_run(verbose: bool, n_classes: int, progress: bool | None = None):
    rng = random.Random(0)
    names = [f"c{i}" for i in range(n_classes)]

    def data(n: int) -> TextDataset:
        labels = [names[i % n_classes] for i in range(n)]
        texts = [f"{lab} " + " ".join(rng.choice(WORDS) for _ in range(5)) for lab in labels]
        return TextDataset(texts, labels, "synthetic")

    torch.manual_seed(0)
    cfg = Config(
        DataConfig(train="synthetic.csv", min_freq=1, max_len=16),
        ModelConfig(embed_dim=8, hidden_size=8, dropout=0.0, embed_dropout=0.0),
        TrainConfig(epochs=1, batch_size=16, lr=1e-2, seed=0),
    )
    splits = Splits(data(4 * n_classes), data(300), data(300))  # 3 batches of 128 each
    return train_classifier(cfg, splits=splits, save=False, verbose=verbose, progress=progress)


def test_classifier_training_reports_validation_and_test_progress(every_step, capsys):
    clf_run(verbose=True, n_classes=3)
    err = capsys.readouterr().err
    assert "validation 1/1: 1/" in err and "test: 1/" in err, err


def test_training_report_shows_top_confusions_above_fifteen_classes(capsys):
    clf_run(verbose=True, n_classes=20)
    out = capsys.readouterr().out
    assert "most frequent confusions (20 classes" in out and "true\\pred" not in out, out
    clf_run(verbose=True, n_classes=3)
    out = capsys.readouterr().out
    assert "true\\pred" in out and "most frequent confusions" not in out


def test_evaluating_a_saved_model_reports_progress(every_step, capsys, tmp_path):
    from grutext.artifact import load_model
    from grutext.tasks.classification.evaluate import evaluate_classifier
    from grutext.tasks.language_model.evaluate import evaluate_language_model

    cfg = Config(
        DataConfig(tokenizer="word", min_freq=1),
        ModelConfig(embed_dim=8, hidden_size=8, num_layers=1, dropout=0.0),
        TrainConfig(epochs=1, batch_size=4, seed=0, out=str(tmp_path / "lm")),
    )
    train_language_model(cfg, lm=LMConfig(bptt=8), verbose=False, train_lines=lines(120, 0))
    evaluate_language_model(load_model(tmp_path / "lm"), lines(40, 3))
    assert "evaluation: 1/" in capsys.readouterr().err
    evaluate_language_model(load_model(tmp_path / "lm"), lines(40, 3), progress=False)
    assert capsys.readouterr().err == ""
    res = clf_run(verbose=False, n_classes=3)
    from grutext.artifact import save_model

    save_model(tmp_path / "clf", res.model, res.tokenizer, res.config, labels=res.labels)
    ds = TextDataset([f"c{i % 3} the cat" for i in range(300)], [f"c{i % 3}" for i in range(300)], "eval")
    evaluate_classifier(load_model(tmp_path / "clf"), ds, batch_size=16)
    assert "evaluation: 1/" in capsys.readouterr().err
