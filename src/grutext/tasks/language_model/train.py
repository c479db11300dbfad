"""Train a language model, end to end: text files -> tokenizer -> one id stream -> truncated-BPTT
windows -> LanguageModel -> fit -> perplexity / bits per character -> model directory."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grutext.artifact import save_model
from grutext.config import Config, DataConfig
from grutext.data.prepared import PreparedCorpus, check_settings, is_prepared, open_prepared, prepared_task
from grutext.data.tokenizers import Tokenizer
from grutext.errors import ConfigError, DataError
from grutext.tasks.language_model.config import KIND, LN2, LMConfig, lm_config, perplexity
from grutext.tasks.language_model.data import (
    LMBatches,
    build_lm_tokenizer,
    encode_stream,
    named_corpus_splits,
    read_corpus,
)
from grutext.tasks.language_model.evaluate import LanguageModelTask, format_scores, score_stream
from grutext.tasks.language_model.model import LanguageModel, unigram_perplexity
from grutext.train.loop import FitResult, fit
from grutext.train.run import Run, finish_run, start_run


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


@dataclass
class _Corpus:
    """The run's text as lines (test optional) and, once encoded, as id streams."""

    train: list[str]
    valid: list[str] | None
    test: list[str] | None
    train_ids: torch.Tensor | np.ndarray | None = None  # numpy: a memmap of a prepared corpus
    valid_ids: torch.Tensor | np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    prepared: PreparedCorpus | None = None


def _read_lines(d: DataConfig, train: list[str] | None, valid: list[str] | None, test: list[str] | None) -> _Corpus:
    """The given lines, else the configured files (a named corpus brings its own valid and test)."""
    if train is None:
        if not d.train:
            raise ConfigError("data.train: expected a text file (or files) to train the language model on; got nothing")
        if is_prepared(d.train):  # `grutext prepare` output: ids memory-mapped, the tokenizer in the folder
            if prepared_task(d.train) != "lm":
                raise ConfigError(
                    f"{d.train}: prepared for a classifier (one labelled example a row), not a language model; "
                    "train it without --task lm, or prepare the text with `grutext prepare --task lm`"
                )
            if valid is None and d.valid:
                valid = read_corpus(d.valid, fmt=d.format, text_col=d.text_col)
            if test is None and d.test:
                test = read_corpus(d.test, fmt=d.format, text_col=d.text_col)
            return _Corpus([], valid, test, prepared=open_prepared(d.train))
        named = named_corpus_splits(d.train)  # a named corpus brings its own valid and test splits
        if named is not None:
            train = named["train"]
            valid = valid if valid is not None or d.valid else named.get("valid")
            test = test if test is not None or d.test else named.get("test")
        else:
            train = read_corpus(d.train, fmt=d.format, text_col=d.text_col)
    elif not any(t.strip() for t in train):
        raise DataError("train_lines: empty corpus, expected some text")
    if valid is None and d.valid:
        valid = read_corpus(d.valid, fmt=d.format, text_col=d.text_col)
    if test is None and d.test:
        test = read_corpus(d.test, fmt=d.format, text_col=d.text_col)
    return _Corpus(train, valid, test)


def _tokenize(d: DataConfig, lm: LMConfig, corpus: _Corpus) -> Tokenizer:
    """Train the tokenizer and encode train and valid (valid: the stream's tail when none is given)."""
    if corpus.prepared is not None:
        return _from_prepared(d, lm, corpus, corpus.prepared)
    tokenizer = build_lm_tokenizer(
        corpus.train,
        d.tokenizer,
        lowercase=d.lowercase if d.tokenizer != "char" else False,  # char models keep case
        min_freq=d.min_freq,
        max_size=d.max_vocab,
        bpe_vocab_size=d.bpe_vocab_size,
        word_split=lm.word_split,
        split_contractions=d.split_contractions,
    )
    train_ids = encode_stream(tokenizer, corpus.train, lm.add_eos, source=str(d.train or "train_lines"))
    if corpus.valid is not None:
        valid_ids = encode_stream(tokenizer, corpus.valid, lm.add_eos, source=str(d.valid or "valid_lines"))
    else:
        cut = int(round(train_ids.numel() * (1.0 - d.valid_fraction)))
        train_ids, valid_ids = train_ids[:cut], train_ids[cut:]  # the tail of the stream validates
        corpus.notes.append(
            f"valid: the last {d.valid_fraction:.0%} of the training stream ({valid_ids.numel():,} tokens)"
        )
    corpus.train_ids, corpus.valid_ids = train_ids, valid_ids
    return tokenizer


def _from_prepared(d: DataConfig, lm: LMConfig, corpus: _Corpus, prep: PreparedCorpus) -> Tokenizer:
    """A prepared corpus: its tokenizer, its memory-mapped ids (never loaded whole), valid encoded or its tail."""
    _check_prepared_settings(d, lm, prep)
    tokenizer = prep.tokenizer()
    source = str(prep.path)
    train_ids: np.ndarray = prep.tokens
    if corpus.valid is not None:
        valid_ids: torch.Tensor | np.ndarray = encode_stream(
            tokenizer, corpus.valid, prep.header["settings"]["add_eos"], source=str(d.valid or "valid_lines")
        )
    else:
        cut = int(round(prep.num_tokens * (1.0 - d.valid_fraction)))
        train_ids, valid_ids = prep.tokens[:cut], prep.tokens[cut:]  # memmap views
        corpus.notes.append(f"valid: the last {d.valid_fraction:.0%} of {source} ({len(valid_ids):,} tokens)")
    corpus.notes.append(f"train: {source}/ prepared, memory-mapped ({prep.num_tokens:,} tokens), read per batch")
    corpus.train_ids, corpus.valid_ids = train_ids, valid_ids
    return tokenizer


def _check_prepared_settings(d: DataConfig, lm: LMConfig, prep: PreparedCorpus) -> None:
    """A tokenizer flag given with a prepared corpus must agree with it (its ids are fixed)."""
    defaults, lm_defaults = DataConfig(), LMConfig()
    check_settings(
        prep,
        [
            ("tokenizer", d.tokenizer, defaults.tokenizer),
            ("min_freq", d.min_freq, defaults.min_freq),
            ("max_vocab", d.max_vocab, defaults.max_vocab),
            ("bpe_vocab_size", d.bpe_vocab_size, defaults.bpe_vocab_size),
            ("word_split", lm.word_split, lm_defaults.word_split),
            ("add_eos", lm.add_eos, None),
        ],
    )


def _unigram(corpus: _Corpus, vocab_size: int) -> float:
    """The add-one unigram baseline; for a prepared corpus from its stored counts (no pass over the tokens)."""
    train_ids, valid_ids = corpus.train_ids, corpus.valid_ids
    assert train_ids is not None and valid_ids is not None  # set by _tokenize
    if corpus.prepared is None:
        assert isinstance(train_ids, torch.Tensor) and isinstance(valid_ids, torch.Tensor)
        return unigram_perplexity(train_ids, valid_ids, vocab_size)
    counts = torch.from_numpy(corpus.prepared.unigram_counts()).double() + 1.0  # (V,) the whole prepared corpus
    logp = torch.log(counts / counts.sum())
    total, n = 0.0, 0
    for start in range(0, len(valid_ids), 1 << 20):  # the validation ids in chunks
        chunk = torch.as_tensor(np.asarray(valid_ids[start : start + (1 << 20)], dtype=np.int64))
        total += float(logp[chunk].sum())
        n += chunk.numel()
    return math.exp(-total / max(n, 1))


def _numel(ids: torch.Tensor | np.ndarray) -> int:
    return int(ids.shape[0])


def _eval_shape(lm: LMConfig, train_batch_size: int, valid_ids: torch.Tensor | np.ndarray) -> tuple[int, int]:
    """Streams and window length for validation: `LMConfig.eval_streams`, shrunk so a short text still scores."""
    eval_bs = max(1, min(lm.eval_streams(train_batch_size), _numel(valid_ids) // (lm.bptt + 1)))
    eval_bptt = max(1, min(lm.bptt, _numel(valid_ids) // eval_bs - 1))
    return eval_bs, eval_bptt


def _batches(cfg: Config, lm: LMConfig, corpus: _Corpus) -> tuple[LMBatches, LMBatches]:
    """Training windows (varied lengths, seeded) and validation windows of the two streams."""
    d = cfg.data
    assert corpus.train_ids is not None and corpus.valid_ids is not None  # set by _tokenize
    train_b = LMBatches(
        corpus.train_ids, cfg.train.batch_size, lm.bptt, vary_length=lm.vary_length, seed=cfg.train.seed,
        epoch_tokens=lm.epoch_tokens, source=str(d.train or "train_lines"),
    )  # fmt: skip
    eval_bs, eval_bptt = _eval_shape(lm, cfg.train.batch_size, corpus.valid_ids)
    valid_b = LMBatches(corpus.valid_ids, eval_bs, eval_bptt, source=str(d.valid or "validation stream"))
    return train_b, valid_b


def _validation_note(valid_b: LMBatches) -> str:
    """One line on how validation is scored and how that differs from the batch-1 figure."""
    b = valid_b.inner
    return (
        f"validation: {b.batch_size} parallel stream(s) x bptt {b.bptt}; each stream starts with no context, "
        "so its perplexity runs slightly above the batch-1 figure (the test is scored at batch 1)"
    )


def _build_model(cfg: Config, lm: LMConfig, tokenizer: Tokenizer, run: Run) -> tuple[Config, LanguageModel]:
    model_cfg = replace(cfg.model, vocab_size=tokenizer.vocab_size)
    cfg = replace(cfg, model=model_cfg)
    model = LanguageModel.from_config(
        model_cfg,
        input_dropout=lm.input_dropout,
        layer_dropout=lm.layer_dropout,
        weight_drop=lm.weight_drop,
        tie_weights=lm.tie_weights,
    )
    run.log(
        f"model: {model_cfg.cell} x{model_cfg.num_layers}, hidden {model_cfg.hidden_size}, embed {model_cfg.embed_dim}"
        f"{', tied' if model.tied else ''}, {sum(p.numel() for p in model.parameters()):,} parameters; "
        f"batch {cfg.train.batch_size} x bptt {lm.bptt}"
    )
    return cfg, model


def _valid_scores(result: FitResult, valid_b: LMBatches, char_level: bool) -> dict[str, float] | None:
    """The best epoch's validation figures (the weights `fit` left in the model), as `score_stream`
    gives them; None when the trace has none (then validation is scored again)."""
    row = next((r for r in result.history if r["epoch"] == result.best_epoch and "val_loss" in r), None)
    if row is None or row.get("member") is not None:
        return None
    loss = float(row["val_loss"])
    out: dict[str, float] = {"loss": loss, "tokens": float(valid_b.num_tokens)}
    if char_level:
        out.update(bpc=loss / LN2, nats_per_character=loss, bits_per_character=loss / LN2)
    else:
        out["perplexity"] = perplexity(loss)
    return out


def _score(
    model: LanguageModel,
    tokenizer: Tokenizer,
    cfg: Config,
    lm: LMConfig,
    corpus: _Corpus,
    run: Run,
    fitted: tuple[FitResult, LMBatches],
    progress: bool | None,
) -> tuple[dict[str, float], dict[str, float] | None]:
    """Validation (as validated during training: the best epoch's row) and test (batch 1, every token) scores."""
    d, char_level = cfg.data, tokenizer.kind == "char"
    result, valid_b = fitted
    valid = _valid_scores(result, valid_b, char_level)
    if valid is None:
        assert corpus.valid_ids is not None  # set by _tokenize
        eval_bs, eval_bptt = _eval_shape(lm, cfg.train.batch_size, corpus.valid_ids)
        valid_ids = corpus.valid_ids
        if isinstance(valid_ids, np.ndarray):  # the tail of a prepared corpus (scored in training, usually)
            valid_ids = torch.from_numpy(np.asarray(valid_ids, dtype=np.int64))
        valid = score_stream(
            model,
            valid_ids,
            char_level,
            batch_size=eval_bs,
            bptt=eval_bptt,
            progress=progress,
            desc="validation",
        )
    streams = valid_b.inner.batch_size
    run.log(f"\nvalid ({streams} parallel stream{'s' if streams > 1 else ''}): {format_scores(valid)}")
    test = None
    if corpus.test is not None:
        test_ids = encode_stream(tokenizer, corpus.test, lm.add_eos, source=str(d.test or "test_lines"))
        test = score_stream(model, test_ids, char_level, batch_size=1, bptt=lm.bptt, progress=progress, desc="test")
        run.log(f"test (batch 1, every token scored): {format_scores(test)}")
    return valid, test


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
    cfg = lm_config(cfg).validate()
    run = start_run(cfg.train, save=save, verbose=verbose, kind=KIND, resume=resume)
    corpus, tokenizer, unigram = _data(cfg.data, lm, run, (train_lines, valid_lines, test_lines))
    cfg, model = _build_model(cfg, lm, tokenizer, run)
    train_b, valid_b = _batches(cfg, lm, corpus)
    corpus.notes.append(_validation_note(valid_b))
    for note in corpus.notes:
        run.log(f"  {note}")
    task = LanguageModelTask(tokenizer.kind == "char")
    result = fit(
        model, task, train_b, valid_b, cfg.train, checkpoint_dir=run.checkpoint, resume=resume, progress=progress,
        verbose=verbose,
    )  # fmt: skip
    valid, test = _score(model, tokenizer, cfg, lm, corpus, run, (result, valid_b), progress if verbose else False)
    model.cpu().eval()
    if run.out is not None:
        _save(
            run, model, tokenizer, cfg, lm, result, {"valid": valid, "test": test, "unigram_valid_perplexity": unigram}
        )
    return TrainedLanguageModel(model, tokenizer, cfg, lm, result, valid, test, run.out, unigram, corpus.notes)


def _data(
    d: DataConfig, lm: LMConfig, run: Run, lines: tuple[list[str] | None, list[str] | None, list[str] | None]
) -> tuple[_Corpus, Tokenizer, float]:
    """The corpus read (the given train, valid and test `lines`, else the files) and encoded, its tokenizer,
    and the unigram validation perplexity; logs the data line."""
    corpus = _read_lines(d, *lines)
    t0 = time.perf_counter()
    tokenizer = _tokenize(d, lm, corpus)
    train_ids, valid_ids = corpus.train_ids, corpus.valid_ids
    assert train_ids is not None and valid_ids is not None  # set by _tokenize
    unigram = _unigram(corpus, tokenizer.vocab_size)
    run.log(
        f"data: train {_numel(train_ids):,} tokens, valid {_numel(valid_ids):,} tokens"
        f"{'' if corpus.test is None else ', test given'}; tokenizer {d.tokenizer}, vocabulary "
        f"{tokenizer.vocab_size:,} (built in {time.perf_counter() - t0:.1f}s); unigram valid perplexity {unigram:.1f}"
    )
    return corpus, tokenizer, unigram


def _save(
    run: Run,
    model: LanguageModel,
    tokenizer: Tokenizer,
    cfg: Config,
    lm: LMConfig,
    result: FitResult,
    scores: dict[str, Any],
) -> None:
    metrics = {
        "history": result.history,
        "best_epoch": result.best_epoch,
        "monitor": cfg.train.monitor,
        "best_value": result.best_value,
        "train_seconds": result.train_seconds,
        **scores,
    }
    assert run.out is not None
    save_language_model(run.out, model, tokenizer, cfg, lm, metrics=metrics)
    run.log(f"saved: {run.out}/ (config.json, tokenizer.json, model.safetensors, metrics.json, curves.png)")
    finish_run(run, keep_checkpoint=cfg.train.keep_checkpoint)


def save_language_model(
    out: str | Path,
    model: LanguageModel,
    tokenizer: Tokenizer,
    cfg: Config,
    lm: LMConfig,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a language model's directory in one step; LM settings go into config.json under ``"lm"``."""
    from grutext.train.trace import plot_curves

    history = (metrics or {}).get("history") or []
    extra = {"curves.png": lambda p: plot_curves(history, p)} if history else None
    return save_model(out, model, tokenizer, cfg, kind=KIND, metrics=metrics, extra=extra, meta={"lm": asdict(lm)})


__all__ = ["TrainedLanguageModel", "save_language_model", "train_language_model"]
