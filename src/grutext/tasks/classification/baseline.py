"""The linear baseline every classification report carries: TF-IDF of word 1-2 grams with
sublinear term frequency, then logistic regression (scikit-learn), fitted on the same training
split as the network and scored with the same metric functions on the same validation and test
splits. Multi-label data gets one logistic regression per label (one-vs-rest, threshold 0.5, as
the network's own decision).

It is how a user knows the GRU earns its keep: a bag-of-bigrams linear model is strong on short
texts and small data (Wang & Manning 2012, "Baselines and Bigrams").

The settings are fixed, not searched: ``C = 10`` is the reference issue 14 measured against, and
a search on the validation split would let the baseline see the split that picks the network's
best epoch twice as hard. Everything here is deterministic (lbfgs, no sampling).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from grutext.train.metrics import classification_report, multilabel_report

if TYPE_CHECKING:
    from grutext.data.readers import TextDataset

NAME = "tfidf+lr"
SETTINGS: dict[str, Any] = {
    "vectorizer": "TfidfVectorizer",
    "ngram_range": [1, 2],
    "sublinear_tf": True,
    "classifier": "LogisticRegression",
    "C": 10.0,
    "max_iter": 1000,
}
HEADLINE = ("accuracy", "macro_f1", "micro_f1")  # the figures kept per split (those the task's report has)
SMALL_DATA = 2_000  # fewer training examples: warn that the linear model may be the better choice
LARGE_DATA = 200_000  # more: say how to train on it fast


def _sklearn() -> Any:
    """The scikit-learn pieces (a core dependency of grutext; imported here, with the fit)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    return TfidfVectorizer, LogisticRegression, OneVsRestClassifier


def make_pipeline(multilabel: bool) -> tuple[Any, Any]:
    """An unfitted (vectorizer, classifier) pair with `SETTINGS`."""
    tfidf_cls, lr_cls, ovr_cls = _sklearn()
    vec = tfidf_cls(ngram_range=tuple(SETTINGS["ngram_range"]), sublinear_tf=SETTINGS["sublinear_tf"])
    lr = lr_cls(C=SETTINGS["C"], max_iter=SETTINGS["max_iter"])
    return vec, (ovr_cls(lr) if multilabel else lr)


def _targets(ds: TextDataset, labels: list[str], multilabel: bool) -> np.ndarray:
    index = {lab: i for i, lab in enumerate(labels)}
    assert ds.labels is not None  # the caller passes labelled splits
    if multilabel:
        y = np.zeros((len(ds), len(labels)), dtype=np.int64)
        for r, labs in enumerate(ds.labels):
            for lab in labs if isinstance(labs, list) else [labs]:
                y[r, index[str(lab)]] = 1
        return y
    return np.array([index[str(lab)] for lab in ds.labels], dtype=np.int64)


def _headline(rep: dict[str, Any]) -> dict[str, float | int]:
    out: dict[str, float | int] = {k: float(rep[k]) for k in HEADLINE if k in rep}
    out["n"] = int(rep["n"])
    return out


class Baseline:
    """A fitted TF-IDF + logistic regression on one training split (`fit`), scoring any labelled split."""

    def __init__(self, task: str, labels: list[str]) -> None:
        self.task = task
        self.labels = list(labels)
        self.multilabel = task == "multilabel"
        self.seconds = 0.0

    def fit(self, train: TextDataset) -> Baseline:
        t0 = time.perf_counter()
        self.vectorizer, self.classifier = make_pipeline(self.multilabel)
        x = self.vectorizer.fit_transform(train.texts)
        y = _targets(train, self.labels, self.multilabel)
        self.classifier.fit(x, y)
        self.seconds = time.perf_counter() - t0
        return self

    def predict(self, texts: list[str]) -> np.ndarray:
        """Class indices `(N,)`, or `(N, C)` 0/1 for multi-label."""
        return np.asarray(self.classifier.predict(self.vectorizer.transform(texts)))

    def report(self, ds: TextDataset) -> dict[str, Any]:
        """The task's report (as the network's: same metric functions) on labelled `ds`."""
        pred, y = self.predict(ds.texts), _targets(ds, self.labels, self.multilabel)
        if self.multilabel:
            return multilabel_report(y, pred, self.labels)
        return classification_report(y, pred, self.labels)

    def scores(self, ds: TextDataset | None) -> dict[str, float | int] | None:
        """The headline figures on `ds` (None when `ds` is None or unlabelled)."""
        if ds is None or ds.labels is None:
            return None
        return _headline(self.report(ds))


def fit_baseline(
    train: TextDataset, valid: TextDataset, test: TextDataset | None, task: str, labels: list[str]
) -> dict[str, Any]:
    """The `baseline` object of metrics.json: name, settings, headline scores on valid and test, seconds.

    ``seconds`` is the time to fit (vectorizer and classifier) on `train`.
    """
    b = Baseline(task, labels).fit(train)
    return {
        "name": NAME,
        "settings": dict(SETTINGS, one_vs_rest=b.multilabel),
        "train_examples": len(train),
        "valid": b.scores(valid),
        "test": b.scores(test),
        "seconds": round(b.seconds, 3),
    }


def comparison_line(baseline: dict[str, Any], model_scores: dict[str, Any] | None, split: str) -> str:
    """``baseline tfidf+lr 78.0%  ·  this model 80.3% (+2.3)`` on `split` (accuracy, points)."""
    base = (baseline.get(split) or {}).get("accuracy")
    if base is None:
        return f"baseline {baseline['name']}: no {split} score"
    text = f"baseline {baseline['name']} {100 * base:.1f}%"
    if model_scores is not None and model_scores.get("accuracy") is not None:
        mine = float(model_scores["accuracy"])
        text += f"  ·  this model {100 * mine:.1f}% ({100 * (mine - base):+.1f})"
    return f"{text}  ({split}, accuracy)"


def size_advice(n_train: int) -> str | None:
    """A note for small or very large training sets, None in between."""
    if n_train < SMALL_DATA:
        return (
            f"warning: only {n_train:,} training examples: below ~{SMALL_DATA:,} a linear model on word n-grams is "
            f"often as good as a recurrent network or better; compare the two scores below before choosing"
        )
    if n_train > LARGE_DATA:
        return (
            f"note: {n_train:,} training examples: keep --cell gru (the fused C++ recurrence, the fast path), cap "
            f"--max-len, set --threads to your cores or use --device cuda, and bound a run with --max-minutes; "
            f"this reader holds the whole corpus in memory, so split a corpus larger than memory into files "
            f"and train on a sample first"
        )
    return None


__all__ = [
    "Baseline",
    "HEADLINE",
    "LARGE_DATA",
    "NAME",
    "SETTINGS",
    "SMALL_DATA",
    "comparison_line",
    "fit_baseline",
    "size_advice",
]
