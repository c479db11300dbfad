"""Classifier prediction: probabilities for batches of texts, in their original order (the
`grutext.infer.predict.Predictor` and evaluation both run through this)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

if TYPE_CHECKING:
    from grutext.tasks.classification.model import EnsembleClassifier, TextClassifier


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
            clf = cast("TextClassifier | EnsembleClassifier", model)
            probs.append(clf.probabilities(logits).float().cpu())
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


__all__ = ["predict_batches"]
