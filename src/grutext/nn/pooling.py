"""Pooling a padded sequence of recurrent outputs into one vector, all mask-aware.

Every pooler takes `output (B, T, D*H)` with zeros past each length, `lengths (B,)` and the
encoder's final states, and returns `(pooled (B, D*H), weights (B, T) or None)`.
"""

from __future__ import annotations

import torch
from torch import nn

from grutext.errors import ConfigError

POOLINGS = ("last", "mean", "max", "attention")


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """`(B, T)` bool mask, True at real tokens."""
    steps = torch.arange(max_len, device=lengths.device)  # (T,)
    return steps.unsqueeze(0) < lengths.to(steps.device).unsqueeze(1)  # (B, T)


def last_states(h_n: torch.Tensor | tuple[torch.Tensor, ...], num_directions: int) -> torch.Tensor:
    """Top layer's final state of each direction, concatenated: `(B, D*H)`.

    `h_n` is `(L*D, B, H)` (an LSTM's `(h, c)` tuple is accepted; `h` is used).
    """
    if isinstance(h_n, tuple):
        h_n = h_n[0]
    top = h_n[-num_directions:]  # (D, B, H)
    return top.transpose(0, 1).reshape(top.shape[1], -1)  # (B, D*H)


class Pooling(nn.Module):
    """Mask-aware pooling over time.

    Args:
        kind: "last" (each direction's true final state), "mean", "max" or "attention"
            (a learned query scoring `tanh(W h_t)`, softmax over real tokens only).
        size: feature size `D*H` of the encoder output.
        num_directions: 1 or 2, for "last".

    Example:
        >>> pool = Pooling("mean", 8)
        >>> pooled, _ = pool(torch.ones(2, 5, 8), torch.tensor([5, 2]), None)
        >>> pooled.shape
        torch.Size([2, 8])
    """

    def __init__(self, kind: str, size: int, num_directions: int = 1) -> None:
        super().__init__()
        if kind not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}; got {kind!r}")
        self.kind = kind
        self.num_directions = num_directions
        if kind == "attention":
            self.proj = nn.Linear(size, size)
            self.query = nn.Linear(size, 1, bias=False)

    def forward(
        self, output: torch.Tensor, lengths: torch.Tensor, h_n: torch.Tensor | tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, _ = output.shape
        if self.kind == "last":
            return last_states(h_n, self.num_directions), None
        mask = length_mask(lengths, T)  # (B, T)
        if self.kind == "mean":
            total = (output * mask.unsqueeze(-1)).sum(1)  # (B, D*H)
            return total / lengths.to(output.dtype).clamp(min=1).unsqueeze(1), None
        if self.kind == "max":
            filled = output.masked_fill(~mask.unsqueeze(-1), float("-inf"))  # (B, T, D*H)
            return filled.max(dim=1).values, None
        scores = self.query(torch.tanh(self.proj(output))).squeeze(-1)  # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)  # (B, T), zero at padding
        pooled = torch.bmm(weights.unsqueeze(1), output).squeeze(1)  # (B, 1, T) @ (B, T, D*H) -> (B, D*H)
        return pooled, weights
