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
from dataclasses import dataclass
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
    from grutext.tasks.language_model.data import build_lm_tokenizer, expand_paths

    if batch_lines < 1:
        raise ConfigError(f"--batch-lines: expected an integer >= 1, got {batch_lines}")
    paths = expand_paths(source)
    out = Path(out)
    _check_out(out, overwrite)
    total_bytes = sum(p.stat().st_size for p in paths)
    t0 = time.perf_counter()

    bar = _ByteProgress(total_bytes, "vocabulary", progress)

    def counted() -> Iterator[str]:
        for line in stream_lines(paths, fmt, text_col):
            bar.add(len(line) + 1)
            yield line

    tok = build_lm_tokenizer(
        counted(),
        tokenizer,
        lowercase=lowercase if tokenizer != "char" else False,
        min_freq=min_freq,
        max_size=max_vocab,
        bpe_vocab_size=bpe_vocab_size,
        word_split=word_split,
        split_contractions=split_contractions,
    )
    bar.close()
    eos = resolve_add_eos(tok.kind, add_eos)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the folder is an ordinary output
    try:
        counts = np.zeros(tok.vocab_size, dtype=np.int64)  # (V,)
        n_tokens, n_lines = 0, 0
        bar = _ByteProgress(total_bytes, "tokenizing", progress)
        with (tmp / TOKENS).open("wb") as ftok, (tmp / OFFSETS).open("wb") as foff:
            foff.write(np.zeros(1, dtype=OFFSET_DTYPE).tobytes())
            batch: list[str] = []
            nbytes = 0

            def flush() -> None:
                nonlocal n_tokens, n_lines
                if not batch:
                    return
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
                batch.clear()

            for line in stream_lines(paths, fmt, text_col):
                batch.append(line)
                nbytes += len(line) + 1
                if len(batch) >= batch_lines:
                    flush()
                    nbytes = 0
            flush()
            for fh in (ftok, foff):
                fh.flush()
                os.fsync(fh.fileno())
        bar.close()
        if n_tokens == 0:
            raise DataError(f"{source}: empty corpus, no tokens after tokenization")
        if n_tokens >= 2**32 - 1 or tok.vocab_size >= 2**32:
            raise DataError(f"{source}: {n_tokens:,} tokens; a prepared corpus holds fewer than 2^32")
        tok.save(tmp / TOKENIZER)
        (tmp / COUNTS).write_bytes(counts.astype(OFFSET_DTYPE).tobytes())
        header = {
            "format": FORMAT,
            "version": VERSION,
            "tokenizer": tok.kind,
            "settings": {
                "lowercase": tok.lowercase,
                "min_freq": min_freq,
                "max_vocab": max_vocab,
                "bpe_vocab_size": bpe_vocab_size,
                "word_split": word_split,
                "split_contractions": split_contractions,
                "add_eos": eos,
            },
            "vocab_size": tok.vocab_size,
            "num_tokens": n_tokens,
            "num_lines": n_lines,
            "dtype": "uint32",
            "sources": [{"path": str(p), "bytes": p.stat().st_size} for p in paths],
            "seconds": round(time.perf_counter() - t0, 2),
        }
        (tmp / HEADER).write_text(json.dumps(header, indent=1), encoding="utf-8")
        if out.is_dir():
            shutil.rmtree(out)  # checked above: empty, or a prepared corpus with --overwrite
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(
        f"prepared: {out}/ ({n_tokens:,} tokens in {n_lines:,} lines, vocabulary {tok.vocab_size:,}, "
        f"{tok.kind} tokenizer; {header['seconds']:.1f}s)"
    )
    return header


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
