"""`grutext prepare CORPUS OUT`: tokenize a corpus once into a memory-mapped token-id file that
`grutext train --task lm OUT` reads batch by batch (corpora larger than memory)."""

from __future__ import annotations

import argparse

from grutext.cli.options import field_choices
from grutext.config import CHOICES, DataConfig


def add_prepare_arguments(p: argparse.ArgumentParser) -> None:
    """CORPUS, OUT and the language model's tokenizer settings (the defaults of `grutext train --task lm`)."""
    from grutext.tasks.language_model.config import LMConfig
    from grutext.tasks.language_model.prepared import BATCH_LINES

    d, lm = DataConfig(), LMConfig()
    p.add_argument("corpus", help="text file(s): a path, a glob or comma-separated paths (.txt, .gz, csv, jsonl...)")
    p.add_argument("out", help="the folder to write (tokens.u32, offsets.u64, tokenizer.json, header.json)")
    p.add_argument("--tokenizer", choices=CHOICES["data.tokenizer"], default=d.tokenizer, help="(default: %(default)s)")
    p.add_argument(
        "--lowercase",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="lower-case before tokenizing (default: yes for word and bpe, no for char)",
    )
    p.add_argument("--min-freq", type=int, default=d.min_freq, help="min count (default: %(default)s)")
    p.add_argument("--max-vocab", type=int, default=d.max_vocab, help="vocabulary cap (default: %(default)s)")
    p.add_argument("--bpe-vocab-size", type=int, default=d.bpe_vocab_size, help="bpe size (default: %(default)s)")
    p.add_argument(
        "--word-split",
        choices=CHOICES["lm.word_split"],
        default=lm.word_split,
        help="(default: %(default)s)",
    )
    p.add_argument(
        "--add-eos",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="end each line with <eos> (default: yes for word and bpe, no for char)",
    )
    p.add_argument(
        "--format",
        choices=field_choices("data", "format"),
        default=None,
        help="file format (default: from the extension; plain text for .txt, .gz or none)",
    )
    p.add_argument("--text-col", default=None, help="the text column of a table (default: inferred)")
    p.add_argument(
        "--batch-lines", type=int, default=BATCH_LINES, help="lines encoded per parallel batch (default: %(default)s)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a prepared corpus already at OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress line")


def cmd_prepare(args: argparse.Namespace) -> int:
    """Tokenize CORPUS into OUT: token ids in a memory-mapped file (tokens.u32) with a line index
    (offsets.u64), the tokenizer and a small JSON header. Train on it with `grutext train OUT --task lm`:
    the ids are read batch by batch, so memory does not grow with the corpus.
    """
    from grutext.errors import ConfigError
    from grutext.tasks.language_model.prepared import prepare_corpus

    for flag, value, low in (("--min-freq", args.min_freq, 1), ("--max-vocab", args.max_vocab, 5)):
        if value is not None and value < low:
            raise ConfigError(f"{flag}: expected an integer >= {low}, got {value}")
    prepare_corpus(
        args.corpus,
        args.out,
        tokenizer=args.tokenizer,
        lowercase=args.lowercase,
        min_freq=args.min_freq,
        max_vocab=args.max_vocab,
        bpe_vocab_size=args.bpe_vocab_size,
        word_split=args.word_split,
        add_eos=args.add_eos,
        fmt=args.format,
        text_col=args.text_col,
        batch_lines=args.batch_lines,
        overwrite=args.overwrite,
        progress=False if args.no_progress else None,
    )
    return 0


__all__ = ["add_prepare_arguments", "cmd_prepare"]
