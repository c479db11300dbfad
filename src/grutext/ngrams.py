"""The wide half of a blended classifier: TF-IDF of word 1-2 grams and a linear layer.

A classifier's probabilities are, by default, a blend of its network's and of this linear model's
(``model.blend``): the network reads word order and pretrained meaning, the n-gram model sees
every word of a long text and is hard to beat on small data (Wang & Manning 2012, "Baselines and
Bigrams"; the wide-and-deep idea of Cheng et al. 2016, here as a blend of two calibrated models).

This module is NumPy only (no torch, no scikit-learn), so the torch-free runtime and the server
score it exactly as training did. Fitting uses scikit-learn (`NgramModel.fit`); the transform is
written out here and matches scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2),
sublinear_tf=True)`` to float precision (tested): lower-case, tokens ``(?u)\\b\\w\\w+\\b``, word
uni- and bigrams, ``1 + log(tf)`` times the idf, L2-normalised per text.

Before they are averaged, both models are calibrated on the validation split by temperature
scaling (`fit_temperature`): a network stopped early is over-confident and an L2-regularised linear
model under-confident, and an average of uncalibrated probabilities lets the louder model decide.

Files in a model directory: ``ngrams.json`` (vocabulary, output kind, blend weight, the two
temperatures, settings) and ``ngrams.safetensors`` (idf, coef, intercept).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

JSON_FILE = "ngrams.json"
WEIGHTS_FILE = "ngrams.safetensors"
FILES = (JSON_FILE, WEIGHTS_FILE)
# scikit-learn's token_pattern is r"(?u)\b\w\w+\b"; for findall, maximal runs of 2+ word characters are the same
# tokens (a run starts and ends at a word boundary by definition), and the pattern without \b runs ~1.5x faster
TOKEN = re.compile(r"\w\w+")
OUTPUTS = ("binary", "softmax", "sigmoid")  # one logit (2 classes), C logits (multiclass), C labels (multi-label)

# the fit's settings: scikit-learn's TF-IDF + logistic regression; min_df and max_features bound the
# file (IMDB's 1-2 grams number 1.5 M; those seen once carry little and cost 4 bytes per class each)
SETTINGS: dict[str, Any] = {
    "ngram_range": [1, 2],
    "sublinear_tf": True,
    "min_df": 2,
    "max_features": 200_000,
    "C": 10.0,
}


def ngrams(text: str) -> list[str]:
    """The word 1- and 2-grams of `text` as scikit-learn's vectorizer forms them (lower-cased)."""
    tokens = TOKEN.findall(text.lower())
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0))))


class NgramModel:
    """TF-IDF word 1-2 grams -> linear layer -> probabilities, with the weight it has in the blend.

    Args:
        vocabulary: the n-grams, in feature order.
        idf: `(F,)` inverse document frequencies.
        coef: `(K, F)` weights (K = 1 for `output` "binary").
        intercept: `(K,)`.
        output: "binary", "softmax" or "sigmoid" (multi-label).
        weight: the linear model's share of the blended probabilities, in [0, 1].
        temperature: divides this model's logits (fitted on validation: calibration).
        network_temperature: divides the network's log-probabilities before they are blended.
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        output: str,
        weight: float = 0.5,
        settings: dict[str, Any] | None = None,
        temperature: float = 1.0,
        network_temperature: float = 1.0,
    ) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}")
        self.vocabulary = list(vocabulary)
        self.index = {g: i for i, g in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float32)
        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.output = output
        self.weight = float(weight)
        self.temperature = float(temperature)
        self.network_temperature = float(network_temperature)
        if not (self.temperature > 0.0 and self.network_temperature > 0.0):
            raise ValueError(f"n-gram model: temperatures must be > 0; got {temperature} and {network_temperature}")
        self.settings = dict(settings or SETTINGS)
        n = len(self.vocabulary)
        if self.idf.shape != (n,) or self.coef.ndim != 2 or self.coef.shape[1] != n:
            raise ValueError(f"n-gram model: {n} n-grams but idf {self.idf.shape} and coef {self.coef.shape}")
        if self.intercept.shape != (self.coef.shape[0],):
            raise ValueError(f"n-gram model: coef {self.coef.shape} but intercept {self.intercept.shape}")

    @property
    def num_classes(self) -> int:
        return 2 if self.output == "binary" else int(self.coef.shape[0])

    # ---- fitting (scikit-learn)
    @classmethod
    def fit(
        cls, texts: Sequence[str], targets: np.ndarray, task: str, settings: dict[str, Any] | None = None
    ) -> NgramModel:
        """Fit on training `texts`: `targets` are class indices `(N,)`, or 0/1 `(N, C)` for ``task == "multilabel"``."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        s = dict(SETTINGS, **(settings or {}))
        vec = TfidfVectorizer(
            ngram_range=tuple(s["ngram_range"]),
            sublinear_tf=s["sublinear_tf"],
            min_df=s["min_df"] if len(texts) >= 50 else 1,  # a tiny corpus keeps every n-gram
            max_features=s["max_features"],
            dtype=np.float32,
        )
        x = vec.fit_transform(list(texts))
        vocabulary = [""] * len(vec.vocabulary_)
        for gram, i in vec.vocabulary_.items():
            vocabulary[i] = gram
        if task == "multilabel":
            coefs, intercepts = [], []
            for c in range(targets.shape[1]):
                col = targets[:, c]
                if col.min() == col.max():  # a label always on or always off: a constant logit
                    coefs.append(np.zeros(x.shape[1], dtype=np.float32))
                    intercepts.append(30.0 if col[0] else -30.0)
                    continue
                lr = LogisticRegression(C=s["C"], max_iter=1000).fit(x, col)
                coefs.append(lr.coef_[0])
                intercepts.append(float(lr.intercept_[0]))
            return cls(vocabulary, vec.idf_, np.stack(coefs), np.asarray(intercepts), "sigmoid", settings=s)
        lr = LogisticRegression(C=s["C"], max_iter=1000).fit(x, targets)
        output = "binary" if lr.coef_.shape[0] == 1 else "softmax"
        if output == "softmax" and lr.coef_.shape[0] != int(targets.max()) + 1:
            raise ValueError("n-gram model: every class must occur in the training split")
        return cls(vocabulary, vec.idf_, lr.coef_, lr.intercept_, output, settings=s)

    # ---- scoring (NumPy)
    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's TF-IDF row as `(feature indices, L2-normalised values)` (empty when no n-gram is known)."""
        counts = Counter(map(self.index.get, ngrams(text)))  # counted in C; None: unknown n-grams
        counts.pop(None, None)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        n = len(counts)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=n)
        tf = np.fromiter(counts.values(), dtype=np.float32, count=n)
        val = (np.log(tf) + np.float32(1.0)) * self.idf[idx]
        return idx, val / np.float32(np.sqrt(float(val @ val)))

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """`(N, K)` linear scores (K = 1 for binary)."""
        out = np.empty((len(texts), self.coef.shape[0]), dtype=np.float32)
        for r, text in enumerate(texts):
            idx, val = self.features(text)
            out[r] = self.coef[:, idx] @ val + self.intercept
        return out

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """`(N, C)` class probabilities (multi-label: each label's own probability)."""
        z = self.logits(texts) / np.float32(self.temperature)
        if self.output == "binary":
            p1 = _sigmoid(z[:, 0])
            return np.stack([1.0 - p1, p1], axis=1).astype(np.float32)
        return (_softmax(z) if self.output == "softmax" else _sigmoid(z)).astype(np.float32)

    def blend(self, network_probs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """``(1 - weight) * network + weight * n-gram`` probabilities of `texts`, each model calibrated
        by its temperature (the network's probabilities as given, scaled here)."""
        if self.weight == 0.0:
            return network_probs
        network = temper(network_probs, self.network_temperature, self.output)
        return np.asarray((1.0 - self.weight) * network + self.weight * self.probabilities(texts))

    # ---- files
    def save(self, folder: str | Path) -> None:
        """Write ``ngrams.json`` and ``ngrams.safetensors`` into `folder`."""
        self.save_json(Path(folder) / JSON_FILE)
        self.save_weights(Path(folder) / WEIGHTS_FILE)

    def save_json(self, path: str | Path) -> None:
        """The vocabulary, output kind, weight and settings as JSON at `path`."""
        meta = {
            "format": 1,
            "output": self.output,
            "weight": self.weight,
            "temperature": self.temperature,
            "network_temperature": self.network_temperature,
            "settings": self.settings,
            "vocabulary": self.vocabulary,
        }
        Path(path).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    def save_weights(self, path: str | Path) -> None:
        """idf, coef and intercept as safetensors at `path`."""
        from safetensors.numpy import save_file

        tensors = {"idf": self.idf, "coef": self.coef, "intercept": self.intercept}
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))

    @classmethod
    def load(cls, folder: str | Path) -> NgramModel | None:
        """The model saved in `folder`, or None when it has no ``ngrams.json`` (a network alone).

        Raises:
            ValueError: the files are incomplete or do not fit together (the message names the file).
        """
        from safetensors.numpy import load_file

        folder = Path(folder)
        if not (folder / JSON_FILE).is_file():
            return None
        if not (folder / WEIGHTS_FILE).is_file():
            raise ValueError(f"{folder / WEIGHTS_FILE}: missing (the folder has {JSON_FILE})")
        try:
            meta = json.loads((folder / JSON_FILE).read_text(encoding="utf-8"))
            t = load_file(str(folder / WEIGHTS_FILE))
            return cls(
                meta["vocabulary"],
                t["idf"],
                t["coef"],
                t["intercept"],
                meta["output"],
                meta["weight"],
                meta.get("settings"),
                float(meta.get("temperature", 1.0)),  # files written before calibration: 1.0
                float(meta.get("network_temperature", 1.0)),
            )
        except (KeyError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{folder / JSON_FILE}: not a readable n-gram model ({exc})") from None


EPS = 1e-7
TEMPERATURES = np.exp(np.linspace(-3.0, 3.0, 121))  # 0.05 .. 20, 5% apart


def temper(probs: np.ndarray, t: float, output: str) -> np.ndarray:
    """`probs` with their logits divided by `t`: ``softmax(log p / t)`` per row, or for ``"sigmoid"``
    (multi-label) ``sigmoid(logit(p) / t)`` per entry; `t` = 1 returns `probs` unchanged."""
    if t == 1.0:
        return probs
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0 - EPS)
    if output == "sigmoid":
        return _sigmoid(np.log(p / (1.0 - p)) / t).astype(np.float32)
    q = p ** (1.0 / t)  # softmax(log p / t), without the log and exp
    return (q / q.sum(axis=1, keepdims=True)).astype(np.float32)


def _nll(probs: np.ndarray, y: np.ndarray, output: str) -> float:
    p = np.clip(probs, EPS, 1.0 - EPS)
    if output == "sigmoid":
        return float(-(y * np.log(p) + (1 - y) * np.log(1.0 - p)).mean())
    return float(-np.log(p[np.arange(len(y)), y]).mean())


def fit_temperature(probs: np.ndarray, y: np.ndarray, output: str) -> float:
    """The temperature that minimises the negative log-likelihood of `y` under ``temper(probs, t)``
    (Guo et al. 2017, "On Calibration of Modern Neural Networks"), searched over `TEMPERATURES`.

    Args:
        probs: `(N, C)` probabilities (``"sigmoid"``: each label's own).
        y: `(N,)` class indices, or `(N, C)` 0/1 for ``"sigmoid"``.
        output: "binary", "softmax" or "sigmoid".
    """
    if len(y) == 0:
        return 1.0
    losses = [_nll(temper(probs, float(t), output), y, output) for t in TEMPERATURES]
    best = int(np.argmin(losses))
    return 1.0 if losses[best] >= _nll(probs, y, output) else round(float(TEMPERATURES[best]), 4)


def choose_weight(
    network_probs: np.ndarray, ngram_probs: np.ndarray, correct: Any, grid: int = 11
) -> tuple[float, list[tuple[float, float]]]:
    """The blend weight, picked on validation with the one-standard-error rule.

    Every weight of ``linspace(0, 1, grid)`` is scored by `correct(probs) -> accuracy`; of those
    within one standard error of the best (``sqrt(a (1 - a) / n)``, binomial) the one closest to 0.5
    is chosen: an even blend unless the validation split clearly says otherwise, because a
    few hundred validation examples cannot tell neighbouring weights apart and the equal average of
    two calibrated models is the safer bet (measured: benchmarks/defaults.py).

    Returns:
        `(weight, [(w, validation accuracy), ...])`.
    """
    n = len(network_probs)
    scores = []
    for w in np.linspace(0.0, 1.0, grid):
        scores.append((round(float(w), 4), float(correct((1.0 - w) * network_probs + w * ngram_probs))))
    best = max(a for _, a in scores)
    se = math.sqrt(max(best * (1.0 - best), 1e-12) / max(n, 1))
    near = [w for w, a in scores if a >= best - se]
    return min(near, key=lambda w: (abs(w - 0.5), w)), scores


__all__ = [
    "FILES",
    "JSON_FILE",
    "NgramModel",
    "OUTPUTS",
    "SETTINGS",
    "WEIGHTS_FILE",
    "choose_weight",
    "fit_temperature",
    "ngrams",
    "temper",
]
