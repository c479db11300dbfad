"""Tests for grutext.data.batching: truncation, padding, bucketing, LM stream windows."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from grutext.data.batching import (
    BucketSampler,
    StreamBatches,
    TextBatches,
    check_nonempty,
    pad_batch,
    truncate,
)
from grutext.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


# ----------------------------------------------------------------------------- truncate / pad


def test_truncate_policies() -> None:
    ids = list(range(10))
    assert truncate(ids, 4, "head") == [0, 1, 2, 3]
    assert truncate(ids, 4, "tail") == [6, 7, 8, 9]
    assert truncate(ids, 4, "head+tail") == [0, 7, 8, 9]
    assert truncate(ids, 20, "head+tail") == ids
    long = list(range(1000))
    kept = truncate(long, 512, "head+tail")
    assert kept[:128] == long[:128] and kept[128:] == long[-384:] and len(kept) == 512
    with pytest.raises(
        ConfigError, match=r"truncation policy: expected one of \['head', 'tail', 'head\+tail'\], got 'middle'"
    ):
        truncate(ids, 4, "middle")
    with pytest.raises(ConfigError, match=r"max_len: expected an integer >= 1, got 0"):
        truncate(ids, 0)


def test_pad_batch() -> None:
    ids, lengths = pad_batch([[5, 6, 7], [8], [9, 10]], pad_id=0)
    assert ids.dtype == torch.long and lengths.dtype == torch.long
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert lengths.tolist() == [3, 1, 2]
    ids, _ = pad_batch([[1], [2, 3]], pad_id=-1)
    assert ids.tolist() == [[1, -1], [2, 3]]
    with pytest.raises(DataError, match=r"pad_batch: sequence 1 of the batch is empty"):
        pad_batch([[1], []])
    with pytest.raises(DataError, match="empty batch"):
        pad_batch([])


def test_check_nonempty_names_index() -> None:
    check_nonempty([[1], [2]])
    with pytest.raises(DataError, match=r"train\.csv text 2: tokenized to no tokens.*\(2 such text\(s\)"):
        check_nonempty([[1], [2], [], []], "train.csv")


# ----------------------------------------------------------------------------- bucket sampler


def _lengths(n: int = 1037, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 400) for _ in range(n)]


def test_bucket_sampler_invariants() -> None:
    lengths = _lengths()
    s = BucketSampler(lengths, batch_size=16, bucket_mult=10, seed=3)
    batches = list(s)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every index exactly once
    assert len(batches) == len(s)
    assert all(1 <= len(b) <= 16 for b in batches)
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # longest batch first
    # sortish: within a batch lengths are sorted (descending) and spread far less than overall
    assert all([lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True) for b in batches)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 0.2 * (max(lengths) - min(lengths))  # random batches of 16: ~0.9


def test_bucket_sampler_deterministic_per_epoch() -> None:
    lengths = _lengths(300)
    a = BucketSampler(lengths, batch_size=8, seed=1)
    b = BucketSampler(lengths, batch_size=8, seed=1)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert first != second and sorted(map(tuple, first)) != sorted(map(tuple, second))
    b.set_epoch(1)
    assert list(b) == second
    assert list(BucketSampler(lengths, batch_size=8, seed=2)) != first


def test_bucket_sampler_eval_order_sorted() -> None:
    lengths = [3, 1, 2, 5, 2]
    s = BucketSampler(lengths, batch_size=2, shuffle=False)
    assert list(s) == [[3, 0], [2, 4], [1]]
    s.set_epoch(5)
    assert list(s) == [[3, 0], [2, 4], [1]] and len(s) == 3
    assert [len(b) for b in BucketSampler(lengths, batch_size=2, shuffle=False, drop_last=True)] == [2, 2]
    with pytest.raises(ConfigError, match=r"batch_size: expected an integer >= 1, got 0"):
        BucketSampler(lengths, batch_size=0)


def test_bucket_sampler_len_matches() -> None:
    for n, bs, mult in [(1, 4, 2), (7, 3, 1), (100, 7, 3), (1000, 32, 50)]:
        s = BucketSampler([1] * n, batch_size=bs, bucket_mult=mult)
        assert len(s) == len(list(s))


# ----------------------------------------------------------------------------- text batches


def test_text_batches() -> None:
    rng = random.Random(0)
    seqs = [[rng.randint(4, 99) for _ in range(rng.randint(1, 30))] for _ in range(101)]
    labels = torch.arange(101) % 3
    tb = TextBatches(seqs, labels, batch_size=8, max_len=20, policy="tail", shuffle=True, seed=0)
    seen: list[int] = []
    for batch in tb:
        ids, lengths, index = batch["ids"], batch["lengths"], batch["index"]
        assert ids.shape == (len(index), int(lengths.max()))
        assert int(lengths.max()) <= 20
        assert torch.equal(batch["labels"], labels[index])
        for row, i in enumerate(index.tolist()):
            expect = truncate(seqs[i], 20, "tail")
            assert ids[row, : lengths[row]].tolist() == expect
            assert (ids[row, lengths[row] :] == 0).all()
        seen += index.tolist()
    assert sorted(seen) == list(range(101))
    assert tb.num_tokens == sum(min(len(s), 20) for s in seqs)
    assert len(tb) == len(list(tb))


def test_text_batches_eval_order_restorable() -> None:
    seqs = [[1] * n for n in (3, 9, 1, 4, 4)]
    tb = TextBatches(seqs, None, batch_size=2, shuffle=False)
    preds = torch.empty(5, dtype=torch.long)
    for batch in tb:
        assert "labels" not in batch
        preds[batch["index"]] = batch["lengths"]
    assert preds.tolist() == [3, 9, 1, 4, 4]


def test_text_batches_errors() -> None:
    with pytest.raises(DataError, match=r"dev text 1: tokenized to no tokens"):
        TextBatches([[1], []], source="dev")
    with pytest.raises(DataError, match=r"texts: 3 labels for 2 texts, expected one per text"):
        TextBatches([[1], [2]], torch.zeros(3))
    with pytest.raises(ConfigError, match="truncation policy"):
        TextBatches([[1]], policy="both")


# ----------------------------------------------------------------------------- stream batches


def _check_stream(sb: StreamBatches, n: int, B: int) -> None:
    S = n // B
    targets: list[int] = []
    hidden_rows = [[] for _ in range(B)]
    for x, y in sb:
        assert x.shape == y.shape and x.shape[0] == B
        for b in range(B):
            row = x[b].tolist()
            hidden_rows[b] += row
            assert y[b, :-1].tolist() == row[1:]  # y is x shifted by one
        targets += y.flatten().tolist()
    assert sorted(targets) == sorted(v for b in range(B) for v in range(b * S + 1, (b + 1) * S))
    assert len(targets) == sb.num_targets == B * (S - 1)
    for b in range(B):  # each row walks its contiguous slice in order
        assert hidden_rows[b] == list(range(b * S, (b + 1) * S - 1))


def test_stream_batches_cover_every_token_once() -> None:
    n, B = 1003, 4
    sb = StreamBatches(torch.arange(n), batch_size=B, bptt=7)
    assert sb.dropped == 3
    _check_stream(sb, n, B)
    assert len(sb) == len(list(sb))


def test_stream_batches_variable_length() -> None:
    n, B = 5000, 3
    sb = StreamBatches(torch.arange(n), batch_size=B, bptt=20, vary_length=True, seed=0)
    _check_stream(sb, n, B)
    lens = [x.shape[1] for x, _ in sb]
    assert len(set(lens)) > 3 and min(lens[:-1]) >= 5 and max(lens) <= 40
    again = [x.shape[1] for x, _ in sb]
    assert lens == again  # same epoch, same lengths
    sb.set_epoch(1)
    assert [x.shape[1] for x, _ in sb] != lens


def test_stream_batches_too_short() -> None:
    with pytest.raises(DataError, match=r"valid: 7 tokens are too few for batch_size=4 \(need at least 8"):
        StreamBatches(torch.arange(7), batch_size=4, bptt=5, source="valid")
    with pytest.raises(ConfigError, match=r"bptt: expected an integer >= 1, got 0"):
        StreamBatches(torch.arange(70), batch_size=4, bptt=0)


@pytest.mark.skipif(not (SHARED / "ptb").is_dir(), reason="../shared/data not present")
def test_stream_batches_on_ptb_slice() -> None:
    from grutext.data.tokenizers import Tokenizer

    lines = (SHARED / "ptb" / "ptb.valid.txt").read_text(encoding="utf-8").split("\n")[:500]
    tok = Tokenizer.train(lines, kind="word", lowercase=False)
    stream = torch.tensor([i for ids in tok.encode_batch(lines, add_eos=True) for i in ids])
    sb = StreamBatches(stream, batch_size=10, bptt=35)
    total = sum(y.numel() for _, y in sb)
    assert total == sb.num_targets == 10 * (len(stream) // 10 - 1)
