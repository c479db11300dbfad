"""The `grutext` command line, one module per command group.

- ``main``: the table of every command (grouped: train, evaluate, predict, inspect, demo) and
  `main(argv)`, the console script's entry point.
- ``options``: config fields as flags, with their help, choices and defaults.
- ``dispatch``: the task (classification, language model) a model directory or `--task` names.
- ``train``, ``evaluate``, ``predict``, ``inspection`` (summary, trace, explain, report), ``demo``:
  the commands. Task-specific flags and commands live in ``grutext.tasks.NAME.cli``.

Importing this package imports no torch.
"""

from grutext.cli.main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
