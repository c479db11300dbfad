"""The linear-chain CRF's Viterbi recursion in NumPy, shared by the torch CRF's CPU decoding
(`grutext.nn.crf.CRF.decode`) and the torch-free runtime (`grutext.runtime.tagger`): one function, so
both give the same paths, the same scores and the same choice among equal scores."""

from __future__ import annotations

import numpy as np


def viterbi(
    emissions: np.ndarray, lengths: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray
) -> tuple[list[list[int]], np.ndarray]:
    """The best tag path of each sentence and its score.

    Args:
        emissions: (B, T, K) tag scores (post-padded; values past each length are ignored).
        lengths: (B,) each >= 1.
        start, trans, end: (K,), (K, K) ([i, j]: tag j after tag i), (K,) scores in the emissions'
            dtype, disallowed ones -inf.

    Returns:
        ``paths`` (one list of tag indices per sentence, its length long) and ``scores`` (B,). The sums
        are those of the torch loop in `CRF.decode`, in the same order and dtype; among equal scores the
        first previous tag wins, as torch's ``max`` picks.
    """
    b, t_len, k = emissions.shape
    m = np.arange(t_len)[None, :] < np.asarray(lengths)[:, None]  # (B, T) real steps
    em = np.where(m[:, :, None], emissions, np.zeros((), emissions.dtype))  # padding cleaned, as the CRF does
    rows = np.arange(b)
    score = start[None, :] + em[:, 0]  # (B, K): best path ending in each tag
    pointers = np.zeros((t_len, b, k), dtype=np.int64)  # pointers[t]: best previous tag, for t >= 1
    identity = np.broadcast_to(np.arange(k), (b, k))  # (B, K): padding points to itself
    trans_t = np.ascontiguousarray(trans.T)  # (K, K_prev): the previous tag on the last, contiguous axis
    bb, kk = rows[:, None], np.arange(k)[None, :]  # (B, 1), (1, K): indices of `best`
    full = int(np.min(lengths)) if b else 0  # steps before this one are real in every row
    for t in range(1, t_len):
        cand = score[:, None, :] + trans_t[None, :, :] + em[:, t, :, None]  # (B, K, K_prev)
        arg = cand.argmax(axis=2)  # (B, K)
        best = cand[bb, kk, arg]  # (B, K): the value at arg
        if t < full:  # every row is still in its sentence: no padding to hold
            score, pointers[t] = best, arg
            continue
        step = m[:, t, None]  # (B, 1)
        score = np.where(step, best, score)
        pointers[t] = np.where(step, arg, identity)
    final = score + end[None, :]  # (B, K)
    tag = final.argmax(axis=1)  # (B,)
    best_score = final[rows, tag]  # (B,)
    path = np.zeros((b, t_len), dtype=np.int64)  # (B, T); padded steps repeat the last real tag
    path[:, -1] = tag
    for t in range(t_len - 1, 0, -1):
        tag = pointers[t][rows, tag]
        path[:, t - 1] = tag
    return [row[:n] for row, n in zip(path.tolist(), m.sum(axis=1).tolist(), strict=True)], best_score


__all__ = ["viterbi"]
