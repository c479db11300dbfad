"""`grutext predict`: use a model on texts; the model's task does it (classifiers: labels and
probabilities; taggers: tags and chunks). (`generate` and `next-word`, the language model's ways of
using a model, live in grutext.tasks.language_model.cli; the command table points there.)"""

from __future__ import annotations

import argparse
import sys

from grutext.cli.dispatch import kinds, task_cli
from grutext.cli.options import choices_metavar, field_choices
from grutext.errors import GrutextError


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model directory")
    p.add_argument("texts", nargs="*", help="texts to classify (default: --file, else lines on stdin)")
    data = p.add_argument_group("data")
    data.add_argument("--file", help="read texts from this file (one per line, or a table's text column)")
    data.add_argument(
        "--format",
        default=None,
        metavar=choices_metavar(field_choices("data", "format") or ()),
        help="format of --file (default: guessed from the file name)",
    )
    data.add_argument(
        "--text-col", default=None, help="column of --file holding the text (default: found by name: text, ...)"
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--json", action="store_true", help="one JSON object per text (every probability; a tagger's offsets)"
    )
    for kind in kinds():
        task_cli(kind).add_predict_arguments(p)


def read_inputs(args: argparse.Namespace) -> list[str]:
    """The texts to classify: arguments, then --file, else stdin's non-blank lines."""
    texts = list(args.texts or [])
    if args.file:
        from grutext.data.readers import read_dataset

        texts += read_dataset(args.file, fmt=args.format, text_col=args.text_col, label_col=False).texts
    if not texts and not sys.stdin.isatty():
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise GrutextError("predict: no input; give texts as arguments, --file FILE, or lines on stdin")
    return texts


def cmd_predict(args: argparse.Namespace) -> int:
    """Use a model on texts given as arguments, in a file (--file) or one per line on stdin: a classifier's
    labels, a tagger's tags and chunks (`--format conll`: a CoNLL file with the predicted tags appended)."""
    from grutext.artifact import read_meta

    if args.text_col is not None and not args.file:
        raise GrutextError(f"--text-col {args.text_col}: applies to --file only (texts given as arguments or on stdin)")
    return int(task_cli(read_meta(args.model)["kind"]).predict(args))


__all__ = ["add_predict_arguments", "cmd_predict", "read_inputs"]
