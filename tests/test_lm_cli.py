"""The language-model pipeline and CLI: stream batching, train/evaluate/generate/next-word,
bad corpora, and a short real run on a slice of PTB that must beat the unigram baseline."""

from __future__ import annotations

import json
import random

import pytest
import torch

from grutext.cli import main
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.errors import DataError
from grutext.lm import LMBatches, LMConfig, encode_stream, read_corpus, train_language_model

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "ran",
    "on",
    "in",
    "mat",
    "park",
    "big",
    "small",
    "red",
    "blue",
    "and",
    "then",
]


def corpus_lines(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))) for _ in range(n)]


@pytest.mark.parametrize("epoch_tokens", [None, 57])
def test_stream_batches_cover_every_token_once(epoch_tokens):
    stream = torch.arange(1000)
    b = LMBatches(stream, 4, 7, vary_length=True, seed=3, epoch_tokens=epoch_tokens)
    rows: list[list[int]] = [[] for _ in range(4)]
    resets = 0
    for _ in range(30 if epoch_tokens else 1):
        for batch in b:
            x, y = batch["ids"], batch["targets"]
            assert torch.equal(x[:, 1:], y[:, :-1])
            resets += batch["reset"]
            if resets > 1:
                break
            for r in range(4):
                rows[r].extend(y[r].tolist())
        if resets > 1:
            break
    targets = sorted(t for r in rows for t in r)
    per_row = 1000 // 4
    expect = sorted(t for r in range(4) for t in range(r * per_row + 1, (r + 1) * per_row))
    assert targets == expect  # each token except each row's first is a target exactly once


def test_corpus_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(DataError, match="empty corpus"):
        read_corpus(empty)
    with pytest.raises(DataError, match="not found"):
        read_corpus(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="too small") as exc:
        LMBatches(torch.arange(50), 4, 20, source="tiny.txt")
    assert "tiny.txt" in str(exc.value) and "\n" not in str(exc.value)


def test_read_many_files_and_gz(tmp_path):
    import gzip

    (tmp_path / "a.txt").write_text("one two\nthree\n")
    with gzip.open(tmp_path / "b.txt.gz", "wt") as fh:
        fh.write("four five\n")
    assert read_corpus(f"{tmp_path / 'a.txt'},{tmp_path / 'b.txt.gz'}") == ["one two", "three", "four five"]
    assert read_corpus(str(tmp_path / "*.txt*")) == ["one two", "three", "four five"]


def test_cli_train_evaluate_generate_next_word(tmp_path, capsys):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("\n".join(corpus_lines(300)) + "\n")
    valid.write_text("\n".join(corpus_lines(40, seed=1)) + "\n")
    out = tmp_path / "lm"
    rc = main(
        [
            "train",
            "--task",
            "lm",
            str(train),
            "--valid",
            str(valid),
            "--embed-dim",
            "16",
            "--hidden-size",
            "16",
            "--num-layers",
            "1",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--out",
            str(out),
            "--threads",
            "2",
        ]
    )
    assert rc == 0 and (out / "model.safetensors").is_file()
    meta = json.loads((out / "config.json").read_text())
    assert meta["kind"] == "language_model" and meta["lm"]["bptt"] == 70
    capsys.readouterr()
    assert main(["evaluate", str(out), str(valid), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["perplexity"] > 1 and rep["tokens"] > 300
    assert main(["generate", str(out), "--prompt", "the cat", "--max-tokens", "5", "--seed", "1", "--top-k", "5"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("the cat ") and len(first) > len("the cat ")
    main(["generate", str(out), "--prompt", "the cat", "--max-tokens", "5", "--seed", "1", "--top-k", "5"])
    assert capsys.readouterr().out == first  # same seed, same text
    assert main(["generate", str(out), "--prompt", "the cat", "--beam", "3", "--max-tokens", "4"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["next-word", str(out), "--prompt", "the big ", "-k", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and all(r["word"] in WORDS for r in rows)
    # one-line errors
    assert main(["generate", str(out), "--prompt", "the", "--temperature", "0"]) == 2
    err = capsys.readouterr().err
    assert "temperature" in err and len(err.strip().splitlines()) == 1
    assert main(["generate", str(out), "--prompt", "zebra quokka"]) == 2
    assert "unknown" in capsys.readouterr().err
    assert main(["generate", str(out), "--prompt", ""]) == 2
    assert main(["generate", str(out), "--prompt", "the", "--top-p", "1.5"]) == 2
    assert "top_p" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["train", "--task", "lm", str(empty), "--out", str(tmp_path / "x")]) == 2
    assert "empty corpus" in capsys.readouterr().err


def test_char_model_reports_bits_per_character():
    text = "\n".join(corpus_lines(120))
    cfg = Config(
        DataConfig(tokenizer="char"),
        ModelConfig(embed_dim=8, hidden_size=16, num_layers=1),
        TrainConfig(epochs=1, batch_size=4, out="unused"),
    )
    res = train_language_model(cfg, lm=LMConfig(bptt=30), train_lines=text.split("\n"), save=False, verbose=False)
    assert "bpc" in res.fit.history[0] and "val_bpc" in res.fit.history[0]
    assert abs(res.valid["bits_per_character"] * 0.693147 - res.valid["nats_per_character"]) < 1e-3


def test_real_ptb_slice_beats_unigram(shared_data):
    from grutext.models.language_model import unigram_perplexity

    train = (shared_data / "ptb" / "ptb.train.txt").read_text().splitlines()[:2500]
    valid = (shared_data / "ptb" / "ptb.valid.txt").read_text().splitlines()[:250]
    cfg = Config(
        DataConfig(tokenizer="word", min_freq=1, max_vocab=2000),
        ModelConfig(embed_dim=64, hidden_size=64, num_layers=1, dropout=0.1, embed_dropout=0.0),
        TrainConfig(epochs=3, batch_size=8, lr=5e-3, warmup=0.0, out="unused", threads=2),
    )
    res = train_language_model(
        cfg,
        lm=LMConfig(bptt=20, word_split="whitespace"),
        train_lines=train,
        valid_lines=valid,
        save=False,
        verbose=False,
    )
    tok = res.tokenizer
    uni = unigram_perplexity(encode_stream(tok, train), encode_stream(tok, valid), tok.vocab_size)
    assert uni == pytest.approx(res.unigram_valid_perplexity)
    assert res.valid["perplexity"] < 0.75 * uni, (res.valid, uni)  # well below the unigram baseline


def test_cli_lm_options_from_flags_and_config_table(tmp_path, capsys):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("\n".join(corpus_lines(300)) + "\n")
    valid.write_text("\n".join(corpus_lines(40, seed=1)) + "\n")
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        "[model]\nembed_dim = 16\nhidden_size = 16\n[train]\nepochs = 1\nbatch_size = 4\nthreads = 1\n"
        "[lm]\nbptt = 12\nweight_drop = 0.2\ntie_weights = false\n"
    )
    out = tmp_path / "lm"
    rc = main(
        [
            "train",
            "--task",
            "lm",
            str(train),
            "--valid",
            str(valid),
            "--config",
            str(cfg),
            "--bptt",
            "9",
            "--input-dropout",
            "0.05",
            "--no-vary-length",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    lm = json.loads((out / "config.json").read_text())["lm"]
    assert lm["bptt"] == 9  # the flag wins over the file
    assert lm["weight_drop"] == 0.2 and lm["tie_weights"] is False and lm["input_dropout"] == 0.05
    assert lm["vary_length"] is False
    capsys.readouterr()
    # an LM option without --task lm, an unknown [lm] key, a bad value: one-line errors
    assert main(["train", str(train), "--bptt", "9", "--out", str(tmp_path / "c")]) == 2
    assert "--bptt" in capsys.readouterr().err
    cfg.write_text("[lm]\nbpt = 12\n")
    assert main(["train", "--task", "lm", str(train), "--config", str(cfg), "--out", str(tmp_path / "d")]) == 2
    assert "bpt" in capsys.readouterr().err
    assert main(["train", "--task", "lm", str(train), "--bptt", "0", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "bptt" in err and len(err.strip().splitlines()) == 1


def test_char_vocabulary_keeps_line_breaks():
    from grutext.lm import build_lm_tokenizer

    lines = ["First Citizen:", "Before we proceed any further, hear me speak."]
    tok = build_lm_tokenizer(lines, "char")
    ids = encode_stream(tok, lines)
    assert tok.unk_id not in ids.tolist()  # "\n" is a character of the vocabulary, not <unk>
    assert tok.decode(ids.tolist()) == "\n".join(lines) + "\n"
