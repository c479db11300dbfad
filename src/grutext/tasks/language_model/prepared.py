"""Prepared corpora: text tokenized once into a memory-mapped token-id file (`grutext prepare`).

A prepared folder holds

- ``tokens.u32``: every token id of the corpus, little-endian uint32, in order (the id stream a
  language model trains on: each non-blank line's tokens then ``<eos>``; char: every character);
- ``offsets.u64``: little-endian uint64, one per encoded line plus one: line k is
  ``tokens[offsets[k]:offsets[k+1]]``;
- ``tokenizer.json``: the tokenizer (as a model directory stores it);
- ``counts.u64``: little-endian uint64, how often each id occurs (the unigram baseline needs no
  pass over the tokens);
- ``header.json``: format, version, tokenizer kind and settings, vocabulary size, token and line
  counts, sources.

`prepare_corpus` streams the text twice (once to learn the vocabulary, once to encode it, in
batches that Hugging Face `tokenizers` encodes on all cores) and writes into a temporary sibling
that is renamed into place once complete, so memory stays bounded by one batch and the vocabulary.
`open_prepared` maps the files with ``numpy.memmap``: nothing is read until a batch reads it.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grutext.errors import ArtifactError, ConfigError, DataError

FORMAT = "grutext-prepared"
VERSION = 1
HEADER = "header.json"
TOKENS = "tokens.u32"
OFFSETS = "offsets.u64"
TOKENIZER = "tokenizer.json"
COUNTS = "counts.u64"
TOKEN_DTYPE = np.dtype("<u4")
OFFSET_DTYPE = np.dtype("<u8")
BATCH_LINES = 20_000  # lines encoded per batch (tokenizers spreads a batch over the cores)


def is_prepared(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a folder `grutext prepare` wrote (its header says so)."""
    try:
        head = json.loads((Path(path) / HEADER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(head, dict) and head.get("format") == FORMAT


def _plain_lines(path: Path) -> Iterator[str]:
    opener: Callable[..., Any] = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def stream_lines(paths: list[Path], fmt: str | None = None, text_col: str | None = None) -> Iterator[str]:
    """The corpus's lines one at a time: plain text streamed from disk; a table (csv, jsonl...) read
    by `read_dataset` one file at a time."""
    from grutext.tasks.language_model.data import _is_plain

    for path in paths:
        if fmt in (None, "txt", "text") and _is_plain(path):
            yield from _plain_lines(path)
        else:
            from grutext.data.readers import read_dataset

            yield from read_dataset(path, fmt=fmt, text_col=text_col, label_col=False).texts


class _ByteProgress:
    """Progress through the corpus's bytes on stderr (the shared progress line, counted in MB)."""

    def __init__(self, total_bytes: int, desc: str, enabled: bool | None) -> None:
        from grutext.train.trace import Progress

        self.bar = Progress(max(1, total_bytes // 1_000_000), desc=desc + " (MB)", enabled=enabled)
        self.done = 0

    def add(self, nbytes: int, tokens: int = 0) -> None:
        self.done += nbytes
        self.bar.update(self.done // 1_000_000, tokens)

    def close(self) -> None:
        self.bar.close()


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"OUT {out}: an existing file, expected a folder name for the prepared corpus")
    if out.is_dir() and any(out.iterdir()):
        if not is_prepared(out):
            raise ConfigError(
                f"OUT {out}: an existing folder that is not a prepared corpus; grutext never replaces files "
                "it did not write: choose a new or empty folder"
            )
        if not overwrite:
            raise ConfigError(f"OUT {out}: a prepared corpus is already there; pass --overwrite to replace it")


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

    def bar(self, desc: str) -> _ByteProgress:
        return _ByteProgress(self.total_bytes, desc, self.progress)


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
    _check_out(out, overwrite)
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
    and the header; renamed into place once complete (removed on any failure). Returns the header."""
    tmp = _temp_sibling(out)
    try:
        bar = corpus.bar("tokenizing")
        counts, n_tokens, n_lines = _encode_lines(tmp, tok, corpus.lines(), settings["add_eos"], batch_lines, bar)
        bar.close()
        if n_tokens == 0:
            raise DataError(f"{corpus.source}: empty corpus, no tokens after tokenization")
        if n_tokens >= 2**32 - 1 or tok.vocab_size >= 2**32:
            raise DataError(f"{corpus.source}: {n_tokens:,} tokens; a prepared corpus holds fewer than 2^32")
        tok.save(tmp / TOKENIZER)
        (tmp / COUNTS).write_bytes(counts.astype(OFFSET_DTYPE).tobytes())
        header = {
            "format": FORMAT,
            "version": VERSION,
            "tokenizer": tok.kind,
            "settings": settings,
            "vocab_size": tok.vocab_size,
            "num_tokens": n_tokens,
            "num_lines": n_lines,
            "dtype": "uint32",
            "sources": [{"path": str(p), "bytes": p.stat().st_size} for p in corpus.paths],
            "seconds": round(time.perf_counter() - t0, 2),
        }
        (tmp / HEADER).write_text(json.dumps(header, indent=1), encoding="utf-8")
        if out.is_dir():
            shutil.rmtree(out)  # checked above: empty, or a prepared corpus with --overwrite
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return header


def _temp_sibling(out: Path) -> Path:
    """A new empty folder beside `out` (hidden name), with the permissions of an ordinary new folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the folder is an ordinary output
    return tmp


def _encode_lines(
    tmp: Path, tok: Any, lines: Iterator[str], eos: bool, batch_lines: int, bar: _ByteProgress
) -> tuple[np.ndarray, int, int]:
    """`lines` encoded batch by batch into `tmp`'s token and offset files (synced to disk); returns how often
    each id occurs (V,), the tokens and the encoded lines."""
    counts = np.zeros(tok.vocab_size, dtype=np.int64)  # (V,)
    n_tokens, n_lines = 0, 0
    with (tmp / TOKENS).open("wb") as ftok, (tmp / OFFSETS).open("wb") as foff:
        foff.write(np.zeros(1, dtype=OFFSET_DTYPE).tobytes())
        for batch, nbytes in _line_batches(lines, batch_lines):
            if tok.kind == "char":
                rows = tok.encode_batch([line + "\n" for line in batch])
            else:
                rows = tok.encode_batch([line for line in batch if line.strip()], add_eos=eos)
            lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))  # (lines,)
            ids = np.fromiter((i for r in rows for i in r), dtype=TOKEN_DTYPE, count=int(lengths.sum()))
            ftok.write(ids.tobytes())
            foff.write((n_tokens + np.cumsum(lengths)).astype(OFFSET_DTYPE).tobytes())
            counts[:] += np.bincount(ids, minlength=tok.vocab_size)
            n_tokens += int(lengths.sum())
            n_lines += len(rows)
            bar.add(nbytes, n_tokens)
        for fh in (ftok, foff):
            fh.flush()
            os.fsync(fh.fileno())
    return counts, n_tokens, n_lines


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


@dataclass
class PreparedCorpus:
    """A prepared folder, mapped: `tokens` and `offsets` are ``numpy.memmap`` views (nothing read yet)."""

    path: Path
    header: dict[str, Any]
    tokens: np.ndarray
    offsets: np.ndarray

    @property
    def num_tokens(self) -> int:
        return int(self.header["num_tokens"])

    def line(self, k: int) -> np.ndarray:
        """The ids of encoded line `k` (read from disk)."""
        return np.asarray(self.tokens[int(self.offsets[k]) : int(self.offsets[k + 1])])

    def tokenizer(self) -> Any:
        from grutext.data.tokenizers import Tokenizer

        return Tokenizer.load(self.path / TOKENIZER)

    def unigram_counts(self) -> np.ndarray:
        """How often each id occurs in the whole prepared corpus (V,)."""
        return np.fromfile(self.path / COUNTS, dtype=OFFSET_DTYPE).astype(np.int64)


def open_prepared(path: str | os.PathLike[str]) -> PreparedCorpus:
    """Map a prepared folder's files (read-only) after checking the header against the file sizes.

    Raises:
        ArtifactError: not a prepared folder, another version, or files of the wrong size.
    """
    path = Path(path)
    try:
        header = json.loads((path / HEADER).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a prepared corpus ({HEADER} unreadable: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArtifactError(f"{path}/{HEADER}: expected format {FORMAT!r}, got {header.get('format')!r}")
    if header.get("version") != VERSION:
        raise ArtifactError(f"{path}/{HEADER}: version {header.get('version')!r}, this grutext reads {VERSION}")
    n, lines = int(header["num_tokens"]), int(header["num_lines"])
    vocab = int(header["vocab_size"])
    for name, dtype, count in (
        (TOKENS, TOKEN_DTYPE, n),
        (OFFSETS, OFFSET_DTYPE, lines + 1),
        (COUNTS, OFFSET_DTYPE, vocab),
    ):
        f = path / name
        size = f.stat().st_size if f.is_file() else -1
        if size != count * dtype.itemsize:
            raise ArtifactError(
                f"{f}: expected {count * dtype.itemsize:,} bytes ({count:,} values), found "
                f"{'no file' if size < 0 else f'{size:,} bytes'}; prepare the corpus again"
            )
    tokens = np.memmap(path / TOKENS, dtype=TOKEN_DTYPE, mode="r", shape=(n,))
    offsets = np.memmap(path / OFFSETS, dtype=OFFSET_DTYPE, mode="r", shape=(lines + 1,))
    return PreparedCorpus(path, header, tokens, offsets)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (``ru_maxrss``: KB on Linux, bytes on macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


__all__ = [
    "FORMAT",
    "PreparedCorpus",
    "is_prepared",
    "open_prepared",
    "peak_rss_mb",
    "prepare_corpus",
    "stream_lines",
]
