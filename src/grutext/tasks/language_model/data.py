"""Language-model corpora and batches: text files (or a named corpus) -> lines -> tokenizer -> one id
stream -> truncated-BPTT windows."""

from __future__ import annotations

import glob
import gzip
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import grutext.data.named as named
from grutext.data.batching import StreamBatches
from grutext.data.tokenizers import Tokenizer
from grutext.errors import DataError
from grutext.tasks.language_model.config import resolve_add_eos

PLAIN_SUFFIXES = (".txt", ".tokens", ".raw", "")


def expand_paths(spec: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named by `spec`: a path, a glob, a comma-separated list of those, or a list.

    Raises:
        DataError: a name matching no file.
    """
    items = [str(spec)] if isinstance(spec, (str, os.PathLike)) else [str(s) for s in spec]
    out: list[Path] = []
    for item in items:
        for part in (p.strip() for p in item.split(",")):
            if not part:
                continue
            hits = sorted(glob.glob(part)) if any(c in part for c in "*?[") else [part]
            if not hits or not Path(hits[0]).is_file():
                raise DataError(f"{part}: corpus file not found")
            out.extend(Path(h) for h in hits)
    if not out:
        raise DataError(f"{spec!r}: expected one or more corpus files, got none")
    return out


def _is_plain(path: Path) -> bool:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return Path(name).suffix.lower() in PLAIN_SUFFIXES


NAMED_CORPORA = named.names("language_model")


def named_corpus_splits(spec: Any) -> dict[str, list[str]] | None:
    """Every split of a named corpus (``"ptb"``: train / valid / test) as lines, read once; None if
    `spec` is no name."""
    if not named.is_named(spec, kind="language_model") or Path(spec).exists():
        return None
    from grutext.data.readers import load_named

    return {{"dev": "valid"}.get(key, key): list(part.texts) for key, part in load_named(spec).items()}


def named_corpus(spec: Any, split: str = "train") -> list[str] | None:
    """Lines of one split of a named corpus, or None if `spec` is no name."""
    splits = named_corpus_splits(spec)
    if splits is None:
        return None
    key = {"dev": "valid", "validation": "valid"}.get(split, split)
    if key not in splits:
        raise DataError(f"{spec}: no split {split!r}, expected one of {sorted(splits)}")
    return splits[key]


def read_corpus(
    spec: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    fmt: str | None = None,
    text_col: str | None = None,
) -> list[str]:
    """Read one or many corpus files as a list of lines (newlines kept off).

    Plain text (``.txt``, ``.gz``, no suffix) is read line by line (PTB format: one sentence a
    line); tables (csv, tsv, jsonl, json, parquet) are read with `read_dataset`, one line per
    text of the text column.

    Raises:
        DataError: missing files, undecodable files, or a corpus with no text at all.
    """
    named = named_corpus(spec)
    if named is not None:
        return named
    lines: list[str] = []
    for path in expand_paths(spec):
        if fmt in (None, "txt", "text") and _is_plain(path):
            opener = gzip.open if path.name.endswith(".gz") else open
            try:
                with opener(path, "rt", encoding="utf-8") as fh:
                    lines.extend(line.rstrip("\r\n") for line in fh)
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
            except OSError as exc:
                raise DataError(f"{path}: cannot read ({exc})") from None
        else:
            from grutext.data.readers import read_dataset

            lines.extend(read_dataset(path, fmt=fmt, text_col=text_col, label_col=False).texts)
    if not any(line.strip() for line in lines):
        raise DataError(f"{spec}: empty corpus, expected some text")
    return lines


def build_lm_tokenizer(
    lines: Iterable[str],
    kind: str = "word",
    *,
    lowercase: bool | None = None,
    min_freq: int = 1,
    max_size: int | None = None,
    bpe_vocab_size: int = 8000,
    word_split: str = "punct",
    split_contractions: bool = True,
) -> Tokenizer:
    """Train a tokenizer for language modelling (no HTML stripping; char keeps case unless told).

    ``word_split="whitespace"`` builds a word tokenizer that splits on whitespace only, for
    corpora that are already tokenised (PTB), so its token counts match the published ones.
    """
    if kind == "word" and word_split == "whitespace":
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models, pre_tokenizers, trainers

        from grutext.data.tokenizers import SPECIALS, UNK, _build_normalizer

        low = True if lowercase is None else lowercase
        hf = HFTokenizer(models.WordLevel(unk_token=UNK))
        hf.normalizer = _build_normalizer(low, False)
        hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer = trainers.WordLevelTrainer(
            vocab_size=max_size or 10_000_000,
            min_frequency=min_freq,
            special_tokens=list(SPECIALS),
            show_progress=False,
        )
        # a literal <unk> in the corpus (PTB) must not become a second, ordinary <unk> entry
        length = len(lines) if isinstance(lines, (list, tuple)) else None  # else streamed (grutext prepare)
        hf.train_from_iterator((line.replace(UNK, " ") for line in lines), trainer=trainer, length=length)
        return Tokenizer(
            hf,
            "word",
            {
                "lowercase": low,
                "strip_html": False,
                "min_freq": min_freq,
                "max_size": max_size,
                "bpe_vocab_size": None,
                "word_split": "whitespace",
            },
        )
    if kind == "char":  # the stream keeps the line breaks (encode_stream): "\n" is a character of the vocabulary
        lines = [line + "\n" for line in lines] if isinstance(lines, list) else (line + "\n" for line in lines)
    return Tokenizer.train(
        lines,
        kind=kind,
        lowercase=lowercase,
        strip_html=False,
        min_freq=min_freq,
        max_size=max_size,
        bpe_vocab_size=bpe_vocab_size,
        split_contractions=split_contractions,
    )


def encode_stream(
    tokenizer: Tokenizer, lines: list[str], add_eos: bool | None = None, source: str = "corpus"
) -> torch.Tensor:
    """The corpus as one id stream (N,).

    Word/BPE: each non-blank line's tokens then ``<eos>`` (when `add_eos`). Char: every
    character, newlines included (no ``<eos>``).

    Raises:
        DataError: nothing to encode.
    """
    add_eos = resolve_add_eos(tokenizer.kind, add_eos)
    if tokenizer.kind == "char":
        texts = [line + "\n" for line in lines]
        ids = tokenizer.encode_batch(texts)
    else:
        ids = tokenizer.encode_batch([line for line in lines if line.strip()], add_eos=add_eos)
    flat = [i for row in ids for i in row]
    if not flat:
        raise DataError(f"{source}: empty corpus, no tokens after tokenization")
    return torch.tensor(flat, dtype=torch.long)  # (N,)


class LMBatches:
    """Truncated-BPTT windows for `fit`: dicts ``{"ids" (B, L), "targets" (B, L), "reset": bool}``.

    ``reset`` is True on the window that starts the stream again (the task then zeroes the
    carried state). With `epoch_tokens`, each iteration yields about that many tokens of
    windows and the next iteration continues where it stopped.

    Args:
        stream: (N,) ids.
        batch_size: B parallel streams.
        bptt: window length.
        vary_length: vary window lengths (training).
        seed: seed of the length variation.
        epoch_tokens: tokens per iteration, or None for the whole stream.
        source: name for error messages.
    """

    def __init__(
        self,
        stream: torch.Tensor | np.ndarray,
        batch_size: int,
        bptt: int,
        *,
        vary_length: bool = False,
        seed: int = 0,
        epoch_tokens: int | None = None,
        source: str = "corpus",
    ) -> None:
        n = int(stream.shape[0])  # a tensor, or a numpy memmap of a prepared corpus (read per window)
        if n < batch_size * (bptt + 1):
            raise DataError(
                f"{source}: corpus too small, {n:,} tokens for batch_size={batch_size} x "
                f"bptt={bptt} (need at least {batch_size * (bptt + 1):,}); use a smaller "
                f"--batch-size or bptt"
            )
        self.inner = StreamBatches(stream, batch_size, bptt, vary_length=vary_length, seed=seed, source=source)
        self.epoch_tokens = epoch_tokens
        self._pending: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._pass = 0
        self._fresh = True

    def set_epoch(self, epoch: int) -> None:
        """Epoch number (fixes the window-length draws of whole passes)."""
        if self.epoch_tokens is None:
            self.inner.set_epoch(epoch)

    @property
    def num_tokens(self) -> int:
        return self.inner.num_targets

    def __len__(self) -> int:
        full = len(self.inner)
        if self.epoch_tokens is None:
            return full
        return max(1, min(full, math.ceil(self.epoch_tokens / (self.inner.batch_size * self.inner.bptt))))

    def _windows(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
        if self.epoch_tokens is None:
            first = True
            for x, y in self.inner:
                yield x, y, first
                first = False
            return
        while True:  # endless passes; the caller takes its slice
            if self._pending is None:
                self._pass += 1
                self.inner.set_epoch(self._pass)
                self._pending = iter(self.inner)
                self._fresh = True
            for x, y in self._pending:
                fresh, self._fresh = self._fresh, False
                yield x, y, fresh
            self._pending = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.epoch_tokens is None:
            for x, y, reset in self._windows():
                yield {"ids": x, "targets": y, "reset": reset}
            return
        if not hasattr(self, "_gen"):
            self._gen = self._windows()
        budget = self.epoch_tokens
        while budget > 0:
            x, y, reset = next(self._gen)
            budget -= x.numel()
            yield {"ids": x, "targets": y, "reset": reset}


__all__ = [
    "LMBatches",
    "NAMED_CORPORA",
    "build_lm_tokenizer",
    "encode_stream",
    "expand_paths",
    "named_corpus",
    "named_corpus_splits",
    "read_corpus",
]
