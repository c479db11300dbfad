"""The language-model pipeline, end to end: text files -> tokenizer -> one id stream -> truncated-BPTT
windows -> LanguageModel -> fit -> perplexity / bits per character -> model directory; plus the
``generate`` and ``next-word`` commands.

LM-only settings live in :class:`LMConfig`; they are saved in the model directory's
``config.json`` under ``"lm"`` (the builder reads them back).
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from grutext.artifact import LoadedModel, save_model
from grutext.config import Config
from grutext.data.batching import StreamBatches
from grutext.data.named import is_named
from grutext.data.named import names as names_of_kind
from grutext.data.tokenizers import Tokenizer
from grutext.errors import ArtifactError, ConfigError, DataError
from grutext.models.language_model import LanguageModel, detach_state
from grutext.train.loop import FitResult, StepOut, fit, seed_everything

LN2 = math.log(2.0)
PLAIN_SUFFIXES = (".txt", ".tokens", ".raw", "")
WORD_SPLITS = ("punct", "whitespace")


@dataclass
class LMConfig:
    """Language-model settings that `Config` does not have.

    Attributes:
        bptt: truncated-BPTT window length (tokens).
        vary_length: vary the window length per batch (AWD-LSTM).
        eval_batch_size: parallel streams when scoring validation during training.
        add_eos: end each line with ``<eos>`` (None: yes for word/BPE, no for char, which keeps
            the newlines as characters).
        word_split: ``"punct"`` (punctuation marks are their own tokens) or ``"whitespace"``
            (already tokenised corpora such as PTB: split on whitespace only).
        tie_weights: decoder shares the embedding matrix.
        input_dropout: locked dropout on embeddings (None: model.dropout).
        layer_dropout: locked dropout between layers (None: model.dropout).
        weight_drop: DropConnect on W_hh.
        epoch_tokens: if set, one "epoch" of `fit` is about this many training tokens (windows
            continue where the last epoch stopped), so long corpora get frequent validation.
    """

    bptt: int = 70
    vary_length: bool = True
    eval_batch_size: int = 10
    add_eos: bool | None = None
    word_split: str = "punct"
    tie_weights: bool = True
    input_dropout: float | None = None
    layer_dropout: float | None = None
    weight_drop: float = 0.0
    epoch_tokens: int | None = None

    def check(self) -> LMConfig:
        problems = []
        for name in ("bptt", "eval_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.append(f"lm.{name}: expected an integer >= 1, got {v!r}")
        if self.word_split not in WORD_SPLITS:
            problems.append(f"lm.word_split: expected one of {list(WORD_SPLITS)}, got {self.word_split!r}")
        if self.epoch_tokens is not None and (not isinstance(self.epoch_tokens, int) or self.epoch_tokens < 1):
            problems.append(f"lm.epoch_tokens: expected None or an integer >= 1, got {self.epoch_tokens!r}")
        for name in ("input_dropout", "layer_dropout", "weight_drop"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1):
                problems.append(f"lm.{name}: expected a float in [0, 1), got {v!r}")
        if problems:
            raise ConfigError("; ".join(problems))
        return self


# ---- corpora ---------------------------------------------------------------------------------


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


NAMED_CORPORA = names_of_kind("language_model")


def named_corpus_splits(spec: Any) -> dict[str, list[str]] | None:
    """Every split of a named corpus (``"ptb"``: train / valid / test) as lines, read once; None if
    `spec` is no name."""
    if not is_named(spec, kind="language_model") or Path(spec).exists():
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
                with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
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
    lines: list[str],
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
        hf.train_from_iterator((line.replace(UNK, " ") for line in lines), trainer=trainer, length=len(lines))
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
        lines = [line + "\n" for line in lines]
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
    if add_eos is None:
        add_eos = tokenizer.kind != "char"
    if tokenizer.kind == "char":
        texts = [line + "\n" for line in lines]
        ids = tokenizer.encode_batch(texts)
    else:
        ids = tokenizer.encode_batch([line for line in lines if line.strip()], add_eos=add_eos)
    flat = [i for row in ids for i in row]
    if not flat:
        raise DataError(f"{source}: empty corpus, no tokens after tokenization")
    return torch.tensor(flat, dtype=torch.long)  # (N,)


# ---- batches and the task ------------------------------------------------------------------------


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
        stream: torch.Tensor,
        batch_size: int,
        bptt: int,
        *,
        vary_length: bool = False,
        seed: int = 0,
        epoch_tokens: int | None = None,
        source: str = "corpus",
    ) -> None:
        n = int(stream.numel())
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


class LanguageModelTask:
    """`fit` adapter for language models: carries the hidden state across windows (detached).

    Args:
        char_level: report bits per character instead of perplexity.
    """

    def __init__(self, char_level: bool = False) -> None:
        self.char_level = char_level
        self.state: Any = None

    def step(self, model: torch.nn.Module, batch: dict[str, Any]) -> StepOut:
        if batch.get("reset") or self.state is None or _state_batch(self.state) != batch["ids"].shape[0]:
            self.state = None
        _, loss, state = model(batch["ids"], batch["targets"], self.state)
        self.state = detach_state(state)  # truncated BPTT: the next window starts here, no gradient back
        n = batch["ids"].numel()
        return StepOut(loss=loss, tokens=n, items=n)

    def epoch_metrics(self, mean_loss: float, correct: float | None, items: int) -> dict[str, float]:
        return _metrics(mean_loss, self.char_level)

    def evaluate(self, model: torch.nn.Module, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        loss, _ = stream_loss(model, batches)
        return {f"val_{k}": v for k, v in _metrics(loss, self.char_level).items()}


def _state_batch(state: Any) -> int:
    return int((state[0] if isinstance(state, tuple) else state).shape[1])


def _metrics(nats: float, char_level: bool) -> dict[str, float]:
    if char_level:
        return {"loss": nats, "bpc": nats / LN2}
    return {"loss": nats, "perplexity": math.exp(min(nats, 50.0))}


@torch.no_grad()
def stream_loss(model: torch.nn.Module, batches: Iterable[dict[str, Any]]) -> tuple[float, int]:
    """Mean nats per target token over windows with the state carried; returns (loss, targets)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    state = None
    total, count = 0.0, 0
    for batch in batches:
        if batch.get("reset"):
            state = None
        ids, targets = batch["ids"].to(device), batch["targets"].to(device)
        _, loss, state = model(ids, targets, state)
        total += float(loss) * targets.numel()
        count += targets.numel()
    model.train(was)
    return total / max(count, 1), count


# ---- training --------------------------------------------------------------------------------------


@dataclass
class TrainedLanguageModel:
    """What `train_language_model` returns."""

    model: LanguageModel
    tokenizer: Tokenizer
    config: Config
    lm: LMConfig
    fit: FitResult
    valid: dict[str, float]
    test: dict[str, float] | None
    out_dir: Path | None
    unigram_valid_perplexity: float | None = None
    notes: list[str] = field(default_factory=list)


def _lm_config(cfg: Config) -> Config:
    """Classifier defaults that make no sense for a language model, set right."""
    train = cfg.train
    if train.monitor != "val_loss":
        train = replace(train, monitor="val_loss")
    return replace(cfg, model=replace(cfg.model, bidirectional=False, task="auto", pooling="last"), train=train)


def train_language_model(
    cfg: Config,
    *,
    lm: LMConfig | None = None,
    resume: bool = False,
    save: bool = True,
    verbose: bool = True,
    progress: bool | None = None,
    train_lines: list[str] | None = None,
    valid_lines: list[str] | None = None,
    test_lines: list[str] | None = None,
) -> TrainedLanguageModel:
    """Train a language model from a config and (optionally) save its model directory.

    Data: ``cfg.data.train`` (file, glob or comma-separated files), ``cfg.data.valid`` (else the
    last ``valid_fraction`` of the training stream), ``cfg.data.test`` (optional); or the
    ``*_lines`` arguments. Tokenizer from ``cfg.data.tokenizer`` (word / char / bpe), model from
    ``cfg.model`` (embed_dim, hidden_size, num_layers, cell, dropout, embed_dropout), training
    from ``cfg.train`` (batch_size = parallel streams; monitor forced to val_loss).

    Args:
        cfg: the run's Config.
        lm: LM-only settings (bptt, weight tying, weight-drop...).
        resume: continue from the checkpoint beside ``cfg.train.out``.
        save: write the model directory to ``cfg.train.out``.
        verbose: print the data summary and the epoch table.
        progress: force the live progress line on/off.
        train_lines, valid_lines, test_lines: texts to use instead of reading files.

    Returns:
        TrainedLanguageModel (validation and test metrics: loss in nats per token, perplexity or
        bpc, tokens).

    Raises:
        DataError: empty corpus, or one smaller than one batch.
        ConfigError: bad settings.
    """
    lm = (lm or LMConfig()).check()
    cfg = _lm_config(cfg).validate()
    log = print if verbose else (lambda *a, **k: None)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)
    d = cfg.data
    notes: list[str] = []
    if train_lines is None:
        if not d.train:
            raise ConfigError("data.train: expected a text file (or files) to train the language model on; got nothing")
        named = named_corpus_splits(d.train)  # a named corpus brings its own valid and test splits
        if named is not None:
            train_lines = named["train"]
            valid_lines = valid_lines if valid_lines is not None or d.valid else named.get("valid")
            test_lines = test_lines if test_lines is not None or d.test else named.get("test")
        else:
            train_lines = read_corpus(d.train, fmt=d.format, text_col=d.text_col)
    elif not any(t.strip() for t in train_lines):
        raise DataError("train_lines: empty corpus, expected some text")
    if valid_lines is None and d.valid:
        valid_lines = read_corpus(d.valid, fmt=d.format, text_col=d.text_col)
    if test_lines is None and d.test:
        test_lines = read_corpus(d.test, fmt=d.format, text_col=d.text_col)
    t0 = time.perf_counter()
    kind = d.tokenizer
    lowercase = d.lowercase if kind != "char" else False  # char models keep case
    tokenizer = build_lm_tokenizer(
        train_lines,
        kind,
        lowercase=lowercase,
        min_freq=d.min_freq,
        max_size=d.max_vocab,
        bpe_vocab_size=d.bpe_vocab_size,
        word_split=lm.word_split,
        split_contractions=d.split_contractions,
    )
    train_ids = encode_stream(tokenizer, train_lines, lm.add_eos, source=str(d.train or "train_lines"))
    if valid_lines is not None:
        valid_ids = encode_stream(tokenizer, valid_lines, lm.add_eos, source=str(d.valid or "valid_lines"))
    else:
        cut = int(round(train_ids.numel() * (1.0 - d.valid_fraction)))
        train_ids, valid_ids = train_ids[:cut], train_ids[cut:]  # the tail of the stream validates
        notes.append(f"valid: the last {d.valid_fraction:.0%} of the training stream ({valid_ids.numel():,} tokens)")
    char_level = tokenizer.kind == "char"
    unigram = None
    from grutext.models.language_model import unigram_perplexity

    unigram = unigram_perplexity(train_ids, valid_ids, tokenizer.vocab_size)
    log(
        f"data: train {train_ids.numel():,} tokens, valid {valid_ids.numel():,} tokens"
        f"{'' if test_lines is None else ', test given'}; tokenizer {kind}, vocabulary {tokenizer.vocab_size:,} "
        f"(built in {time.perf_counter() - t0:.1f}s); unigram valid perplexity {unigram:.1f}"
    )
    for note in notes:
        log(f"  {note}")
    model_cfg = replace(cfg.model, vocab_size=tokenizer.vocab_size)
    cfg = replace(cfg, model=model_cfg)
    model = LanguageModel.from_config(
        model_cfg,
        input_dropout=lm.input_dropout,
        layer_dropout=lm.layer_dropout,
        weight_drop=lm.weight_drop,
        tie_weights=lm.tie_weights,
    )
    bs = cfg.train.batch_size
    train_b = LMBatches(
        train_ids,
        bs,
        lm.bptt,
        vary_length=lm.vary_length,
        seed=cfg.train.seed,
        epoch_tokens=lm.epoch_tokens,
        source=str(d.train or "train_lines"),
    )
    eval_bs = max(1, min(lm.eval_batch_size, valid_ids.numel() // (lm.bptt + 1)))
    eval_bptt = max(1, min(lm.bptt, valid_ids.numel() // eval_bs - 1))  # a short validation text still scores
    valid_b = LMBatches(valid_ids, eval_bs, eval_bptt, source=str(d.valid or "validation stream"))
    log(
        f"model: {model_cfg.cell} x{model_cfg.num_layers}, hidden {model_cfg.hidden_size}, embed {model_cfg.embed_dim}"
        f"{', tied' if model.tied else ''}, {sum(p.numel() for p in model.parameters()):,} parameters; "
        f"batch {bs} x bptt {lm.bptt}"
    )
    task = LanguageModelTask(char_level)
    out = Path(cfg.train.out) if save else None
    ckpt = out.with_name(out.name + ".ckpt") if out is not None else None
    result = fit(
        model, task, train_b, valid_b, cfg.train, checkpoint_dir=ckpt, resume=resume, progress=progress, verbose=verbose
    )
    valid = score_stream(model, valid_ids, char_level, batch_size=eval_bs, bptt=eval_bptt)
    log(f"\nvalid: {format_scores(valid)}")
    test = None
    if test_lines is not None:
        test_ids = encode_stream(tokenizer, test_lines, lm.add_eos, source=str(d.test or "test_lines"))
        test = score_stream(model, test_ids, char_level, batch_size=1, bptt=lm.bptt)
        log(f"test: {format_scores(test)}")
    model.cpu().eval()
    if out is not None:
        save_language_model(
            out,
            model,
            tokenizer,
            cfg,
            lm,
            metrics={
                "history": result.history,
                "best_epoch": result.best_epoch,
                "monitor": cfg.train.monitor,
                "best_value": result.best_value,
                "train_seconds": result.train_seconds,
                "valid": valid,
                "test": test,
                "unigram_valid_perplexity": unigram,
            },
        )
        log(f"saved: {out}/ (config.json, tokenizer.json, model.safetensors, metrics.json, curves.png)")
    return TrainedLanguageModel(model, tokenizer, cfg, lm, result, valid, test, out, unigram, notes)


def save_language_model(
    out: str | Path,
    model: LanguageModel,
    tokenizer: Tokenizer,
    cfg: Config,
    lm: LMConfig,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a language model's directory; LM settings go into config.json under ``"lm"``."""
    from grutext.train.trace import plot_curves

    history = (metrics or {}).get("history") or []
    extra = {"curves.png": lambda p: plot_curves(history, p)} if history else None
    out = save_model(out, model, tokenizer, cfg, kind="language_model", metrics=metrics, extra=extra)
    # save_model has no slot for extra config; add the LM settings to config.json (atomic replace)
    meta_path = out / "config.json"
    meta = json.loads(meta_path.read_text())
    meta["lm"] = asdict(lm)
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_path)
    return out


def lm_settings(loaded: LoadedModel) -> LMConfig:
    """The LMConfig saved with a loaded language model (defaults when absent)."""
    raw: dict[str, Any] = {}
    if loaded.path is not None and (loaded.path / "config.json").is_file():
        raw = json.loads((loaded.path / "config.json").read_text()).get("lm") or {}
    known = {f.name for f in fields(LMConfig)}
    return LMConfig(**{k: v for k, v in raw.items() if k in known})


# ---- evaluation --------------------------------------------------------------------------------------


def score_stream(
    model: torch.nn.Module,
    ids: torch.Tensor,
    char_level: bool,
    *,
    batch_size: int = 1,
    bptt: int = 70,
    characters: int | None = None,
) -> dict[str, float]:
    """Score an id stream with the state carried: loss (nats/token), perplexity or bpc, tokens.

    With ``batch_size=1`` every token but the first is a target. `characters` (if given) adds
    ``bits_per_character`` and ``nats_per_character`` of the whole text.
    """
    batch_size = max(1, min(batch_size, ids.numel() // 2))
    bptt = max(1, min(bptt, ids.numel() // batch_size - 1))
    batches = LMBatches(ids, batch_size, bptt, source="evaluation stream")
    loss, count = stream_loss(model, batches)
    out: dict[str, float] = {"loss": loss, "tokens": float(count)}
    if char_level:
        out.update(bpc=loss / LN2, nats_per_character=loss, bits_per_character=loss / LN2)
    else:
        out["perplexity"] = math.exp(min(loss, 50.0))
    if characters:
        total = loss * count
        out["nats_per_character"] = total / characters
        out["bits_per_character"] = total / characters / LN2
    return out


def format_scores(s: dict[str, float]) -> str:
    parts = [f"loss {s['loss']:.4f} nats/token"]
    if "perplexity" in s:
        parts.append(f"perplexity {s['perplexity']:.2f}")
    if "bits_per_character" in s:
        parts.append(f"{s['bits_per_character']:.4f} bits/char ({s['nats_per_character']:.4f} nats/char)")
    parts.append(f"({int(s['tokens']):,} tokens)")
    return "  ".join(parts)


def evaluate_language_model(
    loaded: LoadedModel,
    data: str | os.PathLike[str] | list[str],
    *,
    fmt: str | None = None,
    text_col: str | None = None,
    batch_size: int = 1,
) -> dict[str, float]:
    """Perplexity (word/BPE) or bits and nats per character of a saved language model on a text.

    Args:
        loaded: `grutext.artifact.load_model(...)` of a language model.
        data: file(s) (as for training) or a list of lines.
        fmt, text_col: for table files.
        batch_size: parallel streams (1 scores every token after the first).

    Returns:
        ``{"loss", "tokens", "perplexity" | "bpc", "bits_per_character", "nats_per_character"}``.

    Raises:
        ArtifactError: not a language model. DataError: empty text.
    """
    check_language_model(loaded)
    lm = lm_settings(loaded)
    lines = data if isinstance(data, list) else read_corpus(data, fmt=fmt, text_col=text_col)
    ids = encode_stream(loaded.tokenizer, lines, lm.add_eos, source=str(data if not isinstance(data, list) else "text"))
    if ids.numel() < 2:
        raise DataError(f"{data}: too short to score, need at least 2 tokens, got {ids.numel()}")
    chars = sum(len(line) + 1 for line in lines if loaded.tokenizer.kind == "char" or line.strip())
    return score_stream(
        loaded.model, ids, loaded.tokenizer.kind == "char", batch_size=batch_size, bptt=lm.bptt, characters=chars
    )


def check_language_model(loaded: Any, command: str = "this operation") -> None:
    """Raise ArtifactError unless `loaded` is a language model."""
    kind = getattr(loaded, "kind", None)
    if kind != "language_model":
        where = getattr(loaded, "path", None) or "model"
        raise ArtifactError(
            f"{where}: is a {kind or 'non-language'} model; {command} needs a language model "
            f"(train one with `grutext train --task lm`)"
        )


def evaluate_language_model_cli(loaded: LoadedModel, args: argparse.Namespace) -> int:
    """`grutext evaluate MODEL FILE` for language models: prints the scores (or JSON)."""
    data: Any = args.data
    named = named_corpus(data, getattr(args, "split", None) or "test")
    rep = evaluate_language_model(
        loaded,
        named if named is not None else data,
        fmt=getattr(args, "format", None),
        text_col=getattr(args, "text_col", None),
    )
    if getattr(args, "json", False):
        print(json.dumps(rep))
    else:
        print(format_scores(rep))
    return 0


# ---- CLI ----------------------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate text from a language model, token by token, after a prompt.

    Sampling: --temperature, --top-k, --top-p, --repetition-penalty, --seed; --greedy takes the
    most likely token; --beam N prints the N best continuations with their log-probabilities.
    """
    from grutext.infer.generate import Generator

    gen = Generator.load(args.model)
    if args.beam:
        for text, score in gen.beam_search(
            args.prompt, beam=args.beam, max_tokens=args.max_tokens, n_best=args.n_best or args.beam, stop=args.stop
        ):
            shown = (args.prompt + text).replace("\n", "\\n")  # one line per continuation
            print(f"{score:9.3f}  {shown}")
        return 0
    opts = dict(
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        greedy=args.greedy,
        repetition_penalty=args.repetition_penalty,
        stop=args.stop,
        seed=args.seed,
    )
    sys.stdout.write(args.prompt)
    for piece in gen.stream(args.prompt, **opts):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def cmd_next_word(args: argparse.Namespace) -> int:
    """Suggest the k most likely next words after a prompt, with probabilities; a prompt that ends
    inside a word (no trailing space) gets completions of that word."""
    from grutext.infer.suggest import Suggester

    sug = Suggester.load(args.model)
    rows = sug.suggest(args.prompt, k=args.k)
    if args.json:
        print(json.dumps([{"word": w, "probability": p} for w, p in rows], ensure_ascii=False))
    else:
        for w, p in rows:
            print(f"{p:7.4f}  {w}")
    return 0


def register_cli(sub: Any, add: Callable[[str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]) -> None:
    """Add `generate` and `next-word` to the grutext command."""
    p = add("generate", cmd_generate)
    p.add_argument("model", help="language model directory")
    p.add_argument("--prompt", required=True, help="text to continue")
    p.add_argument("--max-tokens", type=int, default=50)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--greedy", action="store_true", help="always the most likely token")
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--beam", type=int, default=0, help="beam search with this width (prints n-best)")
    p.add_argument("--n-best", type=int, default=None, help="with --beam: how many continuations (default: beam)")
    p.add_argument("--stop", action="append", default=None, help="stop when this token/text is generated (repeatable)")
    p.add_argument("--seed", type=int, default=None)

    p = add("next-word", cmd_next_word)
    p.add_argument("model", help="language model directory")
    p.add_argument("--prompt", required=True, help="the text typed so far")
    p.add_argument("-k", type=int, default=5, help="number of suggestions (default 5)")
    p.add_argument("--json", action="store_true")


__all__ = [
    "LMConfig",
    "LMBatches",
    "LanguageModelTask",
    "TrainedLanguageModel",
    "read_corpus",
    "expand_paths",
    "build_lm_tokenizer",
    "encode_stream",
    "train_language_model",
    "save_language_model",
    "score_stream",
    "evaluate_language_model",
    "evaluate_language_model_cli",
    "check_language_model",
    "lm_settings",
    "register_cli",
    "stream_loss",
]
