"""`grutext evaluate`: load a model directory and let its task score it."""

from __future__ import annotations

import argparse

from grutext.cli.dispatch import task_cli
from grutext.cli.options import choices_metavar, field_choices
from grutext.errors import ConfigError


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model directory")
    p.add_argument("data", help="labelled file or dataset name (for a language model: a text file or ptb)")
    data = p.add_argument_group("data")
    data.add_argument("--split", default=None, help="split of a named dataset (default: test)")
    formats = field_choices("data", "format") or ()
    data.add_argument(
        "--format",
        default=None,
        metavar=choices_metavar(formats),
        help="file format (default: guessed from the file name)",
    )
    data.add_argument(
        "--text-col", default=None, help="column holding the text (default: found by name: text, sentence, ...)"
    )
    data.add_argument(
        "--label-col", default=None, help="column holding the labels (default: found by name: label, class, ...)"
    )
    tag = p.add_argument_group("taggers")
    tag.add_argument(
        "--strict",
        action="store_true",
        help="score chunks as seqeval's strict mode (only well-formed chunks of the scheme count) "
        "instead of conlleval's lenient reading",
    )
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the report as one JSON object")
    out.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="classifiers: refit TF-IDF (1-2 grams) + logistic regression on the model's training split and "
        "score it on DATA beside the model (default: on for classifiers; other models have no baseline)",
    )
    out.add_argument(
        "--baseline-train",
        metavar="FILE",
        default=None,
        help="classifiers: the training file to refit the baseline on (the model's own training split is "
        "re-read only when it is a named dataset or lies inside the model folder: a model folder's paths "
        "are never followed) (default: that split, where it may be read)",
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a saved model on a labelled file or named split: accuracy, macro-F1, per-class scores,
    confusion matrix (language models: perplexity / bits per character)."""
    from pathlib import Path

    from grutext.artifact import load_model
    from grutext.data.named import is_named

    named = is_named(args.data) and not Path(args.data).exists()
    if args.split is not None and not named:
        raise ConfigError(f"--split {args.split}: applies to a named dataset only; {args.data} is a file")
    args.split = args.split or "test"
    loaded = load_model(args.model)
    if args.baseline is not None and loaded.kind != "classifier":
        flag = "--baseline" if args.baseline else "--no-baseline"
        raise ConfigError(f"{flag}: only classifiers have a baseline; {args.model} is a {loaded.kind}")
    if args.baseline_train is not None and (loaded.kind != "classifier" or args.baseline is False):
        raise ConfigError("--baseline-train: applies to a classifier's baseline only (not with --no-baseline)")
    if getattr(args, "strict", False) and loaded.kind != "tagger":
        raise ConfigError(f"--strict: a tagger option (chunk scoring); {args.model} is a {loaded.kind}")
    return int(task_cli(loaded.kind).evaluate(loaded, args))


__all__ = ["add_evaluate_arguments", "cmd_evaluate"]
