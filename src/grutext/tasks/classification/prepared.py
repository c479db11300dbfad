"""The classifier's prepared corpus: a labelled table (csv, tsv, jsonl, gz too) tokenized once into
memory-mapped files (`grutext prepare`, the format in `grutext.data.prepared`), one row of ids per
example and its class index in ``labels.u32``.

`prepare_table` streams the table twice through `grutext.data.stream.stream_table`, a chunk at a
time: the first pass learns the vocabulary (`Tokenizer.train` with the settings `grutext train` uses)
and collects the label set, the second encodes the chunks with `tokenizers` batch encoding. Training
on the folder (`load_prepared_splits`) carves the validation split by index, seeded and stratified as
`train_test_split` does, and `PreparedBatches` reads only each batch's rows from the memory maps: the
batches equal `TextBatches` over the same texts, so the trained network is the same.

What needs the raw texts cannot run on ids: the n-gram blend (``model.blend``) and the TF-IDF
baseline (``train.baseline``) are switched off with a note (asked for explicitly, an error), and
``model.init_from`` and ``data.sentences`` are errors.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grutext.config import Config, DataConfig
from grutext.data.batching import BucketSampler, pad_batch, truncate
from grutext.data.dataset import TextDataset
from grutext.data.prepared import (
    LABELS,
    TOKEN_DTYPE,
    ByteProgress,
    PreparedCorpus,
    RowWriter,
    build_folder,
    check_out,
    check_settings,
    open_prepared,
    prepared_task,
)
from grutext.data.readers import check_unseen_labels, read_dataset, split_indices
from grutext.data.stream import stream_table, streams
from grutext.data.tokenizers import Tokenizer
from grutext.errors import ConfigError, DataError
from grutext.tasks.classification.data import Splits, build_tokenizer, encode_texts

BATCH_ROWS = 2_000  # examples encoded per batch (reviews run to thousands of characters)


@dataclass
class _Table:
    """What `prepare_table` reads: the files, how to read them, how to report progress."""

    source: str | os.PathLike[str]
    paths: list[Path]
    fmt: str | None
    text_col: str | None
    label_col: str | None
    chunk_rows: int
    progress: bool | None

    def chunks(self, desc: str) -> Iterator[TextDataset]:
        """Every file's examples a chunk at a time, the progress line advanced by the bytes read."""
        bar = ByteProgress(sum(p.stat().st_size for p in self.paths), desc, self.progress)
        for path in self.paths:
            size, done = path.stat().st_size, 0
            for chunk in stream_table(
                path, fmt=self.fmt, text_col=self.text_col, label_col=self.label_col, chunk_rows=self.chunk_rows
            ):
                if chunk.multilabel or (chunk.labels is not None and isinstance(chunk.labels[0], list)):
                    raise DataError(f"{path}: several labels per example; a prepared corpus holds one label a row")
                if chunk.labels is None:
                    raise DataError(f"{path}: no label column; a prepared classification corpus needs labels")
                step = min(size - done, max(1, sum(len(t) for t in chunk.texts)))
                done += step
                bar.add(step)
                yield chunk
            bar.add(size - done)
        bar.close()


def prepare_table(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    data: DataConfig | None = None,
    batch_rows: int = BATCH_ROWS,
    overwrite: bool = False,
    progress: bool | None = None,
    log: Callable[..., None] = print,
) -> dict[str, Any]:
    """Tokenize a labelled table into a prepared folder (see the module); returns its header.

    `data` gives the format, the columns and the tokenizer settings (`grutext train`'s: kind,
    lowercase, strip_html, min_freq, max_vocab, bpe_vocab_size, split_contractions), so a classifier
    trained on the folder sees the ids training on the file would give.

    Raises:
        DataError: missing or malformed files (file and line named), fewer than two classes,
            several labels per example.
        ConfigError: an output folder that must not be written, bad sizes.
    """
    from grutext.tasks.language_model.data import expand_paths

    d = data or DataConfig()
    if batch_rows < 1:
        raise ConfigError(f"--batch-lines: expected an integer >= 1, got {batch_rows}")
    paths = expand_paths(source)
    out = Path(out)
    check_out(out, overwrite)
    for path in paths:
        if not streams(path, d.format):
            log(f"note: {path} is read whole (csv, tsv and jsonl files are streamed a chunk at a time)")
    table = _Table(source, paths, d.format, d.text_col, d.label_col, batch_rows, progress)
    t0 = time.perf_counter()
    tok, counts, columns = _learn(table, d)
    names = sorted(counts)
    if len(names) < 2:
        raise DataError(f"{source}: one class only ({names}), expected at least 2 classes to train a classifier")
    settings = {
        "lowercase": d.lowercase,
        "strip_html": d.strip_html,
        "min_freq": d.min_freq,
        "max_vocab": d.max_vocab,
        "bpe_vocab_size": d.bpe_vocab_size,
        "split_contractions": d.split_contractions,
    }
    extra = {"labels": names, "label_counts": [counts[n] for n in names], "columns": list(columns)}
    header = build_folder(out, lambda tmp: _encode(tmp, table, tok, settings, extra, t0))
    log(
        f"prepared: {out}/ ({header['num_lines']:,} examples, {len(names)} classes, {header['num_tokens']:,} tokens, "
        f"vocabulary {tok.vocab_size:,}, {tok.kind} tokenizer; columns text {columns[0]!r}, label {columns[1]!r}; "
        f"{header['seconds']:.1f}s)"
    )
    return header


def _learn(table: _Table, d: DataConfig) -> tuple[Tokenizer, Counter[str], tuple[str, str | None]]:
    """The first pass: the tokenizer (as `build_tokenizer` trains it), the label counts, the columns."""
    counts: Counter[str] = Counter()
    columns: list[tuple[str, str | None]] = []

    def texts() -> Iterator[str]:
        for chunk in table.chunks("vocabulary"):
            counts.update(chunk.labels or [])  # type: ignore[arg-type]  # single labels: checked by chunks()
            if not columns and chunk.columns is not None:
                columns.append(chunk.columns)
            yield from chunk.texts

    tok = build_tokenizer(texts(), d)
    return tok, counts, (columns[0] if columns else ("text", "label"))


def _encode(
    tmp: Path, table: _Table, tok: Tokenizer, settings: dict[str, Any], extra: dict[str, Any], t0: float
) -> dict[str, Any]:
    """The second pass: each chunk's rows (`encode_texts`: an empty text is one ``<unk>``) and class indices."""
    index = {name: i for i, name in enumerate(extra["labels"])}
    with RowWriter(tmp, tok.vocab_size) as rows, (tmp / LABELS).open("wb") as flab:
        for chunk in table.chunks("tokenizing"):
            try:
                ids = [index[str(lab)] for lab in chunk.labels or []]
            except KeyError as exc:
                raise DataError(
                    f"{table.source}: label {exc} appeared between the two passes (file changed?)"
                ) from None
            rows.add(encode_texts(tok, chunk.texts))
            flab.write(np.asarray(ids, dtype=TOKEN_DTYPE).tobytes())
        flab.flush()
        os.fsync(flab.fileno())
    rows.finish(tmp, tok, table.source)
    return {**rows.header("classify", tok, settings, table.paths, t0), **extra}


@dataclass
class PreparedSplit:
    """Some rows of a prepared classification corpus (`rows`: increasing row numbers) standing where a
    `TextDataset` stands in training: its length, classes and columns; no texts."""

    corpus: PreparedCorpus
    rows: np.ndarray  # (N,) int64
    source: str
    multilabel: bool = False

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def names(self) -> list[str]:
        """Every class of the corpus, sorted (class index k is ``names[k]``)."""
        return list(self.corpus.header["labels"])

    @property
    def classes(self) -> list[str]:
        """The classes these rows hold, sorted."""
        assert self.corpus.labels is not None  # a classification corpus
        present = np.unique(np.asarray(self.corpus.labels[self.rows]))
        return [self.names[int(k)] for k in present]

    @property
    def label_order(self) -> None:
        return None

    @property
    def columns(self) -> tuple[str, str | None] | None:
        cols = self.corpus.header.get("columns")
        return (cols[0], cols[1]) if cols else None

    @property
    def texts(self) -> list[str]:
        raise DataError(f"{self.source}: a prepared corpus keeps token ids, not texts; this needs the texts")

    def oov_rate(self, limit: int = 2000) -> float:
        """Fraction of ``<unk>`` among the ids of the first `limit` rows."""
        off = self.corpus.offsets
        ids = [np.asarray(self.corpus.tokens[int(off[r]) : int(off[r + 1])]) for r in self.rows[:limit]]
        flat = np.concatenate(ids) if ids else np.zeros(0, dtype=TOKEN_DTYPE)
        return float((flat == 1).mean()) if flat.size else 0.0

    def batches(self, labels: list[str], task: str, d: DataConfig, batch_size: int, shuffle: bool, seed: int) -> Any:
        if labels != self.names:
            raise DataError(f"{self.source}: classes {labels[:6]} differ from the prepared corpus's {self.names[:6]}")
        return PreparedBatches(self, task, batch_size, d.max_len, d.truncation, shuffle, seed)


class PreparedBatches:
    """`TextBatches` over a `PreparedSplit`: the same length-bucketed order (`BucketSampler` on the
    truncated lengths) and the same padded batch dicts, each batch's rows read from the memory maps
    when it is yielded (``index``: positions within the split)."""

    def __init__(
        self,
        split: PreparedSplit,
        task: str,
        batch_size: int,
        max_len: int | None,
        policy: str,
        shuffle: bool,
        seed: int,
    ) -> None:
        truncate([], 1, policy)  # validates the policy name
        corpus = split.corpus
        assert corpus.labels is not None  # a classification corpus
        self.split, self.task, self.max_len, self.policy = split, task, max_len, policy
        offsets = np.asarray(corpus.offsets)  # (N+1,) read once: 8 bytes a row
        lengths = (offsets[split.rows + 1] - offsets[split.rows]).astype(np.int64)  # (n,)
        if max_len is not None:
            lengths = np.minimum(lengths, max_len)
        self.num_tokens = int(lengths.sum())
        self.sampler = BucketSampler(lengths.tolist(), batch_size, shuffle=shuffle, seed=seed)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def _row(self, r: int) -> list[int]:
        off = self.split.corpus.offsets
        ids = self.split.corpus.tokens[int(off[r]) : int(off[r + 1])].tolist()
        return truncate(ids, self.max_len, self.policy) if self.max_len is not None else ids

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        labels = self.split.corpus.labels
        assert labels is not None
        for batch in self.sampler:
            rows = self.split.rows[batch]  # (B,) row numbers in the corpus
            ids, lengths = pad_batch([self._row(int(r)) for r in rows])  # (B, T), (B,)
            y = torch.from_numpy(np.asarray(labels[rows], dtype=np.int64))  # (B,)
            if self.task == "multilabel":  # single labels trained as multi-label: one positive a row
                y = torch.nn.functional.one_hot(y, len(self.split.names)).float()  # (B, C)
            yield {"ids": ids, "lengths": lengths, "index": torch.tensor(batch, dtype=torch.long), "labels": y}


def prepared_config(cfg: Config, given: set[str] | None = None) -> tuple[Config, list[str]]:
    """`cfg` for training on a prepared corpus, and the notes to log: the blend and the baseline, which fit
    on the raw texts, off (an error when `given` names them: asked for on the command line); settings
    that need the texts, or contradict the prepared tokenizer, are errors."""
    given = given or set()
    if cfg.model.init_from:
        raise ConfigError(
            f"--init-from: {cfg.data.train} is a prepared corpus whose ids are fixed by its own tokenizer; "
            "start from another model with the raw file instead"
        )
    if cfg.data.sentences:
        raise ConfigError(f"--sentences: {cfg.data.train} is a prepared corpus (token ids, no texts to split)")
    wants_blend = str(cfg.model.blend) != "off" and cfg.model.blend != 0
    for key, on, flag in (
        ("model.blend", wants_blend, "--blend"),
        ("train.baseline", cfg.train.baseline, "--baseline"),
    ):
        if on and key in given:
            raise ConfigError(
                f"{flag}: {cfg.data.train} is a prepared corpus (token ids, no texts) and the "
                f"{'n-gram blend' if key == 'model.blend' else 'TF-IDF baseline'} fits on the texts; train from "
                "the file for it, or drop the flag"
            )
    notes = []
    if wants_blend or cfg.train.baseline:
        notes.append(
            "blend and baseline: off (they fit TF-IDF n-grams on the raw texts, which a prepared corpus does "
            "not keep; train from the file to have them)"
        )
    cfg = replace(cfg, model=replace(cfg.model, blend="off"), train=replace(cfg.train, baseline=False))
    return cfg, notes


def load_prepared_splits(d: DataConfig, seed: int = 0) -> Splits:
    """A prepared corpus as train / valid / test: valid is `d.valid` read as a file, else `valid_fraction`
    of the rows carved by index (seed ``seed + 1``, stratified: `train_test_split`'s split); test is
    `d.test` read as a file (or none)."""
    assert d.train is not None
    if prepared_task(d.train) != "classify":
        raise ConfigError(
            f"{d.train}: prepared for a language model (a token stream, no labels); train it with --task lm, "
            "or prepare a labelled table with `grutext prepare --task classify`"
        )
    corpus = open_prepared(d.train)
    _check_tokenizer_flags(d, corpus)
    assert corpus.labels is not None
    everything = PreparedSplit(corpus, np.arange(int(corpus.header["num_lines"]), dtype=np.int64), str(d.train))
    notes = [f"train: {d.train}/ prepared, memory-mapped ({corpus.num_tokens:,} tokens), rows read per batch"]
    classes = set(everything.names)
    read = {"fmt": d.format, "text_col": d.text_col, "label_col": d.label_col}
    valid: PreparedSplit | TextDataset
    if d.valid:
        train, valid = everything, read_dataset(d.valid, **read)
        check_unseen_labels(classes, valid, "validation set")
    else:
        labels = np.asarray(corpus.labels)  # (N,) 4 bytes a row
        groups = [np.flatnonzero(labels == k).tolist() for k in range(len(classes))]
        train_rows, valid_rows = split_indices(len(labels), groups, d.valid_fraction, seed + 1, str(d.train))
        train = PreparedSplit(corpus, train_rows, f"{d.train}[train]")
        valid = PreparedSplit(corpus, valid_rows, f"{d.train}[valid]")
        notes.append(f"valid: {len(valid):,} examples carved from train ({d.valid_fraction:.0%}, seed {seed + 1})")
    test = read_dataset(d.test, **read) if d.test else None
    if test is not None:
        check_unseen_labels(classes, test, "test set")
    return Splits(train, valid, test, notes)  # type: ignore[arg-type]  # prepared splits stand for datasets


_SETTINGS = ("lowercase", "strip_html", "min_freq", "max_vocab", "bpe_vocab_size", "split_contractions")


def _check_tokenizer_flags(d: DataConfig, corpus: PreparedCorpus) -> None:
    defaults = DataConfig()
    keys = ("tokenizer", *_SETTINGS)
    check_settings(corpus, [(key, getattr(d, key), getattr(defaults, key)) for key in keys])


def prepared_data_config(d: DataConfig, corpus: PreparedCorpus) -> DataConfig:
    """`d` with the tokenizer settings the corpus was prepared with (what the saved config.json records)."""
    stored = corpus.header["settings"]
    return replace(d, tokenizer=corpus.header["tokenizer"], **{key: stored[key] for key in _SETTINGS})


__all__ = [
    "BATCH_ROWS",
    "PreparedBatches",
    "PreparedSplit",
    "load_prepared_splits",
    "prepare_table",
    "prepared_config",
    "prepared_data_config",
]
