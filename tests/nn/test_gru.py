"""grutext.nn.gru.GRU against torch.nn.GRU: parameters, outputs, states and every gradient."""

from __future__ import annotations

import math

import pytest
import torch

from grutext.errors import ConfigError, DataError
from grutext.nn import fused
from grutext.nn.gru import GRU

E, H, B, T = 5, 6, 4, 7


def _pair(
    layers: int, bi: bool, dtype: torch.dtype, impl: str = "explicit", batch_first: bool = True, seed: int = 0
) -> tuple[GRU, torch.nn.GRU]:
    torch.manual_seed(seed)
    ours = GRU(E, H, layers, batch_first=batch_first, bidirectional=bi, impl=impl).to(dtype)
    ref = torch.nn.GRU(E, H, layers, batch_first=batch_first, bidirectional=bi).to(dtype)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def _check(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> None:
    if dtype == torch.float64:
        assert (a - b).abs().max().item() <= 1e-10
    else:
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _per_sequence_parity(ours: GRU, ref: torch.nn.GRU, dtype: torch.dtype, lengths: list[int]) -> None:
    """Batch with lengths through `ours` vs each sequence alone (unpadded) through torch."""
    L, D = ours.num_layers, ours.num_directions
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, E, dtype=dtype, generator=g, requires_grad=True)
    h0 = torch.randn(L * D, B, H, dtype=dtype, generator=g, requires_grad=True)
    w_out = torch.randn(B, T, D * H, dtype=dtype, generator=g)
    w_h = torch.randn(L * D, B, H, dtype=dtype, generator=g)
    out, h_n = ours(x, torch.tensor(lengths), h0)
    ((out * w_out).sum() + (h_n * w_h).sum()).backward()
    ref_param_grads = {n: torch.zeros_like(p) for n, p in ref.named_parameters()}
    for b, n in enumerate(lengths):
        xb = x.detach()[b : b + 1, :n].clone().requires_grad_(True)
        hb = h0.detach()[:, b : b + 1].clone().requires_grad_(True)
        ref.zero_grad()
        o, hn = ref(xb, hb)
        ((o * w_out[b : b + 1, :n]).sum() + (hn * w_h[:, b : b + 1]).sum()).backward()
        _check(out[b, :n], o[0].detach(), dtype)
        assert out[b, n:].abs().max().item() == 0 if n < T else True  # zeros past length
        _check(h_n[:, b], hn[:, 0].detach(), dtype)
        _check(x.grad[b, :n], xb.grad[0], dtype)
        assert x.grad[b, n:].abs().max().item() == 0 if n < T else True
        _check(h0.grad[:, b], hb.grad[:, 0], dtype)
        for name, p in ref.named_parameters():
            ref_param_grads[name] += p.grad
    for name, p in ours.named_parameters():
        _check(p.grad, ref_param_grads[name], dtype)


@pytest.mark.parametrize("impl", ["explicit", "fused"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bi", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_parity_with_torch_per_sequence(impl: str, layers: int, bi: bool, dtype: torch.dtype) -> None:
    ours, ref = _pair(layers, bi, dtype, impl)
    _per_sequence_parity(ours, ref, dtype, [7, 3, 1, 5])
    assert ours.last_path == impl


@pytest.mark.parametrize("impl", ["explicit", "fused"])
def test_full_batch_matches_torch_time_major(impl: str) -> None:
    ours, ref = _pair(2, True, torch.float64, impl, batch_first=False)
    x = torch.randn(T, B, E, dtype=torch.float64)
    out, h_n = ours(x)
    o, hn = ref(x)
    _check(out, o, torch.float64)
    _check(h_n, hn, torch.float64)


def test_parameters_named_shaped_ordered_like_torch() -> None:
    ours, ref = _pair(2, True, torch.float32)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in ref.named_parameters()]
    no_bias = GRU(E, H, 2, bias=False)
    ref_nb = torch.nn.GRU(E, H, 2, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == [n for n, _ in ref_nb.named_parameters()]


def test_state_dict_loads_both_ways() -> None:
    torch.manual_seed(3)
    ref = torch.nn.GRU(E, H, 2, bidirectional=True, batch_first=True)
    ours = GRU(E, H, 2, bidirectional=True, batch_first=True)
    ours.load_state_dict(ref.state_dict())  # torch -> ours
    x = torch.randn(B, T, E)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], rtol=1e-5, atol=1e-6)
    ours2 = GRU(E, H, 2, bidirectional=True, batch_first=True, init="orthogonal")
    ref.load_state_dict(ours2.state_dict())  # ours -> torch
    torch.testing.assert_close(ours2(x)[0], ref(x)[0], rtol=1e-5, atol=1e-6)


def test_golden_values_from_constant_init() -> None:
    """E=1, H=1, every weight 0.5, every bias 0.1, x = [1, -1], h0 = 0, worked by hand:

    t=0: a_r = a_z = 0.5*1 + 0.1 + 0.5*0 + 0.1 = 0.7  ->  r = z = σ(0.7) = 0.6681877721681662
         n = tanh(0.5 + 0.1 + r * (0.5*0 + 0.1)) = tanh(0.66681877...) = 0.5828833847806498
         h1 = (1 - z) n + z * 0 = 0.19340783447022744
    t=1: a_r = a_z = -0.5 + 0.1 + 0.5*h1 + 0.1 = -0.20329608276488628  ->  r = z = 0.4493503023011562
         n = tanh(-0.5 + 0.1 + r * (0.5*h1 + 0.1)) = -0.3019020061747054
         h2 = (1 - z) n + z h1 = -0.07933437954816733
    """
    expected = [0.19340783447022744, -0.07933437954816733]
    gru = GRU(1, 1).double()
    with torch.no_grad():
        for name, p in gru.named_parameters():
            p.fill_(0.5 if name.startswith("weight") else 0.1)
    x = torch.tensor([1.0, -1.0], dtype=torch.float64).view(2, 1, 1)  # (T, B, E)
    for impl in ("explicit", "fused"):
        gru.impl = impl
        out, h_n, *_ = gru(x, return_gates=impl == "explicit")
        assert out[:, 0, 0].tolist() == pytest.approx(expected, abs=1e-14)
        assert h_n.item() == pytest.approx(expected[1], abs=1e-14)
    _, _, gates = gru(x, return_gates=True)
    assert gates[0]["r"][0, :, 0, 0].tolist() == pytest.approx([0.6681877721681662, 0.4493503023011562], abs=1e-14)
    assert gates[0]["n"][0, :, 0, 0].tolist() == pytest.approx([0.5828833847806498, -0.3019020061747054], abs=1e-14)


def test_gates_exact_layout_and_mask() -> None:
    torch.manual_seed(0)
    gru = GRU(E, H, 2, batch_first=True, bidirectional=True)
    x = torch.randn(B, T, E)
    lengths = torch.tensor([7, 3, 1, 5])
    out, h_n, gates = gru(x, lengths, return_gates=True)
    assert gru.last_path == "explicit"
    assert len(gates) == 2
    for layer in gates:
        assert set(layer) == {"r", "z", "n", "h"}
        for v in layer.values():
            assert v.shape == (B, T, 2, H)
            for b, n in enumerate(lengths.tolist()):
                assert v[b, n:].abs().max().item() == 0 if n < T else True
    # the last layer's "h" is the output, direction by direction
    torch.testing.assert_close(gates[1]["h"].reshape(B, T, 2 * H), out)
    # forward direction's last real state and reverse direction's state at t=0 are h_n
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(gates[1]["h"][b, n - 1, 0], h_n[2, b])
        torch.testing.assert_close(gates[1]["h"][b, 0, 1], h_n[3, b])
    # the gates are the forward pass's numbers: recompute h from them for layer 0, forward dir
    g0 = gates[0]
    h_prev = torch.zeros(B, H)
    for t in range(T):
        expect = (1 - g0["z"][:, t, 0]) * g0["n"][:, t, 0] + g0["z"][:, t, 0] * h_prev
        valid = (t < lengths).unsqueeze(1)
        torch.testing.assert_close(g0["h"][:, t, 0], torch.where(valid, expect, 0.0))
        h_prev = torch.where(valid, expect, h_prev)
    # the same outputs as the fast path
    out2, h_n2 = gru(x, lengths)
    assert gru.last_path == "fused"
    torch.testing.assert_close(out2, out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h_n2, h_n, rtol=1e-5, atol=1e-6)


def test_length_zero_keeps_h0_and_outputs_zeros() -> None:
    torch.manual_seed(0)
    for impl in ("explicit", "fused"):
        gru = GRU(E, H, bidirectional=True, batch_first=True, impl=impl)
        h0 = torch.randn(2, 2, H)
        out, h_n = gru(torch.randn(2, T, E), [0, 4], h0)
        assert out[0].abs().max().item() == 0
        torch.testing.assert_close(h_n[:, 0], h0[:, 0])


def test_lengths_as_list_equals_tensor_and_input_unchanged() -> None:
    torch.manual_seed(0)
    gru = GRU(E, H, batch_first=True)
    x = torch.randn(B, T, E)
    x_copy = x.clone()
    a = gru(x, [7, 3, 1, 5])[0]
    b = gru(x, torch.tensor([7, 3, 1, 5]))[0]
    assert torch.equal(a, b)
    assert torch.equal(x, x_copy)


@pytest.mark.parametrize("bi", [True, False])
def test_dropout_options_eval_is_deterministic_and_train_paths_agree(bi: bool) -> None:
    torch.manual_seed(0)
    gru = GRU(
        E, H, 2, batch_first=True, bidirectional=bi, dropout=0.3, recurrent_dropout=0.25, weight_drop=0.2
    ).double()
    x = torch.randn(B, T, E, dtype=torch.float64)
    lengths = [7, 3, 1, 5]
    gru.eval()
    plain = GRU(E, H, 2, batch_first=True, bidirectional=bi).double()
    plain.load_state_dict(gru.state_dict())
    torch.testing.assert_close(gru(x, lengths)[0], plain(x, lengths)[0])
    gru.train()
    results = []
    for impl in ("explicit", "fused"):
        gru.impl = impl
        gru.zero_grad()
        torch.manual_seed(42)
        out, h_n = gru(x, lengths)
        (out.square().sum() + h_n.sum()).backward()
        results.append((out.detach(), h_n.detach(), [p.grad.clone() for p in gru.parameters()]))
    (o1, h1, g1), (o2, h2, g2) = results
    assert (o1 - o2).abs().max() < 1e-10 and (h1 - h2).abs().max() < 1e-10
    for a, b in zip(g1, g2, strict=True):
        assert (a - b).abs().max() < 1e-10
    torch.manual_seed(7)
    assert not torch.allclose(gru(x, lengths)[0], o2)  # the masks are really random


def test_bf16_compute_close_to_fp32_and_paths_agree() -> None:
    torch.manual_seed(0)
    fp32 = GRU(16, 32, batch_first=True, bidirectional=True)
    bf16 = GRU(16, 32, batch_first=True, bidirectional=True, compute_dtype=torch.bfloat16)
    bf16.load_state_dict(fp32.state_dict())
    x = torch.randn(3, 9, 16, requires_grad=True)
    lengths = [9, 4, 6]
    out32 = fp32(x, lengths)[0]
    out16 = bf16(x, lengths)[0]
    assert out16.dtype == torch.float32 and bf16.last_path == "fused"
    assert (out16 - out32).abs().max() < 5e-2
    out16.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in bf16.parameters())
    bf16.impl = "explicit"
    torch.testing.assert_close(bf16(x, lengths)[0], out16, rtol=2e-2, atol=2e-2)


def test_orthogonal_init() -> None:
    gru = GRU(E, 8, init="orthogonal")
    w = gru.weight_hh_l0.detach()
    for block in w.split(8):
        torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
    assert gru.bias_ih_l0.abs().max() == 0
    bound = math.sqrt(6 / (E + 8))
    assert gru.weight_ih_l0.abs().max() <= bound


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hidden_size": 0}, "hidden_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"init": "he"}, "init"),
        ({"impl": "cuda"}, "impl"),
        ({"recurrent_dropout": -0.1}, "recurrent_dropout"),
        ({"compute_dtype": torch.int8}, "compute_dtype"),
    ],
)
def test_config_errors(kwargs: dict, match: str) -> None:
    args = {"input_size": E, "hidden_size": H} | kwargs
    with pytest.raises(ConfigError, match=match):
        GRU(**args)


def test_data_errors() -> None:
    gru = GRU(E, H, batch_first=True)
    x = torch.randn(B, T, E)
    with pytest.raises(DataError, match="lengths"):
        gru(x, [1, 2, 3])
    with pytest.raises(DataError, match="lengths"):
        gru(x, [1, 2, 3, T + 1])
    with pytest.raises(DataError, match="lengths"):
        gru(x, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(DataError, match="x"):
        gru(torch.randn(B, T, E + 1))
    with pytest.raises(DataError, match="h0"):
        gru(x, h0=torch.zeros(2, B, H))


def test_force_impl_switch() -> None:
    gru = GRU(E, H)
    x = torch.randn(T, B, E)
    old = fused.FORCE_IMPL
    try:
        fused.FORCE_IMPL = "explicit"
        gru(x)
        assert gru.last_path == "explicit"
    finally:
        fused.FORCE_IMPL = old
    gru(x)
    assert gru.last_path == "fused"


def test_repr_names_every_option_that_differs_from_torch_defaults() -> None:
    assert repr(GRU(E, H)) == f"GRU({E}, {H}, num_layers=1)"
    full = GRU(E, H, num_layers=2, bias=False, batch_first=True, dropout=0.25, bidirectional=True)
    assert repr(full) == f"GRU({E}, {H}, num_layers=2, bias=False, batch_first=True, dropout=0.25, bidirectional=True)"
