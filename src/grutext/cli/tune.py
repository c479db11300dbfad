"""`grutext tune DATA --budget 30m --out DIR`: a budgeted, resumable search for a classifier's settings
(grutext.tune); the settings given here are fixed, the others searched."""

from __future__ import annotations

import argparse
from dataclasses import replace

from grutext.cli.options import add_config_flags, config_from_args, named_datasets

NOT_HERE = {"train.out", "train.overwrite", "train.keep_checkpoint", "train.baseline", "model.init_from"}


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "data",
        nargs="?",
        help="training data: a file, a folder with one sub-folder per class, or a dataset name "
        f"({', '.join(named_datasets())}) (default: data.train of --config)",
    )
    bounds = p.add_argument_group("search")
    bounds.add_argument(
        "--budget",
        default=None,
        help="wall time of this run, e.g. 90s, 30m, 1h, 1h30m (default: no time bound; then --trials is required)",
    )
    bounds.add_argument(
        "--trials",
        type=int,
        default=None,
        help="stop when the study holds N finished (complete or pruned) trials (default: no trial bound; then "
        "--budget is required)",
    )
    bounds.add_argument(
        "--out", required=True, metavar="DIR", help="tune folder: study.db, best.toml, best-model/, report.html; "
        "the same DIR again resumes the study (required)"
    )  # fmt: skip
    bounds.add_argument("--no-final", action="store_true", help="do not train the best settings at the end")
    add_config_flags(p, skip=NOT_HERE)


def fixed_fields(args: argparse.Namespace) -> set[str]:
    """``section.field`` of every setting the user gave (flags, and the --config file's keys)."""
    from grutext.config import read_config_tables

    given = {k for k, v in vars(args).items() if "." in k and v is not None}
    if getattr(args, "config", None):
        for section, table in read_config_tables(args.config).items():
            if isinstance(table, dict):
                given |= {f"{section}.{key}" for key in table}
    return given


def cmd_tune(args: argparse.Namespace) -> int:
    """Search a classifier's settings on the validation split with Optuna (TPE sampler, median pruning
    on each epoch's validation accuracy), within --budget or --trials; resumable from --out.

    Trial 0 is the defaults. After each trial the five best so far are printed. At the end the best
    settings are saved as DIR/best.toml (`grutext train --config DIR/best.toml` trains them), trained into
    DIR/best-model/ and scored on the test split (its only use), and the search is plotted in
    DIR/search.png and DIR/report.html. Settings given as options are fixed; the others are searched:
    cell, hidden size, layers, direction, pooling, pretrained vectors, dropouts, learning rate, weight
    decay, weight averaging.
    """
    from grutext.tune import parse_budget, tune

    budget = parse_budget(args.budget) if args.budget is not None else None
    cfg = config_from_args(args)
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, train=args.data))
    tune(cfg, args.out, budget_s=budget, trials=args.trials, fixed=fixed_fields(args), train_best=not args.no_final)
    return 0


__all__ = ["add_tune_arguments", "cmd_tune", "fixed_fields"]
