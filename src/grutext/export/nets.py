"""Torch modules -> the plain arrays `grutext.export.graph` writes graphs from.

Only grutext's own GRU (``cell="gru"``) is exported; the other cells are refused with a clear
error rather than approximated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from grutext.errors import ConfigError
from grutext.export.graph import ClassifierNet, GRULayer, LMNet


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().copy()


def gru_layers(encoder: Any, what: str) -> list[GRULayer]:
    """Every layer of a grutext GRU as arrays (eval mode: no weight-drop)."""
    from grutext.nn.gru import GRU

    if not isinstance(encoder, GRU):
        raise ConfigError(
            f"{what}: export supports cell 'gru' (grutext's GRU) only, got {type(encoder).__name__}; "
            "retrain with model.cell = 'gru' to export"
        )
    was = encoder.training
    encoder.eval()
    layers = []
    H = encoder.hidden_size
    for layer in range(encoder.num_layers):
        dirs = []
        for d in range(encoder.num_directions):
            w_ih, w_hh, b_ih, b_hh = encoder.layer_weights(layer, d)
            zero = np.zeros(3 * H, np.float32)
            dirs.append(
                (_np(w_ih), _np(w_hh), zero if b_ih is None else _np(b_ih), zero if b_hh is None else _np(b_hh))
            )
        layers.append(GRULayer(H, dirs))
    encoder.train(was)
    return layers


def classifier_net(model: torch.nn.Module, what: str = "classifier") -> ClassifierNet:
    """One `TextClassifier` as arrays."""
    m: Any = model
    pool = m.pooling
    net = ClassifierNet(
        embedding=_np(m.embedding.weight),
        layers=gru_layers(m.encoder, what),
        pooling=pool.kind,
        head_w=_np(m.head.weight),
        head_b=_np(m.head.bias),
        task=m.task,
    )
    if pool.kind == "attention":
        net.attn_proj_w, net.attn_proj_b = _np(pool.proj.weight), _np(pool.proj.bias)
        net.attn_query = _np(pool.query.weight)
    return net


def classifier_nets(model: torch.nn.Module) -> list[ClassifierNet]:
    """A classifier's networks: one, or an ensemble's members (their probabilities are averaged)."""
    from grutext.tasks.classification.model import EnsembleClassifier

    if isinstance(model, EnsembleClassifier):
        return [classifier_net(m, f"ensemble member {k}") for k, m in enumerate(model.members)]
    return [classifier_net(model)]


def lm_net(model: torch.nn.Module) -> LMNet:
    """A `LanguageModel` as arrays; a tied decoder shares the embedding's array (stored once)."""
    m: Any = model
    layers = []
    for k, layer in enumerate(m.encoder.layers):
        layers += gru_layers(layer, f"language model layer {k}")
    emb = _np(m.embedding.weight)
    tied = m.decoder.weight is m.embedding.weight
    return LMNet(
        embedding=emb,
        layers=layers,
        proj_w=None if m.proj is None else _np(m.proj.weight),
        proj_b=None if m.proj is None else _np(m.proj.bias),
        dec_w=emb if tied else _np(m.decoder.weight),
        dec_b=_np(m.decoder.bias),
    )


__all__ = ["classifier_net", "classifier_nets", "gru_layers", "lm_net"]
