"""Classification loss and metrics: the `fit` adapter (loss, accuracy, validation scores) and the
evaluation of a saved classifier on a labelled dataset."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from grutext.errors import DataError
from grutext.tasks.classification.data import make_batches
from grutext.tasks.classification.predict import predict_batches
from grutext.train.loop import StepOut
from grutext.train.metrics import classification_report, multilabel_report, nll
from grutext.train.trace import track

if TYPE_CHECKING:
    from grutext.artifact import LoadedModel
    from grutext.data.readers import TextDataset


class ClassificationTask:
    """Binary, multiclass or multilabel classification with a `TextClassifier`."""

    def __init__(self, task: str, labels: list[str]) -> None:
        self.task = task
        self.labels = labels

    def step(self, model: torch.nn.Module, batch: dict[str, Any]) -> StepOut:
        logits, loss = model(batch["ids"], batch["lengths"], batch["labels"])
        with torch.no_grad():
            y = batch["labels"]
            if self.task == "binary":
                correct = float(((logits > 0).long() == y).sum())
            elif self.task == "multilabel":
                correct = float(((logits > 0) == y.bool()).all(1).sum())
            else:
                correct = float((logits.argmax(-1) == y).sum())
        return StepOut(loss=loss, tokens=int(batch["lengths"].sum()), items=len(y), correct=correct)

    def epoch_metrics(self, mean_loss: float, correct: float | None, items: int) -> dict[str, float | None]:
        return {"loss": mean_loss, "accuracy": (correct / max(items, 1)) if correct is not None else None}

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Class indices `(N,)` (or `(N, C)` 0/1 for multilabel) from probabilities."""
        if self.task == "multilabel":
            return (probs >= 0.5).astype(np.int64)
        return probs.argmax(-1)

    def report(self, probs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        pred = self.decide(probs)
        if self.task == "multilabel":
            return multilabel_report(y, pred, self.labels)
        return classification_report(y, pred, self.labels)

    def evaluate(self, model: torch.nn.Module, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        probs, y, loss = predict_batches(model, batches)
        assert y is not None  # validation batches are labelled
        rep = self.report(probs, y)
        return {"val_loss": loss, "val_accuracy": rep["accuracy"], "val_macro_f1": rep["macro_f1"]}


def evaluate_classifier(
    loaded: LoadedModel, ds: TextDataset, batch_size: int = 128, progress: bool | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class scores and confusion matrix of a loaded model on `ds`.

    `progress`: progress through the batches (None: a bar on a terminal, a plain line every 30 s
    elsewhere; False: silent)."""
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
    probs, y, loss = predict_batches(loaded.model, track(batches, desc="evaluation", enabled=progress))
    assert y is not None  # labelled data
    if loaded.ngrams is not None:  # the blended model, as predict answers; the network's own figures kept
        network = ctask.report(probs, y)
        probs = loaded.blend(probs, ds.texts)
        loss, net_loss = nll(probs, y, ctask.task), loss
    rep = ctask.report(probs, y)
    rep["loss"] = loss
    if loaded.ngrams is not None:
        rep["network"] = {"accuracy": network["accuracy"], "macro_f1": network["macro_f1"], "loss": net_loss}
        rep["blend_weight"] = loaded.ngrams.weight
    return rep


__all__ = ["ClassificationTask", "evaluate_classifier", "predict_batches"]
