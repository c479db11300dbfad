"""`grutext train`: the shared config flags, each task's own flags, and the dispatch to the task."""

from __future__ import annotations

import argparse
from dataclasses import replace

from grutext.cli.dispatch import kinds, task_cli, train_kind
from grutext.cli.options import add_config_flags, choices_metavar, config_from_args, field_choices, named_datasets
from grutext.errors import ConfigError
from grutext.tasks import TASKS, task_for


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """DATA, --task, --resume, the [data] [model] [train] flags, and each task's own group."""
    p.add_argument(
        "data",
        nargs="?",
        help="training data: a file (csv, tsv, jsonl, json, parquet, `label text` lines, fastText, .gz), a folder "
        f"with one sub-folder per class, or a dataset name ({', '.join(named_datasets())}) "
        "(default: data.train of --config)",
    )
    task_choices = (*(field_choices("model", "task") or ()), *(t.train_flag for t in TASKS.values() if t.train_flag))
    p.add_argument(
        "--task",
        dest="model.task",
        choices=task_choices,
        metavar=choices_metavar(task_choices),
        default=None,
        help="a classifier head (auto: binary, multiclass or multilabel from the labels), lm (a language model) "
        "or tag (a sequence tagger on CoNLL/JSONL files) (default: auto)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint beside --out (OUT.ckpt)")
    p.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train data-parallel in N processes on this machine (gloo on CPU, NCCL on CUDA), as "
        "`torchrun --nproc-per-node N -m grutext train ...`; --batch-size is the global batch (default: 1 process)",
    )
    add_config_flags(p, skip={"model.task"})
    for kind in kinds():
        task_cli(kind).add_train_arguments(p)


# shared config flags a task's training does not read: given on the command line, an error naming the task
NOT_FOR_TASK: dict[str, tuple[str, ...]] = {
    "language_model": (
        "model.bidirectional",  # a language model reads left to right
        "model.pooling",
        "model.ensemble",
        "model.init_from",
        "model.keep_head",
        "model.pretrained",
        "model.freeze_embeddings",
        "model.blend",  # the n-gram blend is a classifier's
        "data.label_col",
        "data.sentences",
        "data.sentence_min_words",
    ),
    "tagger": (
        "model.bidirectional",  # the tagger is always a BiGRU
        "model.pooling",
        "model.ensemble",
        "model.init_from",
        "model.keep_head",
        "model.blend",
        "data.sentences",
        "data.sentence_min_words",
    ),
}


def reject_shared_flags(kind: str, args: argparse.Namespace) -> None:
    """ConfigError for a shared flag the chosen task does not use (never a silent override)."""
    for dest in NOT_FOR_TASK.get(kind, ()):
        if getattr(args, dest, None) is not None:
            flag = "--" + dest.split(".", 1)[1].replace("_", "-")
            value = getattr(args, dest)
            if value is False:
                flag = "--no-" + flag[2:]
            raise ConfigError(
                f"{flag}: does not apply to --task {task_for(kind).train_flag} ({task_for(kind).title}); drop it"
            )
    if getattr(args, "config", None):  # the same keys set in a --config file
        from grutext.config import read_config_tables

        tables = read_config_tables(args.config)
        for dest in NOT_FOR_TASK.get(kind, ()):
            section, key = dest.split(".", 1)
            table = tables.get(section)
            if isinstance(table, dict) and key in table:
                raise ConfigError(
                    f"{args.config}: [{section}] {key} does not apply to --task {task_for(kind).train_flag} "
                    f"({task_for(kind).title}); remove it from the file"
                )


def cmd_train(args: argparse.Namespace) -> int:
    """Train a classifier (or, with --task lm, a language model; with --task tag, a tagger) and save its
    model directory.

    DATA is a file (csv, tsv, jsonl, json, parquet, `label text` lines, fastText, .gz), a folder
    with one sub-folder per class, or a dataset name (bbc-news, sst2, sst5, trec6, trec50, imdb, ptb, hf:NAME).
    """
    kind = train_kind(getattr(args, "model.task"))
    for other in kinds():
        if other != kind:
            task_cli(other).reject_train_flags(args)
    reject_shared_flags(kind, args)
    if task_for(kind).train_flag is not None:
        setattr(args, "model.task", None)  # --task named the task, not a classifier head
    cfg = config_from_args(args)  # a bad flag is reported here, once, before --nproc starts any process
    if kind != "classifier" and (getattr(args, "train.baseline", None) is not None or not cfg.train.baseline):
        from grutext.errors import ConfigError

        flag = "--baseline" if getattr(args, "train.baseline", None) else "--no-baseline (train.baseline = false)"
        raise ConfigError(f"{flag}: only classifiers have a baseline (TF-IDF + logistic regression); drop it")
    nproc = getattr(args, "nproc", None)
    if nproc is not None and nproc != 1:
        return _launch(args, nproc, cfg.train.device)
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, train=args.data))
    return int(task_cli(kind).train(cfg, args))


def _launch(args: argparse.Namespace, nproc: int, device: str) -> int:
    """`--nproc N`: run the same command line (less --nproc) in N processes."""
    from grutext.errors import ConfigError
    from grutext.train.distributed import launch

    if nproc < 1:
        raise ConfigError(f"--nproc: expected a number of processes >= 1, got {nproc}")
    if device.startswith("cuda") or (device == "auto" and _cuda_count() > 0):
        count = _cuda_count()
        if nproc > count:
            raise ConfigError(f"--nproc {nproc}: only {count} CUDA device(s) visible; one process per GPU")
    given = getattr(args, "argv_given", None)
    if not given:
        raise ConfigError("--nproc: the command line to start in each process is unknown (run it as `grutext train`)")
    return launch(_without_nproc(list(given)), nproc)


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line without its `--nproc N` (`--nproc=N`)."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--nproc":
            skip = True
        elif not word.startswith("--nproc="):
            out.append(word)
    return out


__all__ = ["add_train_arguments", "cmd_train"]
