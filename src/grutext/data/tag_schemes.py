"""Chunk tag schemes: IOB1, IOB2 (BIO) and BIOES: parse, detect, validate, convert, read spans.

A chunk tag is ``O`` or ``P-TYPE`` with prefix ``P`` in ``B I E S`` (``B-NP``, ``I-PER``). The
schemes differ in how a chunk's first and last tokens are marked:

- ``IOB1`` (CoNLL-2003 original): ``I-X`` everywhere; ``B-X`` only on the first token of a
  chunk that directly follows another chunk of the same type.
- ``IOB2`` / ``BIO`` (CoNLL-2000): every chunk starts with ``B-X``, continues with ``I-X``.
- ``BIOES`` / ``IOBES``: ``S-X`` for one-token chunks; longer ones ``B-X I-X... E-X``.

Spans are read leniently, the way conlleval reads them (``I-X`` after ``O`` or after another
type opens a chunk; ``B-``/``S-`` open one; ``E-``/``S-`` close one), so a malformed sequence
still converts to something; `invalid_transitions` lists what is malformed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from grutext.errors import DataError

SCHEMES: tuple[str, ...] = ("IOB1", "IOB2", "BIOES")
SCHEME_ALIASES: dict[str, str] = {
    "iob1": "IOB1",
    "iob2": "IOB2",
    "bio": "IOB2",
    "bioes": "BIOES",
    "iobes": "BIOES",
}
PREFIXES: tuple[str, ...] = ("B", "I", "E", "S")
OUTSIDE = "O"

Span = tuple[str, int, int]  # (type, start, end) with end exclusive


def canonical_scheme(scheme: str) -> str:
    """``"bio"`` -> ``"IOB2"``, ``"iobes"`` -> ``"BIOES"``; an unknown name raises `DataError`."""
    try:
        return SCHEME_ALIASES[scheme.lower()]
    except KeyError:
        raise DataError(f"scheme: expected one of IOB1, IOB2 (BIO), BIOES (IOBES), got {scheme!r}") from None


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-NP"`` -> ``("B", "NP")``, ``"O"`` -> ``("O", "")``; raises `DataError` for other shapes.

    Only the first hyphen splits (``"B-I-X"`` has type ``"I-X"``), as in conlleval.
    """
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in PREFIXES or not kind:
        raise DataError(f"tag {tag!r}: unknown tag prefix, expected O or B-/I-/E-/S- followed by a type")
    return prefix, kind


def looks_like_chunk_tags(tags: Iterable[str]) -> bool:
    """True when most distinct non-O tags have the shape ``X-TYPE`` (one capital letter, hyphen).

    Part-of-speech tags (``NN``, ``-LRB-``, ``PRP$``) fail this test and are read as plain labels.
    """
    distinct = {t for t in tags if t != OUTSIDE}
    if not distinct:
        return True
    shaped = sum(1 for t in distinct if len(t) > 2 and t[1] == "-" and t[0].isalpha() and t[0].isupper())
    return shaped * 2 > len(distinct)


def spans(tags: Sequence[str]) -> list[Span]:
    """The chunks of one sentence read leniently (conlleval's reading, IOBES included).

    Args:
        tags: one sentence's chunk tags in any of the three schemes (or a mix).

    Returns:
        ``[(type, start, end), ...]`` in order, ``end`` exclusive.

    Example:
        >>> spans(["B-NP", "I-NP", "O", "I-VP", "E-VP", "S-PP"])
        [('NP', 0, 2), ('VP', 3, 5), ('PP', 5, 6)]
    """
    out: list[Span] = []
    open_type: str | None = None  # type of the chunk still open after the previous token
    start = 0
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        if prefix == OUTSIDE:
            if open_type is not None:
                out.append((open_type, start, i))
            open_type = None
            continue
        continues = open_type == kind and prefix in ("I", "E")
        if not continues:
            if open_type is not None:
                out.append((open_type, start, i))
            open_type, start = kind, i
        if prefix in ("E", "S"):
            out.append((kind, start, i + 1))
            open_type = None
    if open_type is not None:
        out.append((open_type, start, len(tags)))
    return out


def tags_from_spans(chunks: Sequence[Span], length: int, scheme: str) -> list[str]:
    """Write chunks as tags of ``scheme`` (``IOB1``, ``IOB2``/``BIO`` or ``BIOES``)."""
    scheme = canonical_scheme(scheme)
    tags = [OUTSIDE] * length
    prev_end, prev_type = -1, ""
    for kind, start, end in chunks:
        if scheme == "BIOES":
            if end - start == 1:
                tags[start] = f"S-{kind}"
            else:
                tags[start] = f"B-{kind}"
                tags[start + 1 : end - 1] = [f"I-{kind}"] * (end - start - 2)
                tags[end - 1] = f"E-{kind}"
        else:
            tags[start:end] = [f"I-{kind}"] * (end - start)
            # IOB1 marks B only where a chunk touches a previous one of the same type
            if scheme == "IOB2" or (prev_end == start and prev_type == kind):
                tags[start] = f"B-{kind}"
        prev_end, prev_type = end, kind
    return tags


def convert(tags: Sequence[str], src: str, dst: str) -> list[str]:
    """Convert one sentence's tags from scheme ``src`` to ``dst``.

    Valid sequences round-trip exactly (``convert(convert(t, a, b), b, a) == t``); malformed ones
    are read leniently (see `spans`). ``src`` is checked for being a known scheme name; the
    reading itself is the same for all three.

    Example:
        >>> convert(["B-NP", "I-NP", "B-VP"], "IOB2", "BIOES")
        ['B-NP', 'E-NP', 'S-VP']
    """
    canonical_scheme(src)
    return tags_from_spans(spans(tags), len(tags), dst)


def detect_scheme(sentences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of a corpus: ``"BIOES"``, ``"IOB1"`` or ``"IOB2"``.

    ``E-``/``S-`` anywhere -> BIOES. Otherwise count the chunks opened by ``I-X`` (after ``O``,
    another type, or at a sentence start) and those opened by ``B-X`` in the same places:
    only the former -> IOB1, otherwise the larger count wins (IOB2 on a tie or when there are
    no chunks at all).

    Args:
        sentences: tag sequences, one per sentence (sentence starts matter).
    """
    i_opens = b_opens = 0
    for tags in sentences:
        prev_prefix, prev_type = OUTSIDE, ""
        for tag in tags:
            prefix, kind = split_tag(tag)
            if prefix in ("E", "S"):
                return "BIOES"
            opens = prev_prefix == OUTSIDE or prev_type != kind
            if prefix == "I" and opens:
                i_opens += 1
            elif prefix == "B" and opens:
                b_opens += 1
            prev_prefix, prev_type = prefix, kind
    if i_opens > b_opens:
        return "IOB1"
    return "IOB2"


def invalid_transitions(tags: Sequence[str], scheme: str) -> list[tuple[int, str]]:
    """Positions where ``tags`` break ``scheme``, with a short reason for each.

    Returns:
        ``[(index, message), ...]``, e.g. ``(3, "I-NP after O (IOB2 starts a chunk with B-NP)")``.
    """
    scheme = canonical_scheme(scheme)
    problems: list[tuple[int, str]] = []
    parsed = [split_tag(t) for t in tags]
    for i, (prefix, kind) in enumerate(parsed):
        prev = parsed[i - 1] if i > 0 else (OUTSIDE, "")
        prev_tag = "sentence start" if i == 0 else ("O" if prev[0] == OUTSIDE else tags[i - 1])
        same_open = prev[1] == kind and prev[0] in ("B", "I")
        tag = tags[i]
        if scheme == "IOB2":
            if prefix in ("E", "S"):
                problems.append((i, f"{tag} is not an IOB2 tag (E-/S- belong to BIOES)"))
            elif prefix == "I" and not same_open:
                problems.append((i, f"{tag} after {prev_tag} (IOB2 starts a chunk with B-{kind})"))
        elif scheme == "IOB1":
            if prefix in ("E", "S"):
                problems.append((i, f"{tag} is not an IOB1 tag (E-/S- belong to BIOES)"))
            elif prefix == "B" and not same_open:
                problems.append((i, f"{tag} after {prev_tag} (IOB1 uses B- only right after a {kind} chunk)"))
        else:  # BIOES: inside tags need an open chunk of their type before them
            if prefix in ("I", "E") and not same_open:
                problems.append((i, f"{tag} after {prev_tag} (BIOES opens a chunk with B-{kind} or S-{kind})"))
            if prefix in ("B", "I"):
                nxt = parsed[i + 1] if i + 1 < len(parsed) else (OUTSIDE, "")
                if nxt[0] not in ("I", "E") or nxt[1] != kind:
                    after = tags[i + 1] if i + 1 < len(parsed) else "sentence end"
                    problems.append((i, f"{tag} before {after} (BIOES closes a chunk with E-{kind})"))
    return problems


__all__ = [
    "SCHEMES",
    "Span",
    "canonical_scheme",
    "convert",
    "detect_scheme",
    "invalid_transitions",
    "looks_like_chunk_tags",
    "spans",
    "split_tag",
    "tags_from_spans",
]
