"""LanguageModel: shapes and loss, weight tying, state carry-over, AWD dropouts, save/load."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from grutext.errors import ConfigError, DataError
from grutext.models.language_model import LanguageModel, embedding_dropout, locked_dropout


def small(**kw) -> LanguageModel:
    args = dict(
        embed_dim=8, hidden_size=12, num_layers=2, dropout=0.3, input_dropout=0.2, layer_dropout=0.2, embed_dropout=0.1
    )
    args.update(kw)
    return LanguageModel(30, **args)


def test_forward_shapes_and_loss_is_cross_entropy():
    lm = small().eval()
    ids, tgt = torch.randint(4, 30, (3, 7)), torch.randint(4, 30, (3, 7))
    logits, loss, state = lm(ids, tgt)
    assert logits.shape == (3, 7, 30) and state.shape == (2, 3, 12)
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, 30), tgt.reshape(-1)))
    assert lm(ids)[1] is None


def test_weight_tying_shares_storage_and_projection():
    lm = small()
    assert lm.tied and lm.decoder.weight is lm.embedding.weight
    assert lm.decoder.weight.data_ptr() == lm.embedding.weight.data_ptr()
    assert lm.proj is not None and lm.proj.in_features == 12 and lm.proj.out_features == 8
    untied = small(tie_weights=False)
    assert not untied.tied and untied.decoder.weight is not untied.embedding.weight and untied.proj is None
    assert lm.encoder.hidden_size == 12 and lm.encoder.num_layers == 2 and lm.encoder.num_directions == 1
    assert lm.encoder.output_size == 12 and lm.cell == "gru"


def test_tied_state_dict_round_trip():
    a, b = small(), small()
    sd = a.state_dict()
    assert "decoder.weight" not in sd and "embedding.weight" in sd
    b.load_state_dict(sd)
    assert b.decoder.weight is b.embedding.weight and torch.equal(b.decoder.weight, a.embedding.weight)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_state_carry_over_equals_whole_sequence(cell):
    lm = small(cell=cell).eval()
    ids = torch.randint(4, 30, (2, 13))
    full, _, s_full = lm(ids)
    parts, state = [], None
    for a, b in [(0, 5), (5, 6), (6, 13)]:
        logits, _, state = lm(ids[:, a:b], state=state)
        parts.append(logits)
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)
    sf = s_full if cell == "gru" else s_full[0]
    sc = state if cell == "gru" else state[0]
    assert torch.allclose(sc, sf, atol=1e-6)


def test_locked_dropout_mask_is_shared_over_time():
    x = torch.ones(4, 9, 6)
    y = locked_dropout(x, 0.5, True)
    assert torch.equal(y, y[:, :1].expand_as(y))  # same mask at every step
    assert set(torch.unique(y).tolist()) <= {0.0, 2.0}
    assert torch.equal(locked_dropout(x, 0.5, False), x)


def test_embedding_dropout_drops_whole_words():
    emb = torch.nn.Embedding(50, 5)
    ids = torch.tensor([[7, 8, 7, 9, 7, 8]])
    torch.manual_seed(3)
    out = embedding_dropout(emb, ids, 0.5, True)
    zero = (out == 0).all(-1)[0]
    dropped = set()
    for word in (7, 8, 9):
        pos = ids[0] == word
        assert zero[pos].all() or not zero[pos].any()  # a word is dropped everywhere or nowhere
        if zero[pos].all():
            dropped.add(word)
    assert 0 < len(dropped) < 3  # this seed drops some words and keeps others: the check above bites
    kept = ~zero
    torch.testing.assert_close(out[0, kept], emb(ids)[0, kept] * 2.0)  # kept words rescaled by 1 / (1 - p)
    assert torch.equal(embedding_dropout(emb, ids, 0.5, False), emb(ids))


def test_weight_drop_changes_training_outputs_only():
    lm = small(weight_drop=0.5, dropout=0.0, input_dropout=0.0, layer_dropout=0.0, embed_dropout=0.0)
    ids = torch.randint(4, 30, (2, 6))
    lm.train()
    a, b = lm(ids)[0], lm(ids)[0]
    assert not torch.allclose(a, b)
    plain = small(weight_drop=0.0, dropout=0.0, input_dropout=0.0, layer_dropout=0.0, embed_dropout=0.0)
    plain.load_state_dict(lm.state_dict())
    lm.eval()
    plain.eval()
    torch.testing.assert_close(lm(ids)[0], plain(ids)[0])  # evaluation uses the full W_hh


def test_bad_arguments():
    with pytest.raises(ConfigError, match="dropout"):
        small(dropout=1.2)
    with pytest.raises(ConfigError, match="weight_drop"):
        small(cell="lstm", weight_drop=0.2)
    with pytest.raises(DataError, match="ids"):
        small()(torch.zeros(5, dtype=torch.long))
