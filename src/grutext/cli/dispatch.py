"""Which task's CLI module serves a model directory (by its kind) or a `train --task` value.

Both read `grutext.tasks.TASKS`, the one table from kind to task: a task names its CLI module
(``task.cli``) and the ``--task`` value that selects it for training (``task.train_flag``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from grutext.tasks import TASKS, task_for


def task_cli(kind: str) -> ModuleType:
    """The CLI module of the task whose model directories have `kind`.

    Raises:
        ArtifactError: a kind no task has.
    """
    return importlib.import_module(task_for(kind).cli)


def train_kind(task_flag: str | None) -> str:
    """The kind of model `train --task VALUE` makes (a task's own flag, else the default task's)."""
    for task in TASKS.values():
        if task.train_flag is not None and task.train_flag == task_flag:
            return task.kind
    default = [t.kind for t in TASKS.values() if t.train_flag is None]
    return default[0]


def kinds() -> tuple[str, ...]:
    """Every kind a task serves."""
    return tuple(TASKS)


__all__ = ["kinds", "task_cli", "train_kind"]
