"""Config fields as command-line flags: `--hidden-size 64`, `--no-bidirectional`, each with a
one-line help that names its choices and says what its default does.

Three small functions read the decisions that live elsewhere: `field_choices` (allowed values),
`field_help` (the one-line help and what a None default means) and `named_datasets` (names
accepted where a file is). After the redesign's merge they read `grutext.config`'s choices and
help tables and `grutext.data.named`; nothing else here changes.

This module imports no torch: `grutext --help` reads it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import MISSING, fields, replace
from typing import Any

from grutext import config as _config
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig, load_config

SECTIONS: dict[str, Any] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
HIDDEN_FIELDS = frozenset({"vocab_size", "num_classes", "train"})  # filled in from the data / the DATA argument

# section.field -> the argument group its flag is shown in
OUTPUT_FIELDS = frozenset({"train.out"})
GROUP_TITLES = {
    "data": "data (also settable in --config [data])",
    "model": "model (also settable in --config [model])",
    "train": "training (also settable in --config [train])",
    "output": "output",
}

# The one-line help of every flag, and for a None default what None does. To be replaced after the
# merge by the per-field help table in grutext.config (see `field_help`).
_HELP: dict[str, tuple[str, str | None]] = {
    # data
    "data.valid": ("validation data: a file, folder or dataset name", "--valid-fraction of the training data"),
    "data.test": (
        "test data, scored after training",
        "a named dataset's own test split, else --test-fraction carved from it; none for files",
    ),
    "data.format": ("file format", "guessed from the file name"),
    "data.text_col": ("column (or JSON key) holding the text", "found by name: text, sentence, review, ..."),
    "data.label_col": ("column (or JSON key) holding the label(s)", "found by name: label, sentiment, class, ..."),
    "data.tokenizer": ("how text becomes tokens: words, characters or learned BPE pieces", None),
    "data.lowercase": ("lower-case the text before tokenizing", None),
    "data.strip_html": ("remove HTML tags and entities before tokenizing", None),
    "data.split_contractions": ('word tokenizer: split "doesn\'t" into "does n\'t" (Penn Treebank)', None),
    "data.min_freq": ("leave words seen fewer times than this out of the vocabulary", None),
    "data.max_vocab": ("keep at most this many of the most frequent words", "no limit"),
    "data.bpe_vocab_size": ("BPE tokenizer: number of pieces to learn", None),
    "data.max_len": ("tokens kept per text; longer texts are cut as --truncation says", None),
    "data.truncation": ("which part of a long text is kept: its start, its end, or both ends", None),
    "data.valid_fraction": ("share of the training data held out for validation when --valid is not given", None),
    "data.test_fraction": ("share held out for testing from a named dataset that has no test split", None),
    "data.data_root": ("folder holding the named datasets' files", "$GRUTEXT_DATA, else ../shared/data"),
    "data.sentences": ("train on sentences: every text becomes its sentences, each labelled as the text", None),
    "data.sentence_min_words": ("with --sentences: drop sentences of fewer words than this", None),
    # model
    "model.task": ("classification head: from the labels (auto), or a fixed kind", None),
    "model.cell": ("recurrent cell (lngru: layer-normalised GRU; mingru: minimal GRU)", None),
    "model.embed_dim": ("size of the word vectors (replaced by the vectors' size with --pretrained)", None),
    "model.hidden_size": ("hidden units of each recurrent layer (per direction)", None),
    "model.num_layers": ("stacked recurrent layers", None),
    "model.bidirectional": ("read the text in both directions", None),
    "model.dropout": ("dropout between the recurrent layers and before the head", None),
    "model.embed_dropout": ("dropout on the embeddings", None),
    "model.pooling": ("how the per-token outputs become one vector: last state, mean, max or attention", None),
    "model.pretrained": ("pretrained word vectors: a GloVe/word2vec/fastText file or glove-6b-50d", "random init"),
    "model.freeze_embeddings": ("keep the embedding matrix fixed during training", None),
    "model.init_from": (
        "start from a trained model directory (language model or classifier): tokenizer, embedding, encoder",
        "train from scratch",
    ),
    "model.keep_head": ("with --init-from a classifier: keep its pooling and head (same labels)", None),
    "model.ensemble": ("train this many networks (seeds seed, seed+1, ...) and average their probabilities", None),
    # training
    "train.epochs": ("passes over the training data (fewer with early stopping)", None),
    "train.batch_size": ("examples per optimizer step", None),
    "train.lr": ("peak learning rate (AdamW)", None),
    "train.weight_decay": ("AdamW weight decay", None),
    "train.warmup": ("share of the steps spent warming the learning rate up from 0", None),
    "train.schedule": ("learning rate after warm-up; plateau: x --plateau-factor when the monitor stalls", None),
    "train.plateau_factor": ("with --schedule plateau: multiply the learning rate by this", None),
    "train.plateau_patience": ("with --schedule plateau: epochs without improvement before each decay", None),
    "train.clip": ("clip the gradient norm to this (0: no clipping)", None),
    "train.ema": ("decay of a moving average of the weights used for validation and saving (0: off)", None),
    "train.layer_lr_decay": ("fine-tuning: each layer below the head learns at lr / decay^depth (1: same lr)", None),
    "train.unfreeze": ("fine-tuning: train all layers, or the head first and one more layer each epoch", None),
    "train.patience": ("stop after this many epochs without improvement (0: never stop early)", None),
    "train.monitor": ("validation value that picks the best epoch and drives early stopping", None),
    "train.seed": ("random seed (data split, initialisation, shuffling)", None),
    "train.threads": ("CPU threads for torch", "torch's default, all cores"),
    "train.max_minutes": ("stop training after this many minutes (the best epoch so far is kept)", "no limit"),
    "train.device": ("auto, cpu, cuda or cuda:N", None),
    "train.out": ("model directory to write (its checkpoint goes beside it, OUT.ckpt)", None),
    # language model ([lm] table, with --task lm)
    "lm.bptt": ("truncated-BPTT window length in tokens", None),
    "lm.vary_length": ("vary the window length per batch (AWD-LSTM)", None),
    "lm.eval_batch_size": ("parallel streams when scoring validation during training", None),
    "lm.add_eos": ("end each line with <eos>", "yes for word/BPE, no for char, whose newlines stay characters"),
    "lm.word_split": ("word tokenizer: punctuation as its own tokens, or split on whitespace only (PTB)", None),
    "lm.tie_weights": ("the decoder shares the embedding matrix", None),
    "lm.input_dropout": ("locked dropout on the embeddings", "--dropout"),
    "lm.layer_dropout": ("locked dropout between layers", "--dropout"),
    "lm.weight_drop": ("DropConnect on the recurrent weights W_hh", None),
    "lm.epoch_tokens": (
        "one epoch is about this many training tokens (long corpora get frequent validation)",
        "the whole corpus",
    ),
}

# section.field -> allowed values; to be replaced after the merge by grutext.config's choices table
_CHOICES: dict[str, tuple[str, ...]] = {
    "data.tokenizer": _config.TOKENIZERS,
    "data.truncation": _config.TRUNCATIONS,
    "model.task": _config.TASKS,
    "model.cell": _config.CELLS,
    "model.pooling": _config.POOLINGS,
    "train.schedule": _config.SCHEDULES,
    "train.unfreeze": _config.UNFREEZE,
    "train.monitor": _config.MONITORS,
}


def field_choices(section: str, name: str) -> tuple[str, ...] | None:
    """The allowed values of config field `section.name`, or None when it takes any value.

    The one place the CLI reads them (today: the tuples in grutext.config; after the merge: its
    choices table). `data.format` and `lm.word_split` are read lazily from their modules (which import torch).
    """
    if (section, name) == ("data", "format"):
        from grutext.data.readers import FORMATS

        return FORMATS
    if (section, name) == ("lm", "word_split"):
        from grutext.tasks.language_model.config import WORD_SPLITS

        return WORD_SPLITS
    return _CHOICES.get(f"{section}.{name}")


def field_help(section: str, name: str) -> tuple[str, str | None]:
    """The one-line help of config field `section.name` and, when its default is None, what None does.

    The one place the CLI reads them (today: this module's table; after the merge: grutext.config's).

    Raises:
        KeyError: a field with no help (a test walks every flag, so a new field cannot ship without one).
    """
    return _HELP[f"{section}.{name}"]


def named_datasets() -> tuple[str, ...]:
    """Dataset names accepted where a data file is (the one place the CLI reads them; after the merge:
    grutext.data.named). Imports the readers, so only commands that build a full parser call it."""
    from grutext.data.readers import NAMED_DATASETS

    return tuple(NAMED_DATASETS)


def describe_default(value: Any, none_means: str | None) -> str:
    """`(default: ...)` for a help line: bools as on/off, None as what it does."""
    if value is None:
        if not none_means:
            raise ValueError("a None default needs a sentence saying what None does")
        return f"(default: {none_means})"
    if isinstance(value, bool):
        return f"(default: {'on' if value else 'off'})"
    return f"(default: {value})"


def choices_metavar(choices: Iterable[str]) -> str:
    """`{a,b,c}` as argparse shows choices; values are checked by Config so errors stay one line."""
    return "{" + ",".join(choices) + "}"


def _field_type(f: Any) -> Callable[[str], Any]:
    ann = str(f.type)
    if ann.startswith("int"):
        return int
    if ann.startswith("float"):
        return float
    return str


def add_field_flags(
    group: Any, section: str, klass: Any, skip: Iterable[str] = (), only: Iterable[str] | None = None
) -> None:
    """One flag per field of dataclass `klass`, with dest `section.field` and default None (unset)."""
    skipped, wanted = set(skip), (set(only) if only is not None else None)
    for f in fields(klass):
        if f.name in skipped or (wanted is not None and f.name not in wanted):
            continue
        flag = "--" + f.name.replace("_", "-")
        text, none_means = field_help(section, f.name)
        default: Any = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc,operator]
        help_text = f"{text} {describe_default(default, none_means)}"
        dest = f"{section}.{f.name}"
        if isinstance(default, bool) or str(f.type).startswith("bool"):
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        choices = field_choices(section, f.name)
        metavar = choices_metavar(choices) if choices else f.name.upper()
        group.add_argument(flag, dest=dest, type=_field_type(f), default=None, metavar=metavar, help=help_text)


def add_config_flags(
    p: argparse.ArgumentParser,
    sections: Iterable[str] = ("data", "model", "train"),
    skip: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> None:
    """`--config FILE` and the flags of the named config sections, one argument group each
    (data / model / training / output). `skip` and `only` hold `section.field` names."""
    p.add_argument("--config", metavar="FILE", help="TOML or JSON file with [data], [model], [train] tables")
    skipped = set(skip) | {f"{s}.{n}" for s in SECTIONS for n in HIDDEN_FIELDS}
    wanted = set(only) if only is not None else None
    groups: dict[str, Any] = {}
    for section in sections:
        for f in fields(SECTIONS[section]):
            key = f"{section}.{f.name}"
            if key in skipped or (wanted is not None and key not in wanted):
                continue
            title = "output" if key in OUTPUT_FIELDS else section
            if title not in groups:
                groups[title] = p.add_argument_group(GROUP_TITLES[title])
            add_field_flags(groups[title], section, SECTIONS[section], only=[f.name])


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """The Config of `--config` (or `base`, or the defaults) with every flag given on top."""
    cfg = load_config(args.config) if getattr(args, "config", None) else (base or Config())
    parts: dict[str, Any] = {"data": cfg.data, "model": cfg.model, "train": cfg.train}
    for key, value in vars(args).items():
        if "." in key and value is not None:
            section, name = key.split(".", 1)
            if section in parts:
                parts[section] = replace(parts[section], **{name: value})
    return Config(**parts).validate("command line")


__all__ = [
    "add_config_flags",
    "add_field_flags",
    "config_from_args",
    "describe_default",
    "field_choices",
    "field_help",
    "named_datasets",
]
