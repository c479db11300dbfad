"""The inspection commands (summary, trace, explain, report) on a language-model folder and a
classifier folder: each works, or says in one line why it does not apply (no traceback); the LM's
report shows its own settings."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from grutext.cli import main

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "in", "mat", "park"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
    from grutext.data.readers import TextDataset
    from grutext.tasks.classification.data import Splits
    from grutext.tasks.classification.train import train_classifier
    from grutext.tasks.language_model.config import LMConfig
    from grutext.tasks.language_model.train import train_language_model

    root = tmp_path_factory.mktemp("kinds")
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(100)]
    train_language_model(
        Config(
            DataConfig(tokenizer="word", min_freq=1),
            ModelConfig(embed_dim=8, hidden_size=8, num_layers=1),
            TrainConfig(epochs=1, batch_size=4, seed=0, out=str(root / "lm")),
        ),
        lm=LMConfig(bptt=8, weight_drop=0.15, input_dropout=0.05),
        verbose=False,
        train_lines=lines,
    )
    ds = TextDataset(
        [("good " if i % 2 else "bad ") + t for i, t in enumerate(lines)],
        ["pos" if i % 2 else "neg" for i in range(100)],
        "s",
    )
    train_classifier(
        Config(
            DataConfig(train="s.csv", min_freq=1),
            ModelConfig(embed_dim=8, hidden_size=8),
            TrainConfig(epochs=1, batch_size=16, seed=0, out=str(root / "clf")),
        ),
        splits=Splits(ds, ds, None),
        verbose=False,
        progress=False,
    )
    return {"lm": root / "lm", "clf": root / "clf"}


@pytest.mark.parametrize("kind", ["lm", "clf"])
@pytest.mark.parametrize("command", ["summary", "trace", "explain", "report"])
def test_each_inspection_command_on_each_kind(folders, kind, command, capsys, tmp_path):
    args = [command, str(folders[kind])]
    if command in ("trace", "explain"):
        args.append("the cat sat")
    if command == "report":
        args += ["--out", str(tmp_path / "r.html")]
    rc = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if (command, kind) == ("trace", "lm"):
        assert rc == 2
        message = err.strip()
        assert "\n" not in message and "is a language model" in message and "grutext explain" in message, err
    else:
        assert rc == 0, err
        assert out.strip()


def test_report_of_a_language_model_shows_its_own_settings(folders, tmp_path):
    from grutext.explain import training_report

    page = training_report(folders["lm"], out=tmp_path / "lm.html").read_text(encoding="utf-8")
    settings = re.sub(r"<[^>]+>", " ", page.split("Settings", 1)[1].split("Model", 1)[0]).split()
    pairs = dict(zip(settings[::2], settings[1::2], strict=False))
    assert pairs["bptt"] == "8" and pairs["weight_drop"] == "0.15" and pairs["input_dropout"] == "0.05", pairs
    assert "tie_weights" in pairs and "layer_dropout" in pairs
    assert not {"pooling", "task", "classes", "ensemble", "bidirectional"} & set(pairs), pairs
    assert "mistakes" not in page
    clf = training_report(folders["clf"], out=tmp_path / "clf.html").read_text(encoding="utf-8")
    clf_settings = re.sub(r"<[^>]+>", " ", clf.split("Settings", 1)[1].split("Model", 1)[0]).split()
    assert "pooling" in clf_settings and "bptt" not in clf_settings
