"""The GRU layer: torch.nn.GRU-compatible parameters, explicit gates, lengths-aware uni/bi,
gate capture.

Two paths compute the same function:

- the *explicit* path below, the reference: one Python step per time step with the gate maths
  written out; the only path that can return gates;
- the *fused* path in :mod:`grutext.nn.fused` (custom autograd, compiled loop, optional bf16),
  chosen automatically when gates are not requested.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grutext.errors import ConfigError, DataError
from grutext.nn import cudnn, fused
from grutext.nn.init import check_init, init_recurrent_

IMPLS = ("auto", "fused", "explicit")
LengthsLike = Tensor | Sequence[int] | None


# --------------------------------------------------------------------------------------------
# helpers shared with cells.py


def check_lengths(lengths: LengthsLike, batch: int, steps: int) -> Tensor | None:
    """Validate `lengths` and return it as a CPU LongTensor (B,), or None.

    Raises DataError naming ``lengths`` when it is not 1-D of size B with values in [0, T].
    """
    if lengths is None:
        return None
    if isinstance(lengths, Tensor):
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
            raise DataError(f"lengths: expected an integer tensor, got dtype {lengths.dtype}")
        lt = lengths.detach().to("cpu", torch.long)
    else:
        try:
            lt = torch.as_tensor(list(lengths), dtype=torch.long)
        except (TypeError, ValueError) as exc:
            raise DataError(f"lengths: expected a LongTensor or list of ints, got {type(lengths).__name__}") from exc
    if lt.dim() != 1 or lt.shape[0] != batch:
        raise DataError(f"lengths: expected shape ({batch},) matching the batch, got {tuple(lt.shape)}")
    if batch and (int(lt.min()) < 0 or int(lt.max()) > steps):
        raise DataError(
            f"lengths: expected values in [0, {steps}] (T={steps}), got min {int(lt.min())} max {int(lt.max())}"
        )
    return lt


def valid_mask(lengths: Tensor | None, steps: int, batch: int, device: torch.device) -> Tensor | None:
    """(T, B, 1) bool mask, True where t < length; None when there are no lengths."""
    if lengths is None:
        return None
    t = torch.arange(steps).unsqueeze(1)  # (T, 1)
    return (t < lengths.unsqueeze(0)).unsqueeze(-1).to(device)  # (T, B, 1)


def check_input(x: Tensor, input_size: int, name: str = "x") -> None:
    """Raise DataError unless `x` is a 3-D floating tensor whose last dimension is `input_size`."""
    if not isinstance(x, Tensor) or x.dim() != 3:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise DataError(f"{name}: expected a 3-D tensor (B, T, E) or (T, B, E), got {got}")
    if not x.dtype.is_floating_point:
        raise DataError(f"{name}: expected a floating tensor, got dtype {x.dtype}")
    if x.shape[-1] != input_size:
        raise DataError(f"{name}: expected last dimension input_size={input_size}, got {x.shape[-1]}")


def check_state(h0: Tensor, shape: tuple[int, ...], name: str = "h0") -> None:
    """Raise DataError unless `h0` has exactly `shape`."""
    if not isinstance(h0, Tensor) or tuple(h0.shape) != shape:
        got = tuple(h0.shape) if isinstance(h0, Tensor) else type(h0).__name__
        raise DataError(f"{name}: expected shape {shape} (L*D, B, H), got {got}")


def check_common_args(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> None:
    """Raise ConfigError for sizes < 1 or dropout outside [0, 1)."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}: expected an int >= 1, got {value!r}")
    check_probability("dropout", dropout)


def check_probability(name: str, p: float) -> None:
    """Raise ConfigError unless 0 <= p < 1."""
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= float(p) < 1.0:
        raise ConfigError(f"{name}: expected a float in [0, 1), got {p!r}")


def param_names(layer: int, reverse: bool, bias: bool) -> list[str]:
    """torch.nn.GRU's parameter names for one layer and direction, in torch's order."""
    sfx = f"l{layer}" + ("_reverse" if reverse else "")
    names = [f"weight_ih_{sfx}", f"weight_hh_{sfx}"]
    if bias:
        names += [f"bias_ih_{sfx}", f"bias_hh_{sfx}"]
    return names


def linear(x: Tensor, weight: Tensor, bias: Tensor | None, compute_dtype: torch.dtype | None) -> Tensor:
    """x @ weight^T + bias; with a lower `compute_dtype` the GEMM runs in it and the result and
    the bias add are back in x's dtype (fp32 state)."""
    if compute_dtype is None or compute_dtype == x.dtype:
        return F.linear(x, weight, bias)
    y = F.linear(x.to(compute_dtype), weight.to(compute_dtype)).to(x.dtype)
    return y if bias is None else y + bias


# --------------------------------------------------------------------------------------------


class GRU(nn.Module):
    """Multi-layer GRU, a drop-in for ``torch.nn.GRU`` that understands sequence lengths.

    Parameters have torch.nn.GRU's names, shapes and order (``weight_ih_l{k}[_reverse]`` (3H, in),
    ``weight_hh_l{k}`` (3H, H), ``bias_ih_l{k}`` (3H,), ``bias_hh_l{k}`` (3H,); gates stacked
    r, z, n), so ``state_dict``s load both ways. The function is torch's::

        r = σ(W_ir x + b_ir + W_hr h + b_hr)        reset gate
        z = σ(W_iz x + b_iz + W_hz h + b_hz)        update gate
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))  candidate (b_hn inside the reset product)
        h' = (1 - z) * n + z * h

    Args:
        input_size: E, features of each step.
        hidden_size: H.
        num_layers: L, stacked layers.
        bias: learn ``b_ih`` and ``b_hh``.
        batch_first: x and output are (B, T, ·) instead of (T, B, ·). h0 / h_n are always (L*D, B, H).
        dropout: dropout on each layer's output except the last (training only).
        bidirectional: D = 2 when True.
        compute_dtype: ``torch.bfloat16`` runs the GEMMs in bf16 (state, gates and
            accumulation of the recurrence stay fp32); None = the parameters' dtype.
        recurrent_dropout: variational dropout on h in the recurrent product (one mask per
            sequence, layer and direction, the same for all steps; training only).
        weight_drop: DropConnect on W_hh (one mask per forward call; training only).
        init: ``"default"`` (torch's), ``"orthogonal"`` (orthogonal W_hh, Xavier W_ih, zero
            biases) or ``"xavier"``.
        impl: ``"auto"`` (fused unless gates are requested), ``"fused"`` or ``"explicit"``.
            ``grutext.nn.fused.FORCE_IMPL`` overrides it globally.

    Example:
        >>> gru = GRU(8, 16, batch_first=True, bidirectional=True)
        >>> out, h_n = gru(torch.randn(3, 5, 8), lengths=[5, 2, 4])
        >>> out.shape, h_n.shape
        (torch.Size([3, 5, 32]), torch.Size([2, 3, 16]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        compute_dtype: torch.dtype | None = None,
        recurrent_dropout: float = 0.0,
        weight_drop: float = 0.0,
        init: str = "default",
        impl: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_common_args(input_size, hidden_size, num_layers, dropout)
        check_probability("recurrent_dropout", recurrent_dropout)
        check_probability("weight_drop", weight_drop)
        check_init(init)
        if impl not in IMPLS:
            raise ConfigError(f"impl: expected one of {list(IMPLS)}, got {impl!r}")
        if compute_dtype not in (None, torch.float32, torch.float64, torch.bfloat16, torch.float16):
            raise ConfigError(f"compute_dtype: expected None or torch.bfloat16, got {compute_dtype!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.output_size = self.num_directions * hidden_size
        self.compute_dtype = compute_dtype
        self.recurrent_dropout = float(recurrent_dropout)
        self.weight_drop = float(weight_drop)
        self.init = init
        self.impl = impl
        self.last_path: str | None = None  # "fused" | "explicit" | "cudnn" after each forward
        # prediction only: keep the weights prepared for the C++ loop between no-grad eval calls (see
        # `grutext.nn.fused._cached_layer`); set by `grutext.artifact.load_model`
        self.inference_cache = False
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        H = hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else self.output_size
            for d in range(self.num_directions):
                names = param_names(layer, d == 1, self.bias)
                shapes = [(3 * H, layer_in), (3 * H, H), (3 * H,), (3 * H,)]
                for name, shape in zip(names, shapes, strict=False):
                    self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
        self.reset_parameters()

    def flatten_parameters(self) -> None:
        """No-op, for code written against torch.nn.GRU (our weights need no flat buffer)."""

    def reset_parameters(self) -> None:
        """Re-initialise all parameters with the ``init`` scheme."""
        init_recurrent_(self, self.init, self.hidden_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.compute_dtype is not None:
            s += f", compute_dtype={self.compute_dtype}"
        if self.recurrent_dropout:
            s += f", recurrent_dropout={self.recurrent_dropout}"
        if self.weight_drop:
            s += f", weight_drop={self.weight_drop}"
        return s

    # ---------------------------------------------------------------------------------------

    def layer_weights(self, layer: int, direction: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(W_ih (3H, in), W_hh (3H, H), b_ih (3H,) | None, b_hh (3H,) | None) of one layer/direction,
        with weight_drop applied to W_hh when training."""
        names = param_names(layer, direction == 1, self.bias)
        w_ih, w_hh = getattr(self, names[0]), getattr(self, names[1])
        b_ih = getattr(self, names[2]) if self.bias else None
        b_hh = getattr(self, names[3]) if self.bias else None
        if self.weight_drop and self.training:
            w_hh = F.dropout(w_hh, self.weight_drop, True)  # DropConnect on W_hh
        return w_ih, w_hh, b_ih, b_hh

    def _recurrent_masks(self, batch: int, ref: Tensor) -> list[Tensor] | None:
        """One variational dropout mask (D, B, H) per layer, scaled by 1/(1-p); None when off."""
        if not (self.recurrent_dropout and self.training):
            return None
        keep = 1.0 - self.recurrent_dropout
        shape = (self.num_directions, batch, self.hidden_size)  # (D, B, H)
        return [
            torch.bernoulli(torch.full(shape, keep, dtype=ref.dtype, device=ref.device)) / keep
            for _ in range(self.num_layers)
        ]

    def _choose_path(self, return_gates: bool, x: Tensor) -> str:
        impl = fused.FORCE_IMPL or self.impl
        if return_gates or impl == "explicit":
            return "explicit"
        if x.device.type == "cuda" and cudnn.cudnn_applicable(self):
            return "cudnn"
        if impl == "fused" or fused.fused_applicable(x):
            return "fused"
        return "explicit"

    def forward(
        self,
        x: Tensor,
        lengths: LengthsLike = None,
        h0: Tensor | None = None,
        return_gates: bool = False,
    ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, list[dict[str, Tensor]]]:
        """Run the GRU over a padded batch.

        Args:
            x: (B, T, E) if batch_first else (T, B, E).
            lengths: (B,) true lengths (CPU LongTensor or list, values in [0, T]); None = all T.
                Steps at t >= length neither change that sequence's state nor appear in the
                output; the reverse direction starts at each sequence's last real token.
            h0: (L*D, B, H) initial states, zeros when None.
            return_gates: also return the gates (forces the explicit path).

        Returns:
            output: (B, T, D*H) if batch_first else (T, B, D*H), the last layer's states
                (forward half then reverse half), zeros at t >= length.
            h_n: (L*D, B, H), each sequence's true last state per layer and direction (forward:
                state at t = length-1; reverse: state after t = 0), layer-major like torch.
            gates (only when return_gates): a list with one dict per layer, keys ``"r"``, ``"z"``,
                ``"n"``, ``"h"``, each (B, T, D, H) with direction 0 forward and 1 reverse,
                indexed by input position t (for the reverse direction, the step that read x_t);
                ``"h"`` is the state after that step. Zeros at t >= length. These are exactly
                the tensors the forward pass computed with (they carry autograd history).
        """
        check_input(x, self.input_size)
        if self.batch_first:
            x = x.transpose(0, 1)  # (B, T, E) -> (T, B, E)
        T, B, _ = x.shape
        lengths_t = check_lengths(lengths, B, T)
        L, D, H = self.num_layers, self.num_directions, self.hidden_size
        if h0 is None:
            h0 = x.new_zeros(L * D, B, H)  # (L*D, B, H)
        else:
            check_state(h0, (L * D, B, H))
        path = self._choose_path(return_gates, x)
        self.last_path = path
        gates: list[dict[str, Tensor]] | None = None
        if path == "cudnn":
            out, h_n = cudnn.cudnn_gru(self, x, lengths_t, h0)
        elif path == "fused":
            out, h_n = fused.gru_forward(self, x, lengths_t, h0, self._recurrent_masks(B, x))
        else:
            out, h_n, gates = self._forward_explicit(x, lengths_t, h0, return_gates)
        if self.batch_first:
            out = out.transpose(0, 1)  # (T, B, D*H) -> (B, T, D*H)
        if return_gates:
            assert gates is not None
            return out, h_n, gates
        return out, h_n

    # ---------------------------------------------------------------------------------------
    # the reference path

    def _forward_explicit(
        self, x: Tensor, lengths: Tensor | None, h0: Tensor, capture: bool
    ) -> tuple[Tensor, Tensor, list[dict[str, Tensor]] | None]:
        fused.COUNTERS["explicit"] += 1
        T, B, _ = x.shape
        valid = valid_mask(lengths, T, B, x.device)  # (T, B, 1) or None
        rec_masks = self._recurrent_masks(B, x)
        layer_in = x
        h_n: list[Tensor] = []
        gates: list[dict[str, Tensor]] | None = [] if capture else None
        for layer in range(self.num_layers):
            outs, caps = [], []
            for d in range(self.num_directions):
                w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer, d)
                rec_mask = None if rec_masks is None else rec_masks[layer][d]  # (B, H)
                out, h_last, cap = _gru_direction_explicit(
                    layer_in,
                    h0[layer * self.num_directions + d],
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                    valid,
                    d == 1,
                    rec_mask,
                    self.compute_dtype,
                    capture,
                )
                outs.append(out)
                h_n.append(h_last)
                caps.append(cap)
            layer_out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # (T, B, D*H)
            if gates is not None:  # captured: every cap is a dict
                full = cast(list[dict[str, Tensor]], caps)
                gates.append(
                    {k: torch.stack([c[k] for c in full], dim=2) for k in ("r", "z", "n", "h")}
                )  # (B, T, D, H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_out = F.dropout(layer_out, self.dropout, True)
            layer_in = layer_out
        return layer_in, torch.stack(h_n, dim=0), gates  # (T, B, D*H), (L*D, B, H)


def _gru_direction_explicit(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    valid: Tensor | None,
    reverse: bool,
    rec_mask: Tensor | None,
    compute_dtype: torch.dtype | None,
    capture: bool,
) -> tuple[Tensor, Tensor, dict[str, Tensor] | None]:
    """One layer, one direction, one Python step per time step.

    x (T, B, In), h (B, H) -> output (T, B, H) zeros past length, last state (B, H), gates.
    """
    T = x.shape[0]
    gi_all = linear(x, w_ih, b_ih, compute_dtype)  # (T, B, 3H): all input projections at once
    outs: list[Tensor] = [h] * T
    rec: dict[str, list[Tensor]] = {"r": [h] * T, "z": [h] * T, "n": [h] * T, "h": [h] * T}
    steps = range(T - 1, -1, -1) if reverse else range(T)
    zero = h.new_zeros(())
    for t in steps:
        h_in = h if rec_mask is None else h * rec_mask  # variational dropout on the recurrent input
        gh = linear(h_in, w_hh, b_hh, compute_dtype)  # (B, 3H) = W_hh h + b_hh
        i_r, i_z, i_n = gi_all[t].chunk(3, dim=-1)  # 3 x (B, H)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)  # 3 x (B, H)
        r = torch.sigmoid(i_r + h_r)  # reset gate: how much of the past the candidate sees
        z = torch.sigmoid(i_z + h_z)  # update gate: how much of the past is kept
        n = torch.tanh(i_n + r * h_n)  # candidate; b_hn sits inside the reset product
        h_new = n + z * (h - n)  # = (1 - z) * n + z * h: update gate keeps the past
        if valid is not None:
            m = valid[t]  # (B, 1): True while t < length
            h = torch.where(m, h_new, h)  # padding leaves the state alone
            out = torch.where(m, h_new, zero)  # and never reaches the output
            if capture:
                r, z, n = torch.where(m, r, zero), torch.where(m, z, zero), torch.where(m, n, zero)
        else:
            h = out = h_new
        outs[t] = out
        if capture:
            rec["r"][t], rec["z"][t], rec["n"][t], rec["h"][t] = r, z, n, out
    output = torch.stack(outs, dim=0) if T else x.new_zeros(0, h.shape[0], h.shape[1])  # (T, B, H)
    cap = None
    if capture:
        cap = {
            k: (torch.stack(v, dim=1) if T else x.new_zeros(h.shape[0], 0, h.shape[1])) for k, v in rec.items()
        }  # (B, T, H)
    return output, h, cap


__all__ = ["GRU"]
