"""The fast GRU recurrence, chosen by :class:`grutext.nn.gru.GRU`; models never call it directly.

Per layer (both directions together), a custom ``autograd.Function``:

- forward: the step loop: per step one GEMM ``h @ W_hh^T`` and one fused elementwise pass
  (gates, biases, state update, length mask, output write). The input projections ``W_ih x``
  are one more GEMM per step inside the loop (fp32/fp64 with the C++ loops: they then never go
  through memory), or all steps and both directions in one GEMM ``(T*B, E) @ (E, D*3H)`` before
  it (bf16, torch loops);
- backward: the recurrence walked back with one GEMM ``dgates @ W_hh`` per step and one fused
  elementwise pass that also sums the bias gradients; then ``dW_hh``, ``dW_ih``, ``dx`` each as
  ONE GEMM over all steps (``(T*B, 3H)^T @ (T*B, H)`` ...). The states before each step are
  the layer's own outputs shifted by one step, so no copy of them is kept.

The step loops run in a small C++ extension (``csrc/gru_loop.cpp``) compiled at first use with
torch.utils.cpp_extension (cached under torch's extensions dir). It splits each call's
(direction, batch chunk) items across torch's threads once: rows and directions are
independent recurrences, so every thread walks all steps of its items with its own
single-threaded BLAS calls and never waits for another. Without a compiler it falls back, with
one warning, to the same loops written in torch ops (:func:`_forward_loop_torch`,
:func:`_backward_loop_torch`).
``compute_dtype=torch.bfloat16`` runs every GEMM in bf16 while the state, the gates and the
elementwise maths stay fp32. On CUDA the layer dispatches to cuDNN through torch's own GRU
(same weights, same function; lengths via packing).

Switches and spies:
    ``FORCE_IMPL``: None | "fused" | "explicit", overrides every GRU's ``impl``.
    ``BACKEND``: "auto" (C++ if it compiles) | "ext" | "torch".
    ``PROJECT_IN_LOOP``: True (default) | False: fp32/fp64 input projections per step in the C++
    loop, or all steps in one GEMM before it (as bf16 and the torch loops always do).
    ``COUNTERS``: calls per path: "fused", "fused_ext", "fused_torch", "explicit", "cudnn", and
    "mingru_ext" (minGRU's compiled scan, :class:`grutext.nn.mingru.MinGRU`, which shares this extension).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from grutext.nn._build import failure_marker, load_loop, record_failure

FORCE_IMPL: str | None = None
BACKEND: str = "auto"
PROJECT_IN_LOOP: bool = True  # fp32/fp64 with the C++ loops: input projections per step, inside the loop
COUNTERS: dict[str, int] = {"fused": 0, "fused_ext": 0, "fused_torch": 0, "explicit": 0, "cudnn": 0, "mingru_ext": 0}

_CSRC = Path(__file__).with_name("csrc") / "gru_loop.cpp"
_EXT_LOCK = threading.Lock()
_EXT_OK: bool | None = None  # None: not tried yet
_FLOAT_TYPES = (torch.float32, torch.float64)


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
        tune_allocator()
        if os.environ.get("GRUTEXT_NO_EXT"):
            _EXT_OK = False
            return False
        try:
            _EXT_OK = _build_extension()
        except Exception as exc:  # noqa: BLE001 - any build failure means: use the torch loops
            record_failure("grutext_gru_loop", _CSRC, exc)
            warnings.warn(
                f"grutext: the GRU C++ loop could not be compiled ({type(exc).__name__}: {str(exc)[:200]}); "
                "using the pure-torch fused path (slower). Install a C++ compiler and `ninja` to enable it.",
                RuntimeWarning,
                stacklevel=3,
            )
            _EXT_OK = False
    return _EXT_OK


_ALLOCATOR_TUNED = False


def tune_allocator() -> bool:
    """Keep freed memory in the process (glibc malloc) instead of unmapping it; once per process.

    glibc serves blocks above its mmap threshold (at most 32 MB) with fresh ``mmap`` pages and
    unmaps them on free, so every large activation (gate buffers, logits) pays one page fault
    per 4 KB again at each step. ``M_MMAP_MAX = 0`` and a 1 GB trim threshold keep that memory
    for reuse. Measured on 2 CPU cores (B=64, T=200, forward+backward): grutext's GRU 1.4-1.8x
    faster, torch.nn.LSTM up to 2.2x; the process keeps its peak heap instead of returning it.
    The same effect as running under jemalloc/tcmalloc, which PyTorch's CPU tuning guide
    recommends. Set ``GRUTEXT_MALLOC_TUNING=0`` to leave malloc alone. Returns whether it applied.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if os.environ.get("GRUTEXT_MALLOC_TUNING", "1") in ("0", "false", "no") or not sys.platform.startswith("linux"):
        return False
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # malloc.h
    ok = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    _ALLOCATOR_TUNED = ok
    return ok


def _build_extension() -> bool:
    load_loop("grutext_gru_loop", _CSRC, "fast GRU loop")
    ok = hasattr(torch.ops.grutext_gru, "forward")
    if ok:
        with contextlib.suppress(OSError):  # a later success clears an earlier failure's note
            failure_marker("grutext_gru_loop", _CSRC).unlink(missing_ok=True)
    return ok


def _use_ext() -> bool:
    if BACKEND == "torch":
        return False
    if BACKEND == "ext":
        if not extension_available():
            raise RuntimeError("grutext.nn.fused.BACKEND='ext' but the C++ extension could not be built")
        return True
    return extension_available()


def fused_applicable(x: Tensor) -> bool:
    """Whether the fused path can run on `x` (CPU, fp32/fp64)."""
    return x.device.type == "cpu" and x.dtype in _FLOAT_TYPES


# --------------------------------------------------------------------------------------------
# the step loops in torch ops (fallback; same layouts and maths as csrc/gru_loop.cpp)


def _forward_loop_torch(
    gi: Tensor,
    w_ih: Tensor | None,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    h0: Tensor,
    lengths: Tensor,
    rec_mask: Tensor | None,
    save: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    # the op's signature; these loops always get the input projections precomputed (w_ih None)
    assert w_ih is None
    T, B, D, G = gi.shape
    H = G // 3
    gi = gi + b_ih.view(1, 1, D, G)
    h = h0.clone()  # (D, B, H)
    out = gi.new_empty(T, B, D, H)
    gates = gi.new_zeros(T, B, D, 4 * H) if save else gi.new_empty(0)
    valid = (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)
    w_t = w_hh.transpose(1, 2)  # (D, H, 3H)
    for s in range(T):
        hin = h if rec_mask is None else h * rec_mask
        gh = torch.bmm(hin.to(w_t.dtype), w_t).to(h.dtype) + b_hh.unsqueeze(1)  # (D, B, 3H)
        for d in range(D):
            t = s if d == 0 else T - 1 - s
            x = gi[t, :, d]  # (B, 3H)
            rz = torch.sigmoid(x[:, : 2 * H] + gh[d, :, : 2 * H])  # reset and update gates
            r, z = rz[:, :H], rz[:, H:]
            ghn = gh[d, :, 2 * H :]  # W_hn h + b_hn
            n = torch.tanh(torch.addcmul(x[:, 2 * H :], r, ghn))  # candidate, b_hn inside the reset product
            hn = torch.lerp(n, h[d], z)  # n + z (h - n): update gate keeps the past
            m = valid[t]  # (B, 1)
            h[d] = torch.where(m, hn, h[d])
            out[t, :, d] = torch.where(m, hn, 0.0)
            if save:
                gates[t, :, d] = torch.cat([rz, n, ghn], dim=-1)  # (B, 4H)
    return out, h, gates


def _backward_loop_torch(
    dout: Tensor,
    dh_n: Tensor,
    w_hh: Tensor,
    out: Tensor,
    h0: Tensor,
    gates: Tensor,
    lengths: Tensor,
    rec_mask: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """dout (T, B, D*H) -> dgi (T, B, D, 3H), dghn (T, B, D, H), dh0 (D, B, H), dbias (2, D, 3H); see gru_loop.cpp."""
    D, _, H = dh_n.shape
    T, B = dout.shape[:2]
    dout = dout.reshape(T, B, D, H)
    dh = dh_n.clone()  # (D, B, H)
    dgi = dout.new_empty(T, B, D, 3 * H)
    dgh = dout.new_empty(T, B, D, 3 * H)  # the gradient of W_hh h + b_hh
    valid = (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)
    for s in range(T - 1, -1, -1):
        back = []
        for d in range(D):
            t = s if d == 0 else T - 1 - s
            m = valid[t]  # (B, 1)
            r, z, n, ghn = gates[t, :, d].split(H, dim=-1)  # 4 x (B, H)
            # the state before this step: the previous step's output, or h0 at a sequence's first step
            if d == 0:
                hp = out[t - 1, :, 0] if t > 0 else h0[0]
            else:
                nxt = out[t + 1, :, 1] if t + 1 < T else h0[1]
                hp = torch.where(valid[t + 1] if t + 1 < T else torch.zeros_like(m), nxt, h0[1])
            dht = dh[d] + dout[t, :, d]
            dn = dht * (1 - z) * (1 - n * n)  # through h = n + z (h - n), then tanh
            dz = dht * (hp - n) * z * (1 - z)  # through σ
            dr = dn * ghn * r * (1 - r)  # through σ
            dgi[t, :, d] = torch.where(m, torch.cat([dr, dz, dn], -1), 0.0)
            dgh[t, :, d] = torch.where(m, torch.cat([dr, dz, dn * r], -1), 0.0)
            dh[d] = torch.where(m, dht * z, dh[d])  # padding passes dh through unchanged
            back.append(dgh[t, :, d])
        back_t = torch.bmm(torch.stack(back).to(w_hh.dtype), w_hh).to(dh.dtype)  # (D, B, H)
        dh = dh + (back_t if rec_mask is None else back_t * rec_mask)
    dbias = torch.stack([dgi.sum((0, 1)), dgh.sum((0, 1))])  # (2, D, 3H)
    return dgi, dgh[..., 2 * H :].contiguous(), dh, dbias  # its r and z parts equal dgi's


def _loops(use_ext: bool) -> tuple[Any, Any]:
    if use_ext:
        return torch.ops.grutext_gru.forward, torch.ops.grutext_gru.backward
    return _forward_loop_torch, _backward_loop_torch


def _mm(a: Tensor, b: Tensor, cd: torch.dtype, dt: torch.dtype) -> Tensor:
    """a @ b with the GEMM in `cd` (operands converted only when they are not already), result in `dt`."""
    return (a.to(cd) @ b.to(cd)).to(dt)


def _dw_hh(
    dgi: Tensor,
    dghn: Tensor,
    out: Tensor,
    h0: Tensor,
    lengths: Tensor,
    reverse: bool,
    mask: Tensor | None,
    cd: torch.dtype,
) -> Tensor:
    """dW_hh of one direction with GEMMs over all steps: sum_t dgh_t^T @ (state before step t).

    dgh, the gradient of W_hh h + b_hh, is dgi (T, B, 3H) in its r and z rows and dghn (T, B, H)
    in its n rows; with out (T, B, H) these are strided views of one direction, time order. The
    state before step t is the output of the step processed before it (t-1 forward, t+1
    reverse), and h0 at a sequence's first step (t = 0 forward, t = len-1 reverse). Where the
    reverse direction starts at len-1 < T-1, out[len] is a zero (padding) row: the h0 term is
    added separately.
    """
    B, H = out.shape[1], out.shape[2]
    dt = out.dtype
    prev = (out if mask is None else out * mask).to(cd)  # the recurrent GEMM's input: the masked state
    h0m = (h0 if mask is None else h0 * mask).to(cd)
    first_t = (lengths - 1).clamp(min=0) if reverse else torch.zeros_like(lengths)

    def grad(g: Tensor) -> Tensor:  # g (T, B, k) -> (k, H)
        k = g.shape[2]
        if reverse:
            main = _mm(g[:-1].reshape(-1, k).t(), prev[1:].reshape(-1, H), cd, dt)
        else:
            main = _mm(g[1:].reshape(-1, k).t(), prev[:-1].reshape(-1, H), cd, dt)
        first = g[first_t, torch.arange(B)]  # (B, k): each sequence's first step
        return main + _mm(first.t(), h0m, cd, dt)

    return torch.cat([grad(dgi[..., : 2 * H]), grad(dghn)])  # (3H, H)


class _GRULayerFunction(torch.autograd.Function):
    """One GRU layer, all directions: (x (T, B, In), h0 (D, B, H), W_ih (D, 3H, In), W_hh (D, 3H, H),
    b_ih (D, 3H), b_hh (D, 3H)) -> (out (T, B, D*H) zeros past length, h_n (D, B, H))."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        h0: Tensor,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor,
        b_hh: Tensor,
        lengths: Tensor,
        rec_mask: Tensor | None,
        compute_dtype: torch.dtype | None,
        use_ext: bool,
    ) -> tuple[Tensor, Tensor]:
        T, B, In = x.shape
        D, G, _ = w_ih.shape
        cd = compute_dtype or x.dtype
        w_hh_c = w_hh.to(cd).contiguous()  # (D, 3H, H) in the compute dtype
        save = any(ctx.needs_input_grad[:6])
        fwd, _ = _loops(use_ext)
        h0 = h0.contiguous()
        x_saved = x if cd == x.dtype else x.reshape(T * B, In).to(cd)  # bf16: converted once, for the forward and dW_ih
        if use_ext and PROJECT_IN_LOOP and cd == x.dtype and x.stride(2) == 1:  # x: read in place, any T/B strides
            # each step projects its own rows inside the loop: the (T, B, D, 3H) input projections
            # never go through memory. Measured 1-6% faster in fp32 (B=64, T=200, H=128/256); not
            # for bf16, where every GEMM in the loop is an ATen op call (10% slower unidirectional).
            out, h_n, gates = fwd(
                x_saved,
                w_ih.to(cd).contiguous(),
                w_hh_c,
                b_ih.contiguous(),
                b_hh.contiguous(),
                h0,
                lengths,
                rec_mask,
                save,
            )
        else:
            # (T*B, D*3H): all steps, one GEMM. The weight is transposed into a contiguous copy
            # (small): MKL runs this shape faster than on the transposed view, and faster than
            # addmm's bias broadcast; the step loop adds b_ih. bf16: the loop reads it as is.
            gi = (x_saved.reshape(T * B, In) @ w_ih.reshape(D * G, In).t().to(cd).contiguous()).view(T, B, D, G)
            out, h_n, gates = fwd(gi, None, w_hh_c, b_ih.contiguous(), b_hh.contiguous(), h0, lengths, rec_mask, save)
        out = out.view(T, B, D * w_hh.shape[2])  # (T, B, D, H) -> (T, B, D*H)
        ctx.use_ext, ctx.cd, ctx.x_shape, ctx.x_dtype = use_ext, cd, x.shape, x.dtype
        if save:  # the outputs are the states before each step: backward reads them, no copy is kept
            ctx.save_for_backward(x_saved, w_ih, w_hh_c, out, h0, gates, lengths, rec_mask)
        return out, h_n

    @staticmethod
    def backward(ctx: Any, dout: Tensor | None, dh_n: Tensor | None) -> tuple[Tensor | None, ...]:
        x, w_ih, w_hh_c, out, h0, gates, lengths, rec_mask = ctx.saved_tensors  # x: (T, B, In), or (T*B, In) in cd
        T, B, In = ctx.x_shape
        D, G, H = w_hh_c.shape
        cd, dt = ctx.cd, ctx.x_dtype
        out4 = out.view(T, B, D, H)
        dout3 = dout if dout is not None else out.new_zeros(T, B, D * H)  # (T, B, D*H), strided views read in place
        dh_n = dh_n if dh_n is not None else h0.new_zeros(D, B, H)
        _, bwd = _loops(ctx.use_ext)
        # time order: dgi (T, B, D, 3H); dghn (T, B, D, H), the n rows of the gradient of W_hh h + b_hh
        # (its r and z rows equal dgi's); dbias (2, D, 3H) summed in the loop
        dgi, dghn, dh0, dbias = bwd(dout3, dh_n.contiguous(), w_hh_c, out4, h0, gates, lengths, rec_mask)
        need = ctx.needs_input_grad
        dgi2 = dgi.view(T * B, D * G)  # (T, B, D, 3H) -> (T*B, D*3H)
        dgi2c = dgi2.to(cd)  # in the compute dtype once, for both GEMMs below (no copy when it already is)
        x2 = x.reshape(T * B, In)
        dx = (dgi2c @ w_ih.reshape(D * G, In).to(cd)).to(dt).view(T, B, In) if need[0] else None  # one GEMM
        dw_ih = (dgi2c.t() @ x2).to(dt).view(D, G, In) if need[2] else None  # one GEMM
        dw_hh = (
            torch.stack(
                [
                    _dw_hh(
                        dgi[:, :, d],
                        dghn[:, :, d],
                        out4[:, :, d],
                        h0[d],
                        lengths,
                        d == 1,
                        None if rec_mask is None else rec_mask[d],
                        cd,
                    )
                    for d in range(D)
                ]
            )
            if need[3]
            else None
        )
        db_ih = dbias[0] if need[4] else None  # (D, 3H)
        db_hh = dbias[1] if need[5] else None  # (D, 3H)
        return dx, (dh0 if need[1] else None), dw_ih, dw_hh, db_ih, db_hh, None, None, None, None


def _cached_layer(
    gru: Any, layer: int, x: Tensor, use_ext: bool, rec_masks: list[Tensor] | None
) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """One layer's weights prepared for the C++ loop, kept between calls: for prediction only.

    Taken when the module has ``inference_cache`` set (`grutext.artifact.load_model` sets it on the models
    it loads), autograd is off, the module is in eval mode, the C++ loop runs in the weights' dtype and
    projects inputs inside its loop. Returns ``(W_ih, W_hh, b_ih, b_hh)`` stacked over directions, the two
    weights as transposed views of contiguous (D, In, 3H) / (D, H, 3H) copies (the loop reads them
    row-major, so it copies nothing per call), or None where the call must take the ordinary path. The copy
    is rebuilt when a parameter is replaced or changed in place through torch (optimiser steps,
    ``load_state_dict``, ``copy_`` under ``no_grad``: each bumps the tensor's version); a change written
    through ``.data``, which torch does not count, is not seen, so leave ``inference_cache`` off for a model
    whose weights are edited that way between predictions.
    """
    if not (
        getattr(gru, "inference_cache", False)
        and use_ext
        and PROJECT_IN_LOOP
        and not gru.training
        and not torch.is_grad_enabled()
        and rec_masks is None
        and gru.bias
        and gru.compute_dtype in (None, x.dtype)
        and x.stride(2) == 1
    ):
        return None
    ws = [gru.layer_weights(layer, d) for d in range(gru.num_directions)]
    params = [t for w in ws for t in w if t is not None]
    if any(t.dtype != x.dtype or t.device != x.device for t in params):
        return None
    key = tuple((t.data_ptr(), t._version) for t in params)
    cache = gru.__dict__.setdefault("_inference_weights", {})
    hit = cache.get(layer)
    if hit is not None and hit[0] == key:
        return hit[1]
    w_ih = torch.stack([w[0] for w in ws]).transpose(1, 2).contiguous().transpose(1, 2)  # (D, 3H, In) view
    w_hh = torch.stack([w[1] for w in ws]).transpose(1, 2).contiguous().transpose(1, 2)  # (D, 3H, H) view
    prepared = (w_ih, w_hh, torch.stack([w[2] for w in ws]), torch.stack([w[3] for w in ws]))
    cache[layer] = (key, prepared)
    return prepared


def _autograd_layer(
    gru: Any, layer: int, x: Tensor, h0: Tensor, lens: Tensor, rec_mask: Tensor | None, use_ext: bool
) -> tuple[Tensor, Tensor]:
    """One layer through `_GRULayerFunction`: its weights stacked over directions for this call."""
    D, H = gru.num_directions, gru.hidden_size
    ws = [gru.layer_weights(layer, d) for d in range(D)]
    w_ih = torch.stack([w[0] for w in ws])  # (D, 3H, In)
    w_hh = torch.stack([w[1] for w in ws])  # (D, 3H, H)
    if gru.bias:
        b_ih = torch.stack([w[2] for w in ws])  # (D, 3H)
        b_hh = torch.stack([w[3] for w in ws])  # (D, 3H)
    else:
        b_ih = b_hh = x.new_zeros(D, 3 * H)
    out, hl = _GRULayerFunction.apply(x, h0, w_ih, w_hh, b_ih, b_hh, lens, rec_mask, gru.compute_dtype, use_ext)
    return out, hl


def gru_forward(
    gru: Any, x: Tensor, lengths: Tensor | None, h0: Tensor, rec_masks: list[Tensor] | None
) -> tuple[Tensor, Tensor]:
    """Fused forward of a whole :class:`~grutext.nn.gru.GRU` stack.

    Args:
        gru: the module (its parameters and options are read).
        x: (T, B, E).
        lengths: (B,) CPU LongTensor or None.
        h0: (L*D, B, H).
        rec_masks: per layer a (D, B, H) variational dropout mask, or None.

    Returns:
        (output (T, B, D*H) zeros past length, h_n (L*D, B, H)).
    """
    use_ext = _use_ext()
    COUNTERS["fused"] += 1
    COUNTERS["fused_ext" if use_ext else "fused_torch"] += 1
    T, B, _ = x.shape
    D, H = gru.num_directions, gru.hidden_size
    lens = lengths if lengths is not None else torch.full((B,), T, dtype=torch.long)
    layer_in = x
    h_n = []
    for layer in range(gru.num_layers):
        h0_l = h0[layer * D : (layer + 1) * D]
        cached = _cached_layer(gru, layer, layer_in, use_ext, rec_masks)
        if cached is not None:  # inference: the prepared weights, straight to the C++ loop (no autograd)
            out, hl, _ = _loops(True)[0](layer_in, *cached, h0_l.contiguous(), lens, None, False)
            out = out.view(T, B, D * H)
        else:
            rec_mask = None if rec_masks is None else rec_masks[layer]
            out, hl = _autograd_layer(gru, layer, layer_in, h0_l, lens, rec_mask, use_ext)
        h_n.append(hl)
        if gru.dropout and gru.training and layer < gru.num_layers - 1:
            out = F.dropout(out, gru.dropout, True)
        layer_in = out
    return layer_in, torch.cat(h_n, dim=0)  # (T, B, D*H), (L*D, B, H)


__all__ = [
    "FORCE_IMPL",
    "BACKEND",
    "COUNTERS",
    "reset_counters",
    "extension_available",
    "fused_applicable",
    "tune_allocator",
    "gru_forward",
]
