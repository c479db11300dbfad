"""Read sequence-tagging corpora: CoNLL column files and JSONL ``{"tokens": [...], "tags": [...]}``.

CoNLL files hold one token a line, columns separated by whitespace (or ``delimiter``), a blank
line after each sentence (several blank lines count as one break; the last sentence needs
none), ``-DOCSTART-`` lines skipped (they also break sentences). Any file may be gzipped
(``.gz``). Columns are chosen by index (``tag_col=-1``, the last) or by name, the names coming
from ``columns=`` or from a first line ``# columns = token pos chunk`` (``:`` also accepted,
and the CoNLL-U Plus spelling ``# global.columns = ...``).

Bad input raises one-line `DataError` naming file and line (wrong column count, an unknown tag
prefix, an empty file, a JSONL tokens/tags length mismatch). Sequences that break the detected
scheme (``I-NP`` after ``O`` in IOB2) are not errors: they come back in
`TaggedCorpus.warnings`, one line each, for the caller to print.

Example:
    >>> corpus = read_conll("data/conll2000/train.txt", feature_col=1)
    >>> corpus.scheme, len(corpus), corpus[0].tokens[:2], corpus[0].tags[:2]
    ('IOB2', 8936, ('Confidence', 'in'), ('B-NP', 'B-PP'))
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grutext.data.tag_schemes import (
    canonical_scheme,
    convert,
    detect_scheme,
    invalid_transitions,
    looks_like_chunk_tags,
    split_tag,
)
from grutext.errors import DataError

DOCSTART = "-DOCSTART-"
NO_SCHEME = "none"  # plain labels (part-of-speech tags): no chunks, token accuracy only
_HEADER = re.compile(r"^#\s*(?:global\.)?columns\s*[:=]\s*(\S.*)$", re.IGNORECASE)
_JSONL_SUFFIXES = (".jsonl", ".ndjson")

Column = int | str


@dataclass(frozen=True)
class TaggedSentence:
    """One sentence: tokens, their tags, optional features (POS) and 1-based source lines.

    For JSONL input ``lines`` holds the sentence's line number once per token.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    features: tuple[str, ...] | None = None
    lines: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class TaggedCorpus:
    """The sentences of one file with what was learnt reading it.

    Attributes:
        sentences: in file order.
        path: the file read.
        scheme: ``"IOB1"``, ``"IOB2"``, ``"BIOES"`` (chunk tags) or ``"none"`` (plain labels).
        columns: column names when known (header or ``columns=``), else None.
        warnings: one line per sequence that breaks ``scheme``, ``"file line N: ..."``.
    """

    sentences: list[TaggedSentence]
    path: str
    scheme: str
    columns: tuple[str, ...] | None = None
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sentences)

    def __iter__(self) -> Iterator[TaggedSentence]:
        return iter(self.sentences)

    def __getitem__(self, index: int) -> TaggedSentence:
        return self.sentences[index]

    @property
    def tokens(self) -> list[list[str]]:
        return [list(s.tokens) for s in self.sentences]

    @property
    def tags(self) -> list[list[str]]:
        return [list(s.tags) for s in self.sentences]

    def tag_set(self) -> list[str]:
        """The distinct tags, sorted."""
        return sorted({t for s in self.sentences for t in s.tags})

    def num_tokens(self) -> int:
        return sum(len(s) for s in self.sentences)

    def converted(self, scheme: str) -> list[list[str]]:
        """Every sentence's tags in another scheme (the corpus itself is left as read)."""
        if self.scheme == NO_SCHEME:
            raise DataError(f"{self.path}: tags are plain labels (scheme 'none'), they cannot be converted to {scheme}")
        return [convert(s.tags, self.scheme, scheme) for s in self.sentences]


def _open_text(path: Path) -> io.TextIOBase:
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a CoNLL or JSONL file") from None
    head = raw.read(2)
    raw.seek(0)
    stream: Any = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
    return io.TextIOWrapper(stream, encoding="utf-8", newline=None)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its newline); decoding problems as `DataError`."""
    number = 0
    with _open_text(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):  # noqa: B007 - number used in except
                yield number, line.rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path} line {number + 1}: not UTF-8 text ({exc.reason})") from None
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from None


def _resolve(col: Column, names: tuple[str, ...] | None, width: int, arg: str, where: str) -> int:
    if isinstance(col, str):
        if names is None:
            raise DataError(
                f"{where}: {arg}={col!r} names a column but the file has no '# columns = ...' header "
                f"and no columns= was given; pass an index (0..{width - 1} or -1)"
            )
        if col not in names:
            raise DataError(f"{where}: {arg}={col!r} is not a column name, columns are {', '.join(names)}")
        return names.index(col)
    if not -width <= col < width:
        raise DataError(f"{where}: {arg}={col} is out of range, the file has {width} columns")
    return col % width


def _finish(
    sentences: list[TaggedSentence],
    path: Path,
    scheme: str,
    columns: tuple[str, ...] | None,
    tag_lines: list[tuple[str, int]],
) -> TaggedCorpus:
    """Check tag prefixes, detect the scheme, collect scheme warnings."""
    if not sentences:
        raise DataError(f"{path}: empty file, expected sentences of token lines separated by blank lines, got none")
    all_tags = [t for s in sentences for t in s.tags]
    if scheme == "auto":
        scheme = "chunk" if looks_like_chunk_tags(all_tags) else NO_SCHEME
    if scheme == NO_SCHEME:
        return TaggedCorpus(sentences, str(path), NO_SCHEME, columns)
    for tag, line in tag_lines:  # one per distinct tag: its first line
        try:
            split_tag(tag)
        except DataError:
            raise DataError(
                f"{path} line {line}: unknown tag prefix in {tag!r}, expected O or B-/I-/E-/S- followed by a type "
                f"(pass scheme='none' for plain labels such as part-of-speech tags)"
            ) from None
    scheme = detect_scheme(s.tags for s in sentences) if scheme == "chunk" else canonical_scheme(scheme)
    warnings: list[str] = []
    for s in sentences:
        for index, message in invalid_transitions(s.tags, scheme):
            line = s.lines[index] if s.lines else 0
            warnings.append(f"{path} line {line}: {message}")
    return TaggedCorpus(sentences, str(path), scheme, columns, warnings)


def read_conll(
    path: str | os.PathLike[str],
    *,
    tag_col: Column = -1,
    token_col: Column = 0,
    feature_col: Column | None = None,
    columns: Sequence[str] | None = None,
    scheme: str = "auto",
    delimiter: str | None = None,
    fmt: Literal["auto", "conll", "jsonl"] = "auto",
) -> TaggedCorpus:
    """Read a CoNLL column file (or JSONL, by suffix or ``fmt``) into a `TaggedCorpus`.

    Args:
        path: the file; ``.gz`` (or gzip content) is decompressed.
        tag_col, token_col, feature_col: column index (negative counts from the end) or name.
            For JSONL they are keys; defaults there are ``"tags"``, ``"tokens"`` and no feature.
        columns: names for the columns (overrides a ``# columns = ...`` header).
        scheme: ``"auto"`` (chunk tags detected as IOB1/IOB2/BIOES, plain labels as
            ``"none"``), a scheme name to validate against, or ``"none"``.
        delimiter: column separator; None splits on any run of whitespace.
        fmt: ``"auto"`` picks JSONL for ``.jsonl``/``.ndjson`` (also under ``.gz``).

    Returns:
        The sentences, the scheme and the warnings for sequences that break it.

    Raises:
        DataError: one line naming file and line.
    """
    path = Path(path)
    if fmt == "auto":
        name = path.name.lower().removesuffix(".gz")
        fmt = "jsonl" if name.endswith(_JSONL_SUFFIXES) else "conll"
    if fmt == "jsonl":
        return _read_jsonl(
            path,
            tag_key=tag_col if isinstance(tag_col, str) else "tags",
            token_key=token_col if isinstance(token_col, str) else "tokens",
            feature_key=feature_col if isinstance(feature_col, str) else None,
            scheme=scheme,
        )
    names = tuple(columns) if columns is not None else None
    sentences, names, first_seen = _read_columns(path, names, delimiter, token_col, tag_col, feature_col)
    return _finish(sentences, path, scheme, names, list(first_seen.items()))


def _read_columns(
    path: Path,
    names: tuple[str, ...] | None,
    delimiter: str | None,
    token_col: Column,
    tag_col: Column,
    feature_col: Column | None,
) -> tuple[list[TaggedSentence], tuple[str, ...] | None, dict[str, int]]:
    """The sentences of a CoNLL column file, its column names (given or from its header) and the
    line where each tag first appears."""
    width: int | None = None
    width_line = 0
    cols: tuple[int, int, int | None] = (0, 0, None)
    sentences: list[TaggedSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    feats: list[str] = []
    lines: list[int] = []
    first_seen: dict[str, int] = {}

    def flush() -> None:
        if tokens:
            sentences.append(
                TaggedSentence(
                    tuple(tokens), tuple(tags), tuple(feats) if feature_col is not None else None, tuple(lines)
                )
            )
            for part in (tokens, tags, feats):
                part.clear()
            lines.clear()

    for number, line in _lines(path):
        if number == 1 and (header := _HEADER.match(line.strip())):
            if names is None:
                names = tuple(header.group(1).split())
            continue
        fields = line.split(delimiter) if delimiter is not None else line.split()
        if not fields or all(not f.strip() for f in fields):
            flush()
            continue
        if fields[0] == DOCSTART:
            flush()
            continue
        if width is None:
            width, width_line = len(fields), number
            cols = _column_indices(f"{path} line {number}", names, width, token_col, tag_col, feature_col)
        elif len(fields) != width:
            raise DataError(
                f"{path} line {number}: expected {width} columns as in the first sentence (line {width_line}), "
                f"got {len(fields)}: {line.strip()[:60]!r}"
            )
        tok, tag, feat = cols
        tokens.append(fields[tok])
        tags.append(fields[tag])
        if feat is not None:
            feats.append(fields[feat])
        lines.append(number)
        first_seen.setdefault(fields[tag], number)
    flush()
    return sentences, names, first_seen


def _column_indices(
    where: str,
    names: tuple[str, ...] | None,
    width: int,
    token_col: Column,
    tag_col: Column,
    feature_col: Column | None,
) -> tuple[int, int, int | None]:
    """The token, tag and feature column indices, checked against the first row's `width`."""
    if names is not None and len(names) != width:
        raise DataError(f"{where}: {len(names)} column names ({', '.join(names)}) for {width} columns")
    feature = None if feature_col is None else _resolve(feature_col, names, width, "feature_col", where)
    return (
        _resolve(token_col, names, width, "token_col", where),
        _resolve(tag_col, names, width, "tag_col", where),
        feature,
    )


def corpus_from_lists(
    tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], *, name: str = "y", scheme: str = "auto"
) -> TaggedCorpus:
    """A corpus from in-memory sentences (token lists and tag lists), checked as a file would be.

    ``lines`` hold each sentence's 1-based index, so errors and warnings read ``"y line 3"`` for the
    third sentence.

    Raises:
        DataError: a sentence that is not a list of strings, an empty one, a tokens/tags length
            mismatch, an unknown tag prefix; no sentences.
    """
    if isinstance(tokens, (str, bytes)) or isinstance(tags, (str, bytes)):
        raise DataError(f"{name}: expected lists of sentences (lists of strings), got one string")
    if len(tokens) != len(tags):
        raise DataError(f"{name}: expected {len(tokens)} tag lists (one per sentence), got {len(tags)}")
    if not tokens:
        raise DataError("X: no sentences; expected a list of token lists")
    sentences: list[TaggedSentence] = []
    first_seen: dict[str, int] = {}
    for i, (toks, tg) in enumerate(zip(tokens, tags, strict=True), 1):
        for what, seq in (("X", toks), (name, tg)):
            if isinstance(seq, (str, bytes)) or not all(isinstance(t, str) for t in seq):
                raise DataError(f"{what}[{i - 1}]: expected a list of strings, got {type(seq).__name__} {seq!r:.60}")
        if not toks:
            raise DataError(f"X[{i - 1}]: an empty sentence; expected at least one token")
        if len(toks) != len(tg):
            raise DataError(f"{name}[{i - 1}]: expected {len(toks)} tags (one per token), got {len(tg)}")
        sentences.append(TaggedSentence(tuple(toks), tuple(tg), None, (i,) * len(toks)))
        for t in tg:
            first_seen.setdefault(t, i)
    return _finish(sentences, Path(name), scheme, None, list(first_seen.items()))


def _read_jsonl(path: Path, *, tag_key: str, token_key: str, feature_key: str | None, scheme: str) -> TaggedCorpus:
    sentences: list[TaggedSentence] = []
    first_seen: dict[str, int] = {}
    for number, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(item, dict):
            raise DataError(
                f"{where}: expected a JSON object with {token_key!r} and {tag_key!r}, got {type(item).__name__}"
            )
        values: dict[str, list[str]] = {}
        for key in (token_key, tag_key) + ((feature_key,) if feature_key else ()):
            value = item.get(key)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                got = "nothing" if value is None else type(value).__name__
                raise DataError(f"{where}: key {key!r} must be a list of strings, got {got}")
            values[key] = value
        n = len(values[token_key])
        for key, value in values.items():
            if len(value) != n:
                raise DataError(f"{where}: {n} {token_key} but {len(value)} {key}, expected one per token")
        if n == 0:
            continue
        for tag in values[tag_key]:
            first_seen.setdefault(tag, number)
        sentences.append(
            TaggedSentence(
                tuple(values[token_key]),
                tuple(values[tag_key]),
                tuple(values[feature_key]) if feature_key else None,
                (number,) * n,
            )
        )
    return _finish(sentences, path, scheme, None, list(first_seen.items()))


__all__ = ["DOCSTART", "NO_SCHEME", "TaggedCorpus", "TaggedSentence", "corpus_from_lists", "read_conll"]
