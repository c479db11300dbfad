"""Gate traces against the GRU recomputed by hand from the state_dict (fp64), retention, masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grutext.errors import ConfigError
from grutext.explain import GateTrace, retention_from_z, summarize_gates, trace_batch
from grutext.models.classifier import TextClassifier


def _model(cell: str = "gru", layers: int = 2, bidirectional: bool = True) -> TextClassifier:
    torch.manual_seed(3)
    return (
        TextClassifier(
            vocab_size=30,
            num_classes=3,
            task="multiclass",
            embed_dim=5,
            hidden_size=4,
            num_layers=layers,
            bidirectional=bidirectional,
            dropout=0.0,
            embed_dropout=0.0,
            pooling="mean",
            cell=cell,
        )
        .double()
        .eval()
    )


def _hand_direction(x: torch.Tensor, sd: dict, layer: int, reverse: bool, H: int) -> dict[str, torch.Tensor]:
    """One layer and direction of the GRU, written from the formulas: x (T, In) -> gates (T, H) each."""
    sfx = f"l{layer}" + ("_reverse" if reverse else "")
    w_ih, w_hh = sd[f"encoder.weight_ih_{sfx}"], sd[f"encoder.weight_hh_{sfx}"]  # (3H, In), (3H, H)
    b_ih, b_hh = sd[f"encoder.bias_ih_{sfx}"], sd[f"encoder.bias_hh_{sfx}"]  # (3H,)
    T = x.shape[0]
    out = {k: torch.zeros(T, H, dtype=x.dtype) for k in ("r", "z", "n", "h", "dh")}
    h = torch.zeros(H, dtype=x.dtype)
    for t in range(T - 1, -1, -1) if reverse else range(T):
        gi = w_ih @ x[t] + b_ih  # (3H,)
        gh = w_hh @ h + b_hh  # (3H,)
        r = torch.sigmoid(gi[:H] + gh[:H])  # reset gate
        z = torch.sigmoid(gi[H : 2 * H] + gh[H : 2 * H])  # update gate
        n = torch.tanh(gi[2 * H :] + r * gh[2 * H :])  # candidate, b_hn inside the reset product
        h_new = (1 - z) * n + z * h
        out["r"][t], out["z"][t], out["n"][t], out["h"][t] = r, z, n, h_new
        out["dh"][t] = (h_new - h).abs()
        h = h_new
    return out


def _hand_trace(model: TextClassifier, ids: list[int]) -> dict[str, np.ndarray]:
    """All layers and directions by hand: each key (L, D, T, H)."""
    sd = model.state_dict()
    H, L, D = model.encoder.hidden_size, model.encoder.num_layers, model.encoder.num_directions
    x = sd["embedding.weight"][torch.tensor(ids)]  # (T, E)
    per = {k: [] for k in ("r", "z", "n", "h", "dh", "retention")}
    for layer in range(L):
        dirs = [_hand_direction(x, sd, layer, d == 1, H) for d in range(D)]
        for k in ("r", "z", "n", "h", "dh"):
            per[k].append(torch.stack([g[k] for g in dirs]))  # (D, T, H)
        rets = []
        for d, g in enumerate(dirs):
            T = len(ids)
            ret = torch.ones(T, H, dtype=x.dtype)
            for i in range(T):  # the literal product of the update gates after token i
                later = range(i + 1, T) if d == 0 else range(0, i)
                for t in later:
                    ret[i] = ret[i] * g["z"][t]
            rets.append(ret)
        per["retention"].append(torch.stack(rets))
        x = torch.cat([g["h"] for g in dirs], dim=-1)  # (T, D*H): next layer's input
    return {k: torch.stack(v).numpy() for k, v in per.items()}


@pytest.mark.parametrize("bidirectional", [True, False])
def test_gates_equal_hand_recomputation_fp64(bidirectional):
    model = _model(bidirectional=bidirectional)
    seqs = [[5, 9, 13, 2, 7, 21], [3, 4, 11], [8]]
    ids = torch.zeros(3, 6, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s)
    traces, enc = trace_batch(model, ids, torch.tensor([len(s) for s in seqs]))
    for s, tr in zip(seqs, traces, strict=True):
        want = _hand_trace(model, s)
        D = 2 if bidirectional else 1
        assert tr.z.shape == (2, D, len(s), 4)  # (L, D, T, H): masked positions absent
        assert tr.z.dtype == np.float64
        for k in ("r", "z", "n", "h", "dh", "retention"):
            np.testing.assert_allclose(getattr(tr, k), want[k], rtol=0, atol=1e-12, err_msg=k)


def test_traces_are_the_forward_pass_tensors():
    """The trace's last-layer states are exactly the model's own output, and pooling agrees."""
    model = _model()
    ids = torch.tensor([[5, 9, 13, 2]])
    (tr,), enc = trace_batch(model, ids, torch.tensor([4]))
    out = enc["output"][0].numpy()  # (T, D*H)
    H = 4
    np.testing.assert_array_equal(tr.h[-1, 0], out[:, :H])
    np.testing.assert_array_equal(tr.h[-1, 1], out[:, H:])
    logits, _ = model(ids, torch.tensor([4]))
    torch.testing.assert_close(enc["logits"], logits, rtol=0, atol=1e-12)  # fused path: same maths


def test_retention_bounds_and_products():
    model = _model()
    ids = torch.tensor([[5, 9, 13, 2, 7, 21, 4, 4]])
    (tr,), _ = trace_batch(model, ids, torch.tensor([8]))
    assert np.all(tr.retention >= 0) and np.all(tr.retention <= 1)
    z = tr.z
    np.testing.assert_allclose(tr.retention[:, 0, 2], z[:, 0, 3:].prod(axis=1), rtol=1e-12)  # forward: t > 2
    np.testing.assert_allclose(tr.retention[:, 1, 2], z[:, 1, :2].prod(axis=1), rtol=1e-12)  # reverse: t < 2
    np.testing.assert_array_equal(tr.retention[:, 0, -1], 1.0)  # the last step read keeps all of itself
    np.testing.assert_array_equal(tr.retention[:, 1, 0], 1.0)
    # token i's write (1 - z_i) n_i reaches the final forward state scaled by exactly its retention
    h_final = tr.h[0, 0, -1]
    write = (1 - z[0, 0]) * tr.n[0, 0]  # (T, H)
    np.testing.assert_allclose((write * tr.retention[0, 0]).sum(0), h_final, rtol=1e-10)


def test_retention_from_z_small_case():
    z = torch.tensor([[0.5], [0.2], [0.9]], dtype=torch.float64)  # (T, H)
    assert retention_from_z(z, reverse=False).squeeze(1).tolist() == pytest.approx([0.18, 0.9, 1.0])
    assert retention_from_z(z, reverse=True).squeeze(1).tolist() == pytest.approx([1.0, 0.5, 0.1])


def test_padding_does_not_change_the_trace():
    model = _model()
    alone, _ = trace_batch(model, torch.tensor([[3, 4, 11]]), torch.tensor([3]))
    batch = torch.tensor([[5, 9, 13, 2, 7, 21, 1], [3, 4, 11, 0, 0, 0, 0]])
    both, _ = trace_batch(model, batch, torch.tensor([7, 3]))
    assert both[1].z.shape[2] == 3 and len(both[1].tokens) == 3
    for k in ("z", "r", "n", "h", "dh", "retention"):
        np.testing.assert_allclose(getattr(both[1], k), getattr(alone[0], k), rtol=0, atol=1e-12)


def test_rows_and_summary():
    model = _model()
    (tr,), enc = trace_batch(model, torch.tensor([[5, 9, 13]]), torch.tensor([3]), [["a", "b", "c"]])
    rows = tr.rows()
    assert len(rows) == 3 * 2 * 2  # tokens x layers x directions
    assert set(rows[0]) == {"token", "position", "layer", "direction", "z_mean", "r_mean", "n_mean", "dh", "retention"}
    summ = summarize_gates(enc["gates"], 3, ["a", "b", "c"])
    assert [(r["layer"], r["direction"]) for r in summ] == [
        (1, "forward"),
        (1, "reverse"),
        (2, "forward"),
        (2, "reverse"),
    ]
    for r in summ:
        assert 0 < r["z_mean"] < 1 and 0 < r["r_mean"] < 1 and r["dh_mean"] > 0
        assert r["most_retained"] in ("a", "b") if r["direction"] == "forward" else r["most_retained"] in ("b", "c")
        assert 0 <= r["retention"] <= 1


def test_lngru_and_mingru_traces():
    for cell in ("lngru", "mingru"):
        model = _model(cell=cell)
        (tr,), _ = trace_batch(model, torch.tensor([[5, 9, 13, 2]]), torch.tensor([4]))
        assert isinstance(tr, GateTrace) and tr.z.shape == (2, 2, 4, 4)
        assert np.all((tr.retention >= 0) & (tr.retention <= 1))
        if cell == "mingru":  # minGRU keeps 1 - z of the past
            np.testing.assert_allclose(tr.retention[0, 0, 0], (1 - tr.z[0, 0, 1:]).prod(0), rtol=1e-10)
            assert np.isnan(tr.r).all()


def test_lstm_has_no_gate_trace():
    with pytest.raises(ConfigError, match="GRU-family cell"):
        trace_batch(_model(cell="lstm"), torch.tensor([[5, 9]]), torch.tensor([2]))
