"""Task adapters for `fit`: how a batch becomes a loss and how a validation set is scored."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from grutext.train.loop import StepOut
from grutext.train.metrics import classification_report, multilabel_report


def predict_batches(
    model: torch.nn.Module, batches: Iterable[dict[str, Any]], device: torch.device | None = None
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Run a classifier over batches, restoring the original order.

    Returns:
        `(probs (N, C), labels (N,) or (N, C) or None, mean loss or nan)`.
    """
    device = device or next(model.parameters()).device
    probs, labels, index = [], [], []
    loss_sum, n = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in batches:
            ids = batch["ids"].to(device)
            y = batch.get("labels")
            logits, loss = model(ids, batch["lengths"], None if y is None else y.to(device))
            probs.append(model.probabilities(logits).float().cpu())
            index.append(batch["index"])
            if y is not None:
                labels.append(y.cpu())
                loss_sum += float(loss) * len(ids)
                n += len(ids)
    model.train(was_training)
    order = torch.argsort(torch.cat(index))
    p = torch.cat(probs)[order].numpy()
    y_all = torch.cat(labels)[order].numpy() if labels else None
    return p, y_all, (loss_sum / n if n else float("nan"))


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

    def epoch_metrics(self, mean_loss: float, correct: float | None, items: int) -> dict[str, float]:
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
        rep = self.report(probs, y)
        return {"val_loss": loss, "val_accuracy": rep["accuracy"], "val_macro_f1": rep["macro_f1"]}
