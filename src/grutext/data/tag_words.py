"""A tagger's words as its inputs read them: raw sentences split into words, the word lookup, the
case class and the characters the character encoder reads.

Standard library only (the word lookup and the splitting take a ``tokenizers.Tokenizer``): the
training side (`grutext.tasks.tagging`) and the torch-free runtime (`grutext.runtime.tagger`)
share this code, so an exported tagger builds its inputs exactly as training did.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

UNK_ID = 1  # <unk> in the word, character and feature vocabularies
MAX_WORD_CHARS = 30  # the character encoder reads at most this many characters of a word (first 15 + last 15)
# case of a word, the feature that goes with the lower-cased lookup; id 0 is padding
CASES: tuple[str, ...] = ("<pad>", "lower", "upper", "title", "mixed", "digits", "has_digit", "other")


@functools.lru_cache(maxsize=1 << 16)  # words repeat: the shape of a known word is a lookup
def case_id(token: str) -> int:
    """Index in :data:`CASES` of `token`'s shape: lower, UPPER, Title, miXed, 123, a1, other (punctuation)."""
    if token.isdigit():
        return 5
    if any(c.isdigit() for c in token):
        return 6
    letters = [c for c in token if c.isalpha()]
    if not letters:
        return 7
    if all(c.islower() for c in letters):
        return 1
    if all(c.isupper() for c in letters):
        return 2 if len(letters) > 1 or not token[0].isupper() else 3
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return 3
    return 4


def word_chars(token: str) -> str:
    """The characters the encoder reads: all of a short word, the first and last halves of a long one."""
    if len(token) <= MAX_WORD_CHARS:
        return token
    half = MAX_WORD_CHARS // 2
    return token[:half] + token[-half:]


def char_rows(tokens: Sequence[str], index: dict[str, int]) -> list[list[int]]:
    """Each word's character ids (`word_chars`; unknown characters `UNK_ID`; a word with none reads one <unk>)."""
    return [[index.get(c, UNK_ID) for c in word_chars(t)] or [UNK_ID] for t in tokens]


def feature_ids(features: Sequence[str] | None, index: dict[str, int], n: int) -> list[int]:
    """A sentence's feature-column ids; no features given (raw text): `n` times <unk>."""
    return [index.get(f, UNK_ID) for f in features] if features else [UNK_ID] * n


def lookup_words(hf: Any, tokens: Sequence[str], unk: int = UNK_ID) -> list[int]:
    """Ids of whole words in the ``tokenizers.Tokenizer`` `hf`: each word after its normaliser
    (NFKC, lower-casing as trained), looked up with no splitting; unknown words `unk`."""
    norm = hf.normalizer
    out = []
    for tok in tokens:
        i = hf.token_to_id(norm.normalize_str(tok) if norm is not None else tok)
        out.append(unk if i is None else int(i))
    return out


# what the Penn Treebank (CoNLL-2000's tokens) keeps whole and the word tokenizer's punctuation split breaks:
# numbers with inner separators (1.8, 1,000, 10:30, 3/4) and dotted single-letter abbreviations (U.S., e.g.)
KEEP_WHOLE = re.compile(r"(?<![\w.])(?:\d+(?:[.,:/]\d+)+|(?:[A-Za-z]\.){2,})(?!\w)")


def split_raw(hf: Any, text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """A raw sentence as the ``tokenizers.Tokenizer`` `hf` splits it, with numbers such as ``1.8`` /
    ``1,000`` and abbreviations such as ``U.S.`` kept whole as in the Treebank: the words as written
    and their character offsets."""
    enc = hf.encode(text, add_special_tokens=False)
    offsets = [(int(a), int(b)) for a, b in enc.offsets]
    for m in KEEP_WHOLE.finditer(text):
        a, b = m.span()
        inside = [i for i, (x, y) in enumerate(offsets) if x >= a and y <= b]
        if len(inside) > 1 and inside == list(range(inside[0], inside[-1] + 1)):
            offsets[inside[0] : inside[-1] + 1] = [(a, b)]
    return [text[a:b] for a, b in offsets], offsets


def split_tokens(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """A pre-tokenized sentence (words between whitespace) and each word's character offsets."""
    tokens, offsets, pos = [], [], 0
    for tok in text.split():
        start = text.index(tok, pos)
        tokens.append(tok)
        offsets.append((start, start + len(tok)))
        pos = start + len(tok)
    return tokens, offsets


__all__ = [
    "CASES",
    "KEEP_WHOLE",
    "MAX_WORD_CHARS",
    "UNK_ID",
    "case_id",
    "char_rows",
    "feature_ids",
    "lookup_words",
    "split_raw",
    "split_tokens",
    "word_chars",
]
