"""Turn token-id lists into padded batches, and a token stream into LM windows.

* `truncate` cuts one sequence to ``max_len`` (head, tail or head+tail).
* `pad_batch` post-pads a list of sequences to ``ids (B, T)`` and ``lengths (B,)``.
* `BucketSampler` yields index batches of similar length ("sortish"), the longest batch first.
* `TextBatches` iterates a whole dataset as padded batch dicts.
* `StreamBatches` cuts one long id stream into ``(x, y)`` windows for truncated BPTT.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from grutext.config import TRUNCATIONS
from grutext.errors import ConfigError, DataError

POLICIES: tuple[str, ...] = TRUNCATIONS  # data.truncation's choices, written once in grutext.config


def truncate(ids: Sequence[int], max_len: int, policy: str = "head") -> list[int]:
    """Cut `ids` to at most `max_len` tokens.

    Policies: ``"head"`` keeps the first `max_len` tokens, ``"tail"`` the last ones, and
    ``"head+tail"`` keeps the first quarter and the last three quarters of the budget
    (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification": 128 head + 382 tail
    tokens of 512 worked best on IMDB, since reviews state their verdict at the end).

    Args:
        ids: token ids (T,).
        max_len: the budget, >= 1.
        policy: ``"head"``, ``"tail"`` or ``"head+tail"``.

    Returns:
        A new list of ``min(T, max_len)`` ids.

    Raises:
        ConfigError: unknown policy or `max_len` < 1.

    Example:
        >>> truncate(list(range(10)), 4, "head+tail")
        [0, 7, 8, 9]
    """
    if policy not in POLICIES:
        raise ConfigError(f"truncation policy: expected one of {list(POLICIES)}, got {policy!r}")
    if not isinstance(max_len, int) or max_len < 1:
        raise ConfigError(f"max_len: expected an integer >= 1, got {max_len!r}")
    ids = list(ids)
    if len(ids) <= max_len:
        return ids
    if policy == "head":
        return ids[:max_len]
    if policy == "tail":
        return ids[len(ids) - max_len :]
    head = max_len // 4  # 512 -> 128 head + 384 tail (Sun et al. used 128 + 382 plus [CLS]/[SEP])
    tail = max_len - head
    return ids[:head] + ids[len(ids) - tail :]


def check_nonempty(ids_list: Sequence[Sequence[int]], source: str = "texts") -> None:
    """Raise if any sequence is empty (a text that tokenized to nothing).

    Args:
        ids_list: tokenized texts.
        source: name of the data, used in the message.

    Raises:
        DataError: naming the first empty text's index and how many there are.
    """
    empty = [i for i, s in enumerate(ids_list) if len(s) == 0]
    if empty:
        raise DataError(
            f"{source} text {empty[0]:,}: tokenized to no tokens, expected at least one "
            f"({len(empty):,} such text(s) in all; drop them or check the tokenizer)"
        )


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Post-pad sequences to the batch's longest.

    Args:
        seqs: B non-empty id sequences.
        pad_id: the padding id.

    Returns:
        ``(ids, lengths)``: ids LongTensor (B, T) with T the longest length, lengths
        LongTensor (B,).

    Raises:
        DataError: an empty batch or an empty sequence.

    Example:
        >>> ids, lengths = pad_batch([[5, 6, 7], [8]])
        >>> ids.tolist(), lengths.tolist()
        ([[5, 6, 7], [8, 0, 0]], [3, 1])
    """
    if len(seqs) == 0:
        raise DataError("pad_batch: expected at least one sequence, got an empty batch")
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)  # (B,)
    if int(lengths.min()) == 0:
        bad = int((lengths == 0).nonzero()[0, 0])
        raise DataError(f"pad_batch: sequence {bad} of the batch is empty, expected at least one token")
    ids = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)  # (B, T)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.as_tensor(s, dtype=torch.long)  # row b, first len(s) steps
    return ids, lengths


class BucketSampler(Sampler[list[int]]):
    """Batches of indices whose sequences have similar lengths ("sortish" bucketing).

    Training order (``shuffle=True``), per epoch: shuffle all indices, cut them into chunks of
    ``batch_size * bucket_mult``, sort each chunk by length (longest first), cut chunks into
    batches, shuffle the batch order, then move the batch holding the longest sequence to the
    front so that an out-of-memory error shows at the first step. Deterministic for a given
    ``seed`` and epoch (`set_epoch`).

    Evaluation order (``shuffle=False``): indices sorted by decreasing length (ties by index),
    cut into batches; the same on every call. Use each batch's indices (or `TextBatches`'
    ``"index"``) to put predictions back in the original order.

    Args:
        lengths: length of each sequence (N,).
        batch_size: sequences per batch (the last batch of a chunk may be smaller).
        shuffle: training order (True) or sorted evaluation order (False).
        bucket_mult: chunk size in batches; larger sorts better but shuffles less.
        seed: base random seed.
        drop_last: drop batches smaller than `batch_size`.

    Example:
        >>> s = BucketSampler([3, 1, 2, 5], batch_size=2, shuffle=False)
        >>> list(s)
        [[3, 0], [2, 1]]
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        bucket_mult: int = 50,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        if not isinstance(bucket_mult, int) or bucket_mult < 1:
            raise ConfigError(f"bucket_mult: expected an integer >= 1, got {bucket_mult!r}")
        self.lengths = [int(x) for x in lengths]
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.bucket_mult = bucket_mult
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order `__iter__` yields."""
        self.epoch = int(epoch)

    def batches(self) -> list[list[int]]:
        """The batches of the current epoch, as lists of indices."""
        n = len(self.lengths)
        lens = self.lengths
        bs = self.batch_size
        if not self.shuffle:
            order = sorted(range(n), key=lambda i: (-lens[i], i))
            out = [order[k : k + bs] for k in range(0, n, bs)]
        else:
            rng = random.Random(self.seed * 1_000_003 + self.epoch)
            idx = list(range(n))
            rng.shuffle(idx)
            chunk = bs * self.bucket_mult
            out = []
            for c in range(0, n, chunk):
                part = sorted(idx[c : c + chunk], key=lambda i: -lens[i])
                out.extend(part[k : k + bs] for k in range(0, len(part), bs))
            rng.shuffle(out)
            if out:  # longest batch first: an OOM shows at step one, not hours in
                longest = max(range(len(out)), key=lambda b: max(lens[i] for i in out[b]))
                out.insert(0, out.pop(longest))
        if self.drop_last:
            out = [b for b in out if len(b) == bs]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        if not self.drop_last:
            if not self.shuffle:
                return math.ceil(n / self.batch_size)
            chunk = self.batch_size * self.bucket_mult
            full, rest = divmod(n, chunk)
            return full * self.bucket_mult + math.ceil(rest / self.batch_size)
        return len(self.batches())


class TextBatches:
    """Padded, length-bucketed batches over a tokenized dataset.

    Each item is a dict ``{"ids": (B, T) long, "lengths": (B,) long, "index": (B,) long}``
    plus ``"labels"`` (the rows of `labels` at those positions) when labels are given.
    Sequences are truncated to `max_len` with `policy` before batching; ``index`` holds the
    original positions so predictions can be put back in order.

    Args:
        ids_list: one id list per text (none empty).
        labels: a tensor whose first dimension is N ((N,) class ids, or (N, C) multi-hot), or None.
        batch_size: texts per batch.
        max_len: truncate longer texts to this many tokens (None: no limit).
        policy: truncation policy, see `truncate`.
        shuffle: bucketed training order, or sorted evaluation order.
        seed: base seed; combine with `set_epoch` for a new order each epoch.
        pad_id: padding id.
        bucket_mult: see `BucketSampler`.
        source: name of the data, used in error messages.

    Raises:
        DataError: empty text, or labels of the wrong length.
    """

    def __init__(
        self,
        ids_list: Sequence[Sequence[int]],
        labels: torch.Tensor | None = None,
        *,
        batch_size: int = 32,
        max_len: int | None = None,
        policy: str = "head",
        shuffle: bool = True,
        seed: int = 0,
        pad_id: int = 0,
        bucket_mult: int = 50,
        source: str = "texts",
    ) -> None:
        if len(ids_list) == 0:
            raise DataError(f"{source}: no texts, expected at least one")
        check_nonempty(ids_list, source)
        if labels is not None:
            labels = torch.as_tensor(labels)
            if labels.shape[0] != len(ids_list):
                raise DataError(
                    f"{source}: {labels.shape[0]:,} labels for {len(ids_list):,} texts, expected one per text"
                )
        if max_len is not None:
            self.seqs = [truncate(s, max_len, policy) for s in ids_list]
        else:
            truncate([], 1, policy)  # validates the policy name
            self.seqs = [list(s) for s in ids_list]
        self.labels = labels
        self.pad_id = pad_id
        self.sampler = BucketSampler(
            [len(s) for s in self.seqs], batch_size, shuffle=shuffle, bucket_mult=bucket_mult, seed=seed
        )

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration yields."""
        self.sampler.set_epoch(epoch)

    @property
    def num_tokens(self) -> int:
        """Total tokens after truncation (padding excluded)."""
        return sum(len(s) for s in self.seqs)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for batch in self.sampler:
            ids, lengths = pad_batch([self.seqs[i] for i in batch], self.pad_id)  # (B, T), (B,)
            index = torch.tensor(batch, dtype=torch.long)  # (B,)
            item = {"ids": ids, "lengths": lengths, "index": index}
            if self.labels is not None:
                item["labels"] = self.labels[index]  # (B,) or (B, C)
            yield item


class StreamBatches:
    """Truncated-BPTT windows over one long token stream (language modelling).

    The stream is trimmed to a multiple of `batch_size` and laid out as `batch_size` parallel
    rows ("batchify": row b holds the b-th contiguous slice); windows then walk left to right,
    so each row's hidden state carries over between consecutive windows. Over one epoch every
    token of the trimmed stream except each row's first is a target exactly once, and ``y`` is
    ``x`` shifted by one step.

    With ``vary_length=True`` the window length varies as in AWD-LSTM (Merity et al. 2017,
    "Regularizing and Optimizing LSTM Language Models"): with probability 0.95 the base is
    `bptt`, else ``bptt / 2``; the length is then drawn from N(base, 5), kept >= 5 and at most
    ``bptt + 20``. Callers scaling the learning rate by ``L / bptt`` as AWD-LSTM does can read
    ``x.shape[1]``.

    A numpy array (a ``numpy.memmap`` of a prepared corpus, `grutext.data.prepared`) is never read
    whole: the rows are a view of it, and each window is read and converted to int64 when yielded.

    Args:
        stream: 1-D LongTensor (N,) of token ids, or a 1-D numpy integer array (a memmap).
        batch_size: number of parallel rows (B).
        bptt: window length (L).
        vary_length: vary the window length per step (training only).
        seed: base seed for the length variation; combine with `set_epoch`.
        source: name of the data, used in error messages.

    Yields:
        ``(x, y)`` LongTensors (B, L): inputs and next-token targets.

    Raises:
        DataError: a stream too short for one window of every row.
        ConfigError: bad sizes.

    Example:
        >>> sb = StreamBatches(torch.arange(20), batch_size=2, bptt=4)
        >>> x, y = next(iter(sb)); x.tolist(), y.tolist()
        ([[0, 1, 2, 3], [10, 11, 12, 13]], [[1, 2, 3, 4], [11, 12, 13, 14]])
    """

    def __init__(
        self,
        stream: torch.Tensor | np.ndarray | Sequence[int],
        batch_size: int,
        bptt: int = 70,
        *,
        vary_length: bool = False,
        seed: int = 0,
        source: str = "stream",
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        if not isinstance(bptt, int) or bptt < 1:
            raise ConfigError(f"bptt: expected an integer >= 1, got {bptt!r}")
        data: torch.Tensor | np.ndarray
        if isinstance(stream, np.ndarray):
            data = stream.reshape(-1)  # (N,) a view: a memmap stays on disk
        else:
            data = torch.as_tensor(stream, dtype=torch.long).reshape(-1)  # (N,)
        n = int(data.shape[0])
        if n < batch_size * 2:
            raise DataError(
                f"{source}: {n:,} tokens are too few for batch_size={batch_size} "
                f"(need at least {batch_size * 2:,}: two tokens per row)"
            )
        per_row = n // batch_size
        self.dropped = n - per_row * batch_size
        # (N',) -> (B, N/B): row b is the b-th contiguous slice of the stream
        self.data = data[: per_row * batch_size].reshape(batch_size, per_row)  # (B, S), a view
        self.batch_size = batch_size
        self.bptt = bptt
        self.vary_length = vary_length
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose window lengths the next iteration draws."""
        self.epoch = int(epoch)

    @property
    def num_targets(self) -> int:
        """Targets per epoch: B * (S - 1)."""
        return self.batch_size * (self.data.shape[1] - 1)

    def _length(self, rng: random.Random) -> int:
        if not self.vary_length:
            return self.bptt
        base = self.bptt if rng.random() < 0.95 else self.bptt / 2
        return int(min(max(5, round(rng.gauss(base, 5))), self.bptt + 20))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        steps = self.data.shape[1]
        i = 0
        while i < steps - 1:
            seq_len = min(self._length(rng), steps - 1 - i)
            if isinstance(self.data, np.ndarray):  # read this window only
                w = torch.from_numpy(np.asarray(self.data[:, i : i + seq_len + 1], dtype=np.int64))  # (B, L+1)
                yield w[:, :-1], w[:, 1:]
            else:
                x = self.data[:, i : i + seq_len]  # (B, L)
                y = self.data[:, i + 1 : i + 1 + seq_len]  # (B, L) next tokens
                yield x, y
            i += seq_len

    def __len__(self) -> int:
        """Number of windows with the base length (approximate when `vary_length`)."""
        return math.ceil((self.data.shape[1] - 1) / self.bptt)


__all__ = [
    "truncate",
    "pad_batch",
    "check_nonempty",
    "BucketSampler",
    "TextBatches",
    "StreamBatches",
    "POLICIES",
]
