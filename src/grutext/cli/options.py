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
OUTPUT_FIELDS = frozenset({"train.out", "train.overwrite", "train.keep_checkpoint"})
GROUP_TITLES = {
    "data": "data (also settable in --config [data])",
    "model": "model (also settable in --config [model])",
    "train": "training (also settable in --config [train])",
    "output": "output",
}


def field_choices(section: str, name: str) -> tuple[str, ...] | None:
    """The allowed values of config field `section.name` (`grutext.config.CHOICES`), or None when it
    takes any value. `data.format` is read lazily from the readers (which import torch)."""
    if (section, name) == ("data", "format"):
        from grutext.data.readers import FORMATS

        return FORMATS
    return _config.choices_for(f"{section}.{name}")


def field_help(section: str, name: str) -> tuple[str, str | None]:
    """The one-line help of config field `section.name` (`grutext.config.FIELD_HELP`, "text; None = what
    None does") split into the help and, when the text says it, what a None default does.

    Raises:
        KeyError: a field with no help (a test walks every flag, so a new field cannot ship without one).
    """
    text = _config.FIELD_HELP[f"{section}.{name}"]
    head, sep, none_means = text.partition("; None = ")
    return (head, none_means) if sep else (text, None)


def named_datasets() -> tuple[str, ...]:
    """Dataset names accepted where a data file is (`grutext.data.named`, the one table)."""
    from grutext.data.named import names

    return names()


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
        default: Any = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[operator]
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
