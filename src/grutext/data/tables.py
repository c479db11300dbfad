"""Tabular and record formats: csv, tsv, jsonl, json, parquet."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from grutext.data.columns import _from_records
from grutext.data.dataset import TextDataset
from grutext.data.lines import _iter_lines
from grutext.data.rawfile import _where
from grutext.errors import DataError


def _raise_csv_limit() -> None:
    limit = sys.maxsize
    while True:  # field_size_limit takes a C long, which is 32-bit on Windows
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10


def _read_delimited(text: str, source: str, delimiter: str, **kw: Any) -> TextDataset:
    header, rows = _delimited_records(io.StringIO(text, newline=""), source, delimiter, text)
    records = list(rows)
    if not records:
        raise DataError(f"{source}: no data rows after the header")
    return _from_records(records, header, source, "line", **kw)


def _delimited_records(
    lines: Iterable[str], source: str, delimiter: str, head: str
) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """The header of a csv/tsv read from `lines` (checked now, `head`: its first lines, for the delimiter
    hint) and its data rows as (first line number, record), read as they are asked for."""
    _raise_csv_limit()
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{source}: empty file, expected a header row") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise DataError(f"{source} line 1: empty header row, expected column names")
    _delimiter_hint(header, head, source, delimiter)
    return header, _delimited_rows(reader, header, source, delimiter)


def _delimited_rows(
    reader: Any, header: list[str], source: str, delimiter: str
) -> Iterator[tuple[int, dict[str, Any]]]:
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
            yield start, dict(zip(header, row, strict=True))
    except csv.Error as exc:
        raise DataError(
            f"{_where(source, reader.line_num)}: malformed {('CSV', 'TSV')[delimiter == chr(9)]} ({exc})"
        ) from None


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
        records = list(_json_line_records(_iter_lines(text), source))
        unit = "line"
    if not records:
        raise DataError(f"{source}: no records, expected JSON objects")
    columns = list(records[0][1].keys())
    return _from_records(records, columns, source, unit, **kw)


def _json_line_records(lines: Iterable[tuple[int, str]], source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """JSON lines (numbered, blank ones left out) as (line number, object)."""
    for num, line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{_where(source, num)}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{_where(source, num)}: expected a JSON object, got {type(obj).__name__}")
        yield num, obj


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
