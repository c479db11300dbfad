"""Tiny trained model folders shared by the whole fault suite (trained once per session, seconds)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from tests.conftest import synthetic, write_csv

from grutext.cli import main

# a classifier small enough to train in about a second on one thread
CLF_FLAGS = [
    "--epochs",
    "2",
    "--embed-dim",
    "8",
    "--hidden-size",
    "8",
    "--min-freq",
    "1",
    "--batch-size",
    "16",
    "--threads",
    "1",
    "--pooling",
    "max",
]
WORDS = ["the", "cat", "dog", "sat", "on", "a", "mat", "big", "small", "red", "house", "tree", "ran", "saw"]


def lm_lines(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) for _ in range(n)]


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fault-data")
    texts, labels = synthetic(90, classes=("pos", "neg", "mid"))
    write_csv(d / "train.csv", texts, labels)
    t2, l2 = synthetic(30, classes=("pos", "neg", "mid"), seed=5)
    write_csv(d / "test.csv", t2, l2)
    (d / "lm.txt").write_text("\n".join(lm_lines(120)) + "\n", encoding="utf-8")
    return d


@pytest.fixture(scope="session")
def clf(data_dir, tmp_path_factory) -> Path:
    """A three-class BiGRU classifier folder (with manifest); never modified by tests (copy it first)."""
    out = tmp_path_factory.mktemp("fault-clf") / "model"
    assert main(["train", str(data_dir / "train.csv"), "--out", str(out), *CLF_FLAGS]) == 0
    return out


@pytest.fixture(scope="session")
def lm(data_dir, tmp_path_factory) -> Path:
    """A word language model folder."""
    out = tmp_path_factory.mktemp("fault-lm") / "lm"
    argv = ["train", "--task", "lm", str(data_dir / "lm.txt"), "--out", str(out), "--epochs", "1"]
    argv += ["--embed-dim", "8", "--hidden-size", "8", "--batch-size", "4", "--threads", "1"]
    assert main(argv) == 0
    return out
