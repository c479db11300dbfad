"""The fast LSTM and RNN recurrences, chosen by :class:`grutext.nn.cells.LSTM` and :class:`~grutext.nn.cells.RNN`.

Models never call this module directly. Each forward takes one of three paths (``last_path``
on the module says which ran):

- ``"torch"``: torch's own kernels (``torch._VF.lstm`` / ``rnn_tanh`` / ``rnn_relu``: oneDNN for
  the fp32 LSTM on CPU, cuDNN on CUDA) with the module's parameters, one layer at a time
  (grutext applies the dropout between layers, as the explicit path does). Taken on CPU for the
  fp32 LSTM when every sequence has the full length (``lengths`` None or all T): then torch
  computes exactly our function, with oneDNN's LSTM kernel. On CUDA always, padded batches
  through packed sequences (lengths exact). On CPU without the C++ loop, for full batches.
- ``"fused"``: the C++ step loops of ``csrc/lstm_loop.cpp`` (compiled at first use, as the
  GRU's ``csrc/gru_loop.cpp``): on CPU (fp32/fp64) the LSTM's padded batches (and fp64 ones)
  and every RNN batch (torch's CPU RNN kernels measured 1.7-4.4x slower than this loop, fwd+bwd, B=64, T=200,
  H=128/256, on 2 shared, loaded cores). Per layer (both directions
  together) a custom ``autograd.Function``: forward per step the GEMMs ``x_t W_ih^T`` and
  ``h W_hh^T`` and one fused elementwise pass (activations, state update, length mask, output
  write); backward the recurrence walked back with one GEMM ``dgates @ W_hh`` per step and one
  fused pass that also sums the bias gradient; then ``dx``, ``dW_ih``, ``dW_hh`` each as ONE
  GEMM over all steps. Rows walk their own lengths: the reverse direction starts at each
  sequence's last real token and no step is spent on padding. (direction, batch chunk) items are
  split across torch's threads once.
- ``"explicit"``: the step loop in torch ops (:func:`grutext.nn.stacked._loop`): when the gates are
  asked for (``return_gates=True``), for other dtypes, or without a C++ compiler (one warning).

Why two fast paths: torch's packed-sequence kernels are lengths-exact but slow on CPU for mixed
lengths (measured 0.15x of the dense oneDNN LSTM at B=64, T=200, H=256, lengths in [100, 200]),
and oneDNN's dense kernel cannot skip a row's padding; the C++ loop handles lengths at full speed.

Switches and spies:
    ``FORCE_IMPL``: None | "torch" | "fused" | "explicit", overrides the choice for every LSTM/RNN.
    ``BACKEND``: "auto" (C++ if it compiles) | "ext" (C++ or raise) | "torch" (never the C++ loops).
    ``COUNTERS``: calls per path and cell: "lstm_torch", "lstm_fused", "lstm_explicit", "rnn_torch",
    "rnn_fused", "rnn_explicit".
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from grutext.nn._build import load_loop

FORCE_IMPL: str | None = None
BACKEND: str = "auto"
COUNTERS: dict[str, int] = {f"{cell}_{path}": 0 for cell in ("lstm", "rnn") for path in ("torch", "fused", "explicit")}

_CSRC = Path(__file__).with_name("csrc") / "lstm_loop.cpp"
_EXT_LOCK = threading.Lock()
_EXT_OK: bool | None = None  # None: not tried yet
_FLOAT_TYPES = (torch.float32, torch.float64)
PATHS = ("torch", "fused", "explicit")


def reset_counters() -> None:
    """Set every entry of COUNTERS back to 0."""
    for key in COUNTERS:
        COUNTERS[key] = 0


def extension_available() -> bool:
    """Compile (first call, then cached) and load the C++ loops; False, after one warning, if that fails."""
    global _EXT_OK
    if _EXT_OK is not None:
        return _EXT_OK
    with _EXT_LOCK:
        if _EXT_OK is not None:
            return _EXT_OK
        from grutext.nn import fused

        fused.tune_allocator()
        if os.environ.get("GRUTEXT_NO_EXT"):
            _EXT_OK = False
            return False
        try:
            _EXT_OK = _build_extension()
        except Exception as exc:  # noqa: BLE001 - any build failure means: use the torch paths
            warnings.warn(
                f"grutext: the LSTM/RNN C++ loop could not be compiled ({type(exc).__name__}: {str(exc)[:200]}); "
                "padded batches use the explicit torch loop (slower). Install a C++ compiler and `ninja`.",
                RuntimeWarning,
                stacklevel=3,
            )
            _EXT_OK = False
    return _EXT_OK


def _build_extension() -> bool:
    load_loop("grutext_lstm_loop", _CSRC, "fast LSTM/RNN loop")
    return hasattr(torch.ops.grutext_cells, "lstm_forward")


def _use_ext() -> bool:
    if BACKEND == "torch":
        return False
    if BACKEND == "ext":
        if not extension_available():
            raise RuntimeError("grutext.nn.fused_cells.BACKEND='ext' but the C++ extension could not be built")
        return True
    return extension_available()


def choose_path(module: Any, x: Tensor, lengths: Tensor | None, return_gates: bool) -> str:
    """The path one forward takes: "torch", "fused" or "explicit" (see the module docstring).

    x: (T, B, E); lengths: (B,) CPU LongTensor or None.
    """
    impl = FORCE_IMPL or module.impl
    if return_gates or impl == "explicit" or x.shape[0] == 0:
        return "explicit"  # also for T = 0: torch's kernels refuse empty sequences
    full = lengths is None or bool((lengths == x.shape[0]).all())
    if impl == "torch":
        return "torch"
    if impl == "fused":
        return "fused" if x.device.type == "cpu" and x.dtype in _FLOAT_TYPES and _use_ext() else "explicit"
    if x.device.type == "cuda":
        return "torch"  # cuDNN, packed when the lengths differ
    if x.device.type != "cpu" or x.dtype not in _FLOAT_TYPES:
        return "explicit"
    if full and (module.kind == "lstm" and x.dtype == torch.float32 or not _use_ext()):
        return "torch"  # oneDNN's fp32 LSTM; torch's CPU RNN kernels are slower than the C++ loop
    return "fused" if _use_ext() else "explicit"


# --------------------------------------------------------------------------------------------
# torch's kernels


def _layer_params(module: Any, layer: int) -> list[Tensor]:
    """torch's flat weight order for one layer: per direction w_ih, w_hh[, b_ih, b_hh]."""
    out = []
    for d in range(module.num_directions):
        s = f"l{layer}" + ("_reverse" if d else "")
        out += [getattr(module, f"weight_ih_{s}"), getattr(module, f"weight_hh_{s}")]
        if module.bias:
            out += [getattr(module, f"bias_ih_{s}"), getattr(module, f"bias_hh_{s}")]
    return out


def _torch_layer(
    module: Any, kind: str, x: Tensor, lengths: Tensor | None, hx: list[Tensor], layer: int
) -> tuple[Tensor, list[Tensor]]:
    """One layer through torch._VF: x (T, B, In), hx [h0 (D, B, H)(, c0)] -> out (T, B, D*H), [h_n(, c_n)]."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    fn: Any = {"lstm": torch._VF.lstm, "rnn_tanh": torch._VF.rnn_tanh, "rnn_relu": torch._VF.rnn_relu}[kind]
    w = _layer_params(module, layer)
    state: Any = tuple(hx) if kind == "lstm" else hx[0]
    args = (module.bias, 1, 0.0, module.training, module.bidirectional)
    T = x.shape[0]
    if lengths is None or bool((lengths == T).all()):
        res = fn(x, state, w, *args, False)
        return res[0], list(res[1:])
    lengths_c = lengths.clamp(min=1)  # packing needs >= 1; length-0 rows are restored below
    packed = pack_padded_sequence(x, lengths_c, enforce_sorted=False)
    idx, back = packed.sorted_indices, packed.unsorted_indices
    assert idx is not None and back is not None
    sorted_state = tuple(s.index_select(1, idx) for s in hx)
    res = fn(packed.data, packed.batch_sizes, sorted_state if kind == "lstm" else sorted_state[0], w, *args)
    out_p = torch.nn.utils.rnn.PackedSequence(res[0], packed.batch_sizes, idx, back)
    out, _ = pad_packed_sequence(out_p, total_length=T)  # (T, B, D*H), zeros past length
    finals = [s.index_select(1, back) for s in res[1:]]
    empty = (lengths == 0).to(x.device)
    if bool(empty.any()):
        out = out.masked_fill(empty.view(1, -1, 1), 0.0)
        finals = [torch.where(empty.view(1, -1, 1), s0, s) for s0, s in zip(hx, finals, strict=True)]
    return out, finals


# --------------------------------------------------------------------------------------------
# the C++ loops


def _dw_hh(dg: Tensor, out: Tensor, h0: Tensor, lengths: Tensor, reverse: bool) -> Tensor:
    """dW_hh of one direction over all steps: sum_t dg_t^T @ (state before step t), two GEMMs.

    dg (T, B, G) and out (T, B, H) in time order, zeros past length. The state before step t is
    the output at t-1 (forward) or t+1 (reverse), and h0 at a sequence's first step (t = 0
    forward, t = len-1 reverse); out[len] is a zero padding row, so h0's term is added apart.
    """
    B, H = out.shape[1], out.shape[2]
    G = dg.shape[2]
    if reverse:
        main = dg[:-1].reshape(-1, G).t() @ out[1:].reshape(-1, H)
    else:
        main = dg[1:].reshape(-1, G).t() @ out[:-1].reshape(-1, H)
    first_t = (lengths - 1).clamp(min=0) if reverse else torch.zeros_like(lengths)
    first = dg[first_t, torch.arange(B)]  # (B, G): each sequence's first step
    return main + first.t() @ h0


class _LSTMLayerFunction(torch.autograd.Function):
    """One LSTM layer, all directions: (x (T, B, In), h0, c0 (D, B, H), W_ih (D, 4H, In), W_hh (D, 4H, H),
    bias (D, 4H) = b_ih + b_hh, lengths (B,)) -> (out (T, B, D*H) zeros past length, h_n, c_n (D, B, H))."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor, lengths: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        save = any(ctx.needs_input_grad[:6])
        w_ih, w_hh = w_ih.contiguous(), w_hh.contiguous()
        h0, c0 = h0.contiguous(), c0.contiguous()
        xin = x if x.stride(2) == 1 else x.contiguous()  # any T/B strides are read in place
        out, h_n, c_n, gates = torch.ops.grutext_cells.lstm_forward(xin, w_ih, w_hh, bias, h0, c0, lengths, save)
        T, B, D, H = out.shape
        out = out.view(T, B, D * H)
        if save:
            ctx.save_for_backward(xin, w_ih, w_hh, out, h0, c0, gates, lengths)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx: Any, dout: Tensor | None, dh_n: Tensor | None, dc_n: Tensor | None) -> tuple[Tensor | None, ...]:
        x, w_ih, w_hh, out, h0, c0, gates, lengths = ctx.saved_tensors
        T, B, In = x.shape
        D, G, H = w_hh.shape
        dout = dout if dout is not None else out.new_zeros(T, B, D * H)
        dh_n = dh_n if dh_n is not None else h0.new_zeros(D, B, H)
        dc_n = dc_n if dc_n is not None else h0.new_zeros(D, B, H)
        dg, dh0, dc0, dbias = torch.ops.grutext_cells.lstm_backward(
            dout, dh_n.contiguous(), dc_n.contiguous(), w_hh, c0, gates, lengths
        )
        return _layer_grads(ctx.needs_input_grad, x, w_ih, out, h0, lengths, dg, dbias, (dh0, dc0))


class _RNNLayerFunction(torch.autograd.Function):
    """One Elman RNN layer, all directions: (x (T, B, In), h0 (D, B, H), W_ih (D, H, In), W_hh (D, H, H),
    bias (D, H) = b_ih + b_hh, lengths, relu) -> (out (T, B, D*H) zeros past length, h_n (D, B, H))."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor, lengths: Tensor, relu: bool
    ) -> tuple[Tensor, Tensor]:
        w_ih, w_hh, h0 = w_ih.contiguous(), w_hh.contiguous(), h0.contiguous()
        xin = x if x.stride(2) == 1 else x.contiguous()
        out, h_n = torch.ops.grutext_cells.rnn_forward(xin, w_ih, w_hh, bias, h0, lengths, relu)
        T, B, D, H = out.shape
        out = out.view(T, B, D * H)
        ctx.relu = relu
        if any(ctx.needs_input_grad[:5]):
            ctx.save_for_backward(xin, w_ih, w_hh, out, h0, lengths)
        return out, h_n

    @staticmethod
    def backward(ctx: Any, dout: Tensor | None, dh_n: Tensor | None) -> tuple[Tensor | None, ...]:
        x, w_ih, w_hh, out, h0, lengths = ctx.saved_tensors
        T, B, _ = x.shape
        D, _, H = w_hh.shape
        dout = dout if dout is not None else out.new_zeros(T, B, D * H)
        dh_n = dh_n if dh_n is not None else h0.new_zeros(D, B, H)
        dg, dh0, dbias = torch.ops.grutext_cells.rnn_backward(dout, dh_n.contiguous(), w_hh, out, lengths, ctx.relu)
        return (*_layer_grads(ctx.needs_input_grad, x, w_ih, out, h0, lengths, dg, dbias, (dh0,)), None)


def _layer_grads(
    need: tuple[bool, ...],
    x: Tensor,
    w_ih: Tensor,
    out: Tensor,
    h0: Tensor,
    lengths: Tensor,
    dg: Tensor,
    dbias: Tensor,
    dstates: tuple[Tensor, ...],
) -> tuple[Tensor | None, ...]:
    """The gradients of (x, *states, W_ih, W_hh, bias, lengths) from dg (T, B, D, G): GEMMs over all steps."""
    T, B, In = x.shape
    D, G, _ = w_ih.shape
    H = out.shape[2] // D
    k = len(dstates)
    dg2 = dg.view(T * B, D * G)
    dx = (dg2 @ w_ih.reshape(D * G, In)).view(T, B, In) if need[0] else None  # one GEMM, both directions
    dw_ih = (dg2.t() @ x.reshape(T * B, In)).view(D, G, In) if need[k + 1] else None  # one GEMM
    out4 = out.view(T, B, D, H)
    dw_hh = (
        torch.stack([_dw_hh(dg[:, :, d], out4[:, :, d], h0[d], lengths, d == 1) for d in range(D)])
        if need[k + 2]
        else None
    )
    states = tuple(s if need[1 + i] else None for i, s in enumerate(dstates))
    return (dx, *states, dw_ih, dw_hh, dbias if need[k + 3] else None, None)


def _fused_layer(
    module: Any, kind: str, x: Tensor, lengths: Tensor, hx: list[Tensor], layer: int
) -> tuple[Tensor, list[Tensor]]:
    D = module.num_directions
    w = _layer_params(module, layer)
    per = 4 if module.bias else 2
    w_ih = torch.stack([w[d * per] for d in range(D)])  # (D, G, In)
    w_hh = torch.stack([w[d * per + 1] for d in range(D)])  # (D, G, H)
    if module.bias:
        bias = torch.stack([w[d * per + 2] + w[d * per + 3] for d in range(D)])  # (D, G): both enter alike
    else:
        bias = x.new_zeros(D, w_hh.shape[1])
    if kind == "lstm":
        out, h_n, c_n = _LSTMLayerFunction.apply(x, hx[0], hx[1], w_ih, w_hh, bias, lengths)
        return out, [h_n, c_n]
    out, h_n = _RNNLayerFunction.apply(x, hx[0], w_ih, w_hh, bias, lengths, kind == "rnn_relu")
    return out, [h_n]


def stacked_forward(
    module: Any, kind: str, path: str, x: Tensor, lengths: Tensor | None, states: list[Tensor]
) -> tuple[Tensor, list[Tensor]]:
    """A whole LSTM/RNN stack on the "torch" or "fused" path.

    Args:
        module: the :class:`~grutext.nn.cells.LSTM` or :class:`~grutext.nn.cells.RNN` (parameters, options).
        kind: "lstm", "rnn_tanh" or "rnn_relu".
        path: "torch" or "fused".
        x: (T, B, E).
        lengths: (B,) CPU LongTensor or None (all T).
        states: [h0 (L*D, B, H)] (RNN) or [h0, c0] (LSTM).

    Returns:
        (output (T, B, D*H) zeros past length, [h_n (L*D, B, H)(, c_n)]).
    """
    cell = "lstm" if kind == "lstm" else "rnn"
    COUNTERS[f"{cell}_{path}"] += 1
    T, B, _ = x.shape
    D = module.num_directions
    lens = lengths if lengths is not None else torch.full((B,), T, dtype=torch.long)
    finals: list[list[Tensor]] = [[] for _ in states]
    layer_in = x
    for layer in range(module.num_layers):
        hx = [s[layer * D : (layer + 1) * D] for s in states]
        if path == "fused":
            out, fin = _fused_layer(module, kind, layer_in, lens, hx, layer)
        else:
            out, fin = _torch_layer(module, kind, layer_in, lengths, hx, layer)
        for i, f in enumerate(fin):
            finals[i].append(f)
        if module.dropout and module.training and layer < module.num_layers - 1:
            out = F.dropout(out, module.dropout, True)
        layer_in = out
    return layer_in, [torch.cat(f, dim=0) for f in finals]


__all__ = [
    "FORCE_IMPL",
    "BACKEND",
    "COUNTERS",
    "PATHS",
    "reset_counters",
    "extension_available",
    "choose_path",
    "stacked_forward",
]
