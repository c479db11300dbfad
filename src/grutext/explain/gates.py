"""Gate traces: what each GRU layer did at each token, from the engine's own gate capture.

For every layer l, direction d (0 forward, 1 reverse), token position t and unit:

- ``z``: update gate, ``r``: reset gate, ``n``: candidate state (torch.nn.GRU convention)::

      r_t = σ(W_ir x_t + b_ir + W_hr h_prev + b_hr)
      z_t = σ(W_iz x_t + b_iz + W_hz h_prev + b_hz)
      n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_prev + b_hn))
      h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_prev          # z near 1 keeps the past

- ``dh``: the hidden-state change ``|h_t − h_prev|`` (h_prev is the state before the step that
  read x_t: position t−1 for the forward direction, t+1 for the reverse one; zeros at the start);
- ``retention``: how much of token i's write survives to the direction's last step, per unit:
  the product of the update gates of every step processed after i, ``Π_{t>i} z_t`` forward and
  ``Π_{t<i} z_t`` reverse (1 for the last step processed). Token i's write ``(1 − z_i) ⊙ n_i``
  reaches the final state multiplied by exactly this factor.

The numbers are the tensors of the model's forward pass (`return_gates=True`), not a re-run.
Only real tokens appear: padding positions are cut off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from grutext.errors import ConfigError

if TYPE_CHECKING:
    from grutext.tasks.classification.model import TextClassifier

GATE_CELLS = ("gru", "lngru", "mingru")
DIRECTIONS = ("forward", "reverse")


@dataclass
class GateTrace:
    """Per-layer, per-direction, per-token, per-unit gate values of one text.

    Arrays are ``(L, D, T, H)``: layers, directions (0 forward, 1 reverse), real tokens only,
    hidden units. ``r`` is NaN for cells without a reset gate (minGRU).

    Attributes:
        tokens: the T token strings.
        z, r, n, h: update gate, reset gate, candidate, state after the step.
        dh: ``|h_t − h_prev|`` per unit.
        retention: fraction of each token's write that survives to the last step, per unit.
    """

    tokens: list[str]
    z: np.ndarray
    r: np.ndarray
    n: np.ndarray
    h: np.ndarray
    dh: np.ndarray
    retention: np.ndarray
    cell: str = "gru"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return int(self.z.shape[0])

    @property
    def num_directions(self) -> int:
        return int(self.z.shape[1])

    def mean(self, name: str) -> np.ndarray:
        """Unit-mean of one signal (``"z"``, ``"r"``, ``"n"``, ``"dh"``, ``"retention"``): ``(L, D, T)``."""
        return getattr(self, name).mean(axis=-1)  # (L, D, T, H) -> (L, D, T)

    def rows(self) -> list[dict[str, Any]]:
        """A tidy table: one dict per (token, layer, direction) with the unit means."""
        means = {k: self.mean(k) for k in ("z", "r", "n", "dh", "retention")}  # each (L, D, T)
        out = []
        for t, tok in enumerate(self.tokens):
            for layer in range(self.num_layers):
                for d in range(self.num_directions):
                    out.append(
                        {
                            "token": tok,
                            "position": t,
                            "layer": layer,
                            "direction": DIRECTIONS[d],
                            "z_mean": float(means["z"][layer, d, t]),
                            "r_mean": float(means["r"][layer, d, t]),
                            "n_mean": float(means["n"][layer, d, t]),
                            "dh": float(means["dh"][layer, d, t]),
                            "retention": float(means["retention"][layer, d, t]),
                        }
                    )
        return out


def retention_from_z(keep: torch.Tensor, reverse: bool) -> torch.Tensor:
    """Product of the keep gates of every step processed after each position.

    Args:
        keep: ``(T, H)`` fraction of the old state kept at each step (z for a GRU), real tokens only.
        reverse: the direction read the tokens from T−1 down to 0.

    Returns:
        ``(T, H)``: forward ``ret[i] = Π_{t>i} keep[t]``; reverse ``ret[i] = Π_{t<i} keep[t]``.
    """
    T = keep.shape[0]
    ones = keep.new_ones(1, *keep.shape[1:])  # (1, H)
    if T == 0:
        return keep.clone()
    if reverse:
        prefix = torch.cumprod(keep, dim=0)  # (T, H): prefix[i] = Π_{t<=i}
        return torch.cat([ones, prefix[:-1]], dim=0)  # shift: Π_{t<i}
    suffix = torch.cumprod(keep.flip(0), dim=0).flip(0)  # (T, H): suffix[i] = Π_{t>=i}
    return torch.cat([suffix[1:], ones], dim=0)  # shift: Π_{t>i}


def _cell_of(model: torch.nn.Module) -> str:
    cell = getattr(model, "cell", None)
    if cell is None:  # language models keep their cell in the encoder's class
        name = type(getattr(model, "encoder", model)).__name__.lower()
        cell = {"gru": "gru", "layernormgru": "lngru", "mingru": "mingru", "lstm": "lstm", "rnn": "rnn"}.get(name, name)
    return str(cell)


def check_gate_cell(cell: str) -> None:
    """Raise ConfigError unless `cell` exposes GRU gates."""
    if cell not in GATE_CELLS:
        raise ConfigError(
            f"gate traces: expected a model with a GRU-family cell ({', '.join(GATE_CELLS)}); got cell {cell!r}"
        )


def traces_from_gates(
    gates: Sequence[dict[str, torch.Tensor]],
    lengths: Sequence[int] | torch.Tensor,
    tokens: Sequence[Sequence[str]] | None = None,
    cell: str = "gru",
) -> list[GateTrace]:
    """Turn the encoder's captured gates into one `GateTrace` per sequence, padding cut off.

    Args:
        gates: the encoder's ``return_gates`` list: one dict per layer with ``"z"``, ``"h"`` (and
            ``"r"``, ``"n"`` for a GRU, ``"h_tilde"`` for minGRU), each ``(B, T, D, H)``.
        lengths: ``(B,)`` real lengths.
        tokens: B lists of token strings (default: the positions as strings).
        cell: ``"gru"``, ``"lngru"`` or ``"mingru"`` (minGRU keeps ``1 − z`` of the past).

    Returns:
        B traces, each with arrays ``(L, D, T_b, H)``.
    """
    check_gate_cell(cell)
    lengths = [int(x) for x in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)]
    traces = []
    for b, T in enumerate(lengths):
        per: dict[str, list[torch.Tensor]] = {k: [] for k in ("z", "r", "n", "h", "dh", "retention")}
        for layer in gates:
            z = layer["z"][b, :T].detach()  # (T, D, H), real tokens only
            h = layer["h"][b, :T].detach()  # (T, D, H)
            r = layer["r"][b, :T].detach() if "r" in layer else torch.full_like(z, float("nan"))
            n = (layer["n"] if "n" in layer else layer["h_tilde"])[b, :T].detach()
            keep = 1.0 - z if cell == "mingru" else z  # minGRU: h = (1 − z) h_prev + z h̃
            D = z.shape[1]
            dh_d, ret_d = [], []
            for d in range(D):
                hd = h[:, d]  # (T, H)
                zeros = hd.new_zeros(1, hd.shape[1])  # (1, H): the initial state
                # (T, H): the state before reading x_t; the reverse direction came from t + 1
                prev = torch.cat([zeros, hd[:-1]], dim=0) if d == 0 else torch.cat([hd[1:], zeros], dim=0)
                dh_d.append((hd - prev).abs())
                ret_d.append(retention_from_z(keep[:, d], reverse=d == 1))
            per["z"].append(z.transpose(0, 1))  # (T, D, H) -> (D, T, H)
            per["r"].append(r.transpose(0, 1))
            per["n"].append(n.transpose(0, 1))
            per["h"].append(h.transpose(0, 1))
            per["dh"].append(torch.stack(dh_d, 0))  # (D, T, H)
            per["retention"].append(torch.stack(ret_d, 0))  # (D, T, H)
        arrays = {k: torch.stack(v, 0).cpu().numpy() for k, v in per.items()}  # (L, D, T, H)
        toks = list(tokens[b]) if tokens is not None else [str(t) for t in range(T)]
        traces.append(
            GateTrace(
                tokens=toks,
                cell=cell,
                z=arrays["z"],
                r=arrays["r"],
                n=arrays["n"],
                h=arrays["h"],
                dh=arrays["dh"],
                retention=arrays["retention"],
            )
        )
    return traces


def trace_batch(
    model: TextClassifier, ids: torch.Tensor, lengths: torch.Tensor, tokens: Sequence[Sequence[str]] | None = None
) -> tuple[list[GateTrace], dict[str, Any]]:
    """Run a classifier's forward pass with gate capture and cut the gates per sequence.

    Args:
        model: a `TextClassifier` with a GRU-family cell (put in eval mode by the caller).
        ids: ``(B, T)`` padded ids.
        lengths: ``(B,)`` real lengths.
        tokens: optional token strings per sequence.

    Returns:
        ``(traces, encoded)``: one `GateTrace` per sequence and the dict of `model.encode`.
    """
    cell = _cell_of(model)
    check_gate_cell(cell)
    with torch.no_grad():
        enc = model.encode(ids, lengths, return_gates=True)
    return traces_from_gates(enc["gates"], lengths, tokens, cell), enc


def summarize_gates(
    gates: Sequence[dict[str, torch.Tensor]], length: int, tokens: Sequence[str], cell: str = "gru"
) -> list[dict[str, Any]]:
    """Per-layer, per-direction gate summary of one sequence, for the pipeline trace.

    Args:
        gates: the encoder's captured gates (batch row 0 is summarised).
        length: the sequence's real length T.
        tokens: its T token strings.
        cell: the encoder's cell.

    Returns:
        One dict per (layer, direction): ``layer`` (1-based), ``direction``, ``z_mean``,
        ``r_mean``, ``dh_mean`` (mean |Δh| over tokens and units), ``most_retained`` (the token
        whose write survives best to the direction's last step, last token excluded when there
        are others), ``most_retained_position``, ``retention`` (its mean retention).

    Example:
        >>> for row in summarize_gates(enc["gates"], len(ids), tokens):   # doctest: +SKIP
        ...     print(row["layer"], row["direction"], f"{row['z_mean']:.3f}", row["most_retained"])
    """
    trace = traces_from_gates([{k: v[:1] for k, v in g.items()} for g in gates], [length], [tokens], cell)[0]
    rows = []
    for layer in range(trace.num_layers):
        for d in range(trace.num_directions):
            ret = trace.retention[layer, d].mean(-1)  # (T,)
            cand = ret.copy()
            last = length - 1 if d == 0 else 0  # the last step processed always retains 1
            if length > 1:
                cand[last] = -1.0
            i = int(cand.argmax())
            r = trace.r[layer, d]  # (T, H), NaN for minGRU
            rows.append(
                {
                    "layer": layer + 1,
                    "direction": DIRECTIONS[d],
                    "z_mean": float(trace.z[layer, d].mean()),
                    "r_mean": float("nan") if np.isnan(r).all() else float(np.nanmean(r)),
                    "dh_mean": float(trace.dh[layer, d].mean()),
                    "most_retained": trace.tokens[i],
                    "most_retained_position": i,
                    "retention": float(ret[i]),
                }
            )
    return rows


def gate_summary(loaded: Any, text: str) -> list[dict[str, Any]]:
    """`summarize_gates` for a loaded classifier and a text (tokenized and truncated as in training).

    Args:
        loaded: a `LoadedModel` classifier with a GRU-family cell.
        text: the input text.

    Returns:
        One dict per (layer, direction), see `summarize_gates`.
    """
    from grutext.explain.prepare import prepare

    inp = prepare(loaded, text)
    model = loaded.model.eval()
    cell = _cell_of(model)
    check_gate_cell(cell)
    with torch.no_grad():
        enc = model.encode(inp.ids_tensor, inp.lengths, return_gates=True)
    return summarize_gates(enc["gates"], len(inp.ids), inp.tokens, cell)


__all__ = ["GateTrace", "retention_from_z", "traces_from_gates", "trace_batch", "summarize_gates", "gate_summary"]
