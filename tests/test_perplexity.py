"""Perplexity is exp(mean NLL in nats), checked against a hand computation over a tiny language
model's per-token log-probabilities: in `score_stream`, through a saved model's
`evaluate_language_model` (with its saved EOS setting), and in the training trace."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from grutext.artifact import load_model
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.lm import LMConfig, evaluate_language_model, score_stream, train_language_model
from grutext.models.language_model import LanguageModel

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "in", "mat", "park", "big", "red", "and"]


def lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(n)]


@torch.no_grad()
def hand_nll(model: torch.nn.Module, ids: list[int], rows: int = 1) -> tuple[float, int]:
    """Mean -log p(token | everything before it in its row) over `rows` contiguous rows of the
    stream, every token but each row's first; from one full forward pass per row."""
    model.eval()
    per_row = len(ids) // rows
    total, count = 0.0, 0
    for r in range(rows):
        seg = torch.tensor(ids[r * per_row : (r + 1) * per_row])
        logits = model(seg[None, :-1])[0][0].double()  # (T-1, V)
        logp = torch.log_softmax(logits, -1)
        total -= float(logp[torch.arange(len(seg) - 1), seg[1:]].sum())
        count += len(seg) - 1
    return total / count, count


@pytest.fixture(scope="module")
def tiny_lm() -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(20, embed_dim=6, hidden_size=10, num_layers=2, dropout=0.0, embed_dropout=0.0).eval()


@pytest.mark.parametrize("batch_size,bptt", [(1, 7), (1, 200), (3, 5)])
def test_score_stream_perplexity_is_exp_of_mean_nll(tiny_lm, batch_size, bptt):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 20, (101,), generator=g)
    nll, count = hand_nll(tiny_lm, ids.tolist(), rows=batch_size)
    s = score_stream(tiny_lm, ids, False, batch_size=batch_size, bptt=bptt)
    assert s["tokens"] == count
    assert s["loss"] == pytest.approx(nll, rel=1e-5)
    assert s["perplexity"] == pytest.approx(math.exp(nll), rel=1e-5)
    assert 1.0 < s["perplexity"] < 20 * 3  # a near-uniform model over 16 words: about 16, not e**16 or 2**nats
    c = score_stream(tiny_lm, ids, True, batch_size=batch_size, bptt=bptt, characters=250)
    assert "perplexity" not in c
    assert c["bpc"] == pytest.approx(nll / math.log(2), rel=1e-5)
    assert c["nats_per_character"] == pytest.approx(nll * count / 250, rel=1e-5)
    assert c["bits_per_character"] == pytest.approx(nll * count / 250 / math.log(2), rel=1e-5)


def _cfg(out: str, epochs: int = 1, tokenizer: str = "word") -> Config:
    return Config(
        DataConfig(min_freq=1, tokenizer=tokenizer),
        ModelConfig(embed_dim=8, hidden_size=12, num_layers=1, dropout=0.0, embed_dropout=0.0),
        TrainConfig(epochs=epochs, batch_size=4, lr=5e-3, out=out),
    )


@pytest.mark.parametrize("add_eos", [None, False])
def test_saved_model_perplexity_is_exp_of_mean_nll(tmp_path, add_eos):
    """Through the model directory: the saved EOS handling is used, and perplexity = exp(mean NLL)."""
    out = tmp_path / "lm"
    train_language_model(_cfg(str(out)), lm=LMConfig(bptt=8, add_eos=add_eos), train_lines=lines(120, 0), verbose=False)
    loaded = load_model(out)
    text = lines(12, 5) + ["   "]  # a blank line adds nothing
    eos = add_eos is None  # word models end each line with <eos> unless told not to
    ids = [i for line in text if line.strip() for i in loaded.tokenizer.encode(line, add_eos=eos)]
    assert (loaded.tokenizer.eos_id in ids) is eos
    nll, count = hand_nll(loaded.model, ids)
    rep = evaluate_language_model(loaded, text)
    assert rep["tokens"] == count == len(ids) - 1
    assert rep["loss"] == pytest.approx(nll, rel=1e-5)
    assert rep["perplexity"] == pytest.approx(math.exp(nll), rel=1e-5)
    # per character: the text's characters, one newline per line, blank lines not counted (word models)
    chars = sum(len(line) + 1 for line in text if line.strip())
    assert rep["nats_per_character"] == pytest.approx(nll * count / chars, rel=1e-5)
    assert rep["bits_per_character"] == pytest.approx(nll * count / chars / math.log(2), rel=1e-5)
    # the same lines from a file, its format named (the extension says otherwise): the same figures
    real = [line for line in text if line.strip()]
    table = tmp_path / "held_out.txt"
    table.write_text("".join(json.dumps({"body": line}) + "\n" for line in real), encoding="utf-8")
    from_file = evaluate_language_model(loaded, table, fmt="jsonl", text_col="body")
    assert from_file["tokens"] == rep["tokens"] and from_file["loss"] == pytest.approx(rep["loss"], rel=1e-6)


def test_training_trace_perplexity_is_exp_of_mean_nll():
    valid = lines(20, 9)
    res = train_language_model(
        _cfg("unused"),
        lm=LMConfig(bptt=8, eval_batch_size=1, vary_length=False),
        train_lines=lines(120, 0),
        valid_lines=valid,
        save=False,
        verbose=False,
    )
    (row,) = res.fit.history
    assert row["perplexity"] == pytest.approx(math.exp(row["loss"]), rel=1e-9)
    assert row["val_perplexity"] == pytest.approx(math.exp(row["val_loss"]), rel=1e-9)
    # one validation stream: val_loss is the mean NLL of every validation token after the first
    ids = [i for line in valid for i in res.tokenizer.encode(line, add_eos=True)]
    nll, count = hand_nll(res.model, ids)
    assert row["val_loss"] == pytest.approx(nll, rel=1e-5)
    assert res.valid["loss"] == pytest.approx(nll, rel=1e-5) and res.valid["tokens"] == count
    assert res.valid["perplexity"] == pytest.approx(math.exp(nll), rel=1e-5)
    assert 1.0 < res.valid["perplexity"] < res.tokenizer.vocab_size  # at most uniform after training


def test_char_training_trace_reports_bits_per_character():
    text = lines(60, 3)
    res = train_language_model(
        _cfg("unused", tokenizer="char"), lm=LMConfig(bptt=20), train_lines=text, save=False, verbose=False
    )
    (row,) = res.fit.history
    assert "perplexity" not in row and "val_perplexity" not in row
    assert row["bpc"] == pytest.approx(row["loss"] / math.log(2), rel=1e-9)
    assert row["val_bpc"] == pytest.approx(row["val_loss"] / math.log(2), rel=1e-9)


def test_lm_config_sets_what_a_language_model_needs():
    from grutext.tasks.language_model.config import lm_config

    cfg = Config(
        DataConfig(), ModelConfig(bidirectional=True, pooling="max", task="binary"), TrainConfig(monitor="val_accuracy")
    )
    got = lm_config(cfg)
    assert (got.model.bidirectional, got.model.pooling, got.model.task, got.train.monitor) == (
        False, "last", "auto", "val_loss",
    )  # fmt: skip
