"""The TF-IDF baseline row of a classification experiment: word uni- and bigram TF-IDF with sublinear term
frequencies and a logistic regression (C=10), fitted on the same training split and scored on the same
validation and test splits as the networks. A local, small version: a shared baseline function is planned
elsewhere (issue 14); this one exists so that `compare` and `sweep` always show how far a linear model gets.
"""

from __future__ import annotations

import time
from typing import Any

from grutext.config import Config

DESCRIPTION = (
    "scikit-learn TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + LogisticRegression(C=10), "
    "on the same train/validation/test split"
)


def tfidf_baseline(cfg: Config, split_seed: int) -> dict[str, Any] | None:
    """Accuracy of the TF-IDF + logistic regression baseline on the validation and test split of `cfg.data`
    (carved with `split_seed`, as every run's); None for multi-label data (not covered here)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from grutext.tasks.classification.data import load_splits

    splits = load_splits(cfg.data, seed=split_seed)
    train = splits.train
    if any(not isinstance(y, str) for y in (train.labels or [])):
        return None  # multi-label: a list of labels per text
    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=cfg.data.lowercase)
    x = vec.fit_transform(train.texts)
    clf = LogisticRegression(C=10, max_iter=2000)
    clf.fit(x, train.labels)

    def accuracy(ds: Any) -> float | None:
        if ds is None or ds.labels is None:
            return None
        pred = clf.predict(vec.transform(ds.texts))
        return float(sum(p == y for p, y in zip(pred, ds.labels, strict=True)) / max(len(ds.labels), 1))

    return {
        "name": "tf-idf + logistic regression",
        "description": DESCRIPTION,
        "valid": accuracy(splits.valid),
        "test": accuracy(splits.test),
        "seconds": time.perf_counter() - t0,
    }


__all__ = ["DESCRIPTION", "tfidf_baseline"]
