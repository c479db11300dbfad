"""Which task's CLI module serves a model directory (by its kind) or a `train --task` value.

The one place the CLI picks a task. After the redesign's merge `task_cli` reads
``grutext.tasks.TASKS[kind]`` instead of its own table.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from grutext.errors import ArtifactError

# model directory kind -> the task's CLI module (each has: add_train_arguments, reject_train_flags,
# train, evaluate, explain)
TASK_CLI: dict[str, str] = {
    "classifier": "grutext.tasks.classification.cli",
    "language_model": "grutext.tasks.language_model.cli",
}
LM_TASK_FLAG = "lm"  # `train --task lm` trains a language model; every other --task value is a classifier head


def task_cli(kind: str) -> ModuleType:
    """The CLI module of the task whose model directories have `kind`.

    Raises:
        ArtifactError: a kind no task has.
    """
    name = TASK_CLI.get(kind)
    if name is None:
        raise ArtifactError(f"model kind {kind!r}: expected one of {', '.join(TASK_CLI)}")
    return importlib.import_module(name)


def train_kind(task_flag: str | None) -> str:
    """The kind of model `train --task VALUE` makes."""
    return "language_model" if task_flag == LM_TASK_FLAG else "classifier"


def kinds() -> tuple[str, ...]:
    """Every kind a task serves."""
    return tuple(TASK_CLI)


__all__ = ["TASK_CLI", "kinds", "task_cli", "train_kind"]
