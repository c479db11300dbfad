"""Tasks: one package per task, one table from artifact kind to task, one protocol between them.

Each task is a folder with the same modules in the same roles::

    tasks/NAME/
      __init__.py   the task object (this protocol) the shared layers talk to
      config.py     its settings and the decisions it makes once (kind, defaults)
      data.py       reading and batching
      model.py      the module(s), each computing its own loss
      train.py      the run: data -> fit -> scores -> model directory (`train_*`)
      evaluate.py   the `fit` adapter (loss and metrics per batch) and evaluating a saved model
      predict.py    what prediction with a saved model needs

The shared layers (artifact, trainer, explain, report, summary, estimator, infer) never branch on a
kind string: they look the task up in `TASKS` (``task_for(loaded.kind)``) and ask it.

Recipe for a new task: add ``tasks/NAME/`` with the modules above and one line in `TASKS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from grutext.errors import ArtifactError
from grutext.tasks.classification import CLASSIFICATION
from grutext.tasks.language_model import LANGUAGE_MODEL
from grutext.tasks.tagging import TAGGING

if TYPE_CHECKING:
    import torch

    from grutext.config import Config


class Task(Protocol):
    """What a task tells the shared layers.

    Attributes:
        kind: the artifact kind stored in ``config.json`` (``"classifier"``, ``"language_model"``).
        title: the task in words, for messages ("classifier", "language model").
        has_labels: the artifact stores class names (``labels.json``).
        cli: the module with the task's commands and flags (``tasks/NAME/cli.py``: add_train_arguments,
            reject_train_flags, train, evaluate, explain, add_predict_arguments, predict), imported only
            when a command needs it.
        train_flag: the ``grutext train --task`` value that selects this task (None: the default task).
    """

    kind: str
    title: str
    has_labels: bool
    cli: str
    train_flag: str | None

    def build(self, cfg: Config, meta: dict[str, Any]) -> torch.nn.Module:
        """The untrained module a saved config describes (`meta`: the whole config.json)."""
        ...

    def members(self, cfg: Config) -> int:
        """How many networks one artifact of this config holds (an ensemble's size; else 1)."""
        ...

    def member(self, model: torch.nn.Module, cfg: Config, k: int) -> tuple[torch.nn.Module, Config]:
        """Network k of `model` as a model of its own, with its config."""
        ...

    def settings(self, cfg: Config, meta: dict[str, Any]) -> dict[str, Any]:
        """The settings a report or summary shows for this task (its own, not another task's)."""
        ...

    def fit_adapter(self, loaded: Any) -> Any:
        """The `fit` adapter (``step``, ``epoch_metrics``, ``evaluate``) for a loaded model."""
        ...

    def evaluate(self, loaded: Any, data: Any, **options: Any) -> dict[str, Any]:
        """Scores of a loaded model on `data` (a labelled dataset; a text for a language model)."""
        ...


# THE table: artifact kind -> task. A new task adds one line here.
TASKS: dict[str, Task] = {
    CLASSIFICATION.kind: CLASSIFICATION,
    LANGUAGE_MODEL.kind: LANGUAGE_MODEL,
    TAGGING.kind: TAGGING,
}


def task_for(kind: Any, where: Any = "model") -> Task:
    """The task of artifact kind `kind`.

    Raises:
        ArtifactError: an unknown kind, naming the known ones.
    """
    task = TASKS.get(kind) if isinstance(kind, str) else None
    if task is None:
        raise ArtifactError(f"{where}: unknown model kind {kind!r}; expected one of {', '.join(sorted(TASKS))}")
    return task


def require_task(loaded: Any, task: Task, message: str) -> None:
    """Raise ArtifactError(`message`) unless `loaded` is a model of `task`."""
    if getattr(loaded, "kind", None) != task.kind:
        raise ArtifactError(message)


__all__ = ["CLASSIFICATION", "LANGUAGE_MODEL", "TAGGING", "TASKS", "Task", "require_task", "task_for"]
