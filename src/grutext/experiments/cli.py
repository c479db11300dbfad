"""`grutext compare` and `grutext sweep`: their arguments, the experiment they describe, and the run.

Both take the training flags of `grutext train` (applied to every run), build an `Experiment`, train it
with the runner (`grutext.experiments.runner`) and write the results (`grutext.experiments.report`).
Top-level imports stay light: torch loads when a command runs.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from grutext import config as _config
from grutext.cli.dispatch import kinds, task_cli, train_kind
from grutext.cli.options import add_config_flags, choices_metavar, config_from_args, field_choices, named_datasets
from grutext.config import Config
from grutext.errors import ConfigError
from grutext.experiments.plan import RUNNER_FIELDS, TASK_RUNS, Experiment, Point, grid_points, parse_cells, parse_sets

DEFAULT_CELLS = ",".join(_config.CELLS)


def _add_common(p: argparse.ArgumentParser, seeds: int) -> None:
    p.add_argument(
        "data",
        nargs="?",
        help="training data, as for `grutext train`: a file, a folder or a dataset name "
        f"({', '.join(named_datasets())})",
    )
    task_choices = (*(field_choices("model", "task") or ()), *(t.train_flag for t in _tasks() if t.train_flag))
    p.add_argument(
        "--task",
        dest="model.task",
        choices=task_choices,
        metavar=choices_metavar(task_choices),
        default=None,
        help="as for `grutext train`: a classifier head, lm (language model) or tag (tagger) (default: auto)",
    )
    p.add_argument(
        "--seeds", type=int, default=seeds, metavar="N", help=f"runs per point, seeds 1..N (default: {seeds})"
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="the experiment folder: one model folder per run in DIR/runs, the tables, plots and report; "
        "a re-run with the same settings resumes (and a larger --seeds adds seeds) (required)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="trainings at once, torch threads split between them (default: 1)",
    )
    p.add_argument(
        "--latency-repeats",
        type=int,
        default=30,
        metavar="N",
        help="timed single predictions (1x50 tokens, 1 thread) per run, round-robin over runs (default: 30)",
    )
    skip = {k for k in RUNNER_FIELDS if k != "train.threads"} | {"model.task"}
    add_config_flags(p, skip=skip)
    for kind in kinds():
        task_cli(kind).add_train_arguments(p)


def _tasks() -> Any:
    from grutext.tasks import TASKS

    return TASKS.values()


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """DATA, --cells, --match, --seeds, --out, --jobs and the training flags of `grutext train`."""
    p.add_argument(
        "--cells",
        default=DEFAULT_CELLS,
        metavar="LIST",
        help=f"comma-separated cells to compare, the first is the reference (default: {DEFAULT_CELLS})",
    )
    p.add_argument(
        "--match",
        choices=("params", "hidden"),
        default="params",
        metavar="{params,hidden}",
        help="params: each cell's hidden size chosen so its trainable parameters are within 2%% of the first "
        "cell's at --hidden-size; hidden: every cell at --hidden-size (default: params)",
    )
    _add_common(p, seeds=5)


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    """DATA, --set (repeatable), --seeds, --out, --jobs and the training flags of `grutext train`."""
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        metavar="FIELD=V1,V2",
        required=True,
        help="a config field and its values, e.g. hidden_size=32,64,128 (repeat for a grid) (required)",
    )
    _add_common(p, seeds=3)


def _base(args: argparse.Namespace) -> tuple[str, Config, dict[str, Any], int | None]:
    """The task kind, the base Config (data argument in), the task's own table and the total threads."""
    kind = train_kind(getattr(args, "model.task"))
    for other in kinds():
        if other != kind:
            task_cli(other).reject_train_flags(args)
    from grutext.tasks import task_for

    if task_for(kind).train_flag is not None:
        setattr(args, "model.task", None)  # --task named the task, not a classifier head
    cfg = config_from_args(args)
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, train=args.data))
    if not cfg.data.train:
        raise ConfigError("DATA: expected a file, folder or dataset name to train on; got nothing")
    for name, value, lo in (
        ("--seeds", args.seeds, 1),
        ("--jobs", args.jobs, 1),
        ("--latency-repeats", args.latency_repeats, 1),
    ):
        if value < lo:
            raise ConfigError(f"{name}: expected an integer >= {lo}; got {value}")
    threads = cfg.train.threads
    cfg = replace(cfg, train=replace(cfg.train, threads=None, out=None))
    spec = TASK_RUNS[kind]
    extra: dict[str, Any] = {}
    if spec.extra_from_args is not None:
        extra = asdict(getattr(task_cli(kind), spec.extra_from_args)(args))
    return kind, cfg, extra, threads


def _execute(exp: Experiment, args: argparse.Namespace, threads: int | None) -> int:
    from grutext.experiments.plan import check_runs_config
    from grutext.experiments.report import write_results
    from grutext.experiments.runner import latency_pass, prepare_folder, run_all

    check_runs_config(exp)
    prepare_folder(exp)
    n = len(exp.points) * exp.seeds
    print(f"{exp.mode}: {len(exp.points)} point(s) x {exp.seeds} seed(s) = {n} runs in {exp.out}/runs")
    records = run_all(exp, jobs=args.jobs, threads=threads)
    print(f"latency: {args.latency_repeats} single predictions per run, round-robin, 1 thread")
    latency_pass(exp, records, repeats=args.latency_repeats)
    baseline = None
    if exp.kind == "classifier":
        from grutext.experiments.baseline import tfidf_baseline

        baseline = tfidf_baseline(Config.from_dict(exp.config), exp.base_seed)
    files = write_results(exp, records, baseline)
    print(f"\nwritten: {', '.join(str(p) for p in files.values())}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Train several recurrent cells under the same conditions (data split, tokenizer, vocabulary, batches and
    their order per seed, optimiser, schedule, epochs) with matched parameter counts, several seeds each; print
    and write the table (mean ± std, min-max), paired bootstrap intervals against the first cell, plots, CSV,
    JSON and an HTML report. Every run is kept in OUT/runs, so a re-run resumes.
    """
    cells = parse_cells(args.cells)
    kind, cfg, extra, threads = _base(args)
    if kind == "classifier" and getattr(args, "model.blend", None) is None and cfg.model.blend == "auto":
        # the cells are compared, not the n-gram model each would be blended with (the TF-IDF row shows that)
        cfg = replace(cfg, model=replace(cfg.model, blend="off"))
        print("compare: the networks alone (model.blend = off; pass --blend auto to compare blended classifiers)")
    hidden = cfg.model.hidden_size
    matching: dict[str, Any] = {}
    if args.match == "params":
        from grutext.experiments.matching import match_hidden_sizes, model_builder

        probe = replace(cfg, model=replace(cfg.model, cell=cells[0]))
        matching = match_hidden_sizes(model_builder(kind, probe, extra), cells, hidden)
        print(f"matched parameters (within 2% of {cells[0]} at hidden {hidden}):")
        for c, m in matching.items():
            print(
                f"  {c:<7} hidden {m['hidden_size']:>5}  {m['params']:>12,} parameters "
                f"({m['relative_difference']:+.2%})"
            )
    sizes = {c: (matching[c]["hidden_size"] if matching else hidden) for c in cells}
    points = [Point(c, c, {"model.cell": c, "model.hidden_size": sizes[c]}) for c in cells]
    exp = Experiment(
        "compare", kind, cfg.to_dict(), extra, points, args.seeds, Path(args.out), match=args.match, matching=matching
    )
    return _execute(exp, args, threads)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Train a grid of settings (any config field: --set hidden_size=32,64,128 [--set num_layers=1,2]), several
    seeds each, under the same conditions; the same table, curves, plots and report as `compare`, plus the
    metric against the swept value. Every run is kept in OUT/runs, so a re-run resumes.
    """
    kind = train_kind(getattr(args, "model.task"))
    sets = parse_sets(args.sets, kind)
    for key, _ in sets:
        if getattr(args, key, None) is not None:
            flag = "--" + key.split(".", 1)[1].replace("_", "-")
            raise ConfigError(f"{flag} and --set {key.split('.', 1)[1]}: both given; the swept values come from --set")
    kind, cfg, extra, threads = _base(args)
    points = grid_points(sets)
    exp = Experiment(
        "sweep", kind, cfg.to_dict(), extra, points, args.seeds, Path(args.out), swept=[k for k, _ in sets]
    )
    return _execute(exp, args, threads)


__all__ = ["add_compare_arguments", "add_sweep_arguments", "cmd_compare", "cmd_sweep"]
