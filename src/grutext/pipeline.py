"""The classification pipeline, end to end: data -> tokenizer -> batches -> model -> fit ->
evaluate -> model directory. The CLI, the estimator, the demo and the benchmarks all call this."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import grutext.data.named as named
from grutext.artifact import LoadedModel, save_model
from grutext.config import Config, DataConfig
from grutext.data.batching import TextBatches
from grutext.data.readers import TextDataset, check_labels, load_named, read_dataset, split_sentences, train_test_split
from grutext.data.tokenizers import Tokenizer
from grutext.errors import ConfigError, DataError
from grutext.models.classifier import TextClassifier
from grutext.train.loop import FitResult, fit, seed_everything
from grutext.train.metrics import format_confusion, format_per_class
from grutext.train.tasks import ClassificationTask, predict_batches
from grutext.train.trace import plot_confusion, plot_curves

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


def infer_task(ds: TextDataset, requested: str) -> str:
    classes = ds.classes
    task = requested
    if requested == "auto":
        task = "multilabel" if ds.multilabel else ("binary" if len(classes) == 2 else "multiclass")
    if task == "multilabel" and not ds.multilabel:
        pass  # single labels trained as multi-label is allowed: each row has one positive
    if task == "binary" and len(classes) != 2:
        raise ConfigError(f"model.task 'binary' needs 2 classes; {ds.source} has {len(classes)}: {classes[:6]}")
    if task != "multilabel" and ds.multilabel:
        raise ConfigError(f"model.task {task!r}: {ds.source} has several labels per example; use 'multilabel'")
    return task


def label_tensor(ds: TextDataset, labels: list[str], task: str) -> torch.Tensor:
    """Labels as class indices `(N,)` or multi-hot `(N, C)` for multilabel."""
    index = {name: i for i, name in enumerate(labels)}
    assert ds.labels is not None
    if task == "multilabel":
        y = torch.zeros(len(ds), len(labels))
        for row, labs in enumerate(ds.labels):
            for lab in labs if isinstance(labs, list) else [labs]:
                y[row, index[lab]] = 1.0
        return y
    return torch.tensor([index[lab] for lab in ds.labels], dtype=torch.long)


def build_tokenizer(texts: list[str], d: DataConfig) -> Tokenizer:
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


@dataclass
class TrainedClassifier:
    """The result of `train_classifier`."""

    model: TextClassifier
    tokenizer: Tokenizer
    config: Config
    labels: list[str]
    fit: FitResult
    valid_report: dict[str, Any]
    test_report: dict[str, Any] | None
    out_dir: Path | None
    embedding_report: dict[str, Any] | None = None
    member_fits: list[FitResult] = field(default_factory=list)  # an ensemble's members' own results


def pretrained_matrix(cfg: Config, tokenizer: Tokenizer, log=print) -> tuple[np.ndarray, dict[str, Any]]:
    from grutext.data.embeddings import build_embedding_matrix, load_vectors

    words, vectors = load_vectors(cfg.model.pretrained)
    matrix, report = build_embedding_matrix(tokenizer, words, vectors, seed=cfg.train.seed)
    log(
        f"embeddings: {cfg.model.pretrained}, {vectors.shape[1]}-d, {report['found']:,}/{report['vocab_size']:,} "
        f"vocabulary entries found ({report['coverage']:.1%})"
    )
    return matrix, report


def train_classifier(
    cfg: Config,
    *,
    splits: Splits | None = None,
    save: bool = True,
    resume: bool = False,
    verbose: bool = True,
    progress: bool | None = None,
) -> TrainedClassifier:
    """Train a text classifier from a config and (optionally) save its model directory.

    Args:
        cfg: the run's Config (validated here).
        splits: datasets to use instead of reading `cfg.data`.
        save: write the model directory to `cfg.train.out`.
        resume: continue from the checkpoint next to `cfg.train.out`.
        verbose: print the data summary, epoch table and test metrics.
        progress: force the live progress line on/off.

    Returns:
        TrainedClassifier.
    """
    cfg.validate()
    log = print if verbose else (lambda *a, **k: None)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)
    splits = splits or load_splits(cfg.data, seed=cfg.train.seed)
    task = infer_task(splits.train, cfg.model.task)
    labels = check_labels(splits.train)
    t0 = time.perf_counter()
    n_members = cfg.model.ensemble

    def transfer_source(member: int):
        from grutext.models.transfer import load_transfer_source

        src = load_transfer_source(cfg.model.init_from, member=member)
        if cfg.model.pretrained:  # grow the source's vocabulary with this corpus's words, rows from the vectors
            grown = src.extend_vocabulary(
                splits.train.texts, cfg.model.pretrained, min_freq=cfg.data.min_freq, seed=cfg.train.seed
            )
            if member == 0:
                log(
                    f"vocabulary: {grown['added']:,} words of the training data added to {src.path}'s, "
                    f"{grown['from_vectors']:,} of them from {cfg.model.pretrained}"
                )
        return src

    source = None
    if cfg.model.init_from:  # transfer: tokenizer, embedding and encoder from a trained model directory
        source = transfer_source(0)
        tokenizer = source.tokenizer
    else:
        tokenizer = build_tokenizer(splits.train.texts, cfg.data)
    oov = tokenizer.oov_rate(splits.valid.texts[:2000])
    log(
        f"data: train {len(splits.train):,}  valid {len(splits.valid):,}  "
        f"test {len(splits.test) if splits.test else 0:,}  classes {len(labels)} ({task})"
    )
    for note in splits.notes:
        log(f"  {note}")
    kind = f"{tokenizer.kind} (from init_from)" if source else cfg.data.tokenizer
    log(
        f"tokenizer: {kind}, vocabulary {tokenizer.vocab_size:,}, validation OOV rate {oov:.2%}, "
        f"built in {time.perf_counter() - t0:.1f}s"
    )
    model_cfg = replace(cfg.model, task=task, vocab_size=tokenizer.vocab_size, num_classes=len(labels))
    matrix, emb_report = None, None
    if cfg.model.pretrained and source is None:
        matrix, emb_report = pretrained_matrix(cfg, tokenizer, log)
        model_cfg = replace(model_cfg, embed_dim=int(matrix.shape[1]))
    if source is not None:
        model_cfg = source.shape_config(model_cfg)
    cfg = replace(cfg, model=model_cfg)
    bs = cfg.train.batch_size
    valid_b = make_batches(tokenizer, splits.valid, labels, task, cfg.data, max(bs, 128), shuffle=False)
    ctask = ClassificationTask(task, labels)
    out = Path(cfg.train.out) if save else None
    ckpt = out.with_name(out.name + ".ckpt") if out is not None else None
    members, fits = [], []
    for k in range(n_members):  # one network, or an ensemble's members one after another
        seed = cfg.train.seed + k
        if k > 0:  # member 0 is exactly the single model that ensemble = 1 trains
            seed_everything(seed)
        member = TextClassifier.from_config(replace(model_cfg, ensemble=1), embedding_weights=matrix)
        if k == 0:
            log(
                f"model: {cfg.model.cell} x{model_cfg.num_layers}{' bidirectional' if model_cfg.bidirectional else ''}, "
                f"hidden {model_cfg.hidden_size}, embed {model_cfg.embed_dim}, pooling {model_cfg.pooling}, "
                f"{sum(p.numel() for p in member.parameters()):,} parameters"
                + (
                    f" (x{n_members} ensemble members, seeds {cfg.train.seed}..{seed + n_members - 1})"
                    if n_members > 1
                    else ""
                )
            )
        if n_members > 1:
            log(f"\nensemble member {k + 1}/{n_members} (seed {seed})")
        if source is not None:
            if k > 0 and source.members > 1:  # an ensemble source: member k starts from its member k mod M
                source = transfer_source(k)
            copied = source.copy_into(member, labels if cfg.model.keep_head else None)
            if k == 0 or source.members > 1:
                kept = "kept" if copied["head"] else "pooling" if copied["pooling"] else ""
                log(f"{source.describe(kept)}; {copied['parameters']:,} parameters copied")
        member_ckpt = ckpt if (ckpt is None or n_members == 1) else ckpt / f"member-{k}"
        member_resume = resume and (k == 0 or (member_ckpt / "state.json").is_file())
        train_b = make_batches(tokenizer, splits.train, labels, task, cfg.data, bs, shuffle=True, seed=seed)
        fits.append(
            fit(
                member,
                ctask,
                train_b,
                valid_b,
                replace(cfg.train, seed=seed),
                checkpoint_dir=member_ckpt,
                resume=member_resume,
                progress=progress,
                verbose=verbose,
            )
        )
        members.append(member)
    if n_members == 1:
        model, result = members[0], fits[0]
    else:
        from grutext.models.ensemble import EnsembleClassifier

        model = EnsembleClassifier(members)
        result = FitResult(
            history=[dict(row, member=k) for k, f in enumerate(fits) for row in f.history],
            best_epoch=fits[0].best_epoch,
            best_value=fits[0].best_value,
            stopped_early=any(f.stopped_early for f in fits),
            train_seconds=sum(f.train_seconds for f in fits),
        )
    device = next(model.parameters()).device
    probs, y, vloss = predict_batches(model, valid_b, device)
    valid_report = ctask.report(probs, y)
    valid_report["loss"] = vloss
    test_report = None
    if splits.test is not None and splits.test.labels is not None:
        test_b = make_batches(tokenizer, splits.test, labels, task, cfg.data, max(bs, 128), shuffle=False)
        probs, y, tloss = predict_batches(model, test_b, device)
        test_report = ctask.report(probs, y)
        test_report["loss"] = tloss
        log(
            f"\ntest: accuracy {test_report['accuracy']:.4f}  macro-F1 {test_report['macro_f1']:.4f}  "
            f"(n={test_report['n']:,})"
        )
        if verbose and task != "multilabel":
            log(format_per_class(test_report))
            log(format_confusion(test_report["confusion_matrix"], labels))
    model.cpu().eval()
    if out is not None:
        metrics = {
            "history": result.history,
            "best_epoch": result.best_epoch,
            "monitor": cfg.train.monitor,
            "best_value": result.best_value,
            "train_seconds": result.train_seconds,
            "valid": valid_report,
            "test": test_report,
            "embeddings": emb_report,
        }
        if n_members > 1:
            metrics["members"] = [
                {
                    "seed": cfg.train.seed + k,
                    "best_epoch": f.best_epoch,
                    "best_value": f.best_value,
                    "epochs": len(f.history),
                }
                for k, f in enumerate(fits)
            ]
        extra = {"curves.png": lambda p: plot_curves(result.history, p)}
        final = test_report or valid_report
        if task != "multilabel":
            extra["confusion.png"] = lambda p: plot_confusion(final["confusion_matrix"], labels, p)
        save_model(out, model, tokenizer, cfg, kind="classifier", labels=labels, metrics=metrics, extra=extra)
        log(f"saved: {out}/ (config.json, tokenizer.json, model.safetensors, metrics.json, curves.png)")
    return TrainedClassifier(
        model, tokenizer, cfg, labels, result, valid_report, test_report, out, emb_report, fits if n_members > 1 else []
    )


def evaluate_classifier(loaded: LoadedModel, ds: TextDataset, batch_size: int = 128) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class scores and confusion matrix of a loaded model on `ds`."""
    if ds.labels is None:
        raise DataError(f"{ds.source}: evaluation needs labels, found none")
    labels = loaded.labels
    known = set(labels)
    unseen = sorted({lab for labs in ds.labels for lab in (labs if isinstance(labs, list) else [labs])} - known)
    if unseen:
        raise DataError(
            f"{ds.source}: labels not seen in training: {', '.join(map(repr, unseen[:5]))}"
            f" (model knows {', '.join(map(repr, labels[:8]))})"
        )
    task = loaded.config.model.task
    batches = make_batches(loaded.tokenizer, ds, labels, task, loaded.config.data, batch_size, shuffle=False)
    ctask = ClassificationTask(task, labels)
    probs, y, loss = predict_batches(loaded.model, batches)
    rep = ctask.report(probs, y)
    rep["loss"] = loss
    return rep


def print_report(rep: dict[str, Any], stream=sys.stdout) -> None:
    print(
        f"accuracy {rep['accuracy']:.4f}  macro-F1 {rep['macro_f1']:.4f}  loss {rep.get('loss', float('nan')):.4f}"
        f"  (n={rep['n']:,})",
        file=stream,
    )
    print(format_per_class(rep), file=stream)
    if "confusion_matrix" in rep:
        print(format_confusion(rep["confusion_matrix"], rep["labels"]), file=stream)
