"""Labelled tables read a chunk at a time: `stream_table` yields the rows of a csv, tsv or jsonl file
(gzip too) as `TextDataset` chunks, never holding more than one chunk, so corpora larger than memory
can be counted and encoded (`grutext prepare`).

The rows, the column choice (`--text-col` / `--label-col`, else inferred from the names or the first
200 records) and the one-line errors naming file and line are those of `read_dataset`: both parse
with the same functions (`grutext.data.tables`, `grutext.data.columns`). Two differences, both stated
in the errors: the file must be UTF-8 (the whole-file reader falls back to cp1252 with a warning; a
stream cannot re-decode rows it has handed out), and mixed single and multi-label rows are promoted
to lists within a chunk only. Other formats (a JSON array, parquet, labelled lines, a folder ...) are
read whole by `read_dataset` and handed out in chunks (`streams` says which).
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from grutext.data.columns import _cells, _pick_columns
from grutext.data.dataset import TextDataset
from grutext.data.rawfile import _where
from grutext.errors import ConfigError, DataError

CHUNK_ROWS = 10_000
STREAMED = ("csv", "tsv", "jsonl", "json")  # json: when it holds one object a line (an array is read whole)
_SAMPLE = 200  # records the column choice looks at (as read_dataset)
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")  # a line break that is a lone carriage return


def table_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The format `read_dataset` would read `path` as (`fmt` when given)."""
    from grutext.data.readers import FORMATS, infer_format

    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"fmt: expected one of {list(FORMATS)}, got {fmt!r}")
        return fmt
    if not Path(path).exists():
        raise DataError(f"{path}: file not found")
    return infer_format(path)


def streams(path: str | os.PathLike[str], fmt: str | None = None) -> bool:
    """Whether `stream_table` reads `path` a chunk at a time (csv, tsv, jsonl; not a JSON array)."""
    kind = table_format(path, fmt)
    if kind not in STREAMED:
        return False
    with _open_binary(Path(path)) as fh:
        for raw in fh:
            if raw.strip():
                return not (kind in ("json", "jsonl") and raw.lstrip().startswith(b"["))
    return True


def stream_table(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    text_col: str | None = None,
    label_col: str | None | Literal[False] = None,
    label_sep: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[TextDataset]:
    """The examples of `path` in chunks of at most `chunk_rows` (the last shorter, none empty), in file
    order; each chunk is a `TextDataset` with the chosen ``columns``. Concatenated, the chunks hold the
    texts and labels `read_dataset` returns for the same arguments.

    Raises:
        DataError: as `read_dataset` (file and line named), and a byte that is not UTF-8.
        ConfigError: unknown `fmt`, `chunk_rows` < 1.
    """
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows: expected an integer >= 1, got {chunk_rows}")
    source = str(path)
    kind = table_format(path, fmt)
    if not streams(path, kind):
        from grutext.data.readers import read_dataset

        whole = read_dataset(path, fmt=kind, text_col=text_col, label_col=label_col, label_sep=label_sep)
        for start in range(0, len(whole), chunk_rows):
            yield whole.subset(range(start, min(start + chunk_rows, len(whole))))
        return
    with _open_binary(Path(path)) as fh:
        lines = _decoded_lines(fh, source)
        columns, records = (
            _csv_records(lines, source, kind) if kind in ("csv", "tsv") else _json_records(lines, source, kind)
        )
        head = list(itertools.islice(records, _SAMPLE))
        if not head:
            raise DataError(
                f"{source}: no data rows after the header" if kind in ("csv", "tsv") else f"{source}: no records"
            )
        text_name, label_name = _pick_columns(columns, [r for _, r in head], source, text_col, label_col)
        rows = itertools.chain(head, records)
        while True:
            chunk = list(itertools.islice(rows, chunk_rows))
            if not chunk:
                return
            texts, labels = _cells(chunk, source, "line", text_name, label_name, label_sep)
            yield TextDataset(texts, labels, source, columns=(text_name, label_name))


def _open_binary(path: Path) -> IO[bytes]:
    """`path` opened for reading bytes, gunzipped when it starts with the gzip magic (as `read_dataset`)."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file (use fmt='folder')")
    fh = path.open("rb")
    if fh.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    return fh


def _decoded_lines(fh: IO[bytes], source: str) -> Iterator[str]:
    """The file's lines as text, ends kept (split on "\\n"; a BOM dropped); a corrupt gzip stream or a
    byte that is not UTF-8 is a DataError naming the line."""
    num = 0
    try:
        for num, raw in enumerate(fh, 1):
            try:
                yield raw.decode("utf-8-sig" if num == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{_where(source, num)}: byte 0x{raw[exc.start]:02x} at column {exc.start + 1:,} is not valid "
                    "UTF-8; a streamed file must be UTF-8 (convert it, e.g. iconv -f cp1252 -t utf-8)"
                ) from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{_where(source, num + 1)}: corrupt gzip data ({exc})") from None


def _csv_records(
    lines: Iterator[str], source: str, kind: str
) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """A csv/tsv's header and records, read as `read_dataset` reads them (line breaks as ``newline=""``)."""
    from grutext.data.tables import _delimited_records

    pieces = (piece for line in lines for piece in _LONE_CR.split(line) if piece)
    first = list(itertools.islice(pieces, 2))  # the header and one row: the delimiter hint reads them
    try:
        return _delimited_records(
            itertools.chain(first, pieces), source, "\t" if kind == "tsv" else ",", "".join(first)
        )
    except DataError:
        if not "".join(first).strip() and not any(p.strip() for p in pieces):
            raise DataError(f"{source}: empty file, expected {kind} data") from None
        raise


def _json_records(
    lines: Iterator[str], source: str, kind: str
) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """JSON lines' records (blank lines skipped) and the keys of the first, its columns."""
    from grutext.data.tables import _json_line_records

    numbered = ((n, ln.rstrip("\n").removesuffix("\r")) for n, ln in enumerate(lines, 1))
    records = _json_line_records(((n, ln) for n, ln in numbered if ln.strip()), source)
    first = next(records, None)
    if first is None:
        raise DataError(f"{source}: empty file, expected {kind} data")
    return list(first[1].keys()), itertools.chain([first], records)


__all__ = ["CHUNK_ROWS", "STREAMED", "stream_table", "streams", "table_format"]
