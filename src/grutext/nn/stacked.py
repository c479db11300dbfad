"""What every cell of :mod:`grutext.nn.cells` shares: the layer/direction stack, the explicit step loop.

:class:`_Stacked` walks layers and directions with inter-layer dropout and returns the encoder
interface's ``(output, h_n[, gates])``; :func:`_loop` is the plain step loop in torch ops (exact on
padded batches: a finished row keeps its state and writes zeros); :class:`_TorchCompatible` adds
torch.nn.LSTM/RNN's parameter names and initial states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grutext.errors import ConfigError
from grutext.nn.gru import (
    LengthsLike,
    check_common_args,
    check_input,
    check_lengths,
    check_state,
    valid_mask,
)


def _sfx(layer: int, direction: int) -> str:
    return f"l{layer}" + ("_reverse" if direction == 1 else "")


class _Stacked(nn.Module):
    """Shared driver: layers x directions of a step-by-step cell, lengths-aware."""

    gate_names: tuple[str, ...] = ()
    state_count = 1  # 2 for LSTM (h, c)

    def _setup(
        self, input_size: int, hidden_size: int, num_layers: int, batch_first: bool, dropout: float, bidirectional: bool
    ) -> None:
        check_common_args(input_size, hidden_size, num_layers, dropout)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.output_size = self.num_directions * hidden_size

    def _layer_in(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.output_size

    def _direction(
        self, x: Tensor, state: Any, valid: Tensor | None, layer: int, direction: int, capture: bool
    ) -> tuple[Tensor, Any, dict[str, Tensor] | None]:
        raise NotImplementedError

    def _run(self, x: Tensor, lengths: LengthsLike, h0: Any, return_gates: bool) -> tuple[Any, ...]:
        check_input(x, self.input_size)
        if self.batch_first:
            x = x.transpose(0, 1)  # (B, T, E) -> (T, B, E)
        T, B, _ = x.shape
        lengths_t = check_lengths(lengths, B, T)
        valid = valid_mask(lengths_t, T, B, x.device)  # (T, B, 1) or None
        L, D, H = self.num_layers, self.num_directions, self.hidden_size
        shape = (L * D, B, H)
        if h0 is None:
            states = [x.new_zeros(shape) for _ in range(self.state_count)]  # each (L*D, B, H)
        elif self.state_count == 1:
            check_state(h0, shape)
            states = [h0]
        else:
            if not isinstance(h0, (tuple, list)) or len(h0) != 2:
                from grutext.errors import DataError

                raise DataError(f"h0: expected a tuple (h0, c0) of (L*D, B, H) tensors, got {type(h0).__name__}")
            check_state(h0[0], shape, "h0[0]")
            check_state(h0[1], shape, "h0[1]")
            states = list(h0)
        finals: list[list[Tensor]] = [[] for _ in range(self.state_count)]
        gates: list[dict[str, Tensor]] | None = [] if return_gates else None
        layer_in = x
        for layer in range(L):
            outs, caps = [], []
            for d in range(D):
                s0 = tuple(s[layer * D + d] for s in states)  # each (B, H)
                out, s_last, cap = self._direction(layer_in, s0, valid, layer, d, return_gates)
                outs.append(out)
                caps.append(cap)
                for i, s in enumerate(s_last):
                    finals[i].append(s)
            layer_out = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (T, B, D*H)
            if gates is not None:  # captured: every cap is a dict
                full = cast(list[dict[str, Tensor]], caps)
                gates.append({k: torch.stack([c[k] for c in full], dim=2) for k in full[0]})  # (B, T, D, H)
            if self.dropout and self.training and layer < L - 1:
                layer_out = F.dropout(layer_out, self.dropout, True)
            layer_in = layer_out
        out = layer_in.transpose(0, 1) if self.batch_first else layer_in  # (T, B, D*H) -> (B, T, D*H)
        h_n_list = [torch.stack(f, dim=0) for f in finals]  # each (L*D, B, H)
        h_n: Any = h_n_list[0] if self.state_count == 1 else (h_n_list[0], h_n_list[1])
        return (out, h_n, gates) if return_gates else (out, h_n)


def _loop(
    x_proj: Tensor,
    state: tuple[Tensor, ...],
    valid: Tensor | None,
    reverse: bool,
    capture: bool,
    step: Callable[[Tensor, tuple[Tensor, ...]], tuple[tuple[Tensor, ...], dict[str, Tensor]]],
) -> tuple[Tensor, tuple[Tensor, ...], dict[str, Tensor] | None]:
    """Step loop shared by the explicit cells: x_proj (T, B, G*H) -> out (T, B, H), final state, gates.

    `step(x_proj_t, state) -> (new_state, gates_t)`; new_state[0] is the output h.
    """
    T = x_proj.shape[0]
    h = state[0]
    zero = h.new_zeros(())
    outs: list[Tensor] = [h] * T
    rec: dict[str, list[Tensor]] = {}
    for t in range(T - 1, -1, -1) if reverse else range(T):
        new_state, g = step(x_proj[t], state)
        if valid is not None:
            m = valid[t]  # (B, 1): True while t < length
            state = tuple(
                torch.where(m, n, o) for n, o in zip(new_state, state, strict=True)
            )  # padding keeps the state
            out = torch.where(m, new_state[0], zero)
            if capture:
                g = {k: torch.where(m, v, zero) for k, v in g.items()}
        else:
            state = new_state
            out = new_state[0]
        outs[t] = out
        if capture:
            g["h"] = out
            for k, v in g.items():
                rec.setdefault(k, [h] * T)[t] = v
    B, H = h.shape
    output = torch.stack(outs, 0) if T else h.new_zeros(0, B, H)  # (T, B, H)
    cap = None
    if capture:
        cap = {k: torch.stack(v, 1) for k, v in rec.items()} if T else {}  # each (B, T, H)
    return output, state, cap


class _TorchCompatible(_Stacked):
    """LSTM and RNN: the explicit loop of :class:`_Stacked`, or a fast path (:mod:`grutext.nn.fused_cells`)."""

    kind = "lstm"  # "lstm" | "rnn_tanh" | "rnn_relu": the recurrence the fast paths run
    impl = "auto"
    last_path: str | None = None  # "torch" | "fused" | "explicit" after each forward

    def _forward(self, x: Tensor, lengths: LengthsLike, h0: Any, return_gates: bool) -> tuple[Any, ...]:
        from grutext.nn import fused_cells

        check_input(x, self.input_size)
        xt = x.transpose(0, 1) if self.batch_first else x  # (B, T, E) -> (T, B, E)
        T, B, _ = xt.shape
        lengths_t = check_lengths(lengths, B, T)
        path = fused_cells.choose_path(self, xt, lengths_t, return_gates)
        self.last_path = path
        if path == "explicit":
            fused_cells.COUNTERS["lstm_explicit" if self.kind == "lstm" else "rnn_explicit"] += 1
            return self._run(x, lengths, h0, return_gates)
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        states = self._initial_states(xt, h0, shape)
        out, finals = fused_cells.stacked_forward(self, self.kind, path, xt, lengths_t, states)
        out = out.transpose(0, 1) if self.batch_first else out  # (T, B, D*H) -> (B, T, D*H)
        return out, (finals[0], finals[1]) if self.state_count == 2 else finals[0]

    def _initial_states(self, x: Tensor, h0: Any, shape: tuple[int, int, int]) -> list[Tensor]:
        if h0 is None:
            return [x.new_zeros(shape) for _ in range(self.state_count)]  # each (L*D, B, H)
        if self.state_count == 1:
            check_state(h0, shape)
            return [h0]
        if not isinstance(h0, (tuple, list)) or len(h0) != 2:
            from grutext.errors import DataError

            raise DataError(f"h0: expected a tuple (h0, c0) of (L*D, B, H) tensors, got {type(h0).__name__}")
        check_state(h0[0], shape, "h0[0]")
        check_state(h0[1], shape, "h0[1]")
        return list(h0)


def _check_impl(impl: str) -> str:
    from grutext.nn.fused_cells import PATHS

    if impl not in ("auto", *PATHS):
        raise ConfigError(f"impl: expected one of {['auto', *PATHS]}, got {impl!r}")
    return impl


def _reverse_padded(x: Tensor, valid: Tensor | None) -> Tensor:
    """Reverse each sequence's first `length` steps along T, leaving padding where it is. (T, B, ·)."""
    if valid is None:
        return x.flip(0)
    T = x.shape[0]
    lengths = valid.squeeze(-1).sum(0)  # (B,)
    t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    idx = torch.where(t < lengths, lengths - 1 - t, t)  # (T, B) source index
    return torch.gather(x, 0, idx.unsqueeze(-1).expand_as(x))  # (T, B, ·)
