"""A linear-chain conditional random field over per-token emission scores.

A tag path ``y_1..y_n`` of a sentence of ``n`` tokens scores

    s(y) = start[y_1] + sum_t emissions[t, y_t] + sum_{t>1} transitions[y_{t-1}, y_t] + end[y_n]

and ``p(y) = exp(s(y)) / Z`` with ``Z`` the sum over all ``K ** n`` paths. Everything runs
over the whole batch at once, one step per time position; padded positions (``mask`` False)
leave the running scores untouched, so what is in them (garbage, NaN) changes nothing.

Letters: B batch, T time, K tags, N number of best paths kept (k-best).

Example:
    >>> crf = CRF(num_tags=5, constraints=allowed_transitions(["O", "B-NP", "I-NP", "B-VP", "I-VP"], "IOB2"))
    >>> loss = crf(emissions, tags, mask)            # mean negative log-likelihood, ()
    >>> paths, scores = crf.decode(emissions, mask)  # best path per sentence, constraints applied
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from grutext.data.tag_schemes import canonical_scheme, split_tag
from grutext.data.viterbi import viterbi


@dataclass(frozen=True)
class TransitionMask:
    """Which tags may open a sentence, follow one another, and close a sentence (all bool).

    Attributes:
        start: ``(K,)``; transitions: ``(K, K)`` with ``[i, j]`` = tag j may follow tag i;
        end: ``(K,)``.
    """

    start: Tensor
    transitions: Tensor
    end: Tensor

    def allows(self, path: Sequence[int]) -> bool:
        """True when every step of ``path`` (tag indices) is allowed."""
        if not path:
            return True
        steps = all(bool(self.transitions[a, b]) for a, b in zip(path[:-1], path[1:], strict=True))
        return bool(self.start[path[0]]) and steps and bool(self.end[path[-1]])


def allowed_transitions(tags: Sequence[str], scheme: str) -> TransitionMask:
    """The transitions a well-formed tag sequence of ``scheme`` can make, from the tag names.

    - IOB2/BIO: ``I-X`` only after ``B-X`` or ``I-X`` (so never first).
    - IOB1: ``B-X`` only after ``B-X`` or ``I-X`` (so never first); ``I-X`` anywhere.
    - BIOES: after ``B-X``/``I-X`` only ``I-X``/``E-X``; after ``O``/``E-*``/``S-*`` only
      ``O``/``B-*``/``S-*``; first ``O``/``B-*``/``S-*``; last ``O``/``E-*``/``S-*``.

    Args:
        tags: the tag names in index order (``"O"``, ``"B-NP"``, ...).
        scheme: ``"IOB1"``, ``"IOB2"``/``"BIO"`` or ``"BIOES"``/``"IOBES"``.

    Raises:
        DataError: an unknown scheme or a tag that is not ``O``/``P-TYPE`` (P in B I E S).
    """
    scheme = canonical_scheme(scheme)
    parsed = [split_tag(t) for t in tags]
    k = len(tags)
    start = torch.ones(k, dtype=torch.bool)
    end = torch.ones(k, dtype=torch.bool)
    trans = torch.ones(k, k, dtype=torch.bool)  # (K, K) [from, to]
    for j, (p_to, t_to) in enumerate(parsed):
        for i, (p_from, t_from) in enumerate(parsed):
            inside_same = p_from in ("B", "I") and t_from == t_to
            if scheme == "IOB2":
                ok = p_to != "I" or inside_same
            elif scheme == "IOB1":
                ok = p_to != "B" or inside_same
            elif p_from in ("B", "I"):  # BIOES, inside a chunk: continue or close it
                ok = p_to in ("I", "E") and t_from == t_to
            else:  # BIOES, outside a chunk: stay out or open one
                ok = p_to in ("O", "B", "S")
            trans[i, j] = ok
        if scheme == "IOB2":
            start[j] = p_to != "I"
        elif scheme == "IOB1":
            start[j] = p_to != "B"
        else:
            start[j] = p_to in ("O", "B", "S")
            end[j] = p_to in ("O", "E", "S")
    return TransitionMask(start, trans, end)


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """``(B,)`` lengths -> ``(B, T)`` bool mask, True on real tokens."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]  # (B, T)


NUMPY_VITERBI = True  # CPU decoding through `_viterbi_numpy` (False: the torch loop, as on other devices)


def _viterbi_numpy(
    emissions: Tensor, mask: Tensor, start: Tensor, trans: Tensor, end: Tensor
) -> tuple[list[list[int]], Tensor]:
    """`CRF.decode`'s Viterbi recursion in NumPy (`grutext.data.viterbi`, CPU tensors): the same sums
    in the same order and dtype, so the same paths and scores."""
    paths, scores = viterbi(
        emissions.detach().numpy(),
        mask.sum(1).numpy(),
        *(v.detach().numpy() for v in (start, trans, end)),
    )
    return paths, torch.from_numpy(scores)


class CRF(nn.Module):
    """Linear-chain CRF: negative log-likelihood, Viterbi and k-best decoding over a batch.

    Args:
        num_tags: K.
        constraints: allowed transitions (see `allowed_transitions`), applied when decoding
            (`decode`, `kbest`); training stays unconstrained, as the data may break them.

    Parameters ``transitions`` ``(K, K)`` (``[i, j]`` scores tag j after tag i), ``start`` and
    ``end`` ``(K,)`` start at zero, so an untrained CRF decodes the per-token argmax.

    All methods take ``emissions`` ``(B, T, K)`` and either ``mask`` ``(B, T)`` (True on real
    tokens, a prefix of each row) or ``lengths`` ``(B,)``; every sentence needs at least one
    token. Computation runs in the emissions' dtype.
    """

    allowed_start: Tensor  # (K,) bool buffers, applied when decoding
    allowed_transitions: Tensor  # (K, K)
    allowed_end: Tensor  # (K,)

    def __init__(self, num_tags: int, constraints: TransitionMask | None = None) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be >= 1, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))  # (K, K)
        self.start = nn.Parameter(torch.zeros(num_tags))  # (K,)
        self.end = nn.Parameter(torch.zeros(num_tags))  # (K,)
        self.register_buffer("allowed_start", torch.ones(num_tags, dtype=torch.bool), persistent=False)
        self.register_buffer("allowed_transitions", torch.ones(num_tags, num_tags, dtype=torch.bool), persistent=False)
        self.register_buffer("allowed_end", torch.ones(num_tags, dtype=torch.bool), persistent=False)
        if constraints is not None:
            self.set_constraints(constraints)

    def set_constraints(self, constraints: TransitionMask | None) -> None:
        """Replace the decoding constraints (None: allow everything)."""
        k = self.num_tags
        if constraints is None:
            constraints = TransitionMask(
                torch.ones(k, dtype=torch.bool), torch.ones(k, k, dtype=torch.bool), torch.ones(k, dtype=torch.bool)
            )
        if tuple(constraints.transitions.shape) != (k, k):
            raise ValueError(f"constraints are for {constraints.transitions.shape[0]} tags, the CRF has {k}")
        self.allowed_start.copy_(constraints.start)
        self.allowed_transitions.copy_(constraints.transitions)
        self.allowed_end.copy_(constraints.end)

    # ---- helpers ----------------------------------------------------------------------------

    def _mask(self, emissions: Tensor, mask: Tensor | None, lengths: Tensor | None) -> Tensor:
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must be (B, T, {self.num_tags}), got {tuple(emissions.shape)}")
        b, t, _ = emissions.shape
        if mask is None:
            mask = (
                torch.ones(b, t, dtype=torch.bool, device=emissions.device)  # (B, T)
                if lengths is None
                else lengths_to_mask(lengths.to(emissions.device), t)
            )
        mask = mask.to(torch.bool)
        if t == 0 or not bool(mask[:, 0].all()):
            raise ValueError("every sentence needs at least one token (mask[:, 0] must be True)")
        return mask

    def _scores(self, dtype: torch.dtype, constrained: bool) -> tuple[Tensor, Tensor, Tensor]:
        start = self.start.to(dtype)
        trans = self.transitions.to(dtype)
        end = self.end.to(dtype)
        if constrained:
            neg = torch.tensor(float("-inf"), dtype=dtype, device=start.device)
            start = torch.where(self.allowed_start, start, neg)
            trans = torch.where(self.allowed_transitions, trans, neg)
            end = torch.where(self.allowed_end, end, neg)
        return start, trans, end

    @staticmethod
    def _clean(emissions: Tensor, mask: Tensor) -> Tensor:
        # zero the padded positions: NaN/inf there must not leak into sums or gradients
        return emissions.masked_fill(~mask[:, :, None], 0.0)  # (B, T, K)

    # ---- scores -----------------------------------------------------------------------------

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None, lengths: Tensor | None = None) -> Tensor:
        """``log Z`` per sentence by the forward algorithm, ``(B,)``."""
        mask = self._mask(emissions, mask, lengths)
        emissions = self._clean(emissions, mask)
        start, trans, end = self._scores(emissions.dtype, constrained=False)
        alpha = start[None, :] + emissions[:, 0]  # (B, K): log-sum of all paths ending in each tag
        for t in range(1, emissions.shape[1]):
            # (B, K_prev, 1) + (1, K_prev, K) + (B, 1, K) -> (B, K_prev, K), summed out over K_prev
            step = torch.logsumexp(alpha[:, :, None] + trans[None, :, :] + emissions[:, t, None, :], dim=1)  # (B, K)
            alpha = torch.where(mask[:, t, None], step, alpha)  # padding keeps the last real step
        return torch.logsumexp(alpha + end[None, :], dim=1)  # (B,)

    def path_score(
        self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None, lengths: Tensor | None = None
    ) -> Tensor:
        """Unnormalised score ``s(y)`` of the given tag paths ``(B, T)``, ``(B,)``.

        Tags at padded positions are ignored (any value, e.g. -100).
        """
        mask = self._mask(emissions, mask, lengths)
        emissions = self._clean(emissions, mask)
        start, trans, end = self._scores(emissions.dtype, constrained=False)
        tags = tags.masked_fill(~mask, 0).long()  # (B, T), padding -> tag 0 (ignored below)
        fmask = mask.to(emissions.dtype)  # (B, T)
        emit = emissions.gather(2, tags[:, :, None]).squeeze(2)  # (B, T, 1) -> (B, T)
        score = start[tags[:, 0]] + (emit * fmask).sum(1)  # (B,)
        if tags.shape[1] > 1:
            steps = trans[tags[:, :-1], tags[:, 1:]]  # (B, T-1): score of tag t after tag t-1
            score = score + (steps * fmask[:, 1:]).sum(1)
        last = mask.long().sum(1) - 1  # (B,) index of each sentence's last token
        last_tags = tags.gather(1, last[:, None]).squeeze(1)  # (B, 1) -> (B,)
        return score + end[last_tags]

    def nll(
        self,
        emissions: Tensor,
        tags: Tensor,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
        reduction: Literal["mean", "sum", "none"] = "mean",
    ) -> Tensor:
        """Negative log-likelihood ``log Z - s(y)`` of the gold paths: ``()`` or ``(B,)`` for "none".

        ``"mean"`` averages over sentences.
        """
        mask = self._mask(emissions, mask, lengths)
        loss = self.log_partition(emissions, mask) - self.path_score(emissions, tags, mask)  # (B,)
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        if reduction == "mean":
            return loss.mean()
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

    def forward(
        self,
        emissions: Tensor,
        tags: Tensor,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
        reduction: Literal["mean", "sum", "none"] = "mean",
    ) -> Tensor:
        """The training loss: `nll`."""
        return self.nll(emissions, tags, mask, lengths, reduction)

    def marginals(self, emissions: Tensor, mask: Tensor | None = None, lengths: Tensor | None = None) -> Tensor:
        """Posterior ``p(y_t = j | x)`` per token, ``(B, T, K)`` (zero on padding).

        The gradient of ``log Z`` with respect to the emissions (forward-backward by autograd).
        """
        mask = self._mask(emissions, mask, lengths)
        with torch.enable_grad():
            leaf = emissions.detach().requires_grad_(True)  # (B, T, K)
            (grad,) = torch.autograd.grad(self.log_partition(leaf, mask).sum(), leaf)
        return grad * mask[:, :, None].to(grad.dtype)  # (B, T, K)

    # ---- decoding ---------------------------------------------------------------------------

    def decode(
        self,
        emissions: Tensor,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
        constrained: bool = True,
    ) -> tuple[list[list[int]], Tensor]:
        """Viterbi: the best path of each sentence.

        Returns:
            ``paths`` (one list of tag indices per sentence, its length long) and their scores
            ``(B,)``. With constraints, a score of ``-inf`` means no allowed path exists.
        """
        mask = self._mask(emissions, mask, lengths)
        emissions = self._clean(emissions, mask)
        start, trans, end = self._scores(emissions.dtype, constrained)
        if (
            emissions.device.type == "cpu" and NUMPY_VITERBI
        ):  # the same recursion in NumPy: a few µs a step instead of torch's
            return _viterbi_numpy(emissions, mask, start, trans, end)  # per-op overhead (prediction latency)
        b, t_len, k = emissions.shape
        identity = torch.arange(k, device=emissions.device)[None, :].expand(b, k)  # (B, K)
        score = start[None, :] + emissions[:, 0]  # (B, K): best path ending in each tag
        pointers = []
        for t in range(1, t_len):
            cand = score[:, :, None] + trans[None, :, :] + emissions[:, t, None, :]  # (B, K_prev, K)
            best, arg = cand.max(dim=1)  # (B, K) each
            score = torch.where(mask[:, t, None], best, score)
            pointers.append(torch.where(mask[:, t, None], arg, identity))  # padding points to itself
        final = score + end[None, :]  # (B, K)
        best_score, tag = final.max(dim=1)  # (B,)
        path = [tag]
        for arg in reversed(pointers):
            tag = arg.gather(1, tag[:, None]).squeeze(1)  # (B, 1) -> (B,)
            path.append(tag)
        tags = torch.stack(path[::-1], dim=1)  # (B, T); padded steps repeat the last real tag
        lengths_list = mask.long().sum(1).tolist()
        return [row[:n] for row, n in zip(tags.tolist(), lengths_list, strict=True)], best_score

    def kbest(
        self,
        emissions: Tensor,
        k: int = 2,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
        constrained: bool = True,
    ) -> tuple[list[list[list[int]]], Tensor]:
        """The ``k`` best distinct paths of each sentence (k=2: best vs runner-up, for explanations).

        Returns:
            ``paths[b][r]`` the r-th best path of sentence b and ``scores`` ``(B, k)``,
            best first. Where a sentence has fewer than k (allowed) paths the missing ones
            score ``-inf`` and their paths mean nothing.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        mask = self._mask(emissions, mask, lengths)
        emissions = self._clean(emissions, mask)
        start, trans, end = self._scores(emissions.dtype, constrained)
        b, t_len, n_tags = emissions.shape
        score = torch.full((b, n_tags, k), float("-inf"), dtype=emissions.dtype, device=emissions.device)  # (B, K, N)
        score[:, :, 0] = start[None, :] + emissions[:, 0]  # one path so far per tag
        keep_tag = torch.arange(n_tags, device=emissions.device)[None, :, None].expand(b, n_tags, k)  # (B, K, N)
        keep_rank = torch.arange(k, device=emissions.device)[None, None, :].expand(b, n_tags, k)  # (B, K, N)
        pointers = []
        for t in range(1, t_len):
            # (B, K_prev, 1, N) + (1, K_prev, K, 1) + (B, 1, K, 1) -> (B, K_prev, K, N)
            cand = score[:, :, None, :] + trans[None, :, :, None] + emissions[:, t, None, :, None]
            cand = cand.permute(0, 2, 1, 3).reshape(b, n_tags, n_tags * k)  # (B, K, K_prev * N) >= k candidates
            top, arg = cand.topk(k, dim=2)  # (B, K, N): flat index = prev_tag * N + prev_rank
            step = mask[:, t, None, None]  # (B, 1, 1)
            score = torch.where(step, top, score)
            prev_tag = torch.where(step, torch.div(arg, k, rounding_mode="floor").clamp(max=n_tags - 1), keep_tag)
            prev_rank = torch.where(step, arg % k, keep_rank)
            pointers.append((prev_tag, prev_rank))
        final = (score + end[None, :, None]).reshape(b, n_tags * k)  # (B, K * N)
        best, arg = final.topk(k, dim=1)  # (B, N)
        tag = torch.div(arg, k, rounding_mode="floor").clamp(max=n_tags - 1)  # (B, N)
        rank = arg % k  # (B, N)
        path = [tag]
        for prev_tag, prev_rank in reversed(pointers):
            flat = tag * k + rank  # (B, N): index into the (K * N) states
            tag = prev_tag.reshape(b, n_tags * k).gather(1, flat)  # (B, K * N) -> (B, N)
            rank = prev_rank.reshape(b, n_tags * k).gather(1, flat)
            path.append(tag)
        tags = torch.stack(path[::-1], dim=2)  # (B, N, T)
        lengths_list = mask.long().sum(1).tolist()
        paths = [[row[:n] for row in rows] for rows, n in zip(tags.tolist(), lengths_list, strict=True)]
        return paths, best


__all__ = ["CRF", "TransitionMask", "allowed_transitions", "lengths_to_mask"]
