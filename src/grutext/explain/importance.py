"""Token importance for one class of a `TextClassifier`: attention, integrated gradients, occlusion.

All three score the class *probability* p_c (softmax for multiclass, sigmoid for binary and
multilabel), so their numbers are comparable:

- `attention_importance`: the attention-pooling weights (models with ``pooling="attention"``);
  they say where the pooler looked, not which class the token supports.
- `integrated_gradients` (Sundararajan et al. 2017): ``(x − x') · ∫ ∂p_c/∂x(x' + α(x − x')) dα``
  over the embeddings with the zero baseline x' = 0, summed over E; by completeness the scores
  add up to ``p_c(x) − p_c(0)`` up to the integration error, which is reported.
- `occlusion`: ``p_c(text) − p_c(text without token i)``; positive = the token supports class c.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from grutext.errors import ConfigError

if TYPE_CHECKING:
    from grutext.tasks.classification.model import TextClassifier


def class_probability(model: TextClassifier, logits: torch.Tensor, target: int) -> torch.Tensor:
    """``(B,)`` probability of class `target` from the model's logits."""
    return model.probabilities(logits)[:, target]  # (B, C) -> (B,)


def attention_importance(model: TextClassifier, ids: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
    """Attention-pooling weights of one text.

    Args:
        model: a `TextClassifier` with ``pooling="attention"``.
        ids: ``(1, T)`` ids.
        lengths: ``(1,)``.

    Returns:
        ``(T,)`` weights, summing to 1.

    Raises:
        ConfigError: the model does not pool with attention.
    """
    kind = getattr(getattr(model, "pooling", None), "kind", None)
    if kind != "attention":
        raise ConfigError(
            f"method 'attention': expected a model with pooling 'attention', got pooling {kind!r}; "
            f"use method 'ig' or 'occlusion'"
        )
    with torch.no_grad():
        weights = model.encode(ids, lengths)["attention"]  # (1, T)
    return weights[0, : int(lengths[0])].double().cpu().numpy()


def integrated_gradients(
    model: TextClassifier, ids: torch.Tensor, lengths: torch.Tensor, target: int, steps: int = 48, batch_size: int = 64
) -> tuple[np.ndarray, dict[str, Any]]:
    """Integrated gradients of p_target with respect to the token embeddings, zero baseline.

    The path integral uses the midpoint rule on `steps` points α_k = (k + ½)/steps; the model's
    own `encode` runs on the scaled embeddings (a forward hook on the embedding layer swaps them in).

    Args:
        model: a `TextClassifier` in eval mode.
        ids: ``(1, T)`` ids of one text.
        lengths: ``(1,)``.
        target: class index.
        steps: integration points (32-64 is usually enough for a gap below 1e-2).
        batch_size: points per forward/backward pass.

    Returns:
        ``(scores (T,), details)``; details has ``steps``, ``attribution_sum``, ``delta``
        (= p(x) − p(baseline)), ``completeness_gap`` (= sum − delta), ``p_input``, ``p_baseline``.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps: expected an integer >= 1, got {steps!r}")
    T = int(lengths[0])
    ids = ids[:, :T]  # (1, T)
    with torch.no_grad():
        x = model.embedding(ids).detach()  # (1, T, E)
    baseline = torch.zeros_like(x)  # (1, T, E): the zero embedding (the <pad> row)
    grads = torch.zeros_like(x[0])  # (T, E): running sum of ∂p/∂x along the path
    alphas = (torch.arange(steps, dtype=x.dtype) + 0.5) / steps  # (S,)
    replacement: dict[str, torch.Tensor] = {}
    handle = model.embedding.register_forward_hook(lambda mod, inp, out: replacement["x"])
    try:
        for start in range(0, steps, batch_size):
            a = alphas[start : start + batch_size].view(-1, 1, 1)  # (S', 1, 1)
            path = (baseline + a * (x - baseline)).requires_grad_(True)  # (S', T, E)
            replacement["x"] = path
            S = path.shape[0]
            logits = model.encode(ids.expand(S, T), lengths.expand(S))["logits"]
            p = class_probability(model, logits, target)  # (S',)
            (g,) = torch.autograd.grad(p.sum(), path)  # (S', T, E)
            grads += g.sum(0)
        with torch.no_grad():
            ends = torch.cat([x, baseline], 0)  # (2, T, E)
            replacement["x"] = ends
            p_ends = class_probability(model, model.encode(ids.expand(2, T), lengths.expand(2))["logits"], target)
    finally:
        handle.remove()
    attr = ((x[0] - baseline[0]) * grads / steps).sum(-1)  # (T, E) -> (T,)
    total = float(attr.sum())
    delta = float(p_ends[0] - p_ends[1])
    details = {
        "steps": steps,
        "attribution_sum": total,
        "delta": delta,
        "completeness_gap": total - delta,
        "p_input": float(p_ends[0]),
        "p_baseline": float(p_ends[1]),
    }
    return attr.detach().double().cpu().numpy(), details


def occlusion(
    model: TextClassifier, ids: Sequence[int], target: int, unk_id: int = 1, batch_size: int = 128
) -> np.ndarray:
    """Change in p_target when each token is dropped from the text.

    Args:
        model: a `TextClassifier` in eval mode.
        ids: the T ids of one text.
        target: class index.
        unk_id: for a one-token text, the token is replaced by ``<unk>`` instead of dropped.
        batch_size: variants per forward pass.

    Returns:
        ``(T,)``: ``p(text) − p(text without token i)``.
    """
    from grutext.data.batching import pad_batch

    ids = [int(i) for i in ids]
    T = len(ids)
    variants = [ids[:i] + ids[i + 1 :] for i in range(T)] if T > 1 else [[unk_id]]
    with torch.no_grad():
        full, lens = pad_batch([ids])
        p_full = float(class_probability(model, model.encode(full, lens)["logits"], target)[0])
        drops = []
        for start in range(0, T, batch_size):
            batch, lens = pad_batch(variants[start : start + batch_size])  # (B, T-1), (B,)
            drops.append(class_probability(model, model.encode(batch, lens)["logits"], target))
    p_drop = torch.cat(drops).double().cpu().numpy()  # (T,)
    return p_full - p_drop


__all__ = ["class_probability", "attention_importance", "integrated_gradients", "occlusion"]
