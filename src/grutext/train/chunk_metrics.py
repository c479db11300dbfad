"""Chunk precision / recall / F1 exactly as conlleval computes them, plus a seqeval-style strict mode.

``mode="conlleval"`` (the default) replays the CoNLL shared-task scorer ``conlleval.pl``
(version 2004-01-26, Erik Tjong Kim Sang; read from the copy in kyzhouhzau/BERT-NER,
``conlleval.pl``) token by token: its ``startOfChunk``/``endOfChunk`` rules, its running
"current chunk is correct so far" flag, its sentence boundaries (a blank line is a token with
tags ``O O`` that is not counted) and its output format. So on malformed sequences it agrees
with the official number, not with a tidier reading:

- ``I-X`` after ``O`` (or at a sentence start) opens a chunk; so does ``I-X`` after a chunk
  of another type (a type change always closes one chunk and opens another);
- ``B-X`` opens a chunk; ``E-X`` closes one (IOE schemes);
- tags split at the first hyphen only (``B-I-X`` has type ``I-X``), a tag without a hyphen
  has type ``""``, and the Perl truthiness of ``"0"`` makes a type ``0`` into ``""``.

The 2004 script knows no ``S-`` tag (``S-NP S-NP`` would be one chunk there), so BIOES output
is scored with the IOBES extension of the same two functions that circulates with it
(extra rules: ``S-`` opens and closes a chunk, ``E-`` followed by ``B-`` closes and opens).
Sequences without ``S-`` tags and without an ``E-`` directly followed by a ``B-`` score the
same as under the 2004 script; that covers every IOB1 and IOB2 file.

``mode="strict"`` is seqeval's strict mode: a chunk exists only where the scheme's tags are
well-formed (IOB2: ``B-X I-X*``; BIOES: ``S-X`` or ``B-X I-X* E-X``); stray ``I-``/``E-``
tags make no chunk at all. Chunks then count as correct when type, start and end agree.

Token accuracy counts tokens whose gold and predicted tags are equal (sentence boundaries
excluded).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from grutext.errors import ConfigError, DataError

BOUNDARY = "-X-"  # conlleval's sentence-boundary first field
_TAG = re.compile(r"^([^-]*)-(.*)$")  # conlleval 20040126: the first hyphen splits prefix and type


def _split(tag: str) -> tuple[str, str]:
    match = _TAG.match(tag)
    if match is None:
        return tag, ""
    prefix, kind = match.group(1), match.group(2)
    return prefix, (kind if kind not in ("", "0") else "")  # Perl: `$type ? $type : ""`


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """conlleval's endOfChunk: did a chunk end between the previous and the current token?"""
    end = (prev_tag, tag) in {
        ("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"),  # 2004 script
        ("E", "E"), ("E", "I"), ("E", "O"),  # 2004 script (IOE)
        ("B", "S"), ("I", "S"), ("E", "S"), ("E", "B"),  # IOBES extension
        ("S", "B"), ("S", "I"), ("S", "O"), ("S", "S"), ("S", "E"),  # IOBES extension
    }  # fmt: skip
    if prev_tag not in ("O", ".") and prev_type != type_:
        end = True  # a type change ends the chunk
    if prev_tag in ("[", "]"):
        end = True  # "corrected 1998-12-22: these chunks are assumed to have length 1"
    return end


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """conlleval's startOfChunk: did a chunk start between the previous and the current token?"""
    start = (prev_tag, tag) in {
        ("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"),  # 2004 script
        ("E", "E"), ("E", "I"), ("O", "E"),  # 2004 script (IOE)
        ("S", "B"), ("E", "B"), ("B", "S"), ("I", "S"), ("O", "S"), ("S", "S"), ("E", "S"),  # IOBES extension
        ("S", "I"), ("S", "E"),  # IOBES extension
    }  # fmt: skip
    if tag not in ("O", ".") and prev_type != type_:
        start = True  # a type change starts a chunk
    if tag in ("[", "]"):
        start = True
    return start


@dataclass(frozen=True)
class ChunkCounts:
    """Chunk counts of one type (or all): correct, in the gold data, predicted.

    ``precision``, ``recall`` and ``f1`` are fractions in [0, 1] (0 where undefined).
    """

    correct: int = 0
    gold: int = 0
    predicted: int = 0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class ChunkScores:
    """Chunk scores of a corpus: overall and per type, and token accuracy.

    Attributes:
        tokens: tokens scored (sentence boundaries excluded).
        correct_tags: tokens whose predicted tag equals the gold tag.
        overall: all chunk types together.
        per_type: per chunk type, sorted by type name (conlleval's order).
        mode: ``"conlleval"`` or ``"strict"``.
    """

    tokens: int
    correct_tags: int
    overall: ChunkCounts
    per_type: dict[str, ChunkCounts] = field(default_factory=dict)
    mode: str = "conlleval"

    @property
    def accuracy(self) -> float:
        return self.correct_tags / self.tokens if self.tokens else 0.0

    @property
    def f1(self) -> float:
        return self.overall.f1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: fractions and counts, overall and per type."""

        def one(c: ChunkCounts) -> dict[str, Any]:
            return {
                "precision": c.precision,
                "recall": c.recall,
                "f1": c.f1,
                "correct": c.correct,
                "gold": c.gold,
                "predicted": c.predicted,
            }

        return {
            "mode": self.mode,
            "tokens": self.tokens,
            "accuracy": self.accuracy,
            **one(self.overall),
            "per_type": {name: one(c) for name, c in self.per_type.items()},
        }


class _Conlleval:
    """The main loop of conlleval.pl, fed one (gold, predicted) tag pair at a time."""

    def __init__(self) -> None:
        self.in_correct = False
        self.last_correct, self.last_correct_type = "O", ""
        self.last_guessed, self.last_guessed_type = "O", ""
        self.correct_chunk: dict[str, int] = {}
        self.found_correct: dict[str, int] = {}
        self.found_guessed: dict[str, int] = {}
        self.correct_tags = 0
        self.tokens = 0

    def feed(self, gold: str, pred: str, boundary: bool = False) -> None:
        correct, correct_type = _split(gold)
        guessed, guessed_type = _split(pred)
        if boundary:  # "1999-06-26 sentence breaks should always be counted as out of chunk"
            guessed = "O"
        end_c = _end_of_chunk(self.last_correct, correct, self.last_correct_type, correct_type)
        end_g = _end_of_chunk(self.last_guessed, guessed, self.last_guessed_type, guessed_type)
        start_c = _start_of_chunk(self.last_correct, correct, self.last_correct_type, correct_type)
        start_g = _start_of_chunk(self.last_guessed, guessed, self.last_guessed_type, guessed_type)
        if self.in_correct:
            if end_c and end_g and self.last_guessed_type == self.last_correct_type:
                self.in_correct = False
                _bump(self.correct_chunk, self.last_correct_type)
            elif end_c != end_g or guessed_type != correct_type:
                self.in_correct = False
        if start_c and start_g and guessed_type == correct_type:
            self.in_correct = True
        if start_c:
            _bump(self.found_correct, correct_type)
        if start_g:
            _bump(self.found_guessed, guessed_type)
        if not boundary:
            if correct == guessed and guessed_type == correct_type:
                self.correct_tags += 1
            self.tokens += 1
        self.last_guessed, self.last_correct = guessed, correct
        self.last_guessed_type, self.last_correct_type = guessed_type, correct_type

    def finish(self) -> ChunkScores:
        if self.in_correct:
            _bump(self.correct_chunk, self.last_correct_type)
            self.in_correct = False
        types = sorted(set(self.found_correct) | set(self.found_guessed))
        per_type = {
            t: ChunkCounts(self.correct_chunk.get(t, 0), self.found_correct.get(t, 0), self.found_guessed.get(t, 0))
            for t in types
        }
        overall = ChunkCounts(
            sum(self.correct_chunk.values()), sum(self.found_correct.values()), sum(self.found_guessed.values())
        )
        return ChunkScores(self.tokens, self.correct_tags, overall, per_type, "conlleval")


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _strict_chunks(tags: Sequence[str], scheme: str) -> set[tuple[str, int, int]]:
    """seqeval strict: only well-formed chunks, ``(type, start, end)`` with end exclusive."""
    out: set[tuple[str, int, int]] = set()
    open_type: str | None = None
    start = 0
    for i, tag in enumerate(tags):
        prefix, kind = _split(tag)
        if scheme == "IOB2":
            if open_type is not None and not (prefix == "I" and kind == open_type):
                out.add((open_type, start, i))
                open_type = None
            if prefix == "B":
                open_type, start = kind, i
        else:  # BIOES: a chunk counts only when closed by E- (or an S- alone)
            if open_type is not None and not (prefix in ("I", "E") and kind == open_type):
                open_type = None  # broken: B- I-... without its E-, dropped
            if prefix == "S":
                out.add((kind, i, i + 1))
            elif prefix == "B":
                open_type, start = kind, i
            elif prefix == "E" and open_type is not None:
                out.add((open_type, start, i + 1))
                open_type = None
    if open_type is not None and scheme == "IOB2":
        out.add((open_type, start, len(tags)))
    return out


def _strict_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str) -> ChunkScores:
    correct: dict[str, int] = {}
    found_gold: dict[str, int] = {}
    found_pred: dict[str, int] = {}
    tokens = correct_tags = 0
    for g, p in zip(gold, pred, strict=True):
        gold_chunks, pred_chunks = _strict_chunks(g, scheme), _strict_chunks(p, scheme)
        for kind, _, _ in gold_chunks:
            _bump(found_gold, kind)
        for kind, _, _ in pred_chunks:
            _bump(found_pred, kind)
        for kind, _, _ in gold_chunks & pred_chunks:
            _bump(correct, kind)
        tokens += len(g)
        correct_tags += sum(1 for a, b in zip(g, p, strict=True) if a == b)
    types = sorted(set(found_gold) | set(found_pred))
    per_type = {t: ChunkCounts(correct.get(t, 0), found_gold.get(t, 0), found_pred.get(t, 0)) for t in types}
    overall = ChunkCounts(sum(correct.values()), sum(found_gold.values()), sum(found_pred.values()))
    return ChunkScores(tokens, correct_tags, overall, per_type, "strict")


def chunk_scores(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    mode: Literal["conlleval", "strict"] = "conlleval",
    scheme: str = "auto",
) -> ChunkScores:
    """Score predicted chunk tags against gold ones, sentence by sentence.

    Args:
        gold, pred: one tag sequence per sentence, equal lengths sentence by sentence.
        mode: ``"conlleval"`` (the official scorer's numbers) or ``"strict"`` (seqeval strict).
        scheme: strict mode only: ``"IOB2"``/``"BIO"``, ``"BIOES"``/``"IOBES"`` or ``"auto"``
            (BIOES when any gold or predicted tag starts with ``E-``/``S-``). IOB1 output is
            scored strictly after converting it to IOB2 (`grutext.data.tag_schemes.convert`).

    Returns:
        `ChunkScores`; ``conlleval_report(scores)`` prints it the way conlleval does.

    Example:
        >>> s = chunk_scores([["B-NP", "I-NP", "O"]], [["B-NP", "I-NP", "B-VP"]])
        >>> s.overall.correct, s.overall.gold, s.overall.predicted, round(s.f1, 4)
        (1, 1, 2, 0.6667)
    """
    if len(gold) != len(pred):
        raise DataError(f"predictions: expected {len(gold)} sentences as in the gold data, got {len(pred)}")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise DataError(f"predictions sentence {i + 1}: expected {len(g)} tags as in the gold data, got {len(p)}")
    if mode == "strict":
        if scheme == "auto":
            tags = {t[:2] for seq in (*gold, *pred) for t in seq}
            scheme = "BIOES" if tags & {"E-", "S-"} else "IOB2"
        aliases = {"iob2": "IOB2", "bio": "IOB2", "bioes": "BIOES", "iobes": "BIOES"}
        if scheme.lower() not in aliases:
            raise ConfigError(f"scheme: strict mode expects IOB2 (BIO) or BIOES (IOBES), got {scheme!r}")
        return _strict_scores(gold, pred, aliases[scheme.lower()])
    if mode != "conlleval":
        raise ConfigError(f"mode: expected 'conlleval' or 'strict', got {mode!r}")
    state = _Conlleval()
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if i:
            state.feed("O", "O", boundary=True)  # the blank line between two sentences
        for a, b in zip(g, p, strict=True):
            state.feed(a, b)
    return state.finish()


def score_conll_lines(lines: Iterable[str], delimiter: str | None = None) -> ChunkScores:
    """Score conlleval's own input: lines ``... gold pred``, sentences split by blank or ``-X-`` lines.

    Mirrors the script's reading (every other line, ``-DOCSTART-`` ones included, counts as a
    token). Raises `DataError` when a line's field count differs from the first line's, as the
    script does.
    """
    state = _Conlleval()
    width: int | None = None
    for number, line in enumerate(lines, start=1):
        fields = line.rstrip("\r\n").split(delimiter) if delimiter else line.split()
        if width is None:
            width = len(fields)
        elif fields and len(fields) != width:
            raise DataError(f"line {number}: expected {width} fields as on line 1, got {len(fields)}")
        if not fields or fields[0] == BOUNDARY:
            state.feed("O", "O", boundary=True)
            continue
        if len(fields) < 2:
            raise DataError(f"line {number}: expected at least 2 fields (gold and predicted tags), got {len(fields)}")
        state.feed(fields[-2], fields[-1])
    return state.finish()


def conlleval_report(scores: ChunkScores) -> str:
    """The text conlleval prints for these scores (its default, non-LaTeX output).

    Example:
        processed 8 tokens with 4 phrases; found: 4 phrases; correct: 2.
        accuracy:  62.50%; precision:  50.00%; recall:  50.00%; FB1:  50.00
                       NP: precision:  66.67%; recall:  66.67%; FB1:  66.67  3
                       VP: precision:   0.00%; recall:   0.00%; FB1:   0.00  1
    """
    o = scores.overall
    # percentages computed as the script does (100*c/f, then FB1 on the percentages)
    precision = 100 * o.correct / o.predicted if o.predicted > 0 else 0.0
    recall = 100 * o.correct / o.gold if o.gold > 0 else 0.0
    fb1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    out = [
        f"processed {scores.tokens} tokens with {o.gold} phrases; found: {o.predicted} phrases; correct: {o.correct}.\n"
    ]
    if scores.tokens > 0:
        accuracy = 100 * scores.correct_tags / scores.tokens
        out.append(
            f"accuracy: {accuracy:6.2f}%; precision: {precision:6.2f}%; recall: {recall:6.2f}%; FB1: {fb1:6.2f}\n"
        )
    for name, c in scores.per_type.items():
        p = 100 * c.correct / c.predicted if c.predicted else 0.0
        r = 100 * c.correct / c.gold if c.gold else 0.0
        f = 2 * p * r / (p + r) if p + r != 0.0 else 0.0
        out.append(f"{name:>17}: precision: {p:6.2f}%; recall: {r:6.2f}%; FB1: {f:6.2f}  {c.predicted}\n")
    return "".join(out)


__all__ = ["ChunkCounts", "ChunkScores", "chunk_scores", "conlleval_report", "score_conll_lines"]
