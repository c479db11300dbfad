"""A tiny planted chunking corpus (NP VP NP [PP NP] .), shared by the tagger's estimator, explain and
report tests: the words decide the chunks, so a few epochs of a small tagger learn it."""

from __future__ import annotations

import random
from pathlib import Path

DETS = ["the", "a", "this", "every", "The", "A"]
ADJS = ["big", "red", "old", "quick", "BIG"]
NOUNS = ["dog", "cat", "house", "car", "man", "Paris", "London"]
VERBS = ["sees", "likes", "builds", "wants"]
PREPS = ["in", "near", "on"]


def _np(rng: random.Random) -> list[tuple[str, str]]:
    words = [rng.choice(DETS)] + [rng.choice(ADJS) for _ in range(rng.randint(0, 2))] + [rng.choice(NOUNS)]
    return list(zip(words, ["B-NP"] + ["I-NP"] * (len(words) - 1), strict=True))


def sentence(rng: random.Random) -> list[tuple[str, str]]:
    s = _np(rng) + [(rng.choice(VERBS), "B-VP")] + _np(rng)
    if rng.random() < 0.5:
        s += [(rng.choice(PREPS), "B-PP")] + _np(rng)
    return s + [(".", "O")]


def sentences(n: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """`n` sentences as (token lists, IOB2 tag lists)."""
    rng = random.Random(seed)
    rows = [sentence(rng) for _ in range(n)]
    return [[w for w, _ in s] for s in rows], [[t for _, t in s] for s in rows]


def write_conll(path: Path, tokens: list[list[str]], tags: list[list[str]]) -> Path:
    lines: list[str] = []
    for toks, tg in zip(tokens, tags, strict=True):
        lines += [f"{w} X {t}" for w, t in zip(toks, tg, strict=True)] + [""]
    path.write_text("\n".join(lines))
    return path
