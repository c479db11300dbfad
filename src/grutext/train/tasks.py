"""Deprecated: the classification `fit` adapter moved to `grutext.tasks.classification.evaluate` (and
`predict_batches` to `grutext.tasks.classification.predict`); this re-export goes in a later release.
The language-model adapter is `grutext.tasks.language_model.evaluate.LanguageModelTask`."""

from grutext.tasks.classification.evaluate import ClassificationTask
from grutext.tasks.classification.predict import predict_batches

__all__ = ["ClassificationTask", "predict_batches"]
