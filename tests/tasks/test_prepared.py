"""Prepared corpora (`grutext prepare`): the memory-mapped ids equal the in-memory stream, the line
index and counts are right, training on a prepared folder equals training on the raw text, and bad
folders or conflicting flags are one-line errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from grutext.cli.main import main
from grutext.data.batching import StreamBatches
from grutext.data.tokenizers import Tokenizer
from grutext.errors import ArtifactError, ConfigError
from grutext.tasks.language_model.data import build_lm_tokenizer, encode_stream
from grutext.tasks.language_model.prepared import open_prepared, prepare_corpus

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log", "and", "then", "It", "was", "here", "rare1"]


def _corpus(path: Path, n: int = 150, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 11))) for _ in range(n)]
    lines[5] = "   "  # a blank line: no tokens, no <eos>, no index entry (as encode_stream)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["word", "char", "bpe"])
def test_prepared_ids_equal_the_in_memory_stream(tmp_path, kind):
    src = _corpus(tmp_path / "c.txt")
    lines = src.read_text(encoding="utf-8").splitlines()
    header = prepare_corpus(src, tmp_path / "p", tokenizer=kind, batch_lines=7, progress=False, log=lambda *a: None)
    prep = open_prepared(tmp_path / "p")
    assert isinstance(prep.tokens, np.memmap)
    tok = build_lm_tokenizer(lines, kind, min_freq=2, max_size=30000, bpe_vocab_size=8000)
    assert prep.tokenizer().vocab_size == tok.vocab_size == header["vocab_size"]
    stream = encode_stream(tok, lines)
    assert torch.equal(torch.from_numpy(np.asarray(prep.tokens, dtype=np.int64)), stream)
    # the line index: line k's ids are that line's encoding
    encoded = [ln + "\n" for ln in lines] if kind == "char" else [ln for ln in lines if ln.strip()]
    assert header["num_lines"] == len(encoded)
    k = 9
    eos = kind != "char"
    assert prep.line(k).tolist() == tok.encode_batch([encoded[k]], add_eos=eos)[0]
    assert prep.unigram_counts().tolist() == np.bincount(stream.numpy(), minlength=tok.vocab_size).tolist()


def test_streamed_tokenizer_training_equals_the_list():
    lines = [" ".join(random.Random(i).choice(WORDS) for _ in range(6)) for i in range(80)]
    for kind in ("word", "bpe"):
        a = Tokenizer.train(lines, kind=kind, min_freq=2)
        b = Tokenizer.train(iter(lines), kind=kind, min_freq=2)
        assert a.vocab_size == b.vocab_size and a.encode_batch(lines) == b.encode_batch(lines)


def test_stream_batches_over_a_memmap_equal_over_a_tensor(tmp_path):
    ids = np.arange(1000, dtype="<u4")
    ids.tofile(tmp_path / "t.u32")
    mm = np.memmap(tmp_path / "t.u32", dtype="<u4", mode="r", shape=(1000,))
    a = StreamBatches(mm, 4, 13, vary_length=True, seed=3)
    b = StreamBatches(torch.arange(1000), 4, 13, vary_length=True, seed=3)
    pairs = list(zip(a, b, strict=True))
    assert len(pairs) > 10
    for (xa, ya), (xb, yb) in pairs:
        assert xa.dtype == torch.long and torch.equal(xa, xb) and torch.equal(ya, yb)


LM = [
    "--task", "lm", "--embed-dim", "8", "--hidden-size", "8", "--threads", "1", "--batch-size", "4",
    "--bptt", "8", "--epochs", "1", "--keep-checkpoint", "--seed", "3",
]  # fmt: skip


def test_training_on_prepared_equals_training_on_raw(tmp_path, capsys):
    src = _corpus(tmp_path / "c.txt", n=200)
    valid = _corpus(tmp_path / "v.txt", n=30, seed=1)
    assert main(["prepare", str(src), str(tmp_path / "p"), "--no-progress"]) == 0
    assert main(["train", str(src), "--valid", str(valid), *LM, "--out", str(tmp_path / "raw")]) == 0
    assert main(["train", str(tmp_path / "p"), "--valid", str(valid), *LM, "--out", str(tmp_path / "mm")]) == 0
    out = capsys.readouterr().out
    assert "prepared, memory-mapped" in out
    a = load_file(str(tmp_path / "raw.ckpt" / "model.safetensors"))
    b = load_file(str(tmp_path / "mm.ckpt" / "model.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)  # dropout on: same ids, same draws


def test_prepare_refuses_folders_it_must_not_write(tmp_path, capsys):
    src = _corpus(tmp_path / "c.txt")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["prepare", str(src), str(other), "--no-progress"]) == 2
    assert "not a prepared corpus" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"
    assert main(["prepare", str(src), str(tmp_path / "p"), "--no-progress"]) == 0
    assert main(["prepare", str(src), str(tmp_path / "p"), "--no-progress"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["prepare", str(src), str(tmp_path / "p"), "--no-progress", "--overwrite", "--min-freq", "1"]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".p.")] == []  # no temporary left


def test_training_flags_that_contradict_the_prepared_tokenizer_are_errors(tmp_path, capsys):
    src = _corpus(tmp_path / "c.txt")
    prepare_corpus(src, tmp_path / "p", progress=False, log=lambda *a: None)
    assert main(["train", str(tmp_path / "p"), *LM, "--min-freq", "5", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "min_freq=5" in err and "prepared with min_freq=2" in err
    assert not (tmp_path / "m").exists()


def test_a_damaged_prepared_folder_is_refused(tmp_path):
    src = _corpus(tmp_path / "c.txt")
    prepare_corpus(src, tmp_path / "p", progress=False, log=lambda *a: None)
    tokens = tmp_path / "p" / "tokens.u32"
    tokens.write_bytes(tokens.read_bytes()[:-4])
    with pytest.raises(ArtifactError, match="tokens.u32: expected .* bytes"):
        open_prepared(tmp_path / "p")
    with pytest.raises(ConfigError, match="batch-lines"):
        prepare_corpus(src, tmp_path / "q", batch_lines=0, progress=False)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("[1, 2]", "expected a JSON object, got a JSON list"),
        ('{"format": "something-else"}', "expected format .*, got 'something-else'"),
        ("{}", "expected format .*, got None"),
    ],
)
def test_a_header_of_another_kind_is_refused(tmp_path, header, message):
    src = _corpus(tmp_path / "c.txt")
    prepare_corpus(src, tmp_path / "p", progress=False, log=lambda *a: None)
    (tmp_path / "p" / "header.json").write_text(header)
    with pytest.raises(ArtifactError, match=message):
        open_prepared(tmp_path / "p")
