"""The tagger: word embedding (+ case, characters, feature) -> bidirectional recurrent stack (a BiGRU by
default; any cell of `grutext.nn.make_encoder`) -> emissions -> CRF or softmax.

::

    words (B, T) ──▶ embedding (B, T, E) ─┐
    cases (B, T) ──▶ embedding (B, T, Cs) ─┤
    chars (B, T, W) ─▶ char BiGRU / CNN (B, T, 2Hc)
    features (B, T) ─▶ embedding (B, T, F) ┘─▶ concat ─▶ dropout ─▶ BiGRU stack (B, T, 2H) ─▶ dropout
                                                    ─▶ linear (B, T, K) emissions ─▶ CRF (or softmax)

The model computes its own loss (`forward`) and decodes (`decode`); every stage is exact under
padding: the GRUs read the true lengths, the CRF masks the padded steps.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grutext.nn.cells import make_encoder
from grutext.nn.crf import CRF, allowed_transitions, lengths_to_mask
from grutext.nn.gru import GRU
from grutext.tasks.tagging.config import CASES, NO_SCHEME, TagConfig


class CharGRU(nn.Module):
    """Each word's characters through a small BiGRU; the word is the two final states (N, 2Hc)."""

    def __init__(self, num_chars: int, char_dim: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.rnn = GRU(char_dim, hidden, batch_first=True, bidirectional=True)
        self.output_size = 2 * hidden

    def forward(self, chars: Tensor) -> Tensor:
        lengths = (chars != 0).sum(1).clamp(min=1).cpu()  # (N,) every word has >= 1 character
        _, h_n = self.rnn(self.embed(chars), lengths=lengths)  # h_n (2, N, Hc): forward end, reverse start
        return torch.cat([h_n[0], h_n[1]], dim=-1)  # (N, 2Hc)


class CharCNN(nn.Module):
    """Each word's characters through a width-3 convolution, max over the real positions (N, 2Hc)."""

    def __init__(self, num_chars: int, char_dim: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, 2 * hidden, kernel_size=3, padding=1)
        self.output_size = 2 * hidden

    def forward(self, chars: Tensor) -> Tensor:
        x = self.embed(chars).transpose(1, 2)  # (N, W, C) -> (N, C, W)
        y = self.conv(x)  # (N, 2Hc, W)
        pad = (chars == 0).unsqueeze(1)  # (N, 1, W)
        return y.masked_fill(pad, float("-inf")).amax(-1)  # (N, 2Hc); every word has >= 1 character


class Tagger(nn.Module):
    """A bidirectional recurrent tagger (BiGRU by default) with a CRF or softmax output layer.

    Args:
        vocab_size: V, word ids (the tokenizer's).
        tags: the K tag names in index order (training scheme).
        scheme: the tags' scheme (``"BIOES"``, ``"IOB2"``, ...; ``"none"``: no transition constraints).
        num_chars: character ids (0 = padding).
        num_features: feature ids (0 = none: no feature embedding).
        embed_dim: E. hidden_size: H per direction. num_layers: stacked bidirectional layers.
        cell: the recurrent cell of the word-level stack (``"gru"``, ``"lstm"``, ``"rnn"``, ``"mingru"``,
            ``"lngru"``; `grutext.nn.make_encoder`). The character encoder is a BiGRU whatever this says.
        dropout: on the concatenated inputs and the encoder's output (and between layers).
        char_encoder: ``"gru"``, ``"cnn"`` or ``"none"``. char_dim, char_hidden: its sizes.
        case_dim, feature_dim: the case and feature embeddings' sizes.
        decoder: ``"crf"`` or ``"softmax"``.
    """

    def __init__(
        self,
        vocab_size: int,
        tags: list[str],
        scheme: str,
        num_chars: int,
        num_features: int = 0,
        *,
        embed_dim: int = 100,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.3,
        char_encoder: str = "gru",
        char_dim: int = 25,
        char_hidden: int = 25,
        case_dim: int = 8,
        feature_dim: int = 20,
        decoder: str = "crf",
        cell: str = "gru",
    ) -> None:
        super().__init__()
        self.tags = list(tags)
        self.scheme = scheme
        self.decoding = decoder  # "crf" | "softmax"
        self.cell = cell
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.case = nn.Embedding(len(CASES), case_dim, padding_idx=0)
        width = embed_dim + case_dim
        self.chars: nn.Module | None = None
        if char_encoder == "gru":
            self.chars = CharGRU(num_chars, char_dim, char_hidden)
        elif char_encoder == "cnn":
            self.chars = CharCNN(num_chars, char_dim, char_hidden)
        if self.chars is not None:
            width += self.chars.output_size
        self.feature = nn.Embedding(num_features, feature_dim, padding_idx=0) if num_features else None
        if self.feature is not None:
            width += feature_dim
        self.drop = nn.Dropout(dropout)
        self.encoder = make_encoder(cell, width, hidden_size, num_layers, bidirectional=True, dropout=dropout)
        self.head = nn.Linear(2 * hidden_size, len(tags))
        self.crf = CRF(len(tags)) if decoder == "crf" else None
        if self.crf is not None and scheme != NO_SCHEME:
            self.crf.set_constraints(allowed_transitions(self.tags, scheme))

    @classmethod
    def from_config(cls, cfg: Any, tag_cfg: TagConfig, vocab: Any) -> Tagger:
        """The tagger a filled-in model config (`grutext.config.ModelConfig`), `TagConfig` and `TagVocab` describe."""
        return cls(
            cfg.vocab_size,
            vocab.tags,
            vocab.train_scheme,
            len(vocab.chars),
            len(vocab.features),
            embed_dim=cfg.embed_dim,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout,
            char_encoder=tag_cfg.char_encoder,
            char_dim=tag_cfg.char_dim,
            char_hidden=tag_cfg.char_hidden,
            case_dim=tag_cfg.case_dim,
            feature_dim=tag_cfg.feature_dim,
            decoder=tag_cfg.decoder,
            cell=cfg.cell,
        )

    def _char_features(self, chars: Tensor, mask: Tensor) -> Tensor:
        """The character encoder over the real words only, scattered back to (B, T, 2Hc)."""
        assert self.chars is not None
        b, t, _ = chars.shape
        words = self.chars(chars[mask])  # (N, W) real words -> (N, 2Hc)
        out = words.new_zeros(b, t, words.shape[-1])  # (B, T, 2Hc), zeros at padding
        out[mask] = words
        return out

    def emissions(self, batch: dict[str, Any]) -> Tensor:
        """Tag scores (B, T, K) of a batch (`grutext.tasks.tagging.data.collate`)."""
        return self._emissions(batch, return_gates=False)[0]

    def emissions_and_gates(self, batch: dict[str, Any]) -> tuple[Tensor, list[dict[str, Tensor]]]:
        """Tag scores (B, T, K) and the recurrent stack's gates (one dict per layer, ``(B, T, 2, H)`` each),
        captured in the same forward pass (`grutext.nn.gru.GRU` with ``return_gates``)."""
        em, gates = self._emissions(batch, return_gates=True)
        assert gates is not None
        return em, gates

    def _emissions(self, batch: dict[str, Any], return_gates: bool) -> tuple[Tensor, list[dict[str, Tensor]] | None]:
        words, lengths = batch["words"], batch["lengths"]
        mask = lengths_to_mask(lengths, words.shape[1]).to(words.device)  # (B, T) real tokens
        parts = [self.embedding(words), self.case(batch["cases"])]  # (B, T, E), (B, T, Cs)
        if self.chars is not None:
            parts.append(self._char_features(batch["chars"], mask))
        if self.feature is not None:
            parts.append(self.feature(batch["features"]))
        x = self.drop(torch.cat(parts, dim=-1))  # (B, T, E + Cs + 2Hc + F)
        if return_gates:
            h, _, gates = self.encoder(x, lengths=lengths.cpu(), return_gates=True)  # (B, T, 2H), per layer
            return self.head(self.drop(h)), gates  # (B, T, K)
        h, _ = self.encoder(x, lengths=lengths.cpu())  # (B, T, 2H), zeros after each length
        return self.head(self.drop(h)), None  # (B, T, K)

    def loss(self, emissions: Tensor, batch: dict[str, Any]) -> Tensor:
        """CRF: mean negative log-likelihood per sentence; softmax: mean cross-entropy per token."""
        tags, lengths = batch["tags"], batch["lengths"]
        if self.crf is not None:
            return self.crf(emissions, tags, lengths=lengths.to(emissions.device))
        mask = lengths_to_mask(lengths, emissions.shape[1]).to(emissions.device)  # (B, T)
        return F.cross_entropy(emissions[mask], tags[mask])

    def forward(self, batch: dict[str, Any]) -> Tensor:
        """The loss of a batch with ``tags``."""
        return self.loss(self.emissions(batch), batch)

    @torch.no_grad()
    def decode(self, emissions: Tensor, lengths: Tensor) -> list[list[int]]:
        """The best tag indices of each sentence: constrained Viterbi (CRF) or the per-token argmax."""
        if self.crf is not None:
            paths, _ = self.crf.decode(emissions, lengths=lengths.to(emissions.device))
            return paths
        best = emissions.argmax(-1).cpu()  # (B, T)
        return [best[i, : int(n)].tolist() for i, n in enumerate(lengths)]

    def predict(self, batch: dict[str, Any]) -> list[list[int]]:
        """Tag indices per sentence of a batch."""
        return self.decode(self.emissions(batch), batch["lengths"])


def build_tagger(cfg: Any, meta: dict[str, Any]) -> Tagger:
    """The untrained tagger a saved config.json describes (`cfg`: its `Config`, `meta`: the whole file)."""
    from grutext.tasks.tagging.data import TagVocab

    return Tagger.from_config(cfg.model, TagConfig.from_meta(meta), TagVocab.from_meta(meta))


__all__ = ["CharCNN", "CharGRU", "Tagger", "build_tagger"]
