"""LSTM and RNN fast paths: each runs when expected and computes torch.nn.LSTM/RNN's function, lengths exact."""

from __future__ import annotations

import pytest
import torch

from grutext.errors import ConfigError
from grutext.nn import fused_cells
from grutext.nn.cells import LSTM, RNN

E, H, B, T = 5, 6, 4, 7
LENGTHS = [7, 3, 0, 5]  # a full row, short rows and an empty one


def _needs_ext() -> None:
    if not fused_cells.extension_available():
        pytest.skip("C++ extension unavailable (no compiler)")


def _make(cell: str, layers: int, bi: bool, batch_first: bool, bias: bool = True) -> torch.nn.Module:
    if cell == "lstm":
        return LSTM(E, H, layers, bias=bias, batch_first=batch_first, bidirectional=bi)
    return RNN(E, H, layers, bias=bias, batch_first=batch_first, bidirectional=bi, nonlinearity=cell[4:] or "tanh")


def _run(m: torch.nn.Module, x: torch.Tensor, states: list[torch.Tensor], lengths: list[int] | None) -> list:
    """out, final states, and the gradients of x, the initial states and every parameter."""
    m.zero_grad()
    xx = x.detach().clone().requires_grad_(True)
    ss = [s.detach().clone().requires_grad_(True) for s in states]
    out, h_n = m(xx, lengths, tuple(ss) if len(ss) == 2 else ss[0])
    finals = list(h_n) if isinstance(h_n, tuple) else [h_n]
    g = torch.Generator().manual_seed(5)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum() + sum((f * f).sum() for f in finals)
    loss.backward()
    return [out.detach(), *[f.detach() for f in finals], xx.grad, *[s.grad for s in ss]] + [
        p.grad.clone() for p in m.parameters()
    ]


def _torch_reference(cell: str, m: torch.nn.Module, x: torch.Tensor, states: list, lengths: list[int] | None) -> list:
    """The same quantities from torch.nn.LSTM/RNN run on each sequence alone, cut to its length."""
    bf = m.batch_first
    cls = torch.nn.LSTM if cell == "lstm" else torch.nn.RNN
    kw = {} if cell == "lstm" else {"nonlinearity": cell[4:] or "tanh"}
    ref = cls(E, H, m.num_layers, bias=m.bias, batch_first=bf, bidirectional=m.bidirectional, **kw).to(x.dtype)
    ref.load_state_dict(m.state_dict())
    xb = x if bf else x.transpose(0, 1)  # (B, T, E)
    lens = lengths if lengths is not None else [T] * B
    out_full = torch.zeros(B, T, m.output_size, dtype=x.dtype)
    finals = [torch.zeros_like(s) for s in states]
    dx = torch.zeros_like(xb)
    dstates = [torch.zeros_like(s) for s in states]
    grads = {n: torch.zeros_like(p) for n, p in ref.named_parameters()}
    g = torch.Generator().manual_seed(5)
    weights = torch.randn((B, T, m.output_size) if bf else (T, B, m.output_size), generator=g, dtype=x.dtype)
    wb = weights if bf else weights.transpose(0, 1)
    for b, n in enumerate(lens):
        s0 = [s[:, b : b + 1].detach().clone().requires_grad_(True) for s in states]
        if n == 0:  # an empty sequence: no output, the state is the initial one
            for i, s in enumerate(s0):
                finals[i][:, b] = s[:, 0].detach()
                dstates[i][:, b] = 2 * s[:, 0].detach()
            continue
        xs = xb[b : b + 1, :n].detach().clone().requires_grad_(True)
        ref.zero_grad()
        inp = xs if bf else xs.transpose(0, 1)
        o, hn = ref(inp, tuple(s0) if len(s0) == 2 else s0[0])
        o = o if bf else o.transpose(0, 1)  # (1, n, D*H)
        fs = list(hn) if isinstance(hn, tuple) else [hn]
        ((o * wb[b : b + 1, :n]).sum() + sum((f * f).sum() for f in fs)).backward()
        out_full[b, :n] = o[0].detach()
        dx[b, :n] = xs.grad[0]
        for i, f in enumerate(fs):
            finals[i][:, b] = f[:, 0].detach()
            dstates[i][:, b] = s0[i].grad[:, 0]
        for name, p in ref.named_parameters():
            grads[name] += p.grad
    out_ref = out_full if bf else out_full.transpose(0, 1)
    dx_ref = dx if bf else dx.transpose(0, 1)
    return [out_ref, *finals, dx_ref, *dstates] + [grads[name] for name, _ in m.named_parameters()]


CELL_KINDS = ["lstm", "rnn_tanh", "rnn_relu"]


@pytest.mark.parametrize("cell", CELL_KINDS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bi", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_every_path_equals_torch_fp64(cell: str, layers: int, bi: bool, batch_first: bool, lengths) -> None:
    """Outputs, h_n/c_n and the gradients of x, h0/c0 and every weight: torch.nn.LSTM/RNN on each sequence alone."""
    _needs_ext()
    torch.manual_seed(layers + 2 * bi)
    m = _make(cell, layers, bi, batch_first).double()
    D = 2 if bi else 1
    x = torch.randn((B, T, E) if batch_first else (T, B, E), dtype=torch.float64)
    states = [torch.randn(layers * D, B, H, dtype=torch.float64) for _ in range(2 if cell == "lstm" else 1)]
    ref = _torch_reference(cell, m, x, states, lengths)
    for impl in ("fused", "torch", "explicit"):
        m.impl = impl
        got = _run(m, x, states, lengths)
        assert m.last_path == impl
        assert len(got) == len(ref)
        for a, b in zip(got, ref, strict=True):
            assert (a - b).abs().max().item() <= 1e-10, impl


@pytest.mark.parametrize("cell", CELL_KINDS)
@pytest.mark.parametrize("bi", [False, True])
def test_fused_equals_explicit_fp32(cell: str, bi: bool) -> None:
    _needs_ext()
    torch.manual_seed(0)
    m = _make(cell, 2, bi, True, bias=False)
    x = torch.randn(B, T, E) * 3  # large pre-activations exercise the saturated sigmoid/tanh
    states = [torch.randn(2 * (2 if bi else 1), B, H) for _ in range(2 if cell == "lstm" else 1)]
    m.impl = "explicit"
    ref = _run(m, x, states, LENGTHS)
    m.impl = "fused"
    got = _run(m, x, states, LENGTHS)
    assert m.last_path == "fused"
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_padding_does_not_reach_real_positions_fused() -> None:
    """Garbage in the padding changes neither the outputs nor the final states, nor the gradients."""
    _needs_ext()
    torch.manual_seed(0)
    m = LSTM(E, H, 2, batch_first=True, bidirectional=True, impl="fused").double()
    x = torch.randn(B, T, E, dtype=torch.float64)
    noisy = x.clone()
    for b, n in enumerate(LENGTHS):
        noisy[b, n:] = 1e3 * torch.randn(T - n, E, dtype=torch.float64)
    states = [torch.randn(4, B, H, dtype=torch.float64) for _ in range(2)]
    for a, b in zip(_run(m, x, states, LENGTHS), _run(m, noisy, states, LENGTHS), strict=True):
        assert (a - b).abs().max().item() <= 1e-12


@pytest.mark.parametrize("cell", ["lstm", "rnn_tanh"])
def test_spy_paths_run_when_expected(cell: str) -> None:
    _needs_ext()
    m = _make(cell, 1, True, True)
    x = torch.randn(B, T, E, requires_grad=True)
    key = "lstm" if cell == "lstm" else "rnn"
    fused_cells.reset_counters()
    out, _ = m(x, LENGTHS)  # padded batch on CPU: the C++ loop
    out.sum().backward()
    assert m.last_path == "fused" and fused_cells.COUNTERS[f"{key}_fused"] == 1
    m(x)  # every sequence full: torch's own kernel for the fp32 LSTM (oneDNN), the C++ loop for the RNN
    m(x, [T] * B)
    full = "torch" if cell == "lstm" else "fused"
    assert m.last_path == full and fused_cells.COUNTERS[f"{key}_{full}"] == 2 + (full == "fused")
    m.double()(x.double())  # fp64: the C++ loop for both
    assert m.last_path == "fused"
    _, _, gates = m(x.double(), LENGTHS, return_gates=True)  # gates: only the explicit loop captures them
    assert m.last_path == "explicit" and fused_cells.COUNTERS[f"{key}_explicit"] == 1
    assert set(gates[0]) == ({"i", "f", "g", "o", "c", "h"} if cell == "lstm" else {"h"})
    assert sum(fused_cells.COUNTERS.values()) == 5
    fused_cells.FORCE_IMPL = "explicit"
    try:
        m(x.double(), LENGTHS)
        assert m.last_path == "explicit"
    finally:
        fused_cells.FORCE_IMPL = None


def test_gates_capture_matches_the_fast_path_outputs() -> None:
    """The explicit path (gates) and the fast path return the same output and states."""
    _needs_ext()
    torch.manual_seed(0)
    m = LSTM(E, H, 2, batch_first=True, bidirectional=True).double()
    x = torch.randn(B, T, E, dtype=torch.float64)
    out, (h_n, c_n) = m(x, LENGTHS)
    assert m.last_path == "fused"
    out_g, (h_g, c_g), gates = m(x, LENGTHS, return_gates=True)
    assert m.last_path == "explicit"
    for a, b in ((out, out_g), (h_n, h_g), (c_n, c_g)):
        assert (a - b).abs().max().item() <= 1e-12
    assert (gates[-1]["h"].reshape(B, T, -1) - out).abs().max().item() <= 1e-12  # (B, T, D, H) -> (B, T, D*H)


def test_without_extension_padded_batches_take_the_explicit_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fused_cells, "BACKEND", "torch")
    m = RNN(E, H, batch_first=True)
    x = torch.randn(B, T, E)
    m(x, LENGTHS)
    assert m.last_path == "explicit"
    m(x)
    assert m.last_path == "torch"


def test_bad_impl_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="impl.*'cudnn'"):
        LSTM(E, H, impl="cudnn")
