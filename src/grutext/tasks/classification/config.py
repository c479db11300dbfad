"""Classification settings and decisions: the artifact kind, the tasks a classifier can be, and which
one a dataset asks for (``model.task = "auto"``). The model fields themselves live in
`grutext.config.ModelConfig`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grutext.errors import ConfigError

if TYPE_CHECKING:
    from grutext.data.readers import TextDataset

KIND = "classifier"  # the artifact kind stored in config.json
CLASSIFIER_TASKS = ("binary", "multiclass", "multilabel")


def infer_task(ds: TextDataset, requested: str) -> str:
    classes = ds.classes
    task = requested
    if requested == "auto":
        task = "multilabel" if ds.multilabel else ("binary" if len(classes) == 2 else "multiclass")
    if task == "multilabel" and not ds.multilabel:
        pass  # single labels trained as multi-label is allowed: each row has one positive
    if task == "binary" and len(classes) != 2:
        raise ConfigError(f"model.task 'binary' needs 2 classes; {ds.source} has {len(classes)}: {classes[:6]}")
    if task != "multilabel" and ds.multilabel:
        raise ConfigError(f"model.task {task!r}: {ds.source} has several labels per example; use 'multilabel'")
    return task


__all__ = ["CLASSIFIER_TASKS", "KIND", "infer_task"]
