"""Text classification (binary, multiclass, multilabel; one network or an ensemble).

Modules, as in every task package: ``config`` (kind, tasks, `infer_task`), ``data`` (splits,
tokenizer, batches), ``model`` (`TextClassifier`, `EnsembleClassifier`), ``train``
(`train_classifier`), ``evaluate`` (the `fit` adapter, `evaluate_classifier`), ``predict``
(`predict_batches`); ``transfer`` starts a classifier from another model directory.

`CLASSIFICATION` is this task's entry in `grutext.tasks.TASKS`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from grutext.tasks.classification.config import KIND

if TYPE_CHECKING:
    import torch

    from grutext.config import Config
    from grutext.tasks.classification.model import EnsembleClassifier


class Classification:
    """The classification task as the shared layers see it (see `grutext.tasks.Task`)."""

    kind = KIND
    title = "classifier"
    has_labels = True
    cli = "grutext.tasks.classification.cli"
    train_flag: str | None = None

    def build(self, cfg: Config, meta: dict[str, Any]) -> torch.nn.Module:
        from grutext.tasks.classification.model import build_classifier

        return build_classifier(cfg.model)

    def members(self, cfg: Config) -> int:
        return int(cfg.model.ensemble)

    def member(self, model: torch.nn.Module, cfg: Config, k: int) -> tuple[torch.nn.Module, Config]:
        return cast("EnsembleClassifier", model).members[k], replace(cfg, model=replace(cfg.model, ensemble=1))

    def settings(self, cfg: Config, meta: dict[str, Any]) -> dict[str, Any]:
        m = cfg.model
        return {
            "task": m.task,
            "classes": m.num_classes,
            "cell": m.cell,
            "layers": m.num_layers,
            "hidden": m.hidden_size,
            "bidirectional": m.bidirectional,
            "pooling": m.pooling,
            "ensemble": m.ensemble,
            "dropout": m.dropout,
        }

    def fit_adapter(self, loaded: Any) -> Any:
        from grutext.tasks.classification.evaluate import ClassificationTask

        return ClassificationTask(loaded.config.model.task, list(loaded.labels))

    def evaluate(self, loaded: Any, data: Any, **options: Any) -> dict[str, Any]:
        from grutext.tasks.classification.evaluate import evaluate_classifier

        return evaluate_classifier(loaded, data, **options)


CLASSIFICATION = Classification()

__all__ = ["CLASSIFICATION", "Classification", "KIND"]
