"""Look inside a model: `summary`, `trace`, `explain`, `report`."""

from __future__ import annotations

import argparse
from dataclasses import replace

from grutext.cli.dispatch import task_cli
from grutext.cli.options import add_config_flags, choices_metavar, config_from_args
from grutext.safeio import dumps

# fields that only matter while training: a summary of a described model does not take them
_SUMMARY_SKIP = {"model.pretrained", "model.init_from", "model.keep_head"}


def _explain_methods() -> tuple[str, ...]:
    from grutext.explain.core import METHODS  # imports torch: only explain and report build these options

    return tuple(METHODS)


def _member_option(p: argparse.ArgumentParser, default: int | None, what: str) -> None:
    shown = "the whole ensemble" if default is None else f"member {default}"
    p.add_argument(
        "--member",
        type=int,
        default=default,
        metavar="K",
        help=f"an ensemble (model.ensemble > 1): {what} its member K, 0-based (default: {shown})",
    )


def add_summary_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="model directory (default: describe one with the model options below)")
    p.add_argument("--seq-len", type=int, default=None, help="T shown in the output shapes (default: T, symbolic)")
    _member_option(p, None, "summarise")
    described = p.add_argument_group("described model (without a model directory)")
    described.add_argument("--vocab-size", type=int, default=5000, help="vocabulary size (default: 5000)")
    described.add_argument("--num-classes", type=int, default=2, help="number of classes (default: 2)")
    add_config_flags(p, sections=("model",), skip=_SUMMARY_SKIP)


def cmd_summary(args: argparse.Namespace) -> int:
    """Print a Keras-style summary (layer, output shape, parameters) of a saved model, or of the
    model a config describes (--vocab-size and --num-classes fill in what data would); a saved
    classifier's n-gram blend on the last line."""
    from grutext.summary import model_summary

    if args.model:
        from grutext.artifact import load_model

        loaded = load_model(args.model, member=args.member)
        print(model_summary(loaded.model, args.seq_len))
        if loaded.kind == "classifier" and args.member is None:  # one member is its network alone
            from grutext.summary import blend_line

            print(blend_line(loaded))
        return 0
    from grutext.tasks.classification.model import build_classifier

    cfg = config_from_args(args)
    task = cfg.model.task if cfg.model.task != "auto" else ("binary" if args.num_classes == 2 else "multiclass")
    m = replace(cfg.model, vocab_size=args.vocab_size, num_classes=args.num_classes, task=task)
    print(model_summary(build_classifier(m), args.seq_len))
    return 0


def add_trace_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model directory")
    p.add_argument("text", help="the text to follow through the pipeline")
    _member_option(p, None, "follow")


def cmd_trace(args: argparse.Namespace) -> int:
    """Show each stage of the pipeline for one text: tokens, ids, padded ids, embeddings, GRU output
    and gates, pooled vector, logits, probabilities (a blended classifier: the network's, then the blend's)."""
    from grutext.artifact import load_model
    from grutext.summary import pipeline_trace

    print(pipeline_trace(load_model(args.model, member=args.member), args.text))
    return 0


def add_explain_arguments(p: argparse.ArgumentParser) -> None:
    methods = _explain_methods()
    p.add_argument("model", help="model directory")
    p.add_argument("text", help="the text to explain (the prompt, for a language model)")
    _member_option(p, None, "explain")
    cls = p.add_argument_group("classifiers")
    cls.add_argument(
        "--method",
        choices=methods,
        metavar=choices_metavar(methods),
        default="ig",
        help="token importance: integrated gradients, occlusion or attention weights (default: ig)",
    )
    cls.add_argument("--target", default=None, help="class to explain (default: the predicted class)")
    cls.add_argument("--steps", type=int, default=48, help="integrated-gradients steps (default: 48)")
    lm = p.add_argument_group("language models")
    lm.add_argument("--generate", type=int, default=0, help="generate N tokens after the prompt (default: 0)")
    lm.add_argument(
        "--temperature", type=float, default=0.0, help="sampling temperature of --generate (default: 0, greedy)"
    )
    lm.add_argument("--seed", type=int, default=0, help="sampling seed of --generate (default: 0)")
    tag = p.add_argument_group("taggers")
    tag.add_argument(
        "--tokenized",
        action="store_true",
        help="the sentence's words are separated by spaces already (default: split by the model's tokenizer)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--html", metavar="FILE", help="write a self-contained HTML page")
    out.add_argument("--png", metavar="FILE", help="write a PNG heat map (needs matplotlib)")
    out.add_argument("--json", action="store_true", help="print the explanation as JSON")


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain one prediction: token importance (integrated gradients, occlusion or attention) and
    the GRU's gates per token; for language models, the surprisal of each token and the gates along
    the prompt (and --generate N tokens). Writes a self-contained HTML page and/or a PNG heat map.

    example: grutext explain runs/sst2 "a gorgeous , witty film" --html out.html --png out.png
    """
    from grutext.artifact import load_model
    from grutext.explain import render_html, render_png

    loaded = load_model(args.model, member=args.member)
    if getattr(args, "tokenized", False) and loaded.kind != "tagger":
        from grutext.errors import ConfigError

        raise ConfigError(f"--tokenized: a tagger option; {args.model} is a {loaded.kind}")
    ex = task_cli(loaded.kind).explain(loaded, args)
    if args.json:
        print(dumps(ex.to_dict(), what="explain --json"))
    else:
        print(ex.summary())
    if args.png:
        render_png(ex, args.png)
        print(f"wrote {args.png}")
    if args.html:
        if hasattr(ex, "write_html"):  # a task with its own page (taggers)
            ex.write_html(args.html)
        else:
            render_html(ex, args.html)
        print(f"wrote {args.html}")
    return 0


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    methods = _explain_methods()
    p.add_argument("model", help="model directory")
    p.add_argument("--data", default=None, help="labelled file for the mistakes (default: the run's validation split)")
    p.add_argument("--mistakes", type=int, default=5, help="how many confident mistakes to explain (default: 5)")
    p.add_argument(
        "--method",
        choices=methods,
        metavar=choices_metavar(methods),
        default="ig",
        help="importance method for the mistakes (default: ig)",
    )
    _member_option(p, 0, "explain the mistakes through")
    p.add_argument("--out", default=None, help="HTML file to write (default: MODEL/report.html)")


def cmd_report(args: argparse.Namespace) -> int:
    """Write one HTML page about a trained model: epoch trace, curves, scores, per-class metrics,
    confusion matrix, the most confident validation mistakes with explanations, the model summary
    and the run's configuration."""
    from grutext.explain.report import training_report

    path = training_report(
        args.model, out=args.out, data=args.data, mistakes=args.mistakes, method=args.method, member=args.member
    )
    print(f"wrote {path}")
    return 0


__all__ = [
    "add_explain_arguments",
    "add_report_arguments",
    "add_summary_arguments",
    "add_trace_arguments",
    "cmd_explain",
    "cmd_report",
    "cmd_summary",
    "cmd_trace",
]
