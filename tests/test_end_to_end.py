"""End to end through `grutext.cli.main`: multi-label (fastText file -> train -> predict -> evaluate)
and `--resume` (the resumed trace continues the first run's exactly)."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest
import torch
from tests.conftest import FILLER, synthetic, write_csv

from grutext.cli import main

TOPICS = {"sport": "goal", "money": "bank", "tech": "chip"}


def fasttext_lines(n: int, seed: int) -> list[str]:
    """Texts with one or two topics, each topic's word planted once; labels in fastText form."""
    rng = random.Random(seed)
    names = sorted(TOPICS)
    out = []
    for i in range(n):
        topics = [names[i % 3]] if i % 2 else rng.sample(names, 2)
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
        for t in topics:
            words.insert(rng.randrange(len(words) + 1), TOPICS[t])
        out.append(" ".join(f"__label__{t}" for t in topics) + " " + " ".join(words))
    return out


def test_multilabel_end_to_end(tmp_path, capsys):
    (tmp_path / "train.txt").write_text("\n".join(fasttext_lines(240, 0)) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(fasttext_lines(40, 1)) + "\n")
    out = tmp_path / "model"
    argv = ["train", str(tmp_path / "train.txt"), "--out", str(out), "--epochs", "8", "--lr", "1e-2"]
    argv += ["--embed-dim", "12", "--hidden-size", "12", "--min-freq", "1", "--batch-size", "16"]
    assert main(argv) == 0
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["model"]["task"] == "multilabel" and meta["labels"] == ["money", "sport", "tech"]
    capsys.readouterr()
    texts = ["the goal and the bank", "a chip in the car", "the city goal at night", "a bank chip"]
    assert main(["predict", str(out), "--json", *texts]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [sorted(r["labels"]) for r in rows] == [["money", "sport"], ["tech"], ["sport"], ["money", "tech"]]
    for r in rows:  # independent sigmoids: each label's probability decides on its own
        assert sorted(r["labels"]) == sorted(k for k, v in r["probabilities"].items() if v >= 0.5)
        assert "label" not in r
    assert sum(rows[0]["probabilities"].values()) > 1.4  # not a softmax over the labels
    assert main(["evaluate", str(out), str(tmp_path / "test.txt"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n"] == 40 and rep["labels"] == ["money", "sport", "tech"]
    assert rep["accuracy"] >= 0.9 and rep["micro_f1"] >= 0.95  # subset accuracy: all of a text's labels right
    assert {k: v["support"] for k, v in rep["per_class"].items()} == _supports(tmp_path / "test.txt")


def _supports(path) -> dict[str, int]:
    counts = dict.fromkeys(sorted(TOPICS), 0)
    for line in path.read_text().splitlines():
        for tok in line.split():
            if tok.startswith("__label__"):
                counts[tok[len("__label__") :]] += 1
    return counts


FAST = ["--embed-dim", "8", "--hidden-size", "8", "--min-freq", "1", "--batch-size", "16", "--seed", "3"]
SAME = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1", "lr")  # all but timings


def _history(out) -> list[dict]:
    return json.loads((out / "metrics.json").read_text())["history"]


@pytest.fixture(scope="module")
def resume_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    texts, labels = synthetic(64, seed=2)
    return write_csv(d / "train.csv", texts, labels)


def _interrupted_then_resumed(resume_data, tmp_path, monkeypatch, *flags: str) -> None:
    """Killed during epoch 3 of 3, then `--resume`: the trace is the uninterrupted run's."""
    ref = tmp_path / "ref"
    assert main(["train", str(resume_data), "--out", str(ref), "--epochs", "3", *FAST, *flags]) == 0
    out = tmp_path / "run"
    steps = {"n": 0}
    real_step = torch.optim.AdamW.step

    def step_then_interrupt(self, *args, **kwargs):
        steps["n"] += 1
        if steps["n"] == 9:  # 58 training texts / 16 = 4 steps an epoch: the first step of epoch 3
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_interrupt)
    assert main(["train", str(resume_data), "--out", str(out), "--epochs", "3", *FAST, *flags]) == 130
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    assert not out.exists() and (tmp_path / "run.ckpt").is_dir()  # no model yet, a checkpoint after epoch 2
    assert main(["train", str(resume_data), "--out", str(out), "--epochs", "3", "--resume", *FAST, *flags]) == 0
    got, want = _history(out), _history(ref)
    assert len(got) == 3
    for a, b in zip(got, want, strict=True):
        assert {k: a[k] for k in SAME} == pytest.approx({k: b[k] for k in SAME}, rel=1e-5, abs=1e-7)


def test_cli_resume_after_an_interrupted_run(resume_data, tmp_path, monkeypatch):
    _interrupted_then_resumed(resume_data, tmp_path, monkeypatch, "--dropout", "0", "--embed-dropout", "0")


def test_cli_resume_after_an_interrupted_run_with_dropout(resume_data, tmp_path, monkeypatch):
    _interrupted_then_resumed(resume_data, tmp_path, monkeypatch)


def test_cli_resume_extends_a_finished_run(resume_data, tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(resume_data), "--out", str(out), "--epochs", "2", "--keep-checkpoint", *FAST]) == 0
    first = _history(out)
    assert len(first) == 2
    assert main(["train", str(resume_data), "--out", str(out), "--epochs", "3", "--resume", *FAST]) == 0
    resumed = _history(out)
    assert [{k: r[k] for k in SAME} for r in resumed[:2]] == [{k: r[k] for k in SAME} for r in first]
    assert len(resumed) == 3


def test_output_folders_grutext_must_not_touch_are_refused(resume_data, tmp_path, capsys):
    """--out that is the current folder, a file, or a folder of the user's own files is refused before any
    training, and nothing in it changes; a model folder is replaced only with --overwrite."""
    user = tmp_path / "project"
    (user / "sub").mkdir(parents=True)
    (user / "notes.txt").write_text("mine")
    (user / "sub" / "data.csv").write_text("a,b\n")
    before = sorted((p.relative_to(user), p.read_bytes()) for p in user.rglob("*") if p.is_file())
    for out, words in [
        (user, "not a grutext model directory"),
        (user / "notes.txt", "is an existing file"),
        (Path("."), "current folder"),
    ]:
        assert main(["train", str(resume_data), "--out", str(out), "--epochs", "1", *FAST]) == 2
        assert words in capsys.readouterr().err
        assert main(["train", str(resume_data), "--out", str(out), "--epochs", "1", "--overwrite", *FAST]) == 2
        capsys.readouterr()
    assert sorted((p.relative_to(user), p.read_bytes()) for p in user.rglob("*") if p.is_file()) == before
    model = tmp_path / "model"
    assert main(["train", str(resume_data), "--out", str(model), "--epochs", "1", *FAST]) == 0
    out = capsys.readouterr().out
    assert "checkpoint removed" in out and not (tmp_path / "model.ckpt").exists()
    assert main(["train", str(resume_data), "--out", str(model), "--epochs", "1", *FAST]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["train", str(resume_data), "--out", str(model), "--epochs", "1", "--overwrite", *FAST]) == 0


def test_without_out_a_new_timestamped_folder_is_written(resume_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(resume_data), "--epochs", "1", *FAST]) == 0
    made = list((tmp_path / "runs").iterdir())
    assert len(made) == 1 and re.fullmatch(r"classifier-\d{8}-\d{6}", made[0].name)
    assert f"output: {Path('runs') / made[0].name}/" in capsys.readouterr().out
    assert main(["train", str(resume_data), "--epochs", "1", "--resume", *FAST]) == 2
    assert "--out DIR" in capsys.readouterr().err


def test_model_folders_follow_the_umask(resume_data, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["train", str(resume_data), "--out", str(tmp_path / "m"), "--epochs", "1", *FAST]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "m" / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_os_errors_are_one_line_and_debug_shows_the_traceback(resume_data, tmp_path, monkeypatch, capsys):
    import grutext.artifact as artifact

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "m" / "model.safetensors"))

    monkeypatch.setattr(artifact, "_sync", full)
    argv = ["train", str(resume_data), "--out", str(tmp_path / "m"), "--epochs", "1", *FAST]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"grutext train: error: {tmp_path / 'm' / 'model.safetensors'}: No space left on device "
        "(--debug shows the traceback)"
    ]
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.tmp-*"))  # nothing half-written
    with pytest.raises(OSError):
        main(["--debug", *argv])


def test_cuda_on_a_cpu_only_torch_is_a_one_line_error(resume_data, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["train", str(resume_data), "--out", str(tmp_path / "m"), "--device", "cuda", *FAST]) == 2
    assert "use --device cpu" in capsys.readouterr().err
