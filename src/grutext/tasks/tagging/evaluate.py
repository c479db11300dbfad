"""Tagging loss and metrics: the `fit` adapter (loss; validation loss, token accuracy and chunk F1 as
conlleval computes it, in the file's scheme) and the evaluation of a saved tagger on a CoNLL/JSONL file."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from grutext.tasks.tagging.config import NO_SCHEME, TagConfig
from grutext.tasks.tagging.data import Encoder, TagBatches, TagVocab, read_tagged
from grutext.train.chunk_metrics import chunk_scores
from grutext.train.loop import StepOut

if TYPE_CHECKING:
    from grutext.artifact import LoadedModel


@torch.no_grad()
def predict_tags(model: torch.nn.Module, batches: Iterable[dict[str, Any]], vocab: TagVocab) -> tuple[list, float]:
    """Predicted tags per sentence (in the file's scheme, batch order) and the mean loss per batch
    (NaN when the batches carry no tags)."""
    if model.training:  # (eval() walks every submodule: a tenth of a millisecond per call)
        model.eval()
    device = next(model.parameters()).device
    preds: list[list[str]] = []
    loss_sum, n = 0.0, 0
    for batch in batches:
        batch = {k: (v.to(device) if isinstance(v, torch.Tensor) and k != "lengths" else v) for k, v in batch.items()}
        em = model.emissions(batch)  # type: ignore[operator]
        if "tags" in batch:
            loss_sum += float(model.loss(em, batch))  # type: ignore[operator]
            n += 1
        for path in model.decode(em, batch["lengths"]):  # type: ignore[operator]
            preds.append(vocab.to_file([vocab.tags[i] for i in path]))
    return preds, (loss_sum / n if n else float("nan"))


def score(gold: list[list[str]], pred: list[list[str]], scheme: str, mode: str = "conlleval") -> dict[str, Any]:
    """Token accuracy, and for chunk tags the conlleval chunk scores (overall and per type)."""
    if scheme == NO_SCHEME:
        total = sum(len(g) for g in gold)
        correct = sum(a == b for g, p in zip(gold, pred, strict=True) for a, b in zip(g, p, strict=True))
        return {"accuracy": correct / max(total, 1), "tokens": total}
    s = chunk_scores(gold, pred, mode=mode)  # type: ignore[arg-type]
    out = s.to_dict()
    out["chunk_confusion"] = chunk_confusion(gold, pred)
    out.update({"accuracy": s.accuracy, "f1": s.f1, "precision": s.overall.precision, "recall": s.overall.recall})
    out["scores"] = s
    return out


NO_CHUNK = "(none)"  # the confusion's row/column for a chunk without a same-span partner


def chunk_confusion(gold: list[list[str]], pred: list[list[str]]) -> dict[str, Any]:
    """A confusion matrix of chunk types by exact span (chunks read as conlleval reads them).

    A gold chunk and a predicted chunk with the same start and end count in cell [gold type,
    predicted type]; a gold chunk with no predicted chunk of that span counts in [type, (none)]
    (missed, or its boundaries wrong), a predicted chunk with no gold chunk of that span in
    [(none), type]. The diagonal is conlleval's correct chunks per type.

    Returns:
        ``{"labels": [types..., "(none)"], "matrix": [[int]]}``, rows gold, columns predicted.
    """
    from grutext.data.tag_schemes import spans

    cells: dict[tuple[str, str], int] = {}
    types: set[str] = set()
    for g, p in zip(gold, pred, strict=True):
        gs = {(a, b): t for t, a, b in spans(g)}
        ps = {(a, b): t for t, a, b in spans(p)}
        types.update(gs.values(), ps.values())
        for key, t in gs.items():
            cell = (t, ps.get(key, NO_CHUNK))
            cells[cell] = cells.get(cell, 0) + 1
        for key, t in ps.items():
            if key not in gs:
                cells[(NO_CHUNK, t)] = cells.get((NO_CHUNK, t), 0) + 1
    labels = [*sorted(types), NO_CHUNK]
    matrix = [[cells.get((r, c), 0) for c in labels] for r in labels]
    return {"labels": labels, "matrix": matrix}


class TaggingTask:
    """The `fit` adapter of a tagger: the model's own loss; validation scores in the file's scheme."""

    def __init__(self, vocab: TagVocab) -> None:
        self.vocab = vocab

    def step(self, model: torch.nn.Module, batch: dict[str, Any]) -> StepOut:
        loss = model(batch)
        lengths = batch["lengths"]
        tokens = int(lengths.sum())
        # the count the loss is a mean over: sentences (CRF), tokens (softmax); weights distributed gradients
        weight = None if getattr(model, "crf", None) is not None else float(tokens)
        return StepOut(loss=loss, tokens=tokens, items=len(lengths), weight=weight)

    def epoch_metrics(self, mean_loss: float, correct: float | None, items: int) -> dict[str, float | None]:
        return {"loss": mean_loss}

    def evaluate(self, model: torch.nn.Module, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        batches = list(batches)  # read twice (gold, then predictions); `fit` may hand a one-pass iterator
        gold: list[list[str]] = []
        for b in batches:
            gold += [list(g) for g in b["gold"]]
        pred, loss = predict_tags(model, batches, self.vocab)
        rep = score(gold, pred, self.vocab.file_scheme)
        row = {"val_loss": loss, "val_accuracy": rep["accuracy"]}
        if "f1" in rep:
            row["val_chunk_f1"] = rep["f1"]
        return row


def evaluate_tagger(
    loaded: LoadedModel, path: str, *, tag_col: Any = None, mode: str = "conlleval", batch_size: int = 128
) -> dict[str, Any]:
    """Scores of a saved tagger on a CoNLL or JSONL file with gold tags (read with the model's columns).

    Returns:
        ``accuracy`` (token), ``loss``, and for chunk tags ``f1``, ``precision``, ``recall``,
        ``overall``/``per_type`` counts (conlleval's numbers in the model's file scheme) and
        ``scores`` (a `ChunkScores`, for `conlleval_report`; not JSON).
    """
    tag_cfg = TagConfig.from_meta(loaded.meta)
    vocab = TagVocab.from_meta(loaded.meta)
    if tag_col is not None:
        from grutext.tasks.tagging.config import column

        tag_cfg.tag_col = column(tag_col)
    corpus = read_tagged(path, tag_cfg, scheme=vocab.file_scheme)
    items = Encoder(loaded.tokenizer, vocab).encode_corpus(corpus)
    pred, loss = predict_tags(loaded.model, TagBatches(items, batch_size), vocab)
    rep = score([list(s.tags) for s in corpus], pred, vocab.file_scheme, mode)
    rep["loss"] = loss
    rep["sentences"] = len(corpus)
    rep["scheme"] = vocab.file_scheme
    if corpus.warnings:
        rep["warnings"] = list(corpus.warnings)
    return rep


__all__ = ["NO_CHUNK", "TaggingTask", "chunk_confusion", "evaluate_tagger", "predict_tags", "score"]
