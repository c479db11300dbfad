"""CUDA: our GRU run by cuDNN through torch's own GRU, with the same weights (same function, lengths via packing).

Chosen by :class:`grutext.nn.gru.GRU` on CUDA when :func:`cudnn_applicable` says cuDNN computes
our function (no recurrent dropout while training, no bf16 GEMMs); counted in
``grutext.nn.fused.COUNTERS["cudnn"]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from grutext.nn.fused import COUNTERS


def cudnn_applicable(gru: Any) -> bool:
    """Whether cuDNN computes the same function: no recurrent dropout in training, no bf16 GEMMs."""
    return gru.compute_dtype is None and not (gru.recurrent_dropout and gru.training)


def cudnn_gru(gru: Any, x: Tensor, lengths: Tensor | None, h0: Tensor) -> tuple[Tensor, Tensor]:
    """Run the stack with torch.nn.GRU's kernels (cuDNN on CUDA), sharing `gru`'s parameters.

    x (T, B, E), lengths (B,) | None, h0 (L*D, B, H) -> (output (T, B, D*H), h_n (L*D, B, H)).
    """
    from torch.func import functional_call
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    COUNTERS["cudnn"] += 1
    shell = _shell(gru)
    params = {}
    for layer in range(gru.num_layers):
        for d in range(gru.num_directions):
            w = gru.layer_weights(layer, d)
            sfx = f"l{layer}" + ("_reverse" if d else "")
            params[f"weight_ih_{sfx}"], params[f"weight_hh_{sfx}"] = w[0], w[1]
            if gru.bias:
                params[f"bias_ih_{sfx}"], params[f"bias_hh_{sfx}"] = w[2], w[3]
    shell.train(gru.training)
    T = x.shape[0]
    # Outside autocast, in the weights' dtype: CUDA autocast runs `_cudnn_rnn` in fp16 whatever the
    # autocast dtype (aten/src/ATen/cudnn/AutocastRNN.cpp casts to kHalf), and fp16 without loss
    # scaling loses small gradients; under bf16 autocast the recurrence therefore stays fp32 (the
    # matrix products around it, the vocabulary projection above all, still run in bf16).
    dtype = params["weight_ih_l0"].dtype
    x, h0 = x.to(dtype), h0.to(dtype)
    with torch.autocast(device_type=x.device.type, enabled=False):
        if lengths is None:
            return functional_call(shell, params, (x, h0))
        lengths_c = lengths.clamp(min=1)  # packing needs >= 1; length-0 rows are restored below
        packed = pack_padded_sequence(x, lengths_c, enforce_sorted=False)
        out_p, h_n = functional_call(shell, params, (packed, h0))
    out, _ = pad_packed_sequence(out_p, total_length=T)  # (T, B, D*H), zeros past length
    empty = (lengths == 0).to(x.device)
    if bool(empty.any()):
        out = out.masked_fill(empty.view(1, -1, 1), 0.0)
        h_n = torch.where(empty.view(1, -1, 1), h0, h_n)
    return out, h_n


_SHELLS: dict[tuple[Any, ...], torch.nn.GRU] = {}


def _shell(gru: Any) -> torch.nn.GRU:
    key = (gru.input_size, gru.hidden_size, gru.num_layers, gru.bias, gru.dropout, gru.bidirectional)
    if key not in _SHELLS:
        _SHELLS[key] = torch.nn.GRU(
            gru.input_size,
            gru.hidden_size,
            gru.num_layers,
            bias=gru.bias,
            dropout=gru.dropout,
            bidirectional=gru.bidirectional,
            device="meta",
        )
    return _SHELLS[key]


__all__ = ["cudnn_applicable", "cudnn_gru"]
