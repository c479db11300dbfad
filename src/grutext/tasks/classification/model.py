"""TextClassifier: embedding -> recurrent stack -> pooling -> dropout -> head, with its own loss; and
`EnsembleClassifier`, N of them with their probabilities averaged.

A deep ensemble of text classifiers: N networks of one shape, their probabilities averaged.

Networks trained from different random seeds (initialisation of the fresh layers, data order,
dropout) make partly independent errors; averaging their predicted probabilities is more
accurate and better calibrated than any one of them (Lakshminarayanan, Pritzel & Blundell 2017,
"Simple and Scalable Predictive Uncertainty Estimation using Deep Ensembles"). It costs N times
the training, the parameters and the inference work of one member, so it is off by default
(``model.ensemble = 1``); it pays where data are small and every point counts.

`EnsembleClassifier` has `TextClassifier`'s interface: ``forward(ids, lengths, labels=None) ->
(logits, loss)`` and ``probabilities(logits)``, so prediction, evaluation and the saved model
directory treat it as any classifier. Its logits are the link function of the averaged
probability: ``log p`` (multiclass; softmax gives p back), ``logit p`` (binary, multilabel;
sigmoid gives p back), and its loss is the cross-entropy of that averaged probability.
Explanations and traces read one network's internals: ``load_model(path, member=k)`` hands back
member k as a plain classifier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from grutext.config import ModelConfig
from grutext.errors import ConfigError
from grutext.nn.cells import make_encoder
from grutext.nn.pooling import Pooling
from grutext.tasks.classification.config import CLASSIFIER_TASKS

TASKS = CLASSIFIER_TASKS  # the old name


class TokenDropout(nn.Module):
    """Drops whole token embeddings (the same token position across all features), rescaled.

    Gal & Ghahramani (2016) and Merity et al. (2017) drop whole words; this is the batch-local
    form: a `(B, T, 1)` Bernoulli mask.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty(x.shape[0], x.shape[1], 1).bernoulli_(1.0 - self.p)  # (B, T, 1)
        return x * keep / (1.0 - self.p)


class TextClassifier(nn.Module):
    """A recurrent text classifier that computes its own loss.

    Args:
        vocab_size: V, rows of the embedding (id 0 is padding).
        num_classes: C. For `task="binary"` the head has one logit (sigmoid), as Keras `Dense(1)`.
        task: "binary", "multiclass" or "multilabel".
        embed_dim: E.
        hidden_size: H per direction.
        num_layers: stacked recurrent layers.
        bidirectional: D = 2 when true.
        dropout: between recurrent layers and before the head.
        embed_dropout: whole-token dropout on the embeddings.
        pooling: "last", "mean", "max" or "attention".
        cell: "gru" (default, grutext's own GRU), "lstm", "rnn", "mingru", "lngru".
        embedding_weights: optional `(V, E)` array of pretrained vectors.
        freeze_embeddings: keep the pretrained vectors fixed.

    Example:
        >>> m = TextClassifier(vocab_size=100, num_classes=3, task="multiclass", embed_dim=8, hidden_size=4)
        >>> logits, loss = m(torch.tensor([[5, 6, 0]]), torch.tensor([2]), torch.tensor([1]))
        >>> logits.shape
        torch.Size([1, 3])
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        task: str = "multiclass",
        embed_dim: int = 100,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.3,
        embed_dropout: float = 0.1,
        pooling: str = "max",
        cell: str = "gru",
        embedding_weights: np.ndarray | torch.Tensor | None = None,
        freeze_embeddings: bool = False,
    ) -> None:
        super().__init__()
        if task not in CLASSIFIER_TASKS:
            raise ConfigError(f"task must be one of {', '.join(CLASSIFIER_TASKS)}; got {task!r}")
        if task == "binary" and num_classes != 2:
            raise ConfigError(f"task 'binary' needs exactly 2 classes; got {num_classes}")
        if num_classes < 2 and task != "multilabel":
            raise ConfigError(f"a classifier needs at least 2 classes; got {num_classes}")
        self.task = task
        self.cell = cell
        self.num_classes = num_classes
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        if embedding_weights is not None:
            w = torch.as_tensor(np.asarray(embedding_weights), dtype=torch.float32)
            if tuple(w.shape) != (vocab_size, embed_dim):
                raise ConfigError(f"embedding_weights must be ({vocab_size}, {embed_dim}); got {tuple(w.shape)}")
            with torch.no_grad():
                self.embedding.weight.copy_(w)
        self.embedding.weight.requires_grad_(not freeze_embeddings)
        self.embed_dropout = TokenDropout(embed_dropout)
        self.encoder = make_encoder(
            cell,
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        feat = self.encoder.output_size
        self.pooling = Pooling(pooling, feat, num_directions=2 if bidirectional else 1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feat, 1 if task == "binary" else num_classes)

    @classmethod
    def from_config(cls, cfg: ModelConfig, embedding_weights: np.ndarray | None = None) -> TextClassifier:
        """Build from a `ModelConfig` whose `vocab_size`, `num_classes` and `task` are filled in."""
        return cls(
            vocab_size=cfg.vocab_size,
            num_classes=cfg.num_classes,
            task=cfg.task,
            embed_dim=cfg.embed_dim,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout,
            embed_dropout=cfg.embed_dropout,
            pooling=cfg.pooling,
            cell=cfg.cell,
            embedding_weights=embedding_weights,
            freeze_embeddings=cfg.freeze_embeddings,
        )

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters by depth, bottom first: embedding, recurrent layer 0..L-1, pooling + head.

        Used by `fit` for discriminative learning rates and gradual unfreezing.
        """
        layers: list[list[nn.Parameter]] = [[] for _ in range(self.encoder.num_layers)]
        for name, p in self.encoder.named_parameters():
            m = re.search(r"_l(\d+)(?:_reverse)?$", name) or re.search(r"(?:^|\.)(\d+)\.", name)
            layers[int(m.group(1)) if m else -1].append(p)  # unnumbered extras join the top layer
        top = list(self.pooling.parameters()) + list(self.head.parameters())
        return [[cast(nn.Parameter, self.embedding.weight)], *layers, top]  # stubs: Tensor; it is a Parameter

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor, return_gates: bool = False) -> dict[str, Any]:
        """Every intermediate of the forward pass, for traces and explanations.

        Returns a dict with `embedded (B, T, E)`, `output (B, T, D*H)`, `h_n`, `pooled (B, D*H)`,
        `attention (B, T) or None`, `logits`, and `gates` when `return_gates`.
        """
        embedded = self.embed_dropout(self.embedding(ids))  # (B, T, E)
        result = self.encoder(embedded, lengths, return_gates=return_gates)
        output, h_n = result[0], result[1]  # (B, T, D*H), (L*D, B, H)
        pooled, weights = self.pooling(output, lengths, h_n)  # (B, D*H), (B, T) | None
        logits = self.head(self.dropout(pooled))  # (B, 1) or (B, C)
        if self.task == "binary":
            logits = logits.squeeze(-1)  # (B,)
        out = {
            "embedded": embedded,
            "output": output,
            "h_n": h_n,
            "pooled": pooled,
            "attention": weights,
            "logits": logits,
        }
        if return_gates:
            out["gates"] = result[2]
        return out

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Args:
            ids: `(B, T)` token ids, post-padded with 0.
            lengths: `(B,)` real lengths.
            labels: `(B,)` class indices (binary/multiclass) or `(B, C)` multi-hot (multilabel).

        Returns:
            `(logits, loss)`: logits `(B,)` for binary, else `(B, C)`; loss None without labels.
        """
        logits = self.encode(ids, lengths)["logits"]
        loss = None if labels is None else self.loss(logits, labels)
        return logits, loss

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.task == "binary":
            return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        if self.task == "multilabel":
            return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return F.cross_entropy(logits, labels)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """`(B, C)` probabilities from logits (binary expands to two columns)."""
        if self.task == "binary":
            p = torch.sigmoid(logits)  # (B,)
            return torch.stack([1 - p, p], dim=-1)  # (B, 2)
        if self.task == "multilabel":
            return torch.sigmoid(logits)
        return torch.softmax(logits, dim=-1)


_EPS = 1e-7  # keeps log / logit of the averaged probability finite


class EnsembleClassifier(nn.Module):
    """Average the probabilities of several `TextClassifier` members of one task and label set.

    Args:
        members: the classifiers (at least 2), all with the same task and number of classes.

    Example:
        >>> ms = [TextClassifier(50, 3, "multiclass", embed_dim=4, hidden_size=4) for _ in range(2)]
        >>> logits, _ = EnsembleClassifier(ms)(torch.tensor([[5, 6]]), torch.tensor([2]))
        >>> torch.softmax(logits, -1).sum().item()  # doctest: +ELLIPSIS
        1.0...
    """

    def __init__(self, members: list[TextClassifier]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members; got {len(members)}")
        first = members[0]
        for i, m in enumerate(members[1:], 1):
            if (m.task, m.num_classes) != (first.task, first.num_classes):
                raise ValueError(
                    f"ensemble member {i} is a {m.task} classifier of {m.num_classes} classes; "
                    f"member 0 is {first.task} of {first.num_classes}"
                )
        self.members = nn.ModuleList(members)
        self.task = first.task
        self.cell = first.cell
        self.num_classes = first.num_classes

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> EnsembleClassifier:
        """``cfg.ensemble`` members built from one `ModelConfig` (filled in as for `TextClassifier`)."""
        return cls([TextClassifier.from_config(cfg) for _ in range(cfg.ensemble)])

    def __len__(self) -> int:
        return len(self.members)

    def member_probabilities(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`(N, B, C)`: each member's probabilities (binary as two columns)."""
        return torch.stack([m.probabilities(m(ids, lengths)[0]) for m in cast(Iterable[TextClassifier], self.members)])

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Args and returns as `TextClassifier.forward`; the logits are those of the mean probability."""
        p = self.member_probabilities(ids, lengths).mean(0)  # (B, C)
        if self.task == "multiclass":
            logits = torch.log(p.clamp_min(_EPS))  # (B, C)
        else:
            q = (p[:, 1] if self.task == "binary" else p).clamp(_EPS, 1 - _EPS)  # (B,) or (B, C)
            logits = torch.log(q) - torch.log1p(-q)
        loss = None if labels is None else self.loss(logits, labels)
        return logits, loss

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.task == "multiclass":
            return F.nll_loss(torch.log_softmax(logits, dim=-1), labels)
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """`(B, C)` probabilities from the ensemble's logits (the averaged member probabilities)."""
        return cast(TextClassifier, self.members[0]).probabilities(logits)


def build_classifier(cfg: ModelConfig) -> nn.Module:
    """The classifier a filled-in `ModelConfig` describes: one network, or an ensemble when ``cfg.ensemble > 1``."""
    return EnsembleClassifier.from_config(cfg) if cfg.ensemble > 1 else TextClassifier.from_config(cfg)


__all__ = ["EnsembleClassifier", "TextClassifier", "TokenDropout", "build_classifier"]
