"""Prepared corpora: text tokenized once into memory-mapped files (`grutext prepare`), shared by the
language model (one id stream) and the classifier (one row of ids per example, with its label).

A prepared folder holds

- ``tokens.u32``: every token id, little-endian uint32, in order;
- ``offsets.u64``: little-endian uint64, one per encoded row (a language model's line, a classifier's
  example) plus one: row k is ``tokens[offsets[k]:offsets[k+1]]``;
- ``tokenizer.json``: the tokenizer (as a model directory stores it);
- ``counts.u64``: little-endian uint64, how often each id occurs;
- ``labels.u32`` (classification only): little-endian uint32, row k's class index into the header's
  ``labels`` (the class names, sorted);
- ``header.json``: format, version, task (``lm`` when absent, or ``classify``), tokenizer kind and
  settings, vocabulary size, token and row counts, sources.

Each task's `prepare` streams its text twice (the vocabulary, then the ids, in batches that Hugging
Face `tokenizers` encodes on all cores) and fills a temporary sibling of the output folder through
`build_folder`, which renames it into place once complete, so a half-written folder never appears.
`open_prepared` maps the files with ``numpy.memmap``: nothing is read until a batch reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
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
LABELS = "labels.u32"
TOKEN_DTYPE = np.dtype("<u4")
OFFSET_DTYPE = np.dtype("<u8")
BATCH_LINES = 20_000  # rows encoded per batch (tokenizers spreads a batch over the cores)
TASKS = ("lm", "classify")


def read_header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The header of a folder `grutext prepare` wrote, or None when `path` is no such folder."""
    try:
        head = json.loads((Path(path) / HEADER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return head if isinstance(head, dict) and head.get("format") == FORMAT else None


def is_prepared(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a folder `grutext prepare` wrote (its header says so)."""
    return read_header(path) is not None


def prepared_task(path: str | os.PathLike[str]) -> str | None:
    """``"lm"`` or ``"classify"``: what a prepared folder was prepared for (None: not a prepared folder)."""
    head = read_header(path)
    return None if head is None else str(head.get("task", "lm"))


class ByteProgress:
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


def check_out(out: Path, overwrite: bool) -> None:
    """ConfigError unless `out` may be written: new, empty, or a prepared corpus with `overwrite`."""
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


def _temp_sibling(out: Path) -> Path:
    """A new empty folder beside `out` (hidden name), with the permissions of an ordinary new folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the folder is an ordinary output
    return tmp


def build_folder(out: Path, fill: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """`fill(tmp)` writes the data files into a temporary sibling of `out` and returns the header; the
    header is written last and the folder renamed into place (an old `out` replaced: `check_out` allowed
    it). On any failure the temporary folder is removed, so a half-written folder never appears."""
    tmp = _temp_sibling(out)
    try:
        header = {"format": FORMAT, "version": VERSION, **fill(tmp)}
        (tmp / HEADER).write_text(json.dumps(header, indent=1), encoding="utf-8")
        if out.is_dir():
            shutil.rmtree(out)  # checked before: empty, or a prepared corpus with --overwrite
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return header


class RowWriter:
    """Appends rows of ids to ``tokens.u32`` and ``offsets.u64`` in `folder`, counting each id; a
    context manager whose clean exit syncs both files to disk."""

    def __init__(self, folder: Path, vocab_size: int) -> None:
        self.counts = np.zeros(vocab_size, dtype=np.int64)  # (V,)
        self.num_tokens = 0
        self.num_rows = 0
        self._tok = (folder / TOKENS).open("wb")
        self._off = (folder / OFFSETS).open("wb")
        self._off.write(np.zeros(1, dtype=OFFSET_DTYPE).tobytes())

    def add(self, rows: Sequence[Sequence[int]]) -> None:
        """Write `rows` (one id list each) after the rows written so far."""
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))  # (rows,)
        ids = np.fromiter((i for r in rows for i in r), dtype=TOKEN_DTYPE, count=int(lengths.sum()))
        self._tok.write(ids.tobytes())
        self._off.write((self.num_tokens + np.cumsum(lengths)).astype(OFFSET_DTYPE).tobytes())
        self.counts[:] += np.bincount(ids, minlength=len(self.counts))
        self.num_tokens += int(lengths.sum())
        self.num_rows += len(rows)

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for fh in (self._tok, self._off):
            if kind is None:
                fh.flush()
                os.fsync(fh.fileno())
            fh.close()

    def finish(self, folder: Path, tok: Any, source: Any) -> None:
        """Refuse sizes a prepared folder cannot hold; write the tokenizer and the id counts beside the rows."""
        if self.num_tokens == 0:
            raise DataError(f"{source}: empty corpus, no tokens after tokenization")
        if self.num_tokens >= 2**32 - 1 or tok.vocab_size >= 2**32:
            raise DataError(f"{source}: {self.num_tokens:,} tokens; a prepared corpus holds fewer than 2^32")
        tok.save(folder / TOKENIZER)
        (folder / COUNTS).write_bytes(self.counts.astype(OFFSET_DTYPE).tobytes())

    def header(self, task: str, tok: Any, settings: dict[str, Any], paths: Sequence[Path], t0: float) -> dict[str, Any]:
        """The header.json fields both tasks share: task, tokenizer, counts, sources, seconds since `t0`."""
        return {
            "task": task,
            "tokenizer": tok.kind,
            "settings": settings,
            "vocab_size": tok.vocab_size,
            "num_tokens": self.num_tokens,
            "num_lines": self.num_rows,
            "dtype": "uint32",
            "sources": [{"path": str(p), "bytes": p.stat().st_size} for p in paths],
            "seconds": round(time.perf_counter() - t0, 2),
        }


@dataclass
class PreparedCorpus:
    """A prepared folder, mapped: `tokens`, `offsets` (and `labels` for classification) are
    ``numpy.memmap`` views (nothing read yet)."""

    path: Path
    header: dict[str, Any]
    tokens: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray | None = None

    @property
    def num_tokens(self) -> int:
        return int(self.header["num_tokens"])

    @property
    def task(self) -> str:
        """``"lm"`` or ``"classify"``."""
        return str(self.header.get("task", "lm"))

    def line(self, k: int) -> np.ndarray:
        """The ids of encoded row `k` (read from disk)."""
        return np.asarray(self.tokens[int(self.offsets[k]) : int(self.offsets[k + 1])])

    def tokenizer(self) -> Any:
        from grutext.data.tokenizers import Tokenizer

        return Tokenizer.load(self.path / TOKENIZER)

    def unigram_counts(self) -> np.ndarray:
        """How often each id occurs in the whole prepared corpus (V,)."""
        return np.fromfile(self.path / COUNTS, dtype=OFFSET_DTYPE).astype(np.int64)


def check_settings(prep: PreparedCorpus, given: Sequence[tuple[str, Any, Any]]) -> None:
    """ConfigError for a tokenizer setting given with a prepared corpus (``(key, value, default)``: a value
    that is not the default) that contradicts the one the corpus was prepared with: its ids are fixed."""
    stored = prep.header["settings"]
    for key, value, default in given:
        prepared = prep.header["tokenizer"] if key == "tokenizer" else stored.get(key)
        if value != default and value != prepared:
            raise ConfigError(
                f"{key}={value!r}: {prep.path} was prepared with {key}={prepared!r}; its ids are fixed, so the "
                "tokenizer settings come from the prepared folder (prepare it again to change them)"
            )


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
    if not isinstance(header, dict):
        raise ArtifactError(f"{path}/{HEADER}: expected a JSON object, got a JSON {type(header).__name__}")
    if header.get("format") != FORMAT:
        raise ArtifactError(f"{path}/{HEADER}: expected format {FORMAT!r}, got {header.get('format')!r}")
    if header.get("version") != VERSION:
        raise ArtifactError(f"{path}/{HEADER}: version {header.get('version')!r}, this grutext reads {VERSION}")
    n, lines = int(header["num_tokens"]), int(header["num_lines"])
    files: list[tuple[str, np.dtype[Any], int]] = [
        (TOKENS, TOKEN_DTYPE, n),
        (OFFSETS, OFFSET_DTYPE, lines + 1),
        (COUNTS, OFFSET_DTYPE, int(header["vocab_size"])),
    ]
    classify = header.get("task", "lm") == "classify"
    if classify:
        files.append((LABELS, TOKEN_DTYPE, lines))
    for name, dtype, count in files:
        f = path / name
        size = f.stat().st_size if f.is_file() else -1
        if size != count * dtype.itemsize:
            raise ArtifactError(
                f"{f}: expected {count * dtype.itemsize:,} bytes ({count:,} values), found "
                f"{'no file' if size < 0 else f'{size:,} bytes'}; prepare the corpus again"
            )
    tokens = np.memmap(path / TOKENS, dtype=TOKEN_DTYPE, mode="r", shape=(n,))
    offsets = np.memmap(path / OFFSETS, dtype=OFFSET_DTYPE, mode="r", shape=(lines + 1,))
    labels = np.memmap(path / LABELS, dtype=TOKEN_DTYPE, mode="r", shape=(lines,)) if classify else None
    return PreparedCorpus(path, header, tokens, offsets, labels)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (``ru_maxrss``: KB on Linux, bytes on macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


__all__ = [
    "BATCH_LINES",
    "FORMAT",
    "ByteProgress",
    "PreparedCorpus",
    "RowWriter",
    "build_folder",
    "check_out",
    "check_settings",
    "is_prepared",
    "open_prepared",
    "peak_rss_mb",
    "prepared_task",
    "read_header",
]
