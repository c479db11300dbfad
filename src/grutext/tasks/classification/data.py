"""Classification data: read the train / valid / test splits (files or a named dataset, carving what
is missing), train the tokenizer, and turn texts and labels into padded batches."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch

import grutext.data.named as named
from grutext.config import DataConfig
from grutext.data.batching import TextBatches
from grutext.data.prepared import is_prepared
from grutext.data.readers import TextDataset, check_labels, load_named, read_dataset, split_sentences, train_test_split
from grutext.data.tokenizers import Tokenizer
from grutext.errors import ConfigError, DataError

NAMED = named.names("classification")


@dataclass
class Splits:
    """train / valid / test datasets (test may be None) and where each came from."""

    train: TextDataset
    valid: TextDataset
    test: TextDataset | None
    notes: list[str] = field(default_factory=list)


def _is_named(name: str) -> bool:
    return named.is_named(name, kind="classification")


def _read(source: str, d: DataConfig) -> dict[str, TextDataset]:
    if is_prepared(source):
        raise DataError(
            f"{source}: a prepared corpus (token ids, no texts); `grutext train` reads it, this needs the raw file"
        )
    if _is_named(source) and not Path(source).exists():
        return load_named(source, data_root=d.data_root, text_col=d.text_col, label_col=d.label_col)
    return {"train": read_dataset(source, fmt=d.format, text_col=d.text_col, label_col=d.label_col)}


def load_splits(d: DataConfig, seed: int = 0) -> Splits:
    """Read train/valid/test from the data config, carving what is missing from train.

    A named dataset's own dev/test splits are used when it has them; otherwise the validation
    set is `valid_fraction` of train (stratified, seeded), and a named dataset with no test
    split (BBC News) gets `test_fraction` carved too.
    """
    if not d.train:
        raise ConfigError("data.train: expected a file, folder or dataset name; got nothing")
    parts = _read(d.train, d)
    train = parts["train"]
    notes: list[str] = []
    test = (
        read_dataset(d.test, fmt=d.format, text_col=d.text_col, label_col=d.label_col) if d.test else parts.get("test")
    )
    if test is None and _is_named(d.train):
        train, test = train_test_split(train, d.test_fraction, seed=seed)
        notes.append(f"test: {len(test):,} examples carved from {d.train} ({d.test_fraction:.0%}, seed {seed})")
    if d.valid:
        valid = read_dataset(d.valid, fmt=d.format, text_col=d.text_col, label_col=d.label_col)
    elif "dev" in parts:
        valid = parts["dev"]
    else:
        train, valid = train_test_split(train, d.valid_fraction, seed=seed + 1)
        notes.append(f"valid: {len(valid):,} examples carved from train ({d.valid_fraction:.0%}, seed {seed + 1})")
    if d.sentences:  # after carving: a document's sentences all stay in its split
        n_docs = len(train)
        train, valid = split_sentences(train, d.sentence_min_words), split_sentences(valid, d.sentence_min_words)
        test = split_sentences(test, d.sentence_min_words) if test is not None else None
        notes.append(
            f"sentences: {len(train):,} training sentences of at least {d.sentence_min_words} words "
            f"from {n_docs:,} texts, each labelled as its text"
        )
    check_labels(train, valid, "validation set")
    if test is not None and test.labels is not None:
        check_labels(train, test, "test set")
    return Splits(train, valid, test, notes)


def label_tensor(ds: TextDataset, labels: list[str], task: str) -> torch.Tensor:
    """Labels as class indices `(N,)` or multi-hot `(N, C)` for multilabel."""
    index = {name: i for i, name in enumerate(labels)}
    assert ds.labels is not None
    if task == "multilabel":
        y = torch.zeros(len(ds), len(labels))
        for row, labs in enumerate(ds.labels):
            for lab in labs if isinstance(labs, list) else [labs]:
                y[row, index[cast(str, lab)]] = 1.0
        return y
    return torch.tensor([index[cast(str, lab)] for lab in ds.labels], dtype=torch.long)


def build_tokenizer(texts: Iterable[str], d: DataConfig) -> Tokenizer:
    """The tokenizer `grutext train` fits on the training texts (any iterable: the prepared reader streams them)."""
    return Tokenizer.train(
        texts,
        kind=d.tokenizer,
        lowercase=d.lowercase,
        strip_html=d.strip_html,
        min_freq=d.min_freq,
        max_size=d.max_vocab,
        bpe_vocab_size=d.bpe_vocab_size,
        split_contractions=d.split_contractions,
    )


def encode_texts(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids per text; a text that tokenizes to nothing becomes one `<unk>`."""
    return [ids if ids else [tokenizer.unk_id] for ids in tokenizer.encode_batch(texts)]


def make_batches(
    tokenizer: Tokenizer,
    ds: TextDataset,
    labels: list[str] | None,
    task: str,
    d: DataConfig,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
) -> TextBatches:
    y = label_tensor(ds, labels, task) if (labels is not None and ds.labels is not None) else None
    return TextBatches(
        encode_texts(tokenizer, ds.texts),
        y,
        batch_size=batch_size,
        max_len=d.max_len,
        policy=d.truncation,
        shuffle=shuffle,
        seed=seed,
    )


__all__ = ["NAMED", "Splits", "build_tokenizer", "encode_texts", "label_tensor", "load_splits", "make_batches"]
