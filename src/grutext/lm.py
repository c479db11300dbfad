"""Deprecated: the language-model pipeline moved to `grutext.tasks.language_model` (``config``,
``data``, ``model``, ``train``, ``evaluate``, ``predict``); these re-exports go in a later release.
The ``generate`` / ``next-word`` commands and `evaluate_language_model_cli` still live here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from grutext.artifact import LoadedModel
from grutext.tasks.language_model.config import LN2, WORD_SPLITS, LMConfig
from grutext.tasks.language_model.config import lm_config as _lm_config
from grutext.tasks.language_model.data import (
    NAMED_CORPORA,
    PLAIN_SUFFIXES,
    LMBatches,
    _is_plain,
    build_lm_tokenizer,
    encode_stream,
    expand_paths,
    named_corpus,
    named_corpus_splits,
    read_corpus,
)
from grutext.tasks.language_model.evaluate import (
    LanguageModelTask,
    _metrics,
    _state_batch,
    evaluate_language_model,
    format_scores,
    score_stream,
    stream_loss,
)
from grutext.tasks.language_model.predict import check_language_model, lm_settings
from grutext.tasks.language_model.train import TrainedLanguageModel, save_language_model, train_language_model


def evaluate_language_model_cli(loaded: LoadedModel, args: argparse.Namespace) -> int:
    """`grutext evaluate MODEL FILE` for language models: prints the scores (or JSON)."""
    data: Any = args.data
    named = named_corpus(data, getattr(args, "split", None) or "test")
    rep = evaluate_language_model(
        loaded,
        named if named is not None else data,
        fmt=getattr(args, "format", None),
        text_col=getattr(args, "text_col", None),
    )
    if getattr(args, "json", False):
        print(json.dumps(rep))
    else:
        print(format_scores(rep))
    return 0


# ---- CLI ----------------------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate text from a language model, token by token, after a prompt.

    Sampling: --temperature, --top-k, --top-p, --repetition-penalty, --seed; --greedy takes the
    most likely token; --beam N prints the N best continuations with their log-probabilities.
    """
    from grutext.infer.generate import Generator

    gen = Generator.load(args.model)
    if args.beam:
        for text, score in gen.beam_search(
            args.prompt, beam=args.beam, max_tokens=args.max_tokens, n_best=args.n_best or args.beam, stop=args.stop
        ):
            shown = (args.prompt + text).replace("\n", "\\n")  # one line per continuation
            print(f"{score:9.3f}  {shown}")
        return 0
    opts = dict(
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        greedy=args.greedy,
        repetition_penalty=args.repetition_penalty,
        stop=args.stop,
        seed=args.seed,
    )
    sys.stdout.write(args.prompt)
    for piece in gen.stream(args.prompt, **opts):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def cmd_next_word(args: argparse.Namespace) -> int:
    """Suggest the k most likely next words after a prompt, with probabilities; a prompt that ends
    inside a word (no trailing space) gets completions of that word."""
    from grutext.infer.suggest import Suggester

    sug = Suggester.load(args.model)
    rows = sug.suggest(args.prompt, k=args.k)
    if args.json:
        print(json.dumps([{"word": w, "probability": p} for w, p in rows], ensure_ascii=False))
    else:
        for w, p in rows:
            print(f"{p:7.4f}  {w}")
    return 0


def register_cli(sub: Any, add: Callable[[str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]) -> None:
    """Add `generate` and `next-word` to the grutext command."""
    p = add("generate", cmd_generate)
    p.add_argument("model", help="language model directory")
    p.add_argument("--prompt", required=True, help="text to continue")
    p.add_argument("--max-tokens", type=int, default=50)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--greedy", action="store_true", help="always the most likely token")
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--beam", type=int, default=0, help="beam search with this width (prints n-best)")
    p.add_argument("--n-best", type=int, default=None, help="with --beam: how many continuations (default: beam)")
    p.add_argument("--stop", action="append", default=None, help="stop when this token/text is generated (repeatable)")
    p.add_argument("--seed", type=int, default=None)

    p = add("next-word", cmd_next_word)
    p.add_argument("model", help="language model directory")
    p.add_argument("--prompt", required=True, help="the text typed so far")
    p.add_argument("-k", type=int, default=5, help="number of suggestions (default 5)")
    p.add_argument("--json", action="store_true")


__all__ = [
    "LN2",
    "NAMED_CORPORA",
    "PLAIN_SUFFIXES",
    "WORD_SPLITS",
    "LMConfig",
    "LMBatches",
    "LanguageModelTask",
    "TrainedLanguageModel",
    "_is_plain",
    "_lm_config",
    "_metrics",
    "_state_batch",
    "read_corpus",
    "expand_paths",
    "named_corpus",
    "named_corpus_splits",
    "build_lm_tokenizer",
    "encode_stream",
    "train_language_model",
    "save_language_model",
    "score_stream",
    "format_scores",
    "evaluate_language_model",
    "evaluate_language_model_cli",
    "check_language_model",
    "lm_settings",
    "register_cli",
    "stream_loss",
    "cmd_generate",
    "cmd_next_word",
]
