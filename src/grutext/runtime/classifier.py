"""`ClassifierModel`: an exported classifier run on texts (batched by length)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grutext.errors import ArtifactError, ConfigError
from grutext.runtime.manifest import MANIFEST
from grutext.runtime.model import RuntimeModel, _check_texts
from grutext.runtime.tokenizer import TRUNCATIONS, UNK, truncate


class ClassifierModel(RuntimeModel):
    """An exported classifier (one network or an ensemble's averaged probabilities)."""

    kind = "classifier"

    def __init__(self, path: Path, info: dict[str, Any], threads: int | None, int8: bool, batch_size: int = 64) -> None:
        super().__init__(path, info, threads, int8)
        pre = info.get("preprocess") or {}
        self.max_len: int | None = pre.get("max_len")
        self.truncation: str = pre.get("truncation", "head")
        if self.truncation not in TRUNCATIONS:
            raise ArtifactError(f"{path / MANIFEST}: truncation {self.truncation!r} is not one of {list(TRUNCATIONS)}")
        self.task: str = info.get("task", "multiclass")
        self.threshold: float = float((info.get("postprocess") or {}).get("multilabel_threshold", 0.5))
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids as training made them: tokenized, an empty text one ``<unk>``, truncated."""
        return [truncate(ids or [UNK], self.max_len, self.truncation) for ids in self.tokenizer.encode_batch(texts)]

    def run_ids(self, seqs: list[list[int]]) -> np.ndarray:
        """`(N, C)` probabilities of id lists, batched by length (order kept)."""
        n = len(seqs)
        if n == 1:  # one text: no sorting or padding to do
            ids = np.array(seqs, dtype=np.int64)  # (1, T)
            return np.asarray(self.session.run(["probs"], {"ids": ids, "lengths": np.array([ids.shape[1]])})[0])
        out = np.zeros((n, len(self.labels)), dtype=np.float32)
        order = sorted(range(n), key=lambda i: len(seqs[i]))
        for start in range(0, n, self.batch_size):
            rows = order[start : start + self.batch_size]
            T = max(len(seqs[i]) for i in rows)
            ids = np.zeros((len(rows), T), dtype=np.int64)
            for r, i in enumerate(rows):
                ids[r, : len(seqs[i])] = seqs[i]
            lengths = np.array([len(seqs[i]) for i in rows], dtype=np.int64)
            out[rows] = self.session.run(["probs"], {"ids": ids, "lengths": lengths})[0]
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """`(N, C)` probabilities, columns in `labels` order (binary: two columns)."""
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.run_ids(self.encode(texts))

    def predict(self, texts: Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]:
        """Each text's ``{"label": str, "probs": {label: float}}``.

        ``probs`` holds every class in `labels` order; with `top_k`, only the k most likely,
        most likely first. Multi-label models add ``"labels"``: every class with probability
        >= the exported threshold (``label`` is then the most likely one).
        """
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ConfigError(f"top_k: expected an integer >= 1 or None, got {top_k!r}")
        probs = self.predict_proba(texts)
        out = []
        for p in probs:
            j = int(p.argmax())
            if top_k is None:
                shown = {lab: float(v) for lab, v in zip(self.labels, p, strict=True)}
            else:
                top = np.argsort(-p, kind="stable")[:top_k]
                shown = {self.labels[i]: float(p[i]) for i in top}
            row: dict[str, Any] = {"label": self.labels[j], "probs": shown}
            if self.task == "multilabel":
                row["labels"] = [self.labels[i] for i in np.flatnonzero(p >= self.threshold)]
            out.append(row)
        return out


__all__ = ["ClassifierModel"]
