"""`grutext export MODEL_DIR OUT [--int8] [--opset N] [--test FILE] [--overwrite]`."""

from __future__ import annotations

import argparse

from grutext.export.graph import DEFAULT_OPSET, OPSETS


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model directory (a classifier, an ensemble, a language model or a tagger)")
    p.add_argument("out", help="export folder to write (a new path; an earlier export folder with --overwrite)")
    p.add_argument(
        "--int8",
        action="store_true",
        help="also write model.int8.onnx (embedding, linear layers and the GRU int8) and print its accuracy change "
        "(classifiers and language models)",
    )
    p.add_argument(
        "--test",
        default=None,
        metavar="FILE",
        help="with --int8: labelled test file (classifier) or plain text (language model) to measure on "
        "(default: a classifier's recorded test split; a language model needs it)",
    )
    p.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        choices=OPSETS,
        metavar="N",
        help=f"ONNX opset, one of {', '.join(map(str, OPSETS))} (default: {DEFAULT_OPSET})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export folder at OUT")


def cmd_export(args: argparse.Namespace) -> int:
    """Export a model to ONNX: one folder with model.onnx (and model.int8.onnx with --int8), the
    tokenizer (a tagger: also tagger.json) and grutext-export.json, which `grutext.runtime` runs
    without torch. Every graph is checked with onnx.checker and against the torch model before the
    folder is written."""
    from grutext.export.exporter import export_model

    export_model(args.model, args.out, int8=args.int8, opset=args.opset, test=args.test, overwrite=args.overwrite)
    return 0


__all__ = ["add_export_arguments", "cmd_export"]
