"""Predictor: a loaded classifier that turns texts into labels and probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grutext.artifact import LoadedModel, load_model
from grutext.data.readers import TextDataset
from grutext.errors import DataError
from grutext.tasks import CLASSIFICATION, require_task


class Predictor:
    """Classify texts with a saved model.

    Example:
        >>> p = Predictor.load("runs/demo-bbc")            # doctest: +SKIP
        >>> p.predict(["Shares rally as profits beat forecasts"])[0]["label"]   # doctest: +SKIP
        'business'
    """

    def __init__(self, loaded: LoadedModel, batch_size: int = 128) -> None:
        require_task(loaded, CLASSIFICATION, f"{loaded.path}: is a {loaded.kind}, not a classifier")
        self.loaded = loaded
        self.batch_size = batch_size

    @classmethod
    def load(cls, directory: str | Path, batch_size: int = 128) -> Predictor:
        return cls(load_model(directory), batch_size=batch_size)

    @property
    def labels(self) -> list[str]:
        return self.loaded.labels

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Args:
            texts: strings.

        Returns:
            `(N, C)` probabilities, columns in `labels` order.
        """
        from grutext.tasks.classification.data import make_batches
        from grutext.tasks.classification.predict import predict_batches

        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise DataError(f"text {i}: expected a non-empty string, got {t!r:.40}")
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        cfg = self.loaded.config
        ds = TextDataset(texts, None, "input")
        batches = make_batches(
            self.loaded.tokenizer, ds, None, cfg.model.task, cfg.data, self.batch_size, shuffle=False
        )
        probs, _, _ = predict_batches(self.loaded.model, batches)
        return np.asarray(self.loaded.blend(probs, texts), dtype=np.float32)

    def predict(self, texts: Sequence[str], threshold: float = 0.5) -> list[dict[str, Any]]:
        """Label and probabilities for each text.

        Returns:
            One dict per text: `{"text", "label", "probability", "probabilities": {label: p}}`;
            multi-label models give `"labels"` (all with p >= threshold) instead of one label.
        """
        probs = self.predict_proba(texts)
        out = []
        multilabel = self.loaded.config.model.task == "multilabel"
        for text, p in zip(texts, probs, strict=True):
            row: dict[str, Any] = {"text": text}
            if multilabel:
                row["labels"] = [self.labels[j] for j in np.flatnonzero(p >= threshold)]
            else:
                j = int(p.argmax())
                row["label"] = self.labels[j]
                row["probability"] = float(p[j])
            row["probabilities"] = {lab: round(float(v), 6) for lab, v in zip(self.labels, p, strict=True)}
            out.append(row)
        return out
