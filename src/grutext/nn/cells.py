"""Other recurrent cells behind the GRU's encoder interface, and `make_encoder`.

Every encoder here has ``forward(x, lengths=None, h0=None, return_gates=False)`` returning
``(output, h_n)`` (or ``(output, h_n, gates)``), zeros in the output past each sequence's length,
and the attributes ``hidden_size``, ``num_layers``, ``num_directions`` and ``output_size``.

- :class:`LSTM`: torch.nn.LSTM parameters (gates i, f, g, o); h_n is ``(h_n, c_n)``.
- :class:`RNN`: Elman RNN, h' = tanh(W_ih x + b_ih + W_hh h + b_hh).
- :class:`MinGRU`: Feng et al. 2024, parallel log-space scan for training, ``step()`` for inference.
- :class:`LayerNormGRU`: GRU with LayerNorm on each gate's input and recurrent projection.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grutext.errors import ConfigError
from grutext.nn.gru import (
    GRU,
    LengthsLike,
)
from grutext.nn.init import check_init, init_recurrent_
from grutext.nn.mingru import MinGRU
from grutext.nn.stacked import _check_impl, _loop, _sfx, _Stacked, _TorchCompatible

CELLS = ("gru", "lstm", "rnn", "mingru", "lngru")


class LSTM(_TorchCompatible):
    """Lengths-aware multi-layer LSTM with torch.nn.LSTM's parameters (gates i, f, g, o).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: as torch.nn.LSTM.
        init: ``"default"`` | ``"orthogonal"`` | ``"xavier"``.
        impl: ``"auto"`` (default: torch's kernel when every sequence has the full length, else
            the C++ loop on CPU; the explicit loop when gates are requested), ``"torch"``,
            ``"fused"`` or ``"explicit"``; see :mod:`grutext.nn.fused_cells`, whose
            ``FORCE_IMPL`` overrides it globally. Every path computes the same function.

    ``forward(x, lengths=None, h0=None, return_gates=False)``: x (B, T, E) if batch_first else
    (T, B, E); h0 a tuple (h0, c0) of (L*D, B, H). Returns output (B, T, D*H) (zeros past length)
    and ``(h_n, c_n)`` each (L*D, B, H); gates (when asked) a list per layer of dicts with keys
    i, f, g, o, c, h each (B, T, D, H). ``last_path`` names the path the last forward took.
    """

    state_count = 2

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
        init: str = "default",
        impl: str = "auto",
    ) -> None:
        super().__init__()
        self._setup(input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)
        self.bias = bool(bias)
        self.init = check_init(init)
        self.impl = _check_impl(impl)
        H = hidden_size
        for layer in range(num_layers):
            for d in range(self.num_directions):
                s = _sfx(layer, d)
                self.register_parameter(f"weight_ih_{s}", nn.Parameter(torch.empty(4 * H, self._layer_in(layer))))
                self.register_parameter(f"weight_hh_{s}", nn.Parameter(torch.empty(4 * H, H)))
                if self.bias:
                    self.register_parameter(f"bias_ih_{s}", nn.Parameter(torch.empty(4 * H)))
                    self.register_parameter(f"bias_hh_{s}", nn.Parameter(torch.empty(4 * H)))
        init_recurrent_(self, self.init, H)

    def _direction(self, x, state, valid, layer, direction, capture):
        s = _sfx(layer, direction)
        w_hh = getattr(self, f"weight_hh_{s}")
        b_hh = getattr(self, f"bias_hh_{s}") if self.bias else None
        x_proj = F.linear(
            x, getattr(self, f"weight_ih_{s}"), getattr(self, f"bias_ih_{s}") if self.bias else None
        )  # (T, B, 4H)

        def step(xp: Tensor, st: tuple[Tensor, ...]) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
            h, c = st
            gates = xp + F.linear(h, w_hh, b_hh)  # (B, 4H)
            i, f, g, o = gates.chunk(4, dim=-1)  # 4 x (B, H)
            i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)  # input, forget, output gates
            g = torch.tanh(g)  # candidate cell
            c = f * c + i * g  # forget gate keeps the old cell, input gate writes the new
            h = o * torch.tanh(c)  # output gate exposes the cell
            return (h, c), {"i": i, "f": f, "g": g, "o": o, "c": c}

        return _loop(x_proj, state, valid, direction == 1, capture, step)

    def forward(
        self,
        x: Tensor,
        lengths: LengthsLike = None,
        h0: tuple[Tensor, Tensor] | None = None,
        return_gates: bool = False,
    ) -> tuple[Any, ...]:
        """See the class docstring."""
        return self._forward(x, lengths, h0, return_gates)


class RNN(_TorchCompatible):
    """Lengths-aware Elman RNN: h' = act(W_ih x + b_ih + W_hh h + b_hh), torch.nn.RNN's parameters.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: as torch.nn.RNN.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        init: ``"default"`` | ``"orthogonal"`` | ``"xavier"``.
        impl: ``"auto"`` | ``"torch"`` | ``"fused"`` | ``"explicit"``, as :class:`LSTM`.

    Returns from forward: output (B, T, D*H) zeros past length, h_n (L*D, B, H) [, gates {"h"}].
    """

    @property
    def kind(self) -> str:  # type: ignore[override]
        """The recurrence the fast paths run: "rnn_tanh" or "rnn_relu" (derived, so old pickles stay right)."""
        return f"rnn_{self.nonlinearity}"

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
        nonlinearity: str = "tanh",
        init: str = "default",
        impl: str = "auto",
    ) -> None:
        super().__init__()
        self._setup(input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.bias = bool(bias)
        self.init = check_init(init)
        self.impl = _check_impl(impl)
        H = hidden_size
        for layer in range(num_layers):
            for d in range(self.num_directions):
                s = _sfx(layer, d)
                self.register_parameter(f"weight_ih_{s}", nn.Parameter(torch.empty(H, self._layer_in(layer))))
                self.register_parameter(f"weight_hh_{s}", nn.Parameter(torch.empty(H, H)))
                if self.bias:
                    self.register_parameter(f"bias_ih_{s}", nn.Parameter(torch.empty(H)))
                    self.register_parameter(f"bias_hh_{s}", nn.Parameter(torch.empty(H)))
        init_recurrent_(self, self.init, H)

    def _direction(self, x, state, valid, layer, direction, capture):
        s = _sfx(layer, direction)
        w_hh = getattr(self, f"weight_hh_{s}")
        b_hh = getattr(self, f"bias_hh_{s}") if self.bias else None
        x_proj = F.linear(
            x, getattr(self, f"weight_ih_{s}"), getattr(self, f"bias_ih_{s}") if self.bias else None
        )  # (T, B, H)
        act = torch.tanh if self.nonlinearity == "tanh" else torch.relu

        def step(xp: Tensor, st: tuple[Tensor, ...]) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
            h = act(xp + F.linear(st[0], w_hh, b_hh))  # (B, H)
            return (h,), {}

        return _loop(x_proj, state, valid, direction == 1, capture, step)

    def forward(
        self, x: Tensor, lengths: LengthsLike = None, h0: Tensor | None = None, return_gates: bool = False
    ) -> tuple[Any, ...]:
        """See the class docstring."""
        return self._forward(x, lengths, h0, return_gates)


class LayerNormGRU(_Stacked):
    """GRU with LayerNorm (Ba et al. 2016) on each gate's input and recurrent projections.

    Per gate block (normalised over H separately for r, z, n)::

        a = LN_ih(W_ih x),  b = LN_hh(W_hh h)          (each LN has gain and bias (3H,))
        r = σ(a_r + b_r);  z = σ(a_z + b_z);  n = tanh(a_n + r * b_n);  h' = (1 - z) * n + z * h

    Parameters: ``weight_ih_l{k}[_reverse]`` (3H, in), ``weight_hh_l{k}`` (3H, H),
    ``ln_ih_weight_l{k}``, ``ln_ih_bias_l{k}``, ``ln_hh_weight_l{k}``, ``ln_hh_bias_l{k}`` (3H,).
    forward as :class:`grutext.nn.gru.GRU` (gates r, z, n, h).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        init: str = "orthogonal",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self._setup(input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)
        self.init = check_init(init)
        self.eps = float(eps)
        H = hidden_size
        for layer in range(num_layers):
            for d in range(self.num_directions):
                s = _sfx(layer, d)
                self.register_parameter(f"weight_ih_{s}", nn.Parameter(torch.empty(3 * H, self._layer_in(layer))))
                self.register_parameter(f"weight_hh_{s}", nn.Parameter(torch.empty(3 * H, H)))
                for which in ("ih", "hh"):
                    self.register_parameter(f"ln_{which}_weight_{s}", nn.Parameter(torch.ones(3 * H)))
                    self.register_parameter(f"ln_{which}_bias_{s}", nn.Parameter(torch.zeros(3 * H)))
        init_recurrent_(self, self.init, H)

    def _ln(self, y: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        shape = y.shape
        y = y.reshape(*shape[:-1], 3, self.hidden_size)  # (..., 3H) -> (..., 3, H)
        y = F.layer_norm(y, (self.hidden_size,), eps=self.eps)  # each gate normalised on its own
        return y.reshape(shape) * weight + bias  # (..., 3, H) -> (..., 3H)

    def _direction(self, x, state, valid, layer, direction, capture):
        s = _sfx(layer, direction)
        w_hh = getattr(self, f"weight_hh_{s}")
        ln_hh = (getattr(self, f"ln_hh_weight_{s}"), getattr(self, f"ln_hh_bias_{s}"))
        x_proj = self._ln(
            F.linear(x, getattr(self, f"weight_ih_{s}")),
            getattr(self, f"ln_ih_weight_{s}"),
            getattr(self, f"ln_ih_bias_{s}"),
        )  # (T, B, 3H)

        def step(xp: Tensor, st: tuple[Tensor, ...]) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
            h = st[0]
            gh = self._ln(F.linear(h, w_hh), *ln_hh)  # (B, 3H)
            i_r, i_z, i_n = xp.chunk(3, dim=-1)  # 3 x (B, H)
            h_r, h_z, h_n = gh.chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h_r)  # reset gate
            z = torch.sigmoid(i_z + h_z)  # update gate
            n = torch.tanh(i_n + r * h_n)  # candidate
            h = n + z * (h - n)  # = (1 - z) * n + z * h: update gate keeps the past
            return (h,), {"r": r, "z": z, "n": n}

        return _loop(x_proj, state, valid, direction == 1, capture, step)

    def forward(
        self, x: Tensor, lengths: LengthsLike = None, h0: Tensor | None = None, return_gates: bool = False
    ) -> tuple[Any, ...]:
        """See the class docstring."""
        return self._run(x, lengths, h0, return_gates)


def make_encoder(
    cell: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    **options: Any,
) -> GRU | _Stacked:
    """Build a batch-first, lengths-aware recurrent encoder.

    Args:
        cell: ``"gru"``, ``"lstm"``, ``"rnn"``, ``"mingru"`` or ``"lngru"``.
        input_size: E.
        hidden_size: H.
        num_layers: L.
        bidirectional: D = 2 when True.
        dropout: between layers (training only).
        **options: passed to the cell's class (e.g. ``init="orthogonal"``; for "gru" also
            ``compute_dtype``, ``recurrent_dropout``, ``weight_drop``, ``impl``).

    Returns:
        A module with ``forward(x (B, T, E), lengths (B,) | None = None, h0=None,
        return_gates=False) -> (output (B, T, D*H) zeros past length, h_n)`` and attributes
        ``hidden_size``, ``num_layers``, ``num_directions``, ``output_size`` (= D*H).
        h_n is (L*D, B, H), or a tuple (h_n, c_n) for "lstm".

    Example:
        >>> enc = make_encoder("gru", 32, 64, bidirectional=True)
        >>> out, h_n = enc(torch.randn(4, 7, 32), torch.tensor([7, 3, 5, 1]))
        >>> out.shape
        torch.Size([4, 7, 128])
    """
    classes: dict[str, type[GRU] | type[_Stacked]] = {
        "gru": GRU,
        "lstm": LSTM,
        "rnn": RNN,
        "mingru": MinGRU,
        "lngru": LayerNormGRU,
    }
    if cell not in classes:
        raise ConfigError(f"cell: expected one of {list(CELLS)}, got {cell!r}")
    try:
        return classes[cell](
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout,
            bidirectional=bidirectional,
            **options,
        )
    except TypeError as exc:
        raise ConfigError(f"options: {cell!r} encoder does not accept {sorted(options)}: {exc}") from exc


__all__ = ["CELLS", "LSTM", "RNN", "MinGRU", "LayerNormGRU", "make_encoder"]
