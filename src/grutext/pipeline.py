"""Deprecated: the classification pipeline moved to `grutext.tasks.classification` (``data``,
``config``, ``train``, ``evaluate``); these re-exports go in a later release. `print_report` still
lives here (the CLI prints evaluation reports with it)."""

from __future__ import annotations

import sys
from typing import Any

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
from grutext.train.metrics import format_confusion, format_per_class


def print_report(rep: dict[str, Any], stream=sys.stdout) -> None:
    print(
        f"accuracy {rep['accuracy']:.4f}  macro-F1 {rep['macro_f1']:.4f}  loss {rep.get('loss', float('nan')):.4f}"
        f"  (n={rep['n']:,})",
        file=stream,
    )
    print(format_per_class(rep), file=stream)
    if "confusion_matrix" in rep:
        print(format_confusion(rep["confusion_matrix"], rep["labels"]), file=stream)


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
