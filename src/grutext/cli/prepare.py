"""`grutext prepare CORPUS OUT`: tokenize a corpus once into memory-mapped files that `grutext train OUT`
reads batch by batch (corpora larger than memory): plain text for a language model (`--task lm`), a
labelled table (csv, tsv, jsonl) for a classifier (`--task classify`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from grutext.cli.options import field_choices
from grutext.config import CHOICES, DataConfig

TASKS = ("auto", "lm", "classify")


def add_prepare_arguments(p: argparse.ArgumentParser) -> None:
    """CORPUS, OUT, --task and the tokenizer settings (the defaults of `grutext train`)."""
    d = DataConfig()
    p.add_argument("corpus", help="file(s): a path, a glob or comma-separated paths (.txt, .gz, csv, tsv, jsonl...)")
    p.add_argument("out", help="the folder to write (tokens.u32, offsets.u64, tokenizer.json, header.json ...)")
    p.add_argument(
        "--task",
        choices=TASKS,
        default="auto",
        help="lm: a token stream for `train --task lm`; classify: one labelled example a row (labels.u32) for "
        "`train OUT`; auto: classify for a table with a label column, else lm (default: %(default)s)",
    )
    p.add_argument("--tokenizer", choices=CHOICES["data.tokenizer"], default=d.tokenizer, help="(default: %(default)s)")
    p.add_argument(
        "--lowercase",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="lower-case before tokenizing (default: lm: yes for word and bpe, no for char; classify: yes)",
    )
    p.add_argument(
        "--strip-html",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="classify: replace <br /> tags by spaces (default: yes, as `grutext train`)",
    )
    p.add_argument("--min-freq", type=int, default=d.min_freq, help="min count (default: %(default)s)")
    p.add_argument("--max-vocab", type=int, default=d.max_vocab, help="vocabulary cap (default: %(default)s)")
    p.add_argument("--bpe-vocab-size", type=int, default=d.bpe_vocab_size, help="bpe size (default: %(default)s)")
    p.add_argument(
        "--word-split", choices=CHOICES["lm.word_split"], default=None, help="lm only (default: punct, as train)"
    )
    p.add_argument(
        "--add-eos",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="lm only: end each line with <eos> (default: yes for word and bpe, no for char)",
    )
    p.add_argument(
        "--format",
        choices=field_choices("data", "format"),
        default=None,
        help="file format (default: from the extension; plain text for .txt, .gz or none)",
    )
    p.add_argument("--text-col", default=None, help="the text column of a table (default: inferred)")
    p.add_argument("--label-col", default=None, help="classify: the label column (default: inferred)")
    p.add_argument(
        "--batch-lines",
        type=int,
        default=None,
        help="lines (lm) or examples (classify) encoded per parallel batch (default: 20000 lm, 2000 classify)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a prepared corpus already at OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress line")


def cmd_prepare(args: argparse.Namespace) -> int:
    """Tokenize CORPUS into OUT: token ids in a memory-mapped file (tokens.u32) with a row index
    (offsets.u64), the tokenizer and a small JSON header; for a classifier also each example's class
    (labels.u32). Train on it with `grutext train OUT` (classify) or `grutext train OUT --task lm`: the ids
    are read batch by batch, so memory does not grow with the corpus.
    """
    from grutext.errors import ConfigError

    for flag, value, low in (("--min-freq", args.min_freq, 1), ("--max-vocab", args.max_vocab, 5)):
        if value is not None and value < low:
            raise ConfigError(f"{flag}: expected an integer >= {low}, got {value}")
    task = args.task if args.task != "auto" else _guess_task(args)
    if task == "classify":
        return _prepare_classify(args)
    if args.label_col is not None or args.strip_html is not None:
        flag = "--label-col" if args.label_col is not None else "--strip-html"
        raise ConfigError(f"{flag}: applies to --task classify (a labelled table); drop it for --task lm")
    return _prepare_lm(args)


def _guess_task(args: argparse.Namespace) -> str:
    """classify when CORPUS is a table (not plain text) whose first rows have a label column, else lm."""
    from grutext.errors import GrutextError
    from grutext.tasks.language_model.data import _is_plain, expand_paths

    if args.label_col is not None:
        return "classify"
    first = expand_paths(args.corpus)[0]
    if args.format in (None, "txt", "text") and _is_plain(Path(first)):
        return "lm"
    from grutext.data.stream import stream_table

    try:
        chunk = next(stream_table(first, fmt=args.format, text_col=args.text_col, chunk_rows=1), None)
    except GrutextError:  # no label column to be found: the lm pass reads the texts and reports real faults
        return "lm"
    return "classify" if chunk is not None and chunk.labels is not None else "lm"


def _prepare_lm(args: argparse.Namespace) -> int:
    from grutext.tasks.language_model.config import LMConfig
    from grutext.tasks.language_model.prepared import BATCH_LINES, prepare_corpus

    prepare_corpus(
        args.corpus,
        args.out,
        tokenizer=args.tokenizer,
        lowercase=args.lowercase,
        min_freq=args.min_freq,
        max_vocab=args.max_vocab,
        bpe_vocab_size=args.bpe_vocab_size,
        word_split=args.word_split or LMConfig().word_split,
        add_eos=args.add_eos,
        fmt=args.format,
        text_col=args.text_col,
        batch_lines=BATCH_LINES if args.batch_lines is None else args.batch_lines,
        overwrite=args.overwrite,
        progress=False if args.no_progress else None,
    )
    return 0


def _prepare_classify(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from grutext.errors import ConfigError
    from grutext.tasks.classification.prepared import BATCH_ROWS, prepare_table

    if args.word_split is not None or args.add_eos is not None:
        flag = "--word-split" if args.word_split is not None else "--add-eos"
        raise ConfigError(f"{flag}: applies to --task lm (a token stream); drop it for a classification corpus")
    d = DataConfig()
    d = replace(
        d,
        format=args.format,
        text_col=args.text_col,
        label_col=args.label_col,
        tokenizer=args.tokenizer,
        lowercase=d.lowercase if args.lowercase is None else args.lowercase,
        strip_html=d.strip_html if args.strip_html is None else args.strip_html,
        min_freq=args.min_freq,
        max_vocab=args.max_vocab,
        bpe_vocab_size=args.bpe_vocab_size,
    )
    prepare_table(
        args.corpus,
        args.out,
        data=d,
        batch_rows=BATCH_ROWS if args.batch_lines is None else args.batch_lines,
        overwrite=args.overwrite,
        progress=False if args.no_progress else None,
    )
    return 0


__all__ = ["add_prepare_arguments", "cmd_prepare"]
