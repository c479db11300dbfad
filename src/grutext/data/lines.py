"""Line formats: labelled lines (SST/TREC), fastText, one text a line; sniffing which one a file is."""

from __future__ import annotations

import io
import re

from grutext.data.dataset import TextDataset
from grutext.data.rawfile import _where
from grutext.errors import DataError

_FASTTEXT_PREFIX = "__label__"
# A first token that looks like a class label: an integer ("0", "-1") or TREC's "COARSE:fine".
_LABEL_TOKEN = re.compile(r"^(?:[+-]?\d+|[A-Za-z]+:[A-Za-z]+)$")
_SNIFF_LINES = 2000


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
