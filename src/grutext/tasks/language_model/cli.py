"""The language model's part of the `grutext` command: the [lm] training flags (--bptt, ...),
training, evaluation and explanation of language models, and the `generate` and `next-word`
commands.

The shared commands (grutext.cli) reach this module through grutext.cli.dispatch and the command
table. Top-level imports stay light: torch loads with the command that needs it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any

from grutext.cli.options import add_field_flags
from grutext.config import Config
from grutext.errors import ConfigError
from grutext.safeio import dumps

LM_SECTION = "lm"  # the config-file table and the flags' dest prefix ("lm.bptt")


def lm_config_class() -> Any:
    """The dataclass of the language-model settings (the one place this module names it; after the
    merge: grutext.tasks.language_model.config.LMConfig)."""
    from grutext.tasks.language_model.config import LMConfig

    return LMConfig


# ---- train ------------------------------------------------------------------------------------------


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The [lm] flags of `grutext train --task lm` (--bptt, --weight-drop, ...), one group."""
    group = p.add_argument_group("language model, with --task lm (also settable in --config [lm])")
    add_field_flags(group, LM_SECTION, lm_config_class())


def _used_flags(args: argparse.Namespace) -> list[str]:
    prefix = LM_SECTION + "."
    return [k[len(prefix) :] for k, v in vars(args).items() if k.startswith(prefix) and v is not None]


def reject_train_flags(args: argparse.Namespace) -> None:
    """ConfigError when an [lm] flag is given to a run that trains no language model."""
    used = _used_flags(args)
    if used:
        raise ConfigError(f"--{used[0].replace('_', '-')}: a language-model option; add --task lm")


def lm_config_from_args(args: argparse.Namespace) -> Any:
    """LMConfig from the config file's [lm] table, then the --bptt/--weight-drop/... flags."""
    from grutext.config import read_config_tables

    klass = lm_config_class()
    known = {f.name for f in fields(klass)}
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        table = read_config_tables(args.config).get(LM_SECTION, {}) or {}
        if not isinstance(table, dict):
            raise ConfigError(f"{args.config}: [lm] must be a table, got {type(table).__name__}")
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"{args.config}: unknown key(s) in [lm]: {', '.join(unknown)}; expected {sorted(known)}")
        values.update(table)
    prefix = LM_SECTION + "."
    for key, value in vars(args).items():
        if key.startswith(prefix) and value is not None:
            values[key[len(prefix) :]] = value
    return klass(**values).check()


def train(cfg: Config, args: argparse.Namespace) -> int:
    """`grutext train --task lm`."""
    from grutext.tasks.language_model.train import train_language_model

    train_language_model(cfg, lm=lm_config_from_args(args), resume=args.resume)
    return 0


# ---- evaluate, explain ---------------------------------------------------------------------------------


def evaluate(loaded: Any, args: argparse.Namespace) -> int:
    """`grutext evaluate MODEL FILE` for language models: prints the scores (or JSON)."""
    from grutext.tasks.language_model.data import named_corpus
    from grutext.tasks.language_model.evaluate import evaluate_language_model, format_scores

    data: Any = args.data
    named = named_corpus(data, getattr(args, "split", None) or "test")
    rep = evaluate_language_model(
        loaded,
        named if named is not None else data,
        fmt=getattr(args, "format", None),
        text_col=getattr(args, "text_col", None),
    )
    if getattr(args, "json", False):
        print(dumps(rep, what="evaluate --json"))
    else:
        print(format_scores(rep))
    return 0


def explain(loaded: Any, args: argparse.Namespace) -> Any:
    """`grutext explain` for language models: surprisal and gates along the prompt."""
    from grutext.explain import explain_lm

    return explain_lm(loaded, args.text, generate=args.generate, temperature=args.temperature, seed=args.seed)


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    """A language model adds no predict flags (it is used through generate and next-word)."""


def predict(args: argparse.Namespace) -> int:
    """`grutext predict` on a language model: a one-line error pointing to generate / next-word."""
    from grutext.errors import GrutextError

    raise GrutextError(
        f"predict: {args.model} is a language model; use `grutext generate {args.model} --prompt TEXT` "
        f"or `grutext next-word {args.model} --prompt TEXT`"
    )


# ---- generate, next-word ----------------------------------------------------------------------------------


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="language model directory")
    p.add_argument("--prompt", required=True, help="text to continue (required)")
    p.add_argument("--max-tokens", type=int, default=50, help="tokens to generate at most (default: 50)")
    s = p.add_argument_group("sampling")
    s.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="divide the logits by this: below 1 safer, above 1 more varied (default: 1.0, the model's own)",
    )
    s.add_argument(
        "--top-k", type=int, default=None, help="sample among the k most likely tokens only (default: every token)"
    )
    s.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="nucleus sampling: among the most likely tokens whose probabilities sum to p (default: off)",
    )
    s.add_argument("--greedy", action="store_true", help="always take the most likely token (no sampling)")
    s.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.0,
        help="make tokens already generated less likely by this factor, >1 repeats less (default: 1.0, off)",
    )
    s.add_argument("--seed", type=int, default=None, help="sampling seed, for repeatable text (default: random)")
    s.add_argument(
        "--stop",
        action="append",
        default=None,
        metavar="TEXT",
        help="stop when this token or text is generated; repeatable (default: only --max-tokens stops)",
    )
    b = p.add_argument_group("beam search")
    b.add_argument(
        "--beam",
        type=int,
        default=None,
        help="beam search of this width (>= 1), printing the best continuations with log-probabilities "
        "(default: off, sample)",
    )
    b.add_argument("--n-best", type=int, default=None, help="with --beam: continuations to print (default: --beam)")


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate text from a language model, token by token, after a prompt.

    Sampling: --temperature, --top-k, --top-p, --repetition-penalty, --seed; --greedy takes the
    most likely token; --beam N prints the N best continuations with their log-probabilities.
    """
    from grutext.infer.generate import Generator

    check_generate_options(args)
    gen = Generator.load(args.model)
    if args.beam is not None:
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


def check_generate_options(args: argparse.Namespace) -> None:
    """ConfigError for generate options that cannot apply: --beam below 1, --n-best without --beam,
    sampling options with --beam (beam search does not sample)."""
    if args.beam is not None and args.beam < 1:
        raise ConfigError(f"--beam {args.beam}: expected a beam width >= 1 (leave --beam out to sample)")
    if args.beam is None and args.n_best is not None:
        raise ConfigError("--n-best: applies to beam search only; add --beam N")
    if args.beam is not None:
        sampling = {
            "--temperature": args.temperature != 1.0,
            "--top-k": args.top_k is not None,
            "--top-p": args.top_p is not None,
            "--greedy": bool(args.greedy),
            "--repetition-penalty": args.repetition_penalty != 1.0,
            "--seed": args.seed is not None,
        }
        used = [flag for flag, given in sampling.items() if given]
        if used:
            raise ConfigError(f"{used[0]}: a sampling option; beam search (--beam) does not sample: drop one of them")


def add_next_word_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="language model directory")
    p.add_argument(
        "--prompt", required=True, help="the text typed so far; no trailing space completes its last word (required)"
    )
    p.add_argument("-k", type=int, default=5, help="number of suggestions (default: 5)")
    p.add_argument("--json", action="store_true", help="print the suggestions as one JSON list")


def cmd_next_word(args: argparse.Namespace) -> int:
    """Suggest the k most likely next words after a prompt, with probabilities; a prompt that ends
    inside a word (no trailing space) gets completions of that word."""
    from grutext.infer.suggest import Suggester

    sug = Suggester.load(args.model)
    rows = sug.suggest(args.prompt, k=args.k)
    if args.json:
        print(dumps([{"word": w, "probability": p} for w, p in rows], what="next-word --json", ensure_ascii=False))
    else:
        for w, p in rows:
            print(f"{p:7.4f}  {w}")
    return 0


__all__ = [
    "add_generate_arguments",
    "add_predict_arguments",
    "predict",
    "add_next_word_arguments",
    "add_train_arguments",
    "cmd_generate",
    "cmd_next_word",
    "evaluate",
    "explain",
    "lm_config_from_args",
    "reject_train_flags",
    "train",
]
