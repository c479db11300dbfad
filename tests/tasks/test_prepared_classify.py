"""Classification corpora larger than memory: the streamed table reader gives the rows of the whole-file
reader (csv, tsv, jsonl, gz) with the same one-line errors; `grutext prepare` of a labelled table writes
one row of ids and a class index per example, never a half-written folder; training on the prepared
folder equals training on the file (blend and baseline off there)."""

from __future__ import annotations

import csv
import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tests.conftest import synthetic, write_csv

import grutext.data.prepared as prepared_format
from grutext.cli.main import main
from grutext.config import DataConfig
from grutext.data.readers import read_dataset, train_test_split
from grutext.data.stream import stream_table, streams
from grutext.errors import ConfigError, DataError
from grutext.tasks.classification.data import build_tokenizer, encode_texts
from grutext.tasks.classification.prepared import load_prepared_splits, prepare_table


def _rows(n: int = 300, seed: int = 0) -> tuple[list[str], list[str]]:
    """Texts with commas, quotes, embedded newlines, <br /> tags and one empty after tokenizing ('!!' is kept)."""
    texts, labels = synthetic(n, classes=("pos", "neg", "mid"), seed=seed)
    rng = random.Random(seed)
    for i in range(0, n, 17):
        texts[i] = f'{texts[i]}, "quoted"<br />second\nline {rng.randint(0, 9)}'
    return texts, labels


def _write(path: Path, texts: list[str], labels: list[str]) -> Path:
    name = path.name.removesuffix(".gz")
    if name.endswith(".jsonl"):
        body = "".join(json.dumps({"id": i, "text": t, "label": lab}) + ("\n\n" if i % 50 == 0 else "\n")
                       for i, (t, lab) in enumerate(zip(texts, labels, strict=True)))  # fmt: skip
        data = body.encode("utf-8")
    else:
        tmp = path.with_name(name + ".plain")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            ending = "\r" if ".cr." in name else "\r\n"  # a lone carriage return: old Mac line ends
            w = csv.writer(fh, delimiter="\t" if name.endswith(".tsv") else ",", lineterminator=ending)
            w.writerow(["review", "sentiment"])
            w.writerows(zip(texts, labels, strict=True))
        data = tmp.read_bytes()
        tmp.unlink()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.jsonl", "t.csv.gz", "t.jsonl.gz", "t.cr.csv"])
def test_streamed_rows_equal_the_whole_file_reader(tmp_path, name):
    path = _write(tmp_path / name, *_rows())
    whole = read_dataset(path)
    assert streams(path)
    chunks = list(stream_table(path, chunk_rows=7))
    assert max(len(c) for c in chunks) == 7 and min(len(c) for c in chunks) >= 1
    assert [t for c in chunks for t in c.texts] == whole.texts
    assert [lab for c in chunks for lab in c.labels] == whole.labels
    assert {c.columns for c in chunks} == {whole.columns}
    named = list(stream_table(path, text_col=whole.columns[0], label_col=whole.columns[1], chunk_rows=1000))
    assert named[0].texts == whole.texts


@pytest.mark.parametrize(
    ("name", "body", "needle"),
    [
        ("bad.csv", 'text,label\n"good film",pos\n"bad film",neg,extra\n', "bad.csv line 3: expected 2 fields"),
        ("bad.jsonl", '{"text": "a", "label": "x"}\n\n{"text": "b", "label"\n', "bad.jsonl line 3: invalid JSON"),
        ("bad.tsv", "text\tlabel\nfine\tpos\n \tneg\n", "bad.tsv line 3: empty text in column 'text'"),
        ("bad2.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', "bad2.jsonl line 2: missing field 'label'"),
        ("empty.csv", "\n  \n", "empty.csv: empty file, expected csv data"),
        ("head.csv", "text,label\n", "head.csv: no data rows after the header"),
    ],
)
def test_streamed_errors_are_the_whole_file_readers(tmp_path, name, body, needle):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    with pytest.raises(DataError) as whole:
        read_dataset(path)
    with pytest.raises(DataError) as streamed:
        list(stream_table(path, chunk_rows=1))
    assert needle in str(whole.value) and str(streamed.value) == str(whole.value)


def test_streamed_reader_names_the_file_of_a_corrupt_gzip(tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(("text,label\n" + "a fine film,pos\n" * 500).encode())[:60])
    with pytest.raises(DataError, match=r"cut\.csv\.gz line \d+: corrupt gzip data"):
        list(stream_table(path, chunk_rows=10))


def test_prepare_makes_the_missing_parent_folders(tmp_path):
    src = write_csv(tmp_path / "t.csv", *synthetic(40, seed=3))
    prepare_table(src, tmp_path / "a" / "b" / "p")
    assert prepared_format.open_prepared(tmp_path / "a" / "b" / "p").header["num_lines"] == 40


def test_streamed_reader_names_the_line_of_a_byte_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\ngood,pos\ncaf\xe9 noir,neg\n")
    with pytest.raises(DataError, match=r"latin.csv line 3: byte 0xe9 .* not valid UTF-8"):
        list(stream_table(path))


FAST = ["--embed-dim", "8", "--hidden-size", "8", "--min-freq", "1", "--batch-size", "16", "--seed", "3"]
FAST += ["--epochs", "2", "--threads", "1", "--max-len", "12", "--keep-checkpoint"]


def _quiet(*_args: object) -> None:
    pass


def test_prepared_rows_are_the_training_encoding(tmp_path):
    texts, labels = _rows()
    texts[3] = "<br />"  # tokenizes to nothing: stored as one <unk>, as training encodes it
    src = _write(tmp_path / "t.jsonl.gz", texts, labels)
    header = prepare_table(src, tmp_path / "p", data=DataConfig(min_freq=1), batch_rows=13, progress=False, log=_quiet)
    corpus = prepared_format.open_prepared(tmp_path / "p")
    assert isinstance(corpus.tokens, np.memmap) and isinstance(corpus.labels, np.memmap)
    tok = build_tokenizer(read_dataset(src).texts, DataConfig(min_freq=1))
    assert corpus.tokenizer().get_vocab() == tok.get_vocab()
    rows = encode_texts(tok, texts)
    assert header["num_lines"] == len(texts) and header["labels"] == ["mid", "neg", "pos"]
    assert [corpus.line(k).tolist() for k in range(len(texts))] == rows
    assert [header["labels"][k] for k in corpus.labels] == labels
    assert corpus.unigram_counts().sum() == sum(len(r) for r in rows) == header["num_tokens"]


def test_prepared_validation_split_is_train_test_split_by_index(tmp_path):
    texts, labels = _rows(200)
    src = write_csv(tmp_path / "t.csv", texts, labels)
    prepare_table(src, tmp_path / "p", progress=False, log=_quiet)
    splits = load_prepared_splits(DataConfig(train=str(tmp_path / "p")), seed=4)
    train, valid = train_test_split(read_dataset(src), 0.1, seed=5)
    names = splits.train.names  # type: ignore[attr-defined]
    assert [names[k] for k in splits.valid.corpus.labels[splits.valid.rows]] == valid.labels  # type: ignore[attr-defined]
    assert len(splits.train) == len(train) and len(splits.valid) == len(valid)


def test_training_on_prepared_equals_training_on_the_file(tmp_path, capsys):
    texts, labels = _rows(240)
    src = write_csv(tmp_path / "t.csv", texts, labels)
    test = write_csv(tmp_path / "test.csv", *_rows(60, seed=1))
    # --valid FILE: both count the vocabulary on every training row (a carved split is counted in a prepared
    # corpus's vocabulary, not in the file's: the README says so)
    files = ["--valid", str(write_csv(tmp_path / "valid.csv", *_rows(50, seed=2))), "--test", str(test)]
    assert main(["prepare", str(src), str(tmp_path / "p"), "--min-freq", "1", "--no-progress"]) == 0
    assert "classes" in capsys.readouterr().out
    assert (
        main(["train", str(src), *FAST, *files, "--blend", "off", "--no-baseline", "--out", str(tmp_path / "raw")]) == 0
    )
    raw_log = capsys.readouterr().out
    assert main(["train", str(tmp_path / "p"), *FAST, *files, "--out", str(tmp_path / "mm")]) == 0
    out = capsys.readouterr().out
    assert "prepared, memory-mapped" in out and "blend and baseline: off" in out
    a = load_file(str(tmp_path / "raw.ckpt" / "model.safetensors"))
    b = load_file(str(tmp_path / "mm.ckpt" / "model.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)  # same ids, same batches, same draws
    ma = json.loads((tmp_path / "raw" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "mm" / "metrics.json").read_text())
    assert ma["test"]["accuracy"] == mb["test"]["accuracy"] and ma["valid"]["loss"] == mb["valid"]["loss"]
    assert (tmp_path / "raw" / "tokenizer.json").read_text() == (tmp_path / "mm" / "tokenizer.json").read_text()
    assert "valid 50  test 60" in raw_log and "valid 50  test 60" in out
    assert main(["predict", str(tmp_path / "mm"), "a great film"]) == 0


def test_blend_or_baseline_asked_for_on_a_prepared_corpus_is_an_error(tmp_path, capsys):
    src = write_csv(tmp_path / "t.csv", *_rows(90))
    prepare_table(src, tmp_path / "p", progress=False, log=_quiet)
    for flag in (["--blend", "0.5"], ["--baseline"]):
        assert main(["train", str(tmp_path / "p"), *FAST, *flag, "--out", str(tmp_path / "m")]) == 2
        err = capsys.readouterr().err
        assert f"{flag[0]}: " in err and "prepared corpus" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()
    assert main(["train", str(tmp_path / "p"), *FAST, "--min-freq", "3", "--out", str(tmp_path / "m")]) == 2
    assert "min_freq=3" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "p"), "--task", "lm", "--out", str(tmp_path / "m")]) == 2
    assert "prepared for a classifier" in capsys.readouterr().err


def test_a_failed_prepare_leaves_no_folder(tmp_path, monkeypatch):
    src = write_csv(tmp_path / "t.csv", *_rows(90))
    calls = {"n": 0}
    real = prepared_format.RowWriter.add

    def failing(self, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(self, rows)

    monkeypatch.setattr(prepared_format.RowWriter, "add", failing)
    with pytest.raises(OSError, match="disk full"):
        prepare_table(src, tmp_path / "p", batch_rows=10, progress=False, log=_quiet)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]  # no OUT, no temporary sibling
    # a bad last row (found by the first pass, after chunks were read): also nothing left
    bad = tmp_path / "bad.csv"
    bad.write_text(src.read_text(encoding="utf-8") + "only one field\n", encoding="utf-8")
    monkeypatch.undo()
    with pytest.raises(DataError, match=r"bad.csv line 98: expected 2 fields"):  # texts hold newlines
        prepare_table(bad, tmp_path / "q", batch_rows=10, progress=False, log=_quiet)
    assert not (tmp_path / "q").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_prepare_guesses_the_task_and_refuses_what_it_cannot_hold(tmp_path, capsys):
    src = write_csv(tmp_path / "t.csv", *_rows(60))
    assert main(["prepare", str(src), str(tmp_path / "p"), "--no-progress"]) == 0
    assert prepared_format.prepared_task(tmp_path / "p") == "classify"
    assert main(["prepare", str(src), str(tmp_path / "q"), "--task", "lm", "--no-progress"]) == 0
    assert prepared_format.prepared_task(tmp_path / "q") == "lm"
    assert main(["train", str(tmp_path / "q"), *FAST, "--out", str(tmp_path / "m")]) == 2
    assert "prepared for a language model" in capsys.readouterr().err
    one = write_csv(tmp_path / "one.csv", ["a b", "c d"], ["x", "x"])
    with pytest.raises(DataError, match="one class only"):
        prepare_table(one, tmp_path / "r", progress=False, log=_quiet)
    assert not (tmp_path / "r").exists()
    assert main(["prepare", str(src), str(tmp_path / "s"), "--word-split", "whitespace", "--no-progress"]) == 2
    assert "--word-split: applies to --task lm" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--batch-lines"):
        prepare_table(src, tmp_path / "s", batch_rows=0, progress=False)


def test_a_language_model_prepares_a_table_streamed(tmp_path):
    from grutext.tasks.language_model.prepared import stream_lines

    path = _write(tmp_path / "t.csv.gz", *_rows(120))
    assert list(stream_lines([path])) == read_dataset(path, label_col=False).texts
