"""Columns and records to a `TextDataset`: which column is the text and which the label, cell checks."""

from __future__ import annotations

import math
from typing import Any, Literal

from grutext.data.dataset import TextDataset
from grutext.data.rawfile import _closest, _where
from grutext.errors import DataError

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
    texts, labels = _cells(records, source, unit, text_name, label_name, label_sep)
    return TextDataset(texts, labels, source, columns=(text_name, label_name))


def _cells(
    records: list[tuple[int, dict[str, Any]]],
    source: str,
    unit: str,
    text_name: str,
    label_name: str | None,
    label_sep: str | None,
) -> tuple[list[str], list[Any] | None]:
    """The checked text (and label) cells of `records` (the columns chosen): one-line errors name the line."""
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
    return texts, labels


def _check_label_kinds(labels: list[Any], source: str) -> None:
    kinds = {isinstance(x, list) for x in labels}
    if len(kinds) > 1:  # mixed single/multi: promote singles to one-element lists
        for i, x in enumerate(labels):
            if not isinstance(x, list):
                labels[i] = [x]
