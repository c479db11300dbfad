"""Data-parallel training (grutext.train.distributed): real 2-process gloo runs on 127.0.0.1 on tiny
corpora, compared with one process; plus the pieces (batch slices, the launcher's command line,
the rank environment) on their own.

Every multi-process run is bounded by a timeout: a hang (ranks waiting in an all-reduce that one
rank never joins) fails the test instead of blocking the suite.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.conftest import synthetic

from grutext.cli.main import main
from grutext.errors import ConfigError
from grutext.train import distributed
from grutext.train.distributed import ShardedBatches, rank_environments, shard_batch

SRC = str(Path(__file__).resolve().parents[2] / "src")
RUN_TIMEOUT_S = 420  # generous: the machine is shared; a hang is the only way to reach it


def _csv(path: Path, n: int, seed: int) -> Path:
    texts, labels = synthetic(n, seed=seed)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, labels, strict=True))
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run_ranks(args: list[str], cwds: list[Path], timeout: float = RUN_TIMEOUT_S) -> list[subprocess.CompletedProcess]:
    """Start `python -m grutext ARGS` as ranks 0..N-1 (each in its own working folder), as torchrun would."""
    envs = rank_environments(len(cwds), distributed.free_port(), base=_env())
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "grutext", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cwd, env in zip(cwds, envs, strict=True)
    ]
    done = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"distributed run did not finish in {timeout}s (a hang): {args}")
    return done


def _max_rel_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert set(a) == set(b)
    return max(float((a[k] - b[k]).abs().max() / (b[k].abs().max() + 1e-12)) for k in a)


CLASSIFIER = [
    "--embed-dim", "8", "--hidden-size", "8", "--dropout", "0", "--embed-dropout", "0", "--threads", "1",
    "--batch-size", "7", "--schedule", "constant", "--warmup", "0", "--lr", "0.01", "--keep-checkpoint",
]  # fmt: skip


def test_classifier_two_ranks_equal_one_rank_only_rank0_writes_and_resume_on_one(tmp_path):
    """57 training texts in global batches of 7: slices of 3 and 4, and a last batch of one text that
    leaves rank 0 an empty slice; the weighted all-reduce makes the step the one-process step anyway."""
    train = _csv(tmp_path / "train.csv", 57, seed=0)
    valid = _csv(tmp_path / "valid.csv", 20, seed=1)
    data = [str(train), "--valid", str(valid)]
    r0, r1 = tmp_path / "rank0", tmp_path / "rank1"
    r0.mkdir()
    r1.mkdir()
    # the same relative --out in two working folders: whatever rank 1 wrote would land in rank1/
    ranks = _run_ranks(["train", *data, *CLASSIFIER, "--epochs", "1", "--out", "m"], [r0, r1])
    assert [r.returncode for r in ranks] == [0, 0], ranks[0].stderr + ranks[1].stderr
    assert sorted(p.name for p in r0.iterdir()) == ["m", "m.ckpt"]
    assert list(r1.iterdir()) == []  # rank 1 wrote nothing: no model, no checkpoint, no runs/
    assert ranks[1].stdout == ""  # and printed nothing
    assert "global batch 7 (3-4 per process)" in ranks[0].stdout
    assert ranks[0].stdout.count("saved: m/") == 1

    one = tmp_path / "one"
    assert main(["train", *data, *CLASSIFIER, "--epochs", "1", "--out", str(one)]) == 0
    two_ranks = load_file(str(r0 / "m.ckpt" / "model.safetensors"))  # the last weights, not the best epoch's
    assert _max_rel_diff(two_ranks, load_file(str(tmp_path / "one.ckpt" / "model.safetensors"))) <= 1e-5

    # the 2-rank run's checkpoint continues on 1 rank, to the weights of an uninterrupted 1-rank run
    assert main(["train", *data, *CLASSIFIER, "--epochs", "2", "--resume", "--out", str(r0 / "m")]) == 0
    straight = tmp_path / "straight"
    assert main(["train", *data, *CLASSIFIER, "--epochs", "2", "--out", str(straight)]) == 0
    resumed = load_file(str(r0 / "m.ckpt" / "model.safetensors"))
    assert _max_rel_diff(resumed, load_file(str(tmp_path / "straight.ckpt" / "model.safetensors"))) <= 1e-5
    assert _max_rel_diff(resumed, two_ranks) > 1e-3  # the resumed epoch trained


def _lm_corpus(path: Path) -> Path:
    rng = random.Random(0)
    words = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log", "and", "then", "it", "was", "here", "there"]
    path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) for _ in range(120)))
    return path


LM = [
    "--task", "lm", "--embed-dim", "8", "--hidden-size", "8", "--num-layers", "1", "--dropout", "0",
    "--embed-dropout", "0", "--input-dropout", "0", "--layer-dropout", "0", "--weight-drop", "0", "--threads", "1",
    "--batch-size", "4", "--bptt", "8", "--epochs", "1", "--keep-checkpoint", "--lr", "0.01",
]  # fmt: skip


def test_language_model_two_ranks_through_nproc_equal_one_rank(tmp_path):
    """`grutext train --nproc 2` (the launcher) on a language model.

    The stream split: one process lays the stream out as B=4 rows (row b = the b-th contiguous
    quarter) and walks windows along them; rank r takes rows 2r and 2r+1, i.e. the r-th contiguous
    half of the same trimmed stream, with the same window lengths (same seed). Each rank's loss is a
    token mean over its half and the all-reduce weights it by its tokens, so the 2-rank gradient is
    the 1-rank gradient up to float summation order: the stream-split difference is zero here, and
    1e-5 relative is the bound.
    """
    corpus = _lm_corpus(tmp_path / "corpus.txt")
    two, one = tmp_path / "two", tmp_path / "one"
    cmd = [sys.executable, "-m", "grutext", "train", str(corpus), *LM, "--out", str(two), "--nproc", "2"]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert "distributed: 2 processes (gloo, cpu); global batch 4 (2 per process)" in done.stdout
    assert done.stdout.count("saved: ") == 1  # rank 1 printed nothing
    assert main(["train", str(corpus), *LM, "--out", str(one)]) == 0
    a = load_file(str(tmp_path / "two.ckpt" / "model.safetensors"))
    b = load_file(str(tmp_path / "one.ckpt" / "model.safetensors"))
    assert _max_rel_diff(a, b) <= 1e-5


# ---- the pieces ------------------------------------------------------------------------------------


def test_shard_batch_slices_rows_keeps_the_rest_and_empties_to_none():
    batch = {"ids": torch.arange(14).view(7, 2), "lengths": torch.arange(7), "gold": list("abcdefg"), "reset": True}
    parts = [shard_batch(batch, r, 2) for r in range(2)]
    assert parts[0] is not None and parts[1] is not None
    assert parts[0]["ids"].tolist() == [[0, 1], [2, 3], [4, 5]]
    assert parts[1]["lengths"].tolist() == [3, 4, 5, 6]
    assert parts[1]["gold"] == list("defg")
    assert parts[0]["reset"] is True and parts[1]["reset"] is True
    assert torch.equal(torch.cat([parts[0]["ids"], parts[1]["ids"]]), batch["ids"])  # nothing lost or doubled
    one = {"ids": torch.zeros(1, 3), "lengths": torch.ones(1)}
    assert shard_batch(one, 0, 2) is None
    assert shard_batch(one, 1, 2) is not None


def test_sharded_batches_keep_the_global_length_and_epoch():
    class Inner:
        def __init__(self):
            self.epoch = 0
            self.num_tokens = 99

        def set_epoch(self, e):
            self.epoch = e

        def __len__(self):
            return 3

        def __iter__(self):
            for k in range(3):
                yield {"ids": torch.full((4, 2), k)}

    inner = Inner()
    sharded = ShardedBatches(inner, 1, 2)
    sharded.set_epoch(5)
    assert inner.epoch == 5 and len(sharded) == 3 and sharded.num_tokens == 99
    assert [b["ids"].shape[0] for b in sharded] == [2, 2, 2]


def test_rank_environments_are_torchruns():
    envs = rank_environments(2, 12345, base={"PATH": "/bin"})
    assert [e["RANK"] for e in envs] == ["0", "1"]
    assert all(e["WORLD_SIZE"] == "2" and e["MASTER_ADDR"] == "127.0.0.1" and e["MASTER_PORT"] == "12345" for e in envs)
    assert all(int(e["OMP_NUM_THREADS"]) >= 1 for e in envs)
    assert rank_environments(2, 1, base={"OMP_NUM_THREADS": "3"})[1]["OMP_NUM_THREADS"] == "3"


def test_nproc_is_dropped_from_the_ranks_command_line():
    from grutext.cli.train import _without_nproc

    assert _without_nproc(["train", "x.csv", "--nproc", "2", "--epochs", "1"]) == ["train", "x.csv", "--epochs", "1"]
    assert _without_nproc(["train", "--nproc=2", "x.csv"]) == ["train", "x.csv"]


def test_nproc_inside_torchrun_is_an_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="already rank 0 of 2"):
        distributed.launch(["train", "x.csv"], 2)


def test_nproc_below_one_is_an_error(tmp_path, capsys):
    assert main(["train", str(_csv(tmp_path / "t.csv", 10, 0)), "--nproc", "0"]) == 2
    assert "--nproc: expected a number of processes >= 1, got 0" in capsys.readouterr().err


def test_one_rank_states_nothing_distributed():
    from grutext.train.loop import describe_run

    line = describe_run(distributed.Dist(), "bf16", 32, torch.device("cuda"))
    assert "distributed" not in line and "bf16" in line
    line = describe_run(distributed.Dist(1, 3, 1, "gloo"), "fp32", 32, torch.device("cpu"))
    assert "3 processes" in line and "global batch 32 (10-11 per process)" in line and "unscaled" in line


def _conll(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [
            rng.choice(["the", "a", "big", "red", "dog", "cat", "sees", "likes", "."]) for _ in range(rng.randint(2, 9))
        ]
        out += [
            f"{w} X {'B-NP' if w in ('the', 'a') else 'I-NP' if w in ('big', 'red', 'dog', 'cat') else 'O'}"
            for w in words
        ]
        out.append("")
    path.write_text("\n".join(out))
    return path


@pytest.mark.parametrize("decoder", ["softmax"])
def test_tagger_two_ranks_equal_one_rank(tmp_path, decoder):
    """A softmax tagger's loss is a mean over tokens, so ranks are weighted by their tokens (StepOut.weight):
    29 sentences of 2-9 tokens in batches of 5 give slices of unequal token counts."""
    train, valid = _conll(tmp_path / "train.txt", 29, 0), _conll(tmp_path / "valid.txt", 8, 1)
    args = [
        "train", str(train), "--task", "tag", "--valid", str(valid), "--decoder", decoder, "--char-encoder", "none",
        "--embed-dim", "8", "--hidden-size", "8", "--dropout", "0", "--threads", "1",
        "--batch-size", "5", "--epochs", "1", "--keep-checkpoint", "--lr", "0.01",
    ]  # fmt: skip
    r0, r1 = tmp_path / "rank0", tmp_path / "rank1"
    r0.mkdir()
    r1.mkdir()
    ranks = _run_ranks([*args, "--out", "m"], [r0, r1])
    assert [r.returncode for r in ranks] == [0, 0], ranks[0].stderr + ranks[1].stderr
    assert list(r1.iterdir()) == []
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    a = load_file(str(r0 / "m.ckpt" / "model.safetensors"))
    assert _max_rel_diff(a, load_file(str(tmp_path / "one.ckpt" / "model.safetensors"))) <= 1e-5


def test_a_rank_refuses_a_fixed_gpu_or_more_ranks_than_gpus(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ConfigError, match="each takes its own GPU"):
        distributed.init_distributed(torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="LOCAL_RANK=1: only 1 CUDA device"):
        distributed.init_distributed(torch.device("cuda"))
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="RANK=2: expected 0..1"):
        distributed.init_distributed(torch.device("cpu"))
