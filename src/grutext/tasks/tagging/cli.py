"""The tagger's part of the `grutext` command: the [tag] training flags (--tag-col, --decoder,
--char-encoder, ...), training, evaluation and prediction of taggers.

The shared commands (grutext.cli) reach this module through grutext.cli.dispatch. Top-level imports
stay light: torch loads with the command that needs it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from grutext.cli.options import add_field_flags
from grutext.config import Config
from grutext.errors import ConfigError, GrutextError
from grutext.safeio import dumps
from grutext.tasks.tagging.config import SECTION, TagConfig

# ---- train ------------------------------------------------------------------------------------------


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The [tag] flags of `grutext train --task tag` (--tag-col, --decoder, --char-encoder, ...), one group."""
    group = p.add_argument_group("tagger, with --task tag (also settable in --config [tag])")
    add_field_flags(group, SECTION, TagConfig)


def _used_flags(args: argparse.Namespace) -> list[str]:
    prefix = SECTION + "."
    return [k[len(prefix) :] for k, v in vars(args).items() if k.startswith(prefix) and v is not None]


def reject_train_flags(args: argparse.Namespace) -> None:
    """ConfigError when a [tag] flag is given to a run that trains no tagger."""
    used = _used_flags(args)
    if used:
        raise ConfigError(f"--{used[0].replace('_', '-')}: a tagger option; add --task tag")


def tag_config_from_args(args: argparse.Namespace) -> TagConfig:
    """TagConfig from the config file's [tag] table, then the --tag-col/--decoder/... flags."""
    from dataclasses import fields

    from grutext.config import read_config_tables

    known = {f.name for f in fields(TagConfig)}
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        table = read_config_tables(args.config).get(SECTION, {}) or {}
        if not isinstance(table, dict):
            raise ConfigError(f"{args.config}: [tag] must be a table, got {type(table).__name__}")
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"{args.config}: unknown key(s) in [tag]: {', '.join(unknown)}; expected {sorted(known)}")
        values.update(table)
    prefix = SECTION + "."
    for key, value in vars(args).items():
        if key.startswith(prefix) and value is not None:
            values[key[len(prefix) :]] = value
    return TagConfig(**values).check()


def train(cfg: Config, args: argparse.Namespace) -> int:
    """`grutext train FILE --task tag`."""
    from grutext.tasks.tagging.train import train_tagger

    train_tagger(cfg, tag_config_from_args(args), resume=args.resume)
    return 0


# ---- evaluate, explain ---------------------------------------------------------------------------------


def format_scores(rep: dict[str, Any]) -> str:
    """conlleval's own report for chunk tags (plus the loss), token accuracy for plain labels."""
    if "scores" in rep:
        from grutext.train.chunk_metrics import conlleval_report

        return conlleval_report(rep["scores"]).rstrip("\n") + (
            f"\nloss {rep['loss']:.4f}  ({rep['scheme']} tags"
            + ("; seqeval strict mode: only well-formed chunks)" if rep.get("mode") == "strict" else ")")
        )
    return f"accuracy {100 * rep['accuracy']:.2f}%  loss {rep['loss']:.4f}  ({rep['tokens']:,} tokens)"


def evaluate(loaded: Any, args: argparse.Namespace) -> int:
    """`grutext evaluate MODEL FILE` for taggers: conlleval's report (or JSON) on a CoNLL/JSONL file."""
    from grutext.tasks.tagging.data import TagVocab
    from grutext.tasks.tagging.evaluate import evaluate_tagger

    mode = "strict" if getattr(args, "strict", False) else "conlleval"
    if mode == "strict" and TagVocab.from_meta(loaded.meta).file_scheme == "none":
        raise ConfigError("--strict: scores chunks; this tagger's tags are plain labels (token accuracy only)")
    rep = evaluate_tagger(loaded, args.data, tag_col=getattr(args, "label_col", None), mode=mode)
    for w in rep.get("warnings", [])[:5]:
        print(f"warning: {w}", file=sys.stderr)
    if getattr(args, "json", False):
        print(dumps({k: v for k, v in rep.items() if k != "scores"}, what="evaluate --json"))
    else:
        print(format_scores(rep))
    return 0


def explain(loaded: Any, args: argparse.Namespace) -> Any:
    """`grutext explain TAGGER "sentence"`: per-token gates of the BiGRU and the best vs second-best tag path."""
    from grutext.tasks.tagging.explain import check_explain_options, explain_tagger

    check_explain_options(args)
    return explain_tagger(loaded, args.text, tokenized=bool(getattr(args, "tokenized", False)))


# ---- predict ---------------------------------------------------------------------------------------------


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    """`--tokenized` for taggers (`--format conll` uses the shared --format)."""
    group = p.add_argument_group("tagger")
    group.add_argument(
        "--tokenized",
        action="store_true",
        help="taggers: the texts' words are separated by spaces already (default: split by the model's tokenizer)",
    )


def predict(args: argparse.Namespace) -> int:
    """`grutext predict TAGGER "text" ...`: `[NP He] [VP reckons] ...` per sentence, or JSON with character
    offsets; `--file F --format conll` writes each line of a CoNLL file with the predicted tag appended."""
    from grutext.artifact import load_model
    from grutext.tasks.tagging.predict import brackets, conll_lines, predict_texts

    loaded = load_model(args.model)
    if getattr(args, "format", None) == "conll":
        if not args.file or args.texts:
            raise GrutextError("predict --format conll: expected --file FILE (a CoNLL file), and no texts")
        for line in conll_lines(loaded, args.file):
            print(line)
        return 0
    texts = list(args.texts or [])
    if args.file:
        from grutext.data.conll import read_conll

        if str(args.file).endswith((".jsonl", ".jsonl.gz", ".ndjson")) or getattr(args, "format", None) == "jsonl":
            corpus = read_conll(args.file, fmt="jsonl", tag_col="tokens", scheme="none")
            texts += [" ".join(s.tokens) for s in corpus]
            args.tokenized = True
        else:
            from pathlib import Path

            from grutext.data.conll import _lines

            texts += [line for _, line in _lines(Path(args.file)) if line.strip()]
    if not texts and not sys.stdin.isatty():
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise GrutextError("predict: no input; give sentences as arguments, --file FILE, or lines on stdin")
    for row in predict_texts(loaded, texts, tokenized=bool(getattr(args, "tokenized", False))):
        print(dumps(row, what="predict --json", ensure_ascii=False) if args.json else brackets(row))
    return 0


__all__ = [
    "add_predict_arguments",
    "add_train_arguments",
    "evaluate",
    "explain",
    "format_scores",
    "predict",
    "reject_train_flags",
    "tag_config_from_args",
    "train",
]
