import pytest
import torch

from grutext.models.classifier import TextClassifier
from grutext.summary import model_summary


def _model(**kw):
    args = dict(
        vocab_size=50, num_classes=3, task="multiclass", embed_dim=8, hidden_size=6, dropout=0.0, embed_dropout=0.0
    )
    args.update(kw)
    return TextClassifier(**args).eval()


@pytest.mark.parametrize("task,C,shape", [("binary", 2, (4,)), ("multiclass", 3, (4, 3)), ("multilabel", 3, (4, 3))])
def test_shapes_and_loss(task, C, shape):
    m = _model(task=task, num_classes=C)
    ids = torch.randint(1, 50, (4, 7))
    lengths = torch.tensor([7, 5, 3, 1])
    for i, n in enumerate(lengths.tolist()):
        ids[i, n:] = 0  # post-padded, as batches are
    labels = {
        "binary": torch.tensor([0, 1, 1, 0]),
        "multiclass": torch.tensor([0, 2, 1, 0]),
        "multilabel": torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]]),
    }[task]
    logits, loss = m(ids, lengths, labels)
    assert logits.shape == shape
    # the loss by hand from the logits: mean cross-entropy (multiclass) or mean binary cross-entropy
    if task == "multiclass":
        logp = torch.log_softmax(logits, -1)
        hand = -torch.stack([logp[i, int(labels[i])] for i in range(4)]).mean()
    else:
        y = labels.to(logits.dtype)
        q = torch.sigmoid(logits)
        hand = -(y * torch.log(q) + (1 - y) * torch.log(1 - q)).mean()
    assert loss.ndim == 0
    torch.testing.assert_close(loss, hand, rtol=1e-5, atol=1e-6)
    loss.backward()
    assert m.embedding.weight.grad is not None and m.embedding.weight.grad[ids[0]].abs().sum() > 0
    assert m.embedding.weight.grad[0].abs().sum() == 0  # padding id 0 gets no gradient
    probs = m.probabilities(logits)
    assert probs.shape == (4, C)
    if task == "binary":  # two columns: P(class 0) = 1 - sigmoid, P(class 1) = sigmoid
        torch.testing.assert_close(probs[:, 1], torch.sigmoid(logits))
    elif task == "multiclass":
        torch.testing.assert_close(probs, torch.softmax(logits, -1))
    else:  # independent labels: each its own sigmoid, rows need not sum to 1
        torch.testing.assert_close(probs, torch.sigmoid(logits))
    if task != "multilabel":
        torch.testing.assert_close(probs.sum(1), torch.ones(4))


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_padding_invariance(pooling, bidirectional, cell):
    """A text's logits do not depend on what it is batched with (nor on the padding)."""
    torch.manual_seed(1)
    m = _model(pooling=pooling, bidirectional=bidirectional, num_layers=2, cell=cell).double()
    text = torch.tensor([[5, 9, 13, 2]])
    alone, _ = m(text, torch.tensor([4]))
    batch = torch.zeros(3, 11, dtype=torch.long)
    batch[0, :11] = torch.randint(1, 50, (11,))
    batch[1, :4] = text[0]
    batch[2, :2] = torch.tensor([7, 8])
    together, _ = m(batch, torch.tensor([11, 4, 2]))
    torch.testing.assert_close(together[1], alone[0], rtol=0, atol=1e-12)


def test_frozen_pretrained_embeddings():
    w = torch.randn(50, 8)
    m = TextClassifier(
        vocab_size=50,
        num_classes=2,
        task="binary",
        embed_dim=8,
        hidden_size=4,
        embedding_weights=w.numpy(),
        freeze_embeddings=True,
    )
    torch.testing.assert_close(m.embedding.weight.detach(), w)
    assert not m.embedding.weight.requires_grad


def test_summary_counts_equal_keras():
    # Keras: Embedding(5000, 64) -> GRU(64) -> Dense(1) is 320,000 + 24,960 + 65
    m = TextClassifier(
        vocab_size=5000, num_classes=2, task="binary", embed_dim=64, hidden_size=64, bidirectional=False, pooling="last"
    )
    text = model_summary(m)
    assert "320,000" in text and "24,960" in text and "65" in text
    assert "Total params: 345,025" in text
    # the seeds' GRU(32) on 64 features + Dense(1): 9,408 + 33 = 9,441 (plus the embedding)
    m = TextClassifier(
        vocab_size=10, num_classes=2, task="binary", embed_dim=64, hidden_size=32, bidirectional=False, pooling="last"
    )
    text = model_summary(m)
    assert "9,408" in text and " 33" in text
    assert f"Total params: {640 + 9441:,}" in text
    # bidirectional doubles the recurrent layer, as Keras Bidirectional(GRU(32)) does
    m = TextClassifier(vocab_size=10, num_classes=2, task="binary", embed_dim=64, hidden_size=32)
    assert "18,816" in model_summary(m)


def test_bad_arguments():
    from grutext.errors import ConfigError

    with pytest.raises(ConfigError, match="pooling must be one of"):
        _model(pooling="avg")
    with pytest.raises(ConfigError, match="binary.*2 classes"):
        _model(task="binary", num_classes=3)
    with pytest.raises(ConfigError, match="embedding_weights must be"):
        TextClassifier(
            vocab_size=5, num_classes=2, task="binary", embed_dim=4, embedding_weights=torch.zeros(5, 3).numpy()
        )


def test_summary_counts_equal_a_real_keras_model():
    """The same layers built in Keras 3 (torch backend) count the same parameters, layer by layer."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    cases = [(5000, 64, 64, False), (10, 64, 32, False), (10, 64, 32, True)]
    for vocab, emb, hid, bi in cases:
        rnn = keras.layers.GRU(hid, reset_after=True)
        km = keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),
                keras.layers.Embedding(vocab, emb),
                keras.layers.Bidirectional(rnn) if bi else rnn,
                keras.layers.Dense(1),
            ]
        )
        ours = TextClassifier(
            vocab_size=vocab,
            num_classes=2,
            task="binary",
            embed_dim=emb,
            hidden_size=hid,
            bidirectional=bi,
            pooling="last",
        )
        text = model_summary(ours)
        for layer in km.layers:
            assert f"{layer.count_params():,}" in text, (layer.name, layer.count_params(), text)
        assert f"Total params: {km.count_params():,}" in text
