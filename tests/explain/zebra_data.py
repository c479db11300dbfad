"""The planted-trigger task of the explain tests: "yes" texts contain "zebra", "no" texts do not."""

from __future__ import annotations

import random

FILLER = [
    "the",
    "a",
    "of",
    "movie",
    "film",
    "story",
    "plot",
    "actor",
    "scene",
    "music",
    "time",
    "people",
    "world",
    "day",
    "way",
    "thing",
    "man",
    "woman",
    "city",
    "night",
    "house",
    "car",
    "road",
    "book",
    "song",
    "game",
    "team",
]


def zebra_texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    """`n` texts of 4-12 filler words; every other one ("yes") has "zebra" planted somewhere."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 12))]
        label = "yes" if i % 2 else "no"
        if label == "yes":
            words.insert(rng.randrange(len(words) + 1), "zebra")
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels
