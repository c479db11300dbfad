"""Train a tagger, end to end: CoNLL/JSONL files -> vocabularies -> batches -> BiGRU-CRF -> fit ->
conlleval scores -> model directory. The CLI (`grutext train FILE --task tag`) calls `train_tagger`."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grutext.artifact import save_model
from grutext.config import Config
from grutext.data.conll import TaggedCorpus
from grutext.data.tokenizers import Tokenizer
from grutext.errors import ConfigError
from grutext.tasks.tagging.config import KIND, NO_SCHEME, SECTION, TagConfig, tagger_config
from grutext.tasks.tagging.data import (
    Encoder,
    TagBatches,
    TagVocab,
    build_vocab,
    build_word_tokenizer,
    carve,
    read_tagged,
)
from grutext.tasks.tagging.evaluate import TaggingTask, predict_tags, score
from grutext.tasks.tagging.model import Tagger
from grutext.train.loop import FitResult, fit
from grutext.train.run import Run, finish_run, start_run


@dataclass
class TrainedTagger:
    """The result of `train_tagger`: the model, what it was built from, its fit and its scores."""

    model: Tagger
    tokenizer: Tokenizer
    config: Config
    tag_config: TagConfig
    vocab: TagVocab
    fit: FitResult
    valid_scores: dict[str, Any]
    test_scores: dict[str, Any] | None
    out_dir: Path | None


def _read(cfg: Config, tag_cfg: TagConfig) -> tuple[TaggedCorpus, TaggedCorpus, TaggedCorpus | None]:
    """Train, validation (data.valid, else data.valid_fraction carved) and optional test corpora."""
    if not cfg.data.train:
        raise ConfigError("data.train: a CoNLL or JSONL training file is required (grutext train FILE --task tag)")
    full = read_tagged(cfg.data.train, tag_cfg)
    scheme = full.scheme  # the test and validation files are read in the training file's scheme
    if cfg.data.valid:
        train, valid = full, read_tagged(cfg.data.valid, tag_cfg, scheme=scheme)
    else:
        train, valid = carve(full, cfg.data.valid_fraction, cfg.train.seed)
    test = read_tagged(cfg.data.test, tag_cfg, scheme=scheme) if cfg.data.test else None
    return train, valid, test


def _pretrained(cfg: Config, tokenizer: Tokenizer, model: Tagger, log: Any) -> None:
    """Copy `model.pretrained` vectors into the word embedding (the vocabulary's coverage is logged)."""
    import torch

    from grutext.tasks.classification.train import pretrained_matrix

    matrix, _ = pretrained_matrix(cfg, tokenizer, log)
    if matrix.shape[1] != model.embedding.embedding_dim:
        raise ConfigError(
            f"model.embed_dim: {model.embedding.embedding_dim}, but the pretrained vectors have {matrix.shape[1]} "
            f"dimensions; pass --embed-dim {matrix.shape[1]}"
        )
    with torch.no_grad():
        model.embedding.weight.copy_(torch.from_numpy(matrix))
    model.embedding.weight.requires_grad_(not cfg.model.freeze_embeddings)


def _summary(name: str, rep: dict[str, Any]) -> str:
    if "f1" in rep:
        return (
            f"{name}: chunk F1 {100 * rep['f1']:.2f}  precision {100 * rep['precision']:.2f}  "
            f"recall {100 * rep['recall']:.2f}  token accuracy {100 * rep['accuracy']:.2f}"
        )
    return f"{name}: token accuracy {100 * rep['accuracy']:.2f}"


def _jsonable(rep: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if rep is None else {k: v for k, v in rep.items() if k != "scores"}


def train_tagger(
    cfg: Config,
    tag_cfg: TagConfig | None = None,
    *,
    save: bool = True,
    verbose: bool = True,
    progress: bool | None = None,
    resume: bool = False,
    corpora: tuple[TaggedCorpus, TaggedCorpus, TaggedCorpus | None] | None = None,
) -> TrainedTagger:
    """Train a sequence tagger on ``cfg.data.train`` (CoNLL columns or JSONL) and save its model directory.

    Chunk tags (IOB1, IOB2, BIOES) are learnt in BIOES and scored in the file's scheme, exactly as
    conlleval does; validation chunk F1 picks the best epoch. Plain labels (POS) are learnt as they are
    and scored by token accuracy.

    Args:
        cfg: the run's `Config` (data.train/valid/test files; model sizes; training settings).
        tag_cfg: the tagger's own settings (columns, scheme, decoder, character encoder).
        save: write ``cfg.train.out`` (a checkpoint folder beside it during training).
        verbose: print the data, the epoch table and the scores.
        progress: force the live progress line on/off.
        resume: continue from the checkpoint beside ``cfg.train.out``.
        corpora: train, validation and optional test corpora already read (the estimator's lists);
            ``cfg.data.train``/``valid``/``test`` are not read then.

    Returns:
        `TrainedTagger`.
    """
    tag_cfg = (tag_cfg or TagConfig()).check()
    run = start_run(cfg.train, save=save, verbose=verbose, kind=KIND, resume=resume)
    train, valid, test = corpora if corpora is not None else _read(cfg, tag_cfg)
    cfg = tagger_config(cfg, train.scheme)
    cfg, tokenizer, vocab = _vocabularies(cfg, tag_cfg, (train, valid, test), run.log)
    encoder = Encoder(tokenizer, vocab)
    bs = cfg.train.batch_size
    train_b = TagBatches(encoder.encode_corpus(train), bs, shuffle=True, seed=cfg.train.seed)
    valid_b = TagBatches(encoder.encode_corpus(valid), max(bs, 128))
    cfg, model = _build_model(cfg, tag_cfg, vocab, tokenizer, run.log)
    t0 = time.perf_counter()
    result = fit(
        model,
        TaggingTask(vocab),
        train_b,
        valid_b,
        cfg.train,
        checkpoint_dir=run.checkpoint,
        resume=resume,
        progress=progress,
        verbose=verbose,
    )
    valid_scores, test_scores = _evaluate(model, encoder, (valid_b, valid, test), run.log)
    seconds = time.perf_counter() - t0
    trained = TrainedTagger(model, tokenizer, cfg, tag_cfg, vocab, result, valid_scores, test_scores, run.out)
    if run.out is not None:
        _save(run, trained, seconds)
    return trained


def _vocabularies(
    cfg: Config, tag_cfg: TagConfig, corpora: tuple[TaggedCorpus, TaggedCorpus, TaggedCorpus | None], log: Any
) -> tuple[Config, Tokenizer, TagVocab]:
    """The tag and character vocabularies and the word tokenizer of the training corpus, their sizes set in the
    model config; logs the first reading warnings and the data line."""
    train, valid, test = corpora
    for w in (train.warnings + valid.warnings + (test.warnings if test else []))[:5]:
        log(f"warning: {w}")
    vocab = build_vocab(train, tag_cfg)
    tokenizer = build_word_tokenizer(
        train.tokens, lowercase=cfg.data.lowercase, min_freq=cfg.data.min_freq, max_vocab=cfg.data.max_vocab
    )
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=tokenizer.vocab_size, num_classes=len(vocab.tags)))
    scheme_note = "" if vocab.file_scheme == NO_SCHEME else f", learnt in {vocab.train_scheme}"
    log(
        f"data: {len(train):,} train / {len(valid):,} validation / {len(test) if test else 0:,} test sentences; "
        f"{vocab.file_scheme} tags{scheme_note} ({len(vocab.tags)}); {tokenizer.vocab_size:,} words, "
        f"{len(vocab.chars):,} characters"
    )
    return cfg, tokenizer, vocab


def _build_model(
    cfg: Config, tag_cfg: TagConfig, vocab: TagVocab, tokenizer: Tokenizer, log: Any
) -> tuple[Config, Tagger]:
    """The tagger, its word embedding pretrained when `model.pretrained` names vectors; logs its shape."""
    model = Tagger.from_config(cfg.model, tag_cfg, vocab)
    if cfg.model.pretrained == "auto":  # a classifier default; the tagger's embedding stays random unless named
        cfg = replace(cfg, model=replace(cfg.model, pretrained=None))
    if cfg.model.pretrained:
        _pretrained(cfg, tokenizer, model, log)
    log(
        f"model: {tag_cfg.char_encoder} characters, {cfg.model.num_layers}x bidirectional {cfg.model.cell} "
        f"{cfg.model.hidden_size}, "
        f"{tag_cfg.decoder} ({sum(p.numel() for p in model.parameters()):,} parameters); monitor {cfg.train.monitor}"
    )
    return cfg, model


def _evaluate(
    model: Tagger, encoder: Encoder, data: tuple[TagBatches, TaggedCorpus, TaggedCorpus | None], log: Any
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Validation and (when given) test scores in the file's scheme, with their losses; logs each."""
    valid_b, valid, test = data
    vocab = encoder.vocab
    pred, loss = predict_tags(model, valid_b, vocab)
    valid_scores = score([list(s.tags) for s in valid], pred, vocab.file_scheme)
    valid_scores["loss"] = loss
    log(_summary("validation", valid_scores))
    test_scores = None
    if test is not None:
        pred, loss = predict_tags(model, TagBatches(encoder.encode_corpus(test), 128), vocab)
        test_scores = score([list(s.tags) for s in test], pred, vocab.file_scheme)
        test_scores["loss"] = loss
        log(_summary("test", test_scores))
    return valid_scores, test_scores


def _save(run: Run, trained: TrainedTagger, seconds: float) -> None:
    """The model directory (the model moved to the CPU), its metrics and tagger settings; the run finished."""
    assert run.out is not None  # the caller checks
    cfg, result = trained.config, trained.fit
    metrics = {
        "history": result.history,
        "best_epoch": result.best_epoch,
        "monitor": cfg.train.monitor,
        "train_seconds": result.train_seconds,
        "seconds": seconds,
        "valid": _jsonable(trained.valid_scores),
        "test": _jsonable(trained.test_scores),
    }
    save_model(
        run.out,
        trained.model.cpu(),
        trained.tokenizer,
        cfg,
        kind=KIND,
        metrics=metrics,
        meta={SECTION: {**trained.tag_config.to_dict(), **trained.vocab.to_dict()}},
    )
    run.log(f"saved {run.out}")
    finish_run(run, keep_checkpoint=cfg.train.keep_checkpoint)


__all__ = ["TrainedTagger", "train_tagger"]
