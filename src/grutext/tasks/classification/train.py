"""Train a classifier, end to end: data -> tokenizer -> batches -> model (one network or an ensemble,
optionally started from another model directory) -> fit -> scores -> model directory. The CLI, the
estimator, the demo and the benchmarks all call `train_classifier`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from grutext.artifact import save_model
from grutext.config import Config, ModelConfig, resolve_epochs
from grutext.data.embeddings import AUTO, resolve_pretrained
from grutext.data.prepared import is_prepared
from grutext.data.readers import check_labels
from grutext.data.tokenizers import Tokenizer
from grutext.ngrams import JSON_FILE, WEIGHTS_FILE, NgramModel
from grutext.tasks.classification.baseline import comparison_line, fit_baseline, size_advice
from grutext.tasks.classification.blend import fit_blend
from grutext.tasks.classification.config import KIND, infer_task
from grutext.tasks.classification.data import Splits, build_tokenizer, load_splits, make_batches
from grutext.tasks.classification.evaluate import ClassificationTask
from grutext.tasks.classification.model import EnsembleClassifier, TextClassifier
from grutext.tasks.classification.predict import predict_batches
from grutext.tasks.classification.prepared import (
    PreparedSplit,
    load_prepared_splits,
    prepared_config,
    prepared_data_config,
)
from grutext.train.checkpoint import previous_folder
from grutext.train.loop import FitResult, fit
from grutext.train.metrics import format_confusions, format_per_class, nll
from grutext.train.run import Run, finish_run, seed_everything, start_run
from grutext.train.trace import plot_confusion, plot_curves, track


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
    baseline: dict[str, Any] | None = None  # the TF-IDF + logistic regression scores (None: train.baseline off)
    ngrams: NgramModel | None = None  # the n-gram model blended in (None: model.blend off, or weight 0)
    blend: dict[str, Any] | None = None  # how the blend was chosen and the network's own scores (None: off)


def pretrained_matrix(
    cfg: Config, tokenizer: Tokenizer, log: Callable[..., None] = print
) -> tuple[np.ndarray, dict[str, Any]]:
    """The embedding matrix of `cfg.model.pretrained` vectors for `tokenizer`'s vocabulary, and its coverage."""
    from grutext.data.embeddings import build_embedding_matrix, load_vectors

    assert cfg.model.pretrained is not None  # the caller checks
    words, vectors = load_vectors(cfg.model.pretrained)
    matrix, report = build_embedding_matrix(tokenizer, words, vectors, seed=cfg.train.seed)
    log(
        f"embeddings: {cfg.model.pretrained}, {vectors.shape[1]}-d, {report['found']:,}/{report['vocab_size']:,} "
        f"vocabulary entries found ({report['coverage']:.1%})"
    )
    return matrix, report


@dataclass
class _Setup:
    """What every member of one run shares: data, labels, tokenizer, shapes, the transfer source."""

    cfg: Config
    run: Run
    splits: Splits
    task: str
    labels: list[str]
    tokenizer: Tokenizer
    model_cfg: ModelConfig
    matrix: np.ndarray | None = None
    emb_report: dict[str, Any] | None = None
    source: Any = None

    def batches(self, ds: Any, batch_size: int, shuffle: bool, seed: int = 0) -> Any:
        if isinstance(ds, PreparedSplit):  # rows read from the memory maps batch by batch
            return ds.batches(self.labels, self.task, self.cfg.data, batch_size, shuffle, seed)
        return make_batches(self.tokenizer, ds, self.labels, self.task, self.cfg.data, batch_size, shuffle, seed)


def _transfer_source(cfg: Config, splits: Splits, member: int, log: Callable[..., None]) -> Any:
    """`model.init_from` read for `member`, its vocabulary grown with this corpus when `model.pretrained`."""
    from grutext.tasks.classification.transfer import load_transfer_source

    assert cfg.model.init_from is not None  # the caller checks
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


def _prepare(cfg: Config, splits: Splits | None, run: Run) -> _Setup:
    """Read the data, train (or inherit) the tokenizer, fill in the model's shape; logs the summary."""
    log = run.log
    if cfg.model.pretrained == AUTO:  # vectors for a fresh embedding of the default size, when installed
        chosen, note = resolve_pretrained(None if cfg.model.init_from else AUTO)
        if chosen is not None and cfg.model.embed_dim != ModelConfig().embed_dim:
            chosen, note = (
                None,
                (
                    f"embeddings: random, {cfg.model.embed_dim}-d (pretrained = auto uses {chosen} only when "
                    f"embed_dim is left at its default; pass --pretrained {chosen} to use it)"
                ),
            )
        cfg = replace(cfg, model=replace(cfg.model, pretrained=chosen))
        if note:
            log(note)
    cfg, splits = _read_splits(cfg, splits, log)
    task = infer_task(splits.train, cfg.model.task)  # a PreparedSplit has what it reads (classes, multilabel)
    t0 = time.perf_counter()
    if isinstance(splits.train, PreparedSplit):
        labels, source = splits.train.names, None
        tokenizer = splits.train.corpus.tokenizer()
    else:
        labels = check_labels(splits.train)
        source = _transfer_source(cfg, splits, 0, log) if cfg.model.init_from else None
        tokenizer = source.tokenizer if source is not None else build_tokenizer(splits.train.texts, cfg.data)
    valid = splits.valid
    oov = valid.oov_rate(2000) if isinstance(valid, PreparedSplit) else tokenizer.oov_rate(valid.texts[:2000])
    _log_data(splits, task, labels, log)
    advice = size_advice(len(splits.train))
    if advice:
        log(advice)
    kind = f"{tokenizer.kind} (from init_from)" if source else cfg.data.tokenizer
    if isinstance(splits.train, PreparedSplit):
        kind = f"{tokenizer.kind} (from {cfg.data.train})"
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
    return _Setup(cfg, run, splits, task, labels, tokenizer, model_cfg, matrix, emb_report, source)


def _read_splits(cfg: Config, splits: Splits | None, log: Callable[..., None]) -> tuple[Config, Splits]:
    """The given splits, else those `cfg.data` names: a prepared corpus (`grutext prepare`) mapped, with the
    settings that need raw texts switched off (`prepared_config`), else the files read."""
    if splits is not None:
        return cfg, splits
    if cfg.data.train and is_prepared(cfg.data.train):
        cfg, notes = prepared_config(cfg)
        for note in notes:
            log(note)
        splits = load_prepared_splits(cfg.data, seed=cfg.train.seed)
        assert isinstance(splits.train, PreparedSplit)
        return replace(cfg, data=prepared_data_config(cfg.data, splits.train.corpus)), splits
    return cfg, load_splits(cfg.data, seed=cfg.train.seed)


def _log_data(splits: Splits, task: str, labels: list[str], log: Callable[..., None]) -> None:
    """The data summary: split sizes, classes, the columns chosen, how the splits were made."""
    log(
        f"data: train {len(splits.train):,}  valid {len(splits.valid):,}  "
        f"test {len(splits.test) if splits.test else 0:,}  classes {len(labels)} ({task})"
    )
    cols = splits.train.columns
    if cols is not None:
        log(f"  columns: text {cols[0]!r}, label {cols[1]!r} (--text-col / --label-col choose others)")
    else:
        log(f"  text and labels: from {splits.train.source} (not a table: no columns to choose)")
    for note in splits.notes:
        log(f"  {note}")


def _log_model(s: _Setup, member: TextClassifier, seed: int) -> None:
    m, n = s.model_cfg, s.cfg.model.ensemble
    s.run.log(
        f"model: {s.cfg.model.cell} x{m.num_layers}{' bidirectional' if m.bidirectional else ''}, "
        f"hidden {m.hidden_size}, embed {m.embed_dim}, pooling {m.pooling}, "
        f"{sum(p.numel() for p in member.parameters()):,} parameters"
        + (f" (x{n} ensemble members, seeds {s.cfg.train.seed}..{seed + n - 1})" if n > 1 else "")
    )


def _train_member(
    s: _Setup,
    k: int,
    valid_b: Any,
    resume: bool,
    progress: bool | None,
    verbose: bool,
    on_epoch_end: Callable[[dict[str, Any]], Any] | None = None,
) -> tuple[TextClassifier, FitResult]:
    """Member k of the run (the whole model when ``ensemble = 1``): built, maybe transferred, fitted."""
    n, log = s.cfg.model.ensemble, s.run.log
    seed = s.cfg.train.seed + k
    if k > 0:  # member 0 is exactly the single model that ensemble = 1 trains
        seed_everything(seed)
    member = TextClassifier.from_config(replace(s.model_cfg, ensemble=1), embedding_weights=s.matrix)
    if k == 0:
        _log_model(s, member, seed)
    if n > 1:
        log(f"\nensemble member {k + 1}/{n} (seed {seed})")
    if s.source is not None:
        if k > 0 and s.source.members > 1:  # an ensemble source: member k starts from its member k mod M
            s.source = _transfer_source(s.cfg, s.splits, k, log)
        copied = s.source.copy_into(member, s.labels if s.cfg.model.keep_head else None)
        if k == 0 or s.source.members > 1:
            kept = "kept" if copied["head"] else "pooling" if copied["pooling"] else ""
            log(f"{s.source.describe(kept)}; {copied['parameters']:,} parameters copied")
    ckpt = s.run.checkpoint
    member_ckpt = ckpt if (ckpt is None or n == 1) else ckpt / f"member-{k}"
    member_resume = resume and (
        k == 0
        or (
            member_ckpt is not None
            and ((member_ckpt / "state.json").is_file() or (previous_folder(member_ckpt) / "state.json").is_file())
        )
    )
    train_b = s.batches(s.splits.train, s.cfg.train.batch_size, shuffle=True, seed=seed)
    ctask = ClassificationTask(s.task, s.labels)
    epochs = resolve_epochs(s.cfg.train.epochs, len(train_b))
    if k == 0 and s.cfg.train.epochs == 0:
        log(f"epochs: auto, {epochs} at most ({len(train_b)} steps a pass; patience {s.cfg.train.patience})")
    result = fit(
        member, ctask, train_b, valid_b, replace(s.cfg.train, seed=seed, epochs=epochs),
        checkpoint_dir=member_ckpt, resume=member_resume, progress=progress, verbose=verbose,
        on_epoch_end=on_epoch_end,
    )  # fmt: skip
    return member, result


def _combine(members: list[TextClassifier], fits: list[FitResult]) -> tuple[Any, FitResult]:
    """One network as it is; several as an `EnsembleClassifier` with their traces joined."""
    if len(members) == 1:
        return members[0], fits[0]
    result = FitResult(
        history=[dict(row, member=k) for k, f in enumerate(fits) for row in f.history],
        best_epoch=fits[0].best_epoch,
        best_value=fits[0].best_value,
        stopped_early=any(f.stopped_early for f in fits),
        train_seconds=sum(f.train_seconds for f in fits),
    )
    return EnsembleClassifier(members), result


def _network_probs(
    s: _Setup, model: Any, valid_b: Any, verbose: bool, progress: bool | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """The network's `(probabilities, labels, loss)` on the validation split and, when labelled, the test split."""
    device = next(model.parameters()).device
    progress = progress if verbose else False
    out = {}
    probs, y, loss = predict_batches(model, track(valid_b, desc="validation", enabled=progress), device)
    assert y is not None  # validation batches are labelled
    out["valid"] = (probs, y, loss)
    test = s.splits.test
    if test is not None and test.labels is not None:
        test_b = s.batches(test, max(s.cfg.train.batch_size, 128), shuffle=False)
        probs, y, loss = predict_batches(model, track(test_b, desc="test", enabled=progress), device)
        assert y is not None  # test.labels is set
        out["test"] = (probs, y, loss)
    return out


def _blend(
    s: _Setup, net: dict[str, tuple[np.ndarray, np.ndarray, float]]
) -> tuple[NgramModel | None, dict[str, Any] | None, dict[str, tuple[np.ndarray, np.ndarray, float]]]:
    """The n-gram model blended in (``model.blend``), its record for metrics.json, and the blended
    `(probabilities, labels, loss)` per split (the network's own when the blend is off or weighs 0)."""
    ctask = ClassificationTask(s.task, s.labels)
    vp, vy, _ = net["valid"]
    t0 = time.perf_counter()
    ngram, info = fit_blend(s.cfg.model.blend, s.splits.train, s.splits.valid, vp, vy, ctask)
    if info is None:
        return None, None, net
    texts = {"valid": s.splits.valid.texts, "test": s.splits.test.texts if s.splits.test else []}
    out = {}
    for split, (p, y, loss) in net.items():
        info[f"network_{split}"] = {"accuracy": float(ctask.report(p, y)["accuracy"]), "loss": loss}
        if ngram is not None:
            p = ngram.blend(p, texts[split])
            loss = nll(p, y, s.task)
        out[split] = (p, y, loss)
    info["seconds"] = round(time.perf_counter() - t0, 3)
    net_acc, temps = 100 * info["network_valid"]["accuracy"], info["temperatures"]
    s.run.log(
        f"blend: n-gram model weight {info['weight']:.2f} (validation: network {net_acc:.1f}%, "
        f"n-grams {100 * info['ngram_valid_accuracy']:.1f}%; temperatures {temps['network']:.2f} and "
        f"{temps['ngrams']:.2f}; {info['ngrams']:,} n-grams, {info['seconds']:.1f}s)"
    )
    return ngram, info, out


def _score(
    s: _Setup, probs: dict[str, tuple[np.ndarray, np.ndarray, float]], verbose: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Validation and (when labelled) test reports of the trained model; prints the test scores
    (above `MAX_MATRIX_CLASSES` classes the most frequent confusions instead of the matrix)."""
    ctask = ClassificationTask(s.task, s.labels)
    reports: dict[str, dict[str, Any]] = {}
    for split, (p, y, loss) in probs.items():
        reports[split] = ctask.report(p, y)
        reports[split]["loss"] = loss
    test_report = reports.get("test")
    if test_report is None:
        return reports["valid"], None
    s.run.log(
        f"\ntest: accuracy {test_report['accuracy']:.4f}  macro-F1 {test_report['macro_f1']:.4f}  "
        f"(n={test_report['n']:,})"
    )
    if verbose and s.task != "multilabel":
        s.run.log(format_per_class(test_report))
        s.run.log(format_confusions(test_report["confusion_matrix"], s.labels))
    return reports["valid"], test_report


def _baseline(s: _Setup, valid_report: dict[str, Any], test_report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The TF-IDF + logistic regression baseline on the same splits (None when `train.baseline` is off),
    logged beside the model's score on the test split (the validation split when there is no test)."""
    if not s.cfg.train.baseline:
        return None
    test = s.splits.test if s.splits.test is not None and s.splits.test.labels is not None else None
    base = fit_baseline(s.splits.train, s.splits.valid, test, s.task, s.labels)
    split, mine = ("test", test_report) if base["test"] is not None else ("valid", valid_report)
    s.run.log(f"{comparison_line(base, mine, split)}; baseline fitted in {base['seconds']:.1f}s")
    return base


def _save(
    s: _Setup,
    model: Any,
    result: FitResult,
    fits: list[FitResult],
    reports: tuple[Any, Any],
    baseline: dict[str, Any] | None = None,
    blend: tuple[NgramModel | None, dict[str, Any] | None] = (None, None),
) -> None:
    """The model directory: weights, tokenizer, config, labels, metrics, plots and the blended n-gram
    model, written whole."""
    valid_report, test_report = reports
    cfg = s.cfg
    metrics: dict[str, Any] = {
        "history": result.history,
        "best_epoch": result.best_epoch,
        "monitor": cfg.train.monitor,
        "best_value": result.best_value,
        "train_seconds": result.train_seconds,
        "valid": valid_report,
        "test": test_report,
        "embeddings": s.emb_report,
    }
    if baseline is not None:
        metrics["baseline"] = baseline
    ngram, blend_info = blend
    if blend_info is not None:
        metrics["blend"] = blend_info
    if len(fits) > 1:
        metrics["members"] = [
            {
                "seed": cfg.train.seed + k,
                "best_epoch": f.best_epoch,
                "best_value": f.best_value,
                "epochs": len(f.history),
            }
            for k, f in enumerate(fits)
        ]
    extra: dict[str, Callable[[Path], Any]] = {"curves.png": lambda p: plot_curves(result.history, p)}
    final = test_report or valid_report
    if s.task != "multilabel":
        extra["confusion.png"] = lambda p: plot_confusion(final["confusion_matrix"], s.labels, p)
    if ngram is not None:
        extra[JSON_FILE] = ngram.save_json
        extra[WEIGHTS_FILE] = ngram.save_weights
    assert s.run.out is not None
    save_model(s.run.out, model, s.tokenizer, cfg, kind=KIND, labels=s.labels, metrics=metrics, extra=extra)
    s.run.log(f"saved: {s.run.out}/ (config.json, tokenizer.json, model.safetensors, metrics.json, curves.png)")
    finish_run(s.run, keep_checkpoint=cfg.train.keep_checkpoint)


def train_classifier(
    cfg: Config,
    *,
    splits: Splits | None = None,
    save: bool = True,
    resume: bool = False,
    verbose: bool = True,
    progress: bool | None = None,
    on_epoch_end: Callable[[dict[str, Any]], Any] | None = None,
) -> TrainedClassifier:
    """Train a text classifier from a config and (optionally) save its model directory.

    Args:
        cfg: the run's Config (validated here).
        splits: datasets to use instead of reading `cfg.data`.
        save: write the model directory to `cfg.train.out`.
        resume: continue from the checkpoint next to `cfg.train.out`.
        verbose: print the data summary, epoch table and test metrics.
        progress: force the live progress line on/off.
        on_epoch_end: called with each epoch's row (``val_accuracy``, ``val_loss``, ...) of every
            member; an exception it raises (a pruned search trial) ends the run.

    Returns:
        TrainedClassifier.
    """
    cfg.validate()
    s = _prepare(cfg, splits, start_run(cfg.train, save=save, verbose=verbose, kind=KIND, resume=resume))
    valid_b = s.batches(s.splits.valid, max(s.cfg.train.batch_size, 128), shuffle=False)
    members, fits = [], []
    for k in range(s.cfg.model.ensemble):  # one network, or an ensemble's members one after another
        member, result = _train_member(s, k, valid_b, resume, progress, verbose, on_epoch_end)
        members.append(member)
        fits.append(result)
    model, result = _combine(members, fits)
    ngram, blend_info, probs = _blend(s, _network_probs(s, model, valid_b, verbose, progress))
    valid_report, test_report = _score(s, probs, verbose)
    model.cpu().eval()
    baseline = _baseline(s, valid_report, test_report)
    if s.run.out is not None:
        _save(s, model, result, fits, (valid_report, test_report), baseline, (ngram, blend_info))
    return TrainedClassifier(
        model, s.tokenizer, s.cfg, s.labels, result, valid_report, test_report, s.run.out, s.emb_report,
        fits if len(fits) > 1 else [], baseline, ngram, blend_info,
    )  # fmt: skip


__all__ = ["TrainedClassifier", "pretrained_matrix", "train_classifier"]
