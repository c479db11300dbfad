"""`ClassifierModel`: an exported classifier run on texts (batched by length), its probabilities
blended with the n-gram model's when the export has one (as the torch `Predictor` does)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grutext.errors import ArtifactError, ConfigError
from grutext.ngrams import FILES as NGRAM_FILES
from grutext.ngrams import JSON_FILE as NGRAM_JSON
from grutext.ngrams import NgramModel
from grutext.runtime.manifest import MANIFEST
from grutext.runtime.model import RuntimeModel, _check_texts
from grutext.runtime.tokenizer import TRUNCATIONS, UNK, truncate


class ClassifierModel(RuntimeModel):
    """An exported classifier (one network or an ensemble's averaged probabilities), blended with its
    n-gram model when the export carries one (``ngrams``; None: the network alone)."""

    kind = "classifier"
    optional_files = NGRAM_FILES

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
        self.ngrams = _load_ngrams(path, info)

    @property
    def blend_weight(self) -> float | None:
        """The n-gram model's share of the probabilities (None: the network alone)."""
        return None if self.ngrams is None else self.ngrams.weight

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
        """`(N, C)` probabilities, columns in `labels` order (binary: two columns); blended with the
        n-gram model's when the export has one."""
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        probs = self.run_ids(self.encode(texts))
        if self.ngrams is None:
            return probs
        return np.asarray(self.ngrams.blend(probs, texts), dtype=np.float32)

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


def _load_ngrams(path: Path, info: dict[str, Any]) -> NgramModel | None:
    """The n-gram model the manifest lists (its files already checked against their sha256), else None."""
    if NGRAM_JSON not in (info.get("files") or {}):
        return None
    try:
        ngrams = NgramModel.load(path)
    except ImportError as exc:
        raise ArtifactError(
            f"{path / NGRAM_JSON}: a blended export needs safetensors (pip install safetensors) ({exc})"
        ) from None
    except ValueError as exc:
        raise ArtifactError(str(exc)) from None
    if ngrams is None:  # pragma: no cover - the file check before found it
        raise ArtifactError(f"{path / NGRAM_JSON}: missing; the export folder is incomplete")
    labels = info.get("labels") or []
    if ngrams.num_classes != len(labels):
        raise ArtifactError(f"{path / NGRAM_JSON}: {ngrams.num_classes} classes, the export has {len(labels)} labels")
    return ngrams


__all__ = ["ClassifierModel"]
