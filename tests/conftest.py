"""Shared fixtures: a tiny synthetic corpus with planted class words, and the shared data root."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

if "MUTANT_UNDER_TEST" in os.environ:  # a `make mutation` run (mutmut sets it before pytest starts)
    _popen_init = subprocess.Popen.__init__

    def _popen_without_stats(self, *args, env=None, **kwargs):  # type: ignore[no-untyped-def]
        """In mutmut's coverage ("stats") pass, a child process runs the original code: its trampolines
        would record hits through mutmut's config, which they cannot find from the child's working
        folder. Children of a mutant's run still run that mutant (the variable is inherited)."""
        if os.environ.get("MUTANT_UNDER_TEST") == "stats":
            env = dict(os.environ if env is None else env, MUTANT_UNDER_TEST="")
        _popen_init(self, *args, env=env, **kwargs)

    subprocess.Popen.__init__ = _popen_without_stats  # type: ignore[method-assign]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

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
CLASS_WORDS = {"pos": ["great", "wonderful"], "neg": ["awful", "boring"], "mid": ["average", "okay"]}


def synthetic(
    n: int = 300, classes: tuple[str, ...] = ("pos", "neg"), seed: int = 0, min_len: int = 4, max_len: int = 14
) -> tuple[list[str], list[str]]:
    """Texts of filler words with one class word planted at a random position."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        lab = classes[i % len(classes)]
        words = [rng.choice(FILLER) for _ in range(rng.randint(min_len, max_len))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(CLASS_WORDS[lab]))
        texts.append(" ".join(words))
        labels.append(lab)
    return texts, labels


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _no_vectors_package_unless_asked(request, monkeypatch):
    """`model.pretrained = "auto"` (the default) resolves as on a machine without a vectors package, so
    that small test models keep their own random embedding and no test loads 400,000 vectors
    unasked; tests marked `vectors` see the packages as installed."""
    if request.node.get_closest_marker("vectors") is None:
        import grutext.data.embeddings as emb

        monkeypatch.setattr(emb, "vectors_installed", lambda name: False)


def write_csv(path: Path, texts: list[str], labels: list[str]) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, labels, strict=True))
    return path


def torch_threads(n: int):  # type: ignore[no-untyped-def]
    """Generator for a fixture: torch on `n` threads for the test, the old count restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """torch on one thread for the test, restored after (parity figures and timings single-threaded)."""
    yield from torch_threads(1)
