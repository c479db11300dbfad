"""A text as a loaded model reads it: ids after truncation, surface strings, notes (shared by every explainer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from grutext.errors import DataError


@dataclass
class Prepared:
    """A text as the model reads it: ids after truncation, their surface strings, where they came from."""

    text: str
    ids: list[int]
    tokens: list[str]
    source_positions: list[int]
    n_original: int
    unknown: list[bool]
    notes: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return len(self.ids) < self.n_original

    @property
    def ids_tensor(self) -> torch.Tensor:
        return torch.tensor([self.ids], dtype=torch.long)  # (1, T)

    @property
    def lengths(self) -> torch.Tensor:
        return torch.tensor([len(self.ids)], dtype=torch.long)  # (1,)


def prepare(loaded: Any, text: str, *, truncate_to: int | None = -1, prefix: tuple[int, str] | None = None) -> Prepared:
    """Tokenize `text` as the model's pipeline does, truncating to the model's `data.max_len`.

    Args:
        loaded: a `LoadedModel`.
        text: the input.
        truncate_to: maximum tokens (-1: the config's `data.max_len`; None: no limit).
        prefix: ``(id, token string)`` read before the text (``<eos>`` for line-based language models).

    Returns:
        A `Prepared` with the kept ids, surface strings (the text's own characters, so
        out-of-vocabulary words still show), and a note when the text was truncated.

    Raises:
        DataError: `text` is not a non-empty string, or it tokenizes to nothing.
    """
    from grutext.data.batching import truncate

    if not isinstance(text, str) or not text.strip():
        raise DataError(f"text: expected a non-empty string, got {text!r:.60}")
    tok = loaded.tokenizer
    enc = tok.hf.encode(text, add_special_tokens=False)
    ids = list(enc.ids)
    if not ids:
        raise DataError(f"text {text!r:.60}: tokenizes to nothing, expected at least one token")
    surface = []
    for (s, e), t in zip(enc.offsets, enc.tokens, strict=False):
        piece = text[s:e] if 0 <= s < e <= len(text) else ""
        surface.append(piece if piece.strip() else t)
    n = len(ids)
    notes: list[str] = []
    limit = loaded.config.data.max_len if truncate_to == -1 else truncate_to
    policy = loaded.config.data.truncation
    keep = list(range(n)) if limit is None else truncate(list(range(n)), int(limit), policy)
    if len(keep) < n:
        notes.append(
            f"truncated: the text has {n} tokens, the model reads at most {limit} "
            f"({policy} truncation); {n - len(keep)} tokens were not read"
        )
    kept_ids = [ids[i] for i in keep]
    tokens = [surface[i] for i in keep]
    unknown = [i == tok.unk_id for i in kept_ids]
    if prefix is not None:
        kept_ids = [int(prefix[0])] + kept_ids
        tokens = [prefix[1]] + tokens
        unknown = [False] + unknown
        keep = [-1] + keep
    return Prepared(text, kept_ids, tokens, keep, n, unknown, notes)


__all__ = ["Prepared", "prepare"]
