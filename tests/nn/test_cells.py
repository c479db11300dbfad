"""make_encoder and the other cells: contract, padding invariance, parity, minGRU scan vs step."""

from __future__ import annotations

import pytest
import torch

from grutext.errors import ConfigError
from grutext.nn.cells import CELLS, LSTM, RNN, LayerNormGRU, MinGRU, make_encoder

E, H, B, T = 5, 6, 4, 7
LENGTHS = [7, 3, 1, 5]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bi", [False, True])
def test_encoder_contract(cell: str, bi: bool) -> None:
    torch.manual_seed(0)
    enc = make_encoder(cell, E, H, num_layers=2, bidirectional=bi, dropout=0.1)
    D = 2 if bi else 1
    assert (enc.hidden_size, enc.num_layers, enc.num_directions, enc.output_size) == (H, 2, D, D * H)
    x = torch.randn(B, T, E, requires_grad=True)
    out, h_n = enc(x, torch.tensor(LENGTHS))
    assert out.shape == (B, T, D * H)
    h = h_n[0] if cell == "lstm" else h_n
    assert h.shape == (2 * D, B, H)
    for b, n in enumerate(LENGTHS):
        if n < T:
            assert out[b, n:].abs().max().item() == 0
    (out.sum() + h.sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad[2, 1:].abs().max() == 0
    out2, _, gates = enc(x, LENGTHS, return_gates=True)
    assert len(gates) == 2 and all(v.shape == (B, T, D, H) for v in gates[0].values())
    plain = make_encoder(cell, E, H, num_layers=2, bidirectional=bi, dropout=0.0)
    plain.load_state_dict(enc.state_dict())
    plain.eval()
    x = x.detach()
    assert not torch.allclose(enc(x, LENGTHS)[0], plain(x, LENGTHS)[0])  # training: dropout between the layers
    enc.eval()
    torch.testing.assert_close(enc(x, LENGTHS)[0], plain(x, LENGTHS)[0])  # eval: no dropout at all


def test_unknown_cell_and_bad_options() -> None:
    with pytest.raises(ConfigError, match="cell.*gru.*'transformer'"):
        make_encoder("transformer", E, H)
    with pytest.raises(ConfigError, match="options"):
        make_encoder("lstm", E, H, compute_dtype=torch.bfloat16)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bi", [False, True])
def test_padding_invariance(cell: str, bi: bool) -> None:
    """A sequence's output and h_n do not depend on the padding or on its batch mates."""
    torch.manual_seed(1)
    enc = make_encoder(cell, E, H, num_layers=2, bidirectional=bi).double().eval()
    seq = torch.randn(4, E, dtype=torch.float64)  # the sequence of interest, length 4
    alone_out, alone_h = enc(seq.unsqueeze(0))

    def h_of(h_n):  # (L*D, B, H) or (h, c)
        return torch.cat(h_n, -1) if isinstance(h_n, tuple) else h_n

    batch = torch.randn(3, 9, E, dtype=torch.float64) * 5  # other sequences, padding = garbage
    batch[1, :4] = seq
    out, h_n = enc(batch, [9, 4, 2])
    assert (out[1, :4] - alone_out[0]).abs().max() < 1e-10
    assert out[1, 4:].abs().max() == 0
    assert (h_of(h_n)[:, 1] - h_of(alone_h)[:, 0]).abs().max() < 1e-10


@pytest.mark.parametrize("bi", [False, True])
def test_lstm_parity_with_torch(bi: bool) -> None:
    torch.manual_seed(0)
    ours = LSTM(E, H, 2, batch_first=True, bidirectional=bi).double()
    ref = torch.nn.LSTM(E, H, 2, batch_first=True, bidirectional=bi).double()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    ref.load_state_dict(ours.state_dict())
    D = 2 if bi else 1
    x = torch.randn(B, T, E, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2 * D, B, H, dtype=torch.float64)
    c0 = torch.randn(2 * D, B, H, dtype=torch.float64)
    out, (h_n, c_n) = ours(x, LENGTHS, (h0, c0))
    (out.square().sum() + h_n.sum() + c_n.sum()).backward()
    ref_grads = {n: torch.zeros_like(p) for n, p in ref.named_parameters()}
    for b, n in enumerate(LENGTHS):
        xb = x.detach()[b : b + 1, :n].clone().requires_grad_(True)
        ref.zero_grad()
        o, (hn, cn) = ref(xb, (h0[:, b : b + 1], c0[:, b : b + 1]))
        (o.square().sum() + hn.sum() + cn.sum()).backward()
        assert (out[b, :n] - o[0]).abs().max() < 1e-10
        assert (h_n[:, b] - hn[:, 0]).abs().max() < 1e-10 and (c_n[:, b] - cn[:, 0]).abs().max() < 1e-10
        assert (x.grad[b, :n] - xb.grad[0]).abs().max() < 1e-10
        for name, p in ref.named_parameters():
            ref_grads[name] += p.grad
    for name, p in ours.named_parameters():
        assert (p.grad - ref_grads[name]).abs().max() < 1e-10


@pytest.mark.parametrize("bi", [False, True])
def test_rnn_parity_with_torch(bi: bool) -> None:
    torch.manual_seed(0)
    ours = RNN(E, H, 2, bidirectional=bi).double()
    ref = torch.nn.RNN(E, H, 2, bidirectional=bi).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(T, B, E, dtype=torch.float64)
    out, h_n = ours(x)
    o, hn = ref(x)
    assert (out - o).abs().max() < 1e-10 and (h_n - hn).abs().max() < 1e-10


def test_mingru_scan_equals_step_recurrence() -> None:
    torch.manual_seed(0)
    m = MinGRU(E, H, num_layers=3).double()
    x = torch.randn(T, B, E, dtype=torch.float64) * 3
    h0 = torch.randn(3, B, H, dtype=torch.float64)  # any sign
    out, h_n = m(x, h0=h0)
    h = h0
    ys = []
    for t in range(T):
        y, h = m.step(x[t], h)
        ys.append(y)
    assert (torch.stack(ys) - out).abs().max() < 1e-10
    assert (h - h_n).abs().max() < 1e-10
    # explicit recurrence from the paper, layer 0, written out
    k, v = m._proj(x, 0, 0)
    z = torch.sigmoid(k)
    ht = torch.where(v >= 0, v + 0.5, torch.sigmoid(v))
    hh = h0[0]
    for t in range(T):
        hh = (1 - z[t]) * hh + z[t] * ht[t]
    first_layer = m(x, h0=h0, return_gates=True)[2][0]["h"]  # (B, T, 1, H)
    assert (first_layer[:, -1, 0] - hh).abs().max() < 1e-10


def test_mingru_fp32_long_sequence_gradients_finite() -> None:
    torch.manual_seed(0)
    m = MinGRU(8, 8, bidirectional=True)
    x = torch.randn(2, 300, 8, requires_grad=True)
    out, h_n = m.forward(x.transpose(0, 1), [300, 17])
    (out.sum() + h_n.sum()).backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ConfigError, match="bidirectional"):
        m.step(x[:, 0])


def test_layernorm_gru_normalises_gates() -> None:
    """Each gate block's pre-activation is LayerNorm(W x) and LayerNorm(W h), computed here by hand."""
    torch.manual_seed(0)
    m = LayerNormGRU(E, H, batch_first=True).double()
    assert m.weight_ih_l0.shape == (3 * H, E) and m.ln_hh_weight_l0.shape == (3 * H,)
    x = torch.randn(B, T, E, dtype=torch.float64) * 3
    # at t = 0 (h = 0) with the initial gains 1 and biases 0, logit(r) and logit(z) are LN(W_i x): mean 0, std 1
    _, _, gates = m(x, LENGTHS, return_gates=True)
    for name in ("r", "z"):
        pre = torch.logit(gates[0][name][:, 0, 0])  # (B, H)
        torch.testing.assert_close(pre.mean(-1), torch.zeros(B, dtype=torch.float64), atol=1e-6, rtol=0)
        torch.testing.assert_close(pre.var(-1, unbiased=False), torch.ones(B, dtype=torch.float64), atol=1e-4, rtol=0)
    with torch.no_grad():  # trained-looking gains and biases, then the whole recurrence by hand
        for name, p in m.named_parameters():
            if name.startswith("ln_"):
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if "weight" in name else 0.0))
    out, h_n, gates = m(x, LENGTHS, return_gates=True)

    def ln(y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # per gate block of H
        y = y.reshape(3, H)
        y = (y - y.mean(-1, keepdim=True)) / torch.sqrt(y.var(-1, unbiased=False, keepdim=True) + m.eps)
        return y.reshape(3 * H) * w + b

    with torch.no_grad():
        for b, n in enumerate(LENGTHS):
            h = torch.zeros(H, dtype=torch.float64)
            for t in range(n):
                a_r, a_z, a_n = ln(m.weight_ih_l0 @ x[b, t], m.ln_ih_weight_l0, m.ln_ih_bias_l0).split(H)
                b_r, b_z, b_n = ln(m.weight_hh_l0 @ h, m.ln_hh_weight_l0, m.ln_hh_bias_l0).split(H)
                r, z = torch.sigmoid(a_r + b_r), torch.sigmoid(a_z + b_z)
                cand = torch.tanh(a_n + r * b_n)
                h = (1 - z) * cand + z * h
                torch.testing.assert_close(gates[0]["r"][b, t, 0], r)
                torch.testing.assert_close(gates[0]["z"][b, t, 0], z)
                torch.testing.assert_close(out[b, t], h)
            torch.testing.assert_close(h_n[0, b], h)
        # LayerNorm makes the layer blind to the input's scale (up to eps)
        torch.testing.assert_close(m(x * 100, LENGTHS)[0], out, atol=1e-4, rtol=0)
        assert not torch.allclose(m(-x, LENGTHS)[0], out)  # ...but not to the input itself


def test_cell_init_option() -> None:
    lstm = make_encoder("lstm", E, 8, init="orthogonal")
    block = lstm.weight_hh_l0.detach()[:8]
    torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="init"):
        make_encoder("rnn", E, H, init="zeros")


@pytest.mark.parametrize("bi", [False, True])
def test_mingru_sequential_scan_equals_log_scan(bi: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The log-space scan, the compiled sequential scan and the torch sequential scan: one function."""
    from grutext.nn import fused

    torch.manual_seed(0)
    log = MinGRU(E, H, 2, bidirectional=bi, scan="log").double()
    seq = MinGRU(E, H, 2, bidirectional=bi, scan="sequential").double()
    seq.load_state_dict(log.state_dict())
    x = torch.randn(T, B, E, dtype=torch.float64)
    h0 = torch.randn(2 * (2 if bi else 1), B, H, dtype=torch.float64)

    def run(m: MinGRU) -> list[torch.Tensor]:
        xx = x.clone().requires_grad_(True)
        hh = h0.clone().requires_grad_(True)
        out, h_n = m(xx, LENGTHS, hh)
        (out.square().sum() + h_n.sum()).backward()
        res = [out, h_n, xx.grad, hh.grad] + [p.grad.clone() for p in m.parameters()]
        m.zero_grad()
        return res

    reference = run(log)
    fused.reset_counters()
    compiled = run(seq)
    assert fused.COUNTERS["mingru_ext"] == (4 if bi else 2) or not fused.extension_available()
    monkeypatch.setattr(fused, "BACKEND", "torch")  # the torch-ops sequential scan
    fused.reset_counters()
    torch_seq = run(seq)
    assert fused.COUNTERS["mingru_ext"] == 0
    for other in (compiled, torch_seq):
        for a, b in zip(reference, other, strict=True):
            assert (a - b).abs().max() < 1e-10


def test_mingru_auto_scan_on_cpu_is_the_compiled_one() -> None:
    from grutext.nn import fused

    if not fused.extension_available():
        pytest.skip("no C++ compiler: the compiled scan is not built")
    m = MinGRU(E, H, bidirectional=True)
    fused.reset_counters()
    m(torch.randn(T, B, E), LENGTHS)
    assert fused.COUNTERS["mingru_ext"] == 2
    fused.reset_counters()
    m(torch.randn(T, B, E), LENGTHS, return_gates=True)  # gate capture takes the explicit maths
    assert fused.COUNTERS["mingru_ext"] == 0
    with pytest.raises(ConfigError, match="scan"):
        MinGRU(E, H, scan="parallel")


@pytest.mark.parametrize("scan", ["sequential", "log"])
def test_mingru_on_an_empty_sequence_returns_the_initial_state(scan: str) -> None:
    torch.manual_seed(0)
    m = MinGRU(4, 3, batch_first=True, bidirectional=True, scan=scan)
    h0 = torch.randn(2, 2, 3)
    out, h_n = m(torch.zeros(2, 0, 4), h0=h0)
    assert out.shape == (2, 0, 6) and torch.equal(h_n, h0)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn", "mingru", "lngru"])
@pytest.mark.parametrize("impl", ["auto", "explicit"])
def test_an_empty_sequence_gives_an_empty_output_and_keeps_h0(cell: str, impl: str) -> None:
    """T = 0 (torch's own LSTM kernel refuses it): no output steps, the final state is h0."""
    options = {"impl": impl} if cell in ("gru", "lstm", "rnn") else {}
    enc = make_encoder(cell, 3, 4, num_layers=2, bidirectional=True, **options)
    h0 = torch.randn(4, 2, 4)
    out, h_n = enc(torch.randn(2, 0, 3), h0=(h0, torch.randn(4, 2, 4)) if cell == "lstm" else h0)
    assert out.shape == (2, 0, 8)
    torch.testing.assert_close(h_n[0] if cell == "lstm" else h_n, h0)
