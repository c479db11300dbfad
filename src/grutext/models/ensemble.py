"""A deep ensemble of text classifiers: N networks of one shape, their probabilities averaged.

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

import torch
import torch.nn.functional as F
from torch import nn

from grutext.config import ModelConfig
from grutext.models.classifier import TextClassifier

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
        return torch.stack([m.probabilities(m(ids, lengths)[0]) for m in self.members])

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
        return self.members[0].probabilities(logits)


def build_classifier(cfg: ModelConfig) -> nn.Module:
    """The classifier a filled-in `ModelConfig` describes: one network, or an ensemble when ``cfg.ensemble > 1``."""
    return EnsembleClassifier.from_config(cfg) if cfg.ensemble > 1 else TextClassifier.from_config(cfg)


__all__ = ["EnsembleClassifier", "build_classifier"]
