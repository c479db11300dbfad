"""The language model's prepared corpus (`grutext prepare`, the format in `grutext.data.prepared`).

``tokens.u32`` is the id stream a language model trains on (each non-blank line's tokens then
``<eos>``; char: every character), ``offsets.u64`` indexes its lines, ``counts.u64`` gives the
unigram baseline without a pass over the tokens.

`prepare_corpus` streams the text twice (once to learn the vocabulary, once to encode it, in
batches that Hugging Face `tokenizers` encodes on all cores) and writes into a temporary sibling
that is renamed into place once complete, so memory stays bounded by one batch and the vocabulary.
`open_prepared` maps the files with ``numpy.memmap``: nothing is read until a batch reads it.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grutext.data.prepared import (
    BATCH_LINES,
    FORMAT,
    ByteProgress,
    PreparedCorpus,
    RowWriter,
    build_folder,
    check_out,
    is_prepared,
    open_prepared,
    peak_rss_mb,
)
from grutext.errors import ConfigError, DataError


def _plain_lines(path: Path) -> Iterator[str]:
    opener: Callable[..., Any] = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def stream_lines(paths: list[Path], fmt: str | None = None, text_col: str | None = None) -> Iterator[str]:
    """The corpus's lines one at a time: plain text streamed from disk; a table's texts a chunk at a time
    (`stream_table`: csv, tsv and jsonl streamed, other formats read whole one file at a time)."""
    from grutext.data.stream import stream_table
    from grutext.tasks.language_model.data import _is_plain

    for path in paths:
        if fmt in (None, "txt", "text") and _is_plain(path):
            yield from _plain_lines(path)
        else:
            for chunk in stream_table(path, fmt=fmt, text_col=text_col, label_col=False):
                yield from chunk.texts


@dataclass
class _Source:
    """What `prepare_corpus` reads: the source as given, its files, how to read them, how to report progress."""

    source: str | os.PathLike[str]
    paths: list[Path]
    fmt: str | None
    text_col: str | None
    progress: bool | None
    total_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.total_bytes = sum(p.stat().st_size for p in self.paths)

    def lines(self) -> Iterator[str]:
        return stream_lines(self.paths, self.fmt, self.text_col)

    def bar(self, desc: str) -> ByteProgress:
        return ByteProgress(self.total_bytes, desc, self.progress)


def prepare_corpus(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    tokenizer: str = "word",
    lowercase: bool | None = None,
    min_freq: int = 2,
    max_vocab: int | None = 30000,
    bpe_vocab_size: int = 8000,
    word_split: str = "punct",
    split_contractions: bool = True,
    add_eos: bool | None = None,
    fmt: str | None = None,
    text_col: str | None = None,
    batch_lines: int = BATCH_LINES,
    overwrite: bool = False,
    progress: bool | None = None,
    log: Callable[..., None] = print,
) -> dict[str, Any]:
    """Tokenize a corpus into a prepared folder (see the module); returns its header.

    The tokenizer settings are those of `grutext train --task lm` (`build_lm_tokenizer`), so a model
    trained on the prepared folder sees the ids training on the raw files would give.

    Raises:
        DataError: missing or undecodable files, or no tokens.
        ConfigError: an output folder that must not be written, bad sizes.
    """
    from grutext.tasks.language_model.config import resolve_add_eos
    from grutext.tasks.language_model.data import expand_paths

    if batch_lines < 1:
        raise ConfigError(f"--batch-lines: expected an integer >= 1, got {batch_lines}")
    paths = expand_paths(source)
    out = Path(out)
    check_out(out, overwrite)
    corpus = _Source(source, paths, fmt, text_col, progress)
    t0 = time.perf_counter()
    settings: dict[str, Any] = {
        "min_freq": min_freq,
        "max_vocab": max_vocab,
        "bpe_vocab_size": bpe_vocab_size,
        "word_split": word_split,
        "split_contractions": split_contractions,
    }
    tok = _learn_vocabulary(corpus, tokenizer, lowercase, settings)
    settings = {"lowercase": tok.lowercase, **settings, "add_eos": resolve_add_eos(tok.kind, add_eos)}
    header = _write_prepared(out, corpus, tok, settings, batch_lines, t0)
    log(
        f"prepared: {out}/ ({header['num_tokens']:,} tokens in {header['num_lines']:,} lines, vocabulary "
        f"{tok.vocab_size:,}, {tok.kind} tokenizer; {header['seconds']:.1f}s)"
    )
    return header


def _learn_vocabulary(corpus: _Source, kind: str, lowercase: bool | None, settings: dict[str, Any]) -> Any:
    """The first pass: the tokenizer learnt from the corpus's lines (`build_lm_tokenizer`)."""
    from grutext.tasks.language_model.data import build_lm_tokenizer

    bar = corpus.bar("vocabulary")

    def counted() -> Iterator[str]:
        for line in corpus.lines():
            bar.add(len(line) + 1)
            yield line

    tok = build_lm_tokenizer(
        counted(),
        kind,
        lowercase=lowercase if kind != "char" else False,
        min_freq=settings["min_freq"],
        max_size=settings["max_vocab"],
        bpe_vocab_size=settings["bpe_vocab_size"],
        word_split=settings["word_split"],
        split_contractions=settings["split_contractions"],
    )
    bar.close()
    return tok


def _write_prepared(
    out: Path, corpus: _Source, tok: Any, settings: dict[str, Any], batch_lines: int, t0: float
) -> dict[str, Any]:
    """The second pass: the corpus encoded into a temporary sibling of `out`, with the tokenizer, the counts
    and the header; renamed into place once complete (`build_folder`). Returns the header."""

    def fill(tmp: Path) -> dict[str, Any]:
        bar = corpus.bar("tokenizing")
        with RowWriter(tmp, tok.vocab_size) as rows:
            _encode_lines(rows, tok, corpus.lines(), settings["add_eos"], batch_lines, bar)
        bar.close()
        rows.finish(tmp, tok, corpus.source)
        return rows.header("lm", tok, settings, corpus.paths, t0)

    return build_folder(out, fill)


def _encode_lines(
    rows: RowWriter, tok: Any, lines: Iterator[str], eos: bool, batch_lines: int, bar: ByteProgress
) -> None:
    """`lines` encoded batch by batch into `rows` (a blank line is no row; char: every line with its newline)."""
    for batch, nbytes in _line_batches(lines, batch_lines):
        if tok.kind == "char":
            rows.add(tok.encode_batch([line + "\n" for line in batch]))
        else:
            rows.add(tok.encode_batch([line for line in batch if line.strip()], add_eos=eos))
        bar.add(nbytes, rows.num_tokens)


def _line_batches(lines: Iterator[str], batch_lines: int) -> Iterator[tuple[list[str], int]]:
    """`lines` in lists of `batch_lines` (the last one shorter, never empty), each with its bytes (newlines counted)."""
    batch: list[str] = []
    nbytes = 0
    for line in lines:
        batch.append(line)
        nbytes += len(line) + 1
        if len(batch) >= batch_lines:
            yield batch, nbytes
            batch, nbytes = [], 0
    if batch:
        yield batch, nbytes


__all__ = [
    "BATCH_LINES",
    "FORMAT",
    "PreparedCorpus",
    "is_prepared",
    "open_prepared",
    "peak_rss_mb",
    "prepare_corpus",
    "stream_lines",
]
