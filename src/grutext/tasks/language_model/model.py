"""LanguageModel: embedding -> recurrent stack -> (projection) -> decoder tied to the embedding.

Regularisation follows AWD-LSTM (Merity et al. 2017, "Regularizing and Optimizing LSTM Language
Models"), applied to the GRU:

- embedding dropout: whole rows of the embedding matrix (whole words) dropped per forward call;
- locked (variational) dropout: one mask per sequence, the same at every time step, on the
  embeddings (``input_dropout``), between layers (``layer_dropout``) and on the last output
  (``dropout``);
- weight-drop: DropConnect on each layer's recurrent matrix W_hh (our GRU's ``weight_drop``).

The recurrent state is a (L, B, H) tensor (a tuple ``(h, c)`` of them for ``cell="lstm"``); pass it
back in to continue a stream, detached between training windows.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grutext.config import Config, ModelConfig
from grutext.errors import ConfigError, DataError
from grutext.nn.cells import make_encoder
from grutext.tasks.language_model.config import TIE_WEIGHTS

State = Any  # Tensor (L, B, H), or (h, c) for LSTM


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Variational dropout: one mask per sequence and feature, shared over time.

    Args:
        x: (B, T, F).
        p: drop probability.
        training: apply only when True.

    Returns:
        (B, T, F), scaled by 1 / (1 - p) where kept.
    """
    if not training or p <= 0.0:
        return x
    keep = 1.0 - p
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(keep) / keep  # (B, 1, F): same for every t
    return x * mask


def embedding_dropout(embed: nn.Embedding, ids: Tensor, p: float, training: bool) -> Tensor:
    """Drop whole words: zero rows of the embedding matrix (one mask per call), rescale the rest.

    Args:
        embed: the embedding layer.
        ids: (B, T) token ids.
        p: probability of dropping a vocabulary entry.
        training: apply only when True.

    Returns:
        (B, T, E) embeddings.
    """
    if not training or p <= 0.0:
        return embed(ids)
    keep = 1.0 - p
    mask = embed.weight.new_empty(embed.weight.shape[0], 1).bernoulli_(keep) / keep  # (V, 1): one draw per word
    return F.embedding(ids, embed.weight * mask, embed.padding_idx)  # (B, T, E)


class StackedEncoder(nn.Module):
    """Single-layer encoders stacked by hand so locked dropout can sit between them.

    Attributes mirror `make_encoder`'s: ``hidden_size``, ``num_layers``, ``num_directions`` (1),
    ``output_size`` (= the last layer's H). ``layers[k]`` is a one-layer encoder.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        layer_dropout: float = 0.0,
        weight_drop: float = 0.0,
    ) -> None:
        super().__init__()
        options: dict[str, Any] = {"weight_drop": weight_drop} if weight_drop else {}
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_directions = 1
        self.output_size = hidden_size
        self.layer_dropout = float(layer_dropout)
        self.layers = nn.ModuleList(
            make_encoder(cell, input_size if k == 0 else hidden_size, hidden_size, 1, **options)
            for k in range(num_layers)
        )

    def forward(self, x: Tensor, state: State = None) -> tuple[Tensor, State]:
        """x (B, T, E), state (L, B, H) | (h, c) | None -> output (B, T, H), new state."""
        finals: list[Any] = []
        for k, layer in enumerate(self.layers):
            h0 = None if state is None else _layer_state(state, k)
            x, h_n = layer(x, None, h0)  # (B, T, H), (1, B, H)
            finals.append(h_n)
            if k < self.num_layers - 1:
                x = locked_dropout(x, self.layer_dropout, self.training)
        if isinstance(finals[0], tuple):  # LSTM: ((1, B, H), (1, B, H)) per layer -> ((L, B, H), (L, B, H))
            return x, (torch.cat([f[0] for f in finals]), torch.cat([f[1] for f in finals]))
        return x, torch.cat(finals, dim=0)  # (L, B, H)


def _layer_state(state: State, k: int) -> State:
    if isinstance(state, (tuple, list)):
        return (state[0][k : k + 1], state[1][k : k + 1])  # each (1, B, H)
    return state[k : k + 1]  # (1, B, H)


def detach_state(state: State) -> State:
    """The state cut from its autograd history (truncated BPTT)."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return tuple(s.detach() for s in state)
    return state.detach()


def select_state(state: State, index: Tensor) -> State:
    """Rows `index` of the batch dimension of a state (beam search reordering)."""
    if isinstance(state, (tuple, list)):
        return tuple(s.index_select(1, index) for s in state)
    return state.index_select(1, index)  # (L, B', H)


class LanguageModel(nn.Module):
    """Recurrent language model with a tied decoder and AWD-style regularisation.

    Args:
        vocab_size: V.
        embed_dim: E.
        hidden_size: H of every recurrent layer.
        num_layers: L.
        cell: ``"gru"`` (default), ``"lstm"``, ``"rnn"``, ``"mingru"`` or ``"lngru"``.
        dropout: locked dropout on the last layer's output.
        input_dropout: locked dropout on the embeddings.
        layer_dropout: locked dropout between recurrent layers.
        embed_dropout: probability of dropping a whole word from the embedding matrix.
        weight_drop: DropConnect on each layer's W_hh (gru only).
        tie_weights: share the decoder's weight with the embedding (a projection H -> E is
            added when H != E).
        pad_id: the padding id (its embedding row stays zero).

    Example:
        >>> lm = LanguageModel(100, embed_dim=16, hidden_size=32)
        >>> logits, loss, state = lm(torch.randint(0, 100, (2, 5)), torch.randint(0, 100, (2, 5)))
        >>> logits.shape, state.shape
        (torch.Size([2, 5, 100]), torch.Size([1, 2, 32]))
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 400,
        hidden_size: int = 400,
        num_layers: int = 2,
        *,
        cell: str = "gru",
        dropout: float = 0.4,
        input_dropout: float = 0.3,
        layer_dropout: float = 0.25,
        embed_dropout: float = 0.1,
        weight_drop: float = 0.0,
        tie_weights: bool = TIE_WEIGHTS,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(vocab_size, int) or vocab_size < 5:
            raise ConfigError(f"vocab_size: expected an integer >= 5 (specials included), got {vocab_size!r}")
        for name, p in (
            ("dropout", dropout),
            ("input_dropout", input_dropout),
            ("layer_dropout", layer_dropout),
            ("embed_dropout", embed_dropout),
            ("weight_drop", weight_drop),
        ):
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
                raise ConfigError(f"{name}: expected a float in [0, 1), got {p!r}")
        if weight_drop and cell != "gru":
            raise ConfigError(f"weight_drop: only supported with cell='gru', got cell={cell!r}")
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.cell = cell
        self.dropout = float(dropout)
        self.input_dropout = float(input_dropout)
        self.embed_dropout = float(embed_dropout)
        self.tied = bool(tie_weights)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.encoder = StackedEncoder(cell, embed_dim, hidden_size, num_layers, layer_dropout, weight_drop)
        out = hidden_size
        self.proj: nn.Module | None = None
        if self.tied and hidden_size != embed_dim:
            self.proj = nn.Linear(hidden_size, embed_dim)  # H -> E so the tied decoder fits
            out = embed_dim
        self.decoder = nn.Linear(out, vocab_size)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embedding.weight[pad_id].zero_()
        nn.init.zeros_(self.decoder.bias)
        if self.tied:
            self.decoder.weight = self.embedding.weight  # one tensor: decoder.weight is embedding.weight
            # state_dicts hold the shared matrix once (safetensors refuses shared storage)
            self._register_state_dict_hook(_drop_tied)
            self._register_load_state_dict_pre_hook(_fill_tied)

    @classmethod
    def from_config(
        cls,
        m: ModelConfig,
        *,
        input_dropout: float | None = None,
        layer_dropout: float | None = None,
        weight_drop: float = 0.0,
        tie_weights: bool = TIE_WEIGHTS,
    ) -> LanguageModel:
        """Build from a `ModelConfig` (vocab_size filled in); LM-only settings as arguments.

        ``m.dropout`` is the output dropout and, unless given, also the input and between-layer
        dropout; ``m.embed_dropout`` drops whole words.
        """
        return cls(
            m.vocab_size,
            m.embed_dim,
            m.hidden_size,
            m.num_layers,
            cell=m.cell,
            dropout=m.dropout,
            input_dropout=m.dropout if input_dropout is None else input_dropout,
            layer_dropout=m.dropout if layer_dropout is None else layer_dropout,
            embed_dropout=m.embed_dropout,
            weight_drop=weight_drop,
            tie_weights=tie_weights,
        )

    def init_state(self, batch_size: int) -> State:
        """Zero state for `batch_size` streams: (L, B, H), or (h, c) for LSTM."""
        w = self.embedding.weight
        h = w.new_zeros(self.encoder.num_layers, batch_size, self.encoder.hidden_size)  # (L, B, H)
        return (h, h.clone()) if self.cell == "lstm" else h

    def forward(
        self, ids: Tensor, targets: Tensor | None = None, state: State = None
    ) -> tuple[Tensor, Tensor | None, State]:
        """Next-token logits for every position, the mean cross-entropy, and the new state.

        Args:
            ids: (B, T) token ids.
            targets: (B, T) next-token ids, or None (no loss). Positions equal to -100 are ignored.
            state: the state after the previous window, or None for zeros.

        Returns:
            logits (B, T, V), loss (scalar, nats per token) or None, state (L, B, H).
        """
        if ids.dim() != 2:
            raise DataError(f"ids: expected a (B, T) tensor of token ids, got shape {tuple(ids.shape)}")
        x = embedding_dropout(self.embedding, ids, self.embed_dropout, self.training)  # (B, T, E)
        x = locked_dropout(x, self.input_dropout, self.training)
        out, state = self.encoder(x, state)  # (B, T, H), (L, B, H)
        out = locked_dropout(out, self.dropout, self.training)
        if self.proj is not None:
            out = self.proj(out)  # (B, T, H) -> (B, T, E)
        logits = self.decoder(out)  # (B, T, V)
        loss = None
        if targets is not None:
            if targets.shape != ids.shape:
                raise DataError(f"targets: expected shape {tuple(ids.shape)} like ids, got {tuple(targets.shape)}")
            loss = F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1))  # (B*T, V) vs (B*T,)
        return logits, loss, state


def _drop_tied(module: nn.Module, state: dict[str, Tensor], prefix: str, local_metadata: Any) -> None:
    state.pop(prefix + "decoder.weight", None)


def _fill_tied(state: dict[str, Tensor], prefix: str, *args: Any) -> None:
    if prefix + "embedding.weight" in state:
        state[prefix + "decoder.weight"] = state[prefix + "embedding.weight"]


def unigram_perplexity(train_ids: Tensor, eval_ids: Tensor, vocab_size: int) -> float:
    """Perplexity of an add-one unigram model fitted on `train_ids`, scored on `eval_ids` (a baseline)."""
    counts = torch.bincount(train_ids.reshape(-1), minlength=vocab_size).double() + 1.0  # (V,)
    logp = torch.log(counts / counts.sum())
    return math.exp(-float(logp[eval_ids.reshape(-1)].mean()))


LM_ARCH_KEYS = ("input_dropout", "layer_dropout", "weight_drop", "tie_weights")


def build_language_model(cfg: Config, meta: dict[str, Any]) -> nn.Module:
    """Rebuild a LanguageModel from a model directory's config (``meta["lm"]`` holds LM-only fields).

    The artifact reaches this through ``TASKS["language_model"].build``.
    """
    lm = meta.get("lm") or {}
    return LanguageModel.from_config(cfg.model, **{k: lm[k] for k in LM_ARCH_KEYS if k in lm})


__all__ = [
    "LanguageModel",
    "StackedEncoder",
    "locked_dropout",
    "embedding_dropout",
    "detach_state",
    "select_state",
    "unigram_perplexity",
    "build_language_model",
]
