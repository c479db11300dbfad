"""Deprecated: the classification pipeline moved to `grutext.tasks.classification` (``data``,
``config``, ``train``, ``evaluate``); these re-exports go in a later release. `print_report` is
re-exported from `grutext.tasks.classification.cli`."""

from __future__ import annotations

from grutext.tasks.classification.cli import print_report
from grutext.tasks.classification.config import infer_task
from grutext.tasks.classification.data import (
    NAMED,
    Splits,
    _is_named,
    _read,
    build_tokenizer,
    encode_texts,
    label_tensor,
    load_splits,
    make_batches,
)
from grutext.tasks.classification.evaluate import ClassificationTask, evaluate_classifier
from grutext.tasks.classification.predict import predict_batches
from grutext.tasks.classification.train import TrainedClassifier, pretrained_matrix, train_classifier

__all__ = [
    "NAMED",
    "ClassificationTask",
    "Splits",
    "TrainedClassifier",
    "_is_named",
    "_read",
    "build_tokenizer",
    "encode_texts",
    "evaluate_classifier",
    "infer_task",
    "label_tensor",
    "load_splits",
    "make_batches",
    "predict_batches",
    "pretrained_matrix",
    "print_report",
    "train_classifier",
]
