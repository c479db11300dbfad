"""Classifiers started from a trained language model or classifier (model.init_from)."""

import shutil
from dataclasses import replace

import pytest
import torch
from tests.conftest import synthetic

from grutext.artifact import load_model
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.data.readers import TextDataset
from grutext.errors import ConfigError
from grutext.infer.predict import Predictor
from grutext.lm import LMConfig, train_language_model
from grutext.pipeline import Splits, train_classifier


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    texts, _ = synthetic(300, classes=("pos", "neg"))
    out = tmp_path_factory.mktemp("lm") / "lm"
    cfg = Config(
        DataConfig(tokenizer="word", min_freq=1),
        ModelConfig(embed_dim=12, hidden_size=16, num_layers=2, dropout=0.0, embed_dropout=0.0),
        TrainConfig(epochs=1, batch_size=4, out=str(out)),
    )
    train_language_model(cfg, lm=LMConfig(bptt=12), train_lines=texts, verbose=False, progress=False)
    return out


def _splits(n=160):
    texts, labels = synthetic(n, classes=("pos", "neg"))
    cut = n * 3 // 4
    return Splits(TextDataset(texts[:cut], labels[:cut], "t"), TextDataset(texts[cut:], labels[cut:], "v"), None)


def test_copy_from_language_model_gives_its_weights_and_shape(lm_dir):
    from grutext.models.classifier import TextClassifier
    from grutext.models.transfer import load_transfer_source

    src = load_transfer_source(lm_dir)
    lm = load_model(lm_dir)
    m = src.shape_config(ModelConfig(num_classes=2, task="binary", hidden_size=99, num_layers=1, bidirectional=True))
    assert (m.cell, m.embed_dim, m.hidden_size, m.num_layers, m.bidirectional) == ("gru", 12, 16, 2, False)
    assert m.vocab_size == lm.tokenizer.vocab_size
    clf = TextClassifier.from_config(m)
    report = src.copy_into(clf)
    assert torch.equal(clf.embedding.weight, lm.model.embedding.weight)
    for k in range(2):  # LM layer k (a one-layer GRU) is the classifier's layer k
        layer = lm.model.encoder.layers[k]
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            assert torch.equal(getattr(clf.encoder, f"{name}_l{k}"), getattr(layer, f"{name}_l0"))
    assert report["parameters"] == clf.embedding.weight.numel() + sum(p.numel() for p in clf.encoder.parameters())
    # the copied encoder computes what the LM's encoder computes
    ids = torch.randint(1, m.vocab_size, (3, 7))
    clf.eval()
    ours, _ = clf.encoder(clf.embedding(ids), torch.full((3,), 7))
    theirs, _ = lm.model.encoder(lm.model.embedding(ids))
    torch.testing.assert_close(ours, theirs)


def test_train_from_language_model_then_load_without_it(lm_dir, tmp_path):
    src_copy = tmp_path / "lm-copy"
    shutil.copytree(lm_dir, src_copy)
    out = tmp_path / "clf"
    cfg = Config(
        DataConfig(min_freq=1),
        ModelConfig(init_from=str(src_copy), dropout=0.1),
        TrainConfig(epochs=2, out=str(out), lr=5e-3),
    )
    run = train_classifier(cfg, splits=_splits(), verbose=False, progress=False)
    assert run.tokenizer.vocab_size == load_model(src_copy).tokenizer.vocab_size
    assert run.config.model.init_from == str(src_copy)
    assert (run.config.model.hidden_size, run.config.model.bidirectional) == (16, False)
    shutil.rmtree(src_copy)  # the new directory stands alone
    from grutext.artifact import LoadedModel

    texts = ["the great movie", "an awful boring plot", "okay"]
    direct = Predictor(LoadedModel(run.model, run.tokenizer, run.config, "classifier", run.labels, ngrams=run.ngrams))
    assert (direct.predict_proba(texts) == Predictor.load(out).predict_proba(texts)).all()


def test_classifier_to_classifier_keeps_bidirectional_encoder(tmp_path):
    first = tmp_path / "first"
    cfg = Config(
        DataConfig(min_freq=1),
        ModelConfig(embed_dim=10, hidden_size=8, bidirectional=True),
        TrainConfig(epochs=1, out=str(first)),
    )
    run1 = train_classifier(cfg, splits=_splits(), verbose=False, progress=False)
    from grutext.models.classifier import TextClassifier
    from grutext.models.transfer import load_transfer_source

    src = load_transfer_source(first)
    m = src.shape_config(ModelConfig(num_classes=3, task="multiclass"))
    assert (m.embed_dim, m.hidden_size, m.bidirectional) == (10, 8, True)
    clf = TextClassifier.from_config(m)
    src.copy_into(clf)
    for key, value in run1.model.encoder.state_dict().items():
        assert torch.equal(clf.encoder.state_dict()[key], value), key


def test_init_from_errors(tmp_path, lm_dir):
    with pytest.raises(ConfigError, match=r"model.init_from: .*nowhere.*no such directory"):
        train_classifier(
            Config(model=ModelConfig(init_from=str(tmp_path / "nowhere")), train=TrainConfig(out=str(tmp_path / "o"))),
            splits=_splits(),
            verbose=False,
        )
    broken = tmp_path / "broken"
    shutil.copytree(lm_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ConfigError, match="model.init_from: .*broken"):
        train_classifier(
            Config(model=ModelConfig(init_from=str(broken)), train=TrainConfig(out=str(tmp_path / "o"))),
            splits=_splits(),
            verbose=False,
        )
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_same_labels_keep_the_head_unless_told(tmp_path):
    from grutext.models.classifier import TextClassifier
    from grutext.models.transfer import load_transfer_source

    first = tmp_path / "first"
    run1 = train_classifier(
        Config(DataConfig(min_freq=1), ModelConfig(embed_dim=10, hidden_size=8), TrainConfig(epochs=1, out=str(first))),
        splits=_splits(),
        verbose=False,
    )
    src = load_transfer_source(first)
    m = src.shape_config(ModelConfig(num_classes=2, task="binary", pooling="max"))
    clf = TextClassifier.from_config(m)
    assert src.copy_into(clf, run1.labels)["head"]
    assert torch.equal(clf.head.weight, run1.model.head.weight)
    x = torch.randint(1, m.vocab_size, (4, 6))
    clf.eval()
    torch.testing.assert_close(clf(x, torch.full((4,), 6))[0], run1.model.eval()(x, torch.full((4,), 6))[0])
    fresh = TextClassifier.from_config(m)
    assert not src.copy_into(fresh, ["a", "b"])["head"]  # other labels: a new head
    assert not torch.equal(fresh.head.weight, run1.model.head.weight)
    other = TextClassifier.from_config(replace(m, pooling="attention"))
    assert not src.copy_into(other, run1.labels)["head"]  # other pooling: a new head


def test_attention_pooling_is_kept_under_a_new_head(tmp_path):
    """Same kind of pooling, other labels: the attention weights are copied, the head starts fresh."""
    from grutext.models.classifier import TextClassifier
    from grutext.models.transfer import load_transfer_source

    first = tmp_path / "first"
    run1 = train_classifier(
        Config(
            DataConfig(min_freq=1),
            ModelConfig(embed_dim=10, hidden_size=8, pooling="attention"),
            TrainConfig(epochs=1, out=str(first)),
        ),
        splits=_splits(),
        verbose=False,
    )
    src = load_transfer_source(first)
    m = src.shape_config(ModelConfig(num_classes=3, task="multiclass", pooling="attention"))
    clf = TextClassifier.from_config(m)
    copied = src.copy_into(clf, ["x", "y", "z"])
    assert copied["pooling"] and not copied["head"]
    pooled = {k: v for k, v in run1.model.state_dict().items() if k.startswith("pooling.")}
    assert pooled
    for k, v in pooled.items():
        torch.testing.assert_close(clf.state_dict()[k], v)
    assert "pooling kept, head starts fresh" in src.describe("pooling")
    fresh = TextClassifier.from_config(m)
    assert not src.copy_into(fresh, None)["pooling"]  # keep_head = false: nothing above the encoder
    for k, v in pooled.items():
        assert not torch.equal(fresh.state_dict()[k], v)
    maxpool = TextClassifier.from_config(replace(m, pooling="max"))
    assert not src.copy_into(maxpool, ["x", "y", "z"])["pooling"]  # another kind of pooling


def test_estimator_accepts_init_from(lm_dir):
    from grutext.estimator import GRUTextClassifier

    texts, labels = synthetic(120, classes=("pos", "neg"))
    clf = GRUTextClassifier(init_from=str(lm_dir), epochs=1).fit(texts, labels)
    assert clf.config_.model.init_from == str(lm_dir) and clf.config_.model.hidden_size == 16
    assert len(clf.predict(["a great film"])) == 1


def test_cli_init_from(lm_dir, tmp_path, capsys):
    from tests.conftest import write_csv

    from grutext.cli import main

    texts, labels = synthetic(120, classes=("pos", "neg"))
    write_csv(tmp_path / "train.csv", texts, labels)
    assert (
        main(
            [
                "train",
                str(tmp_path / "train.csv"),
                "--init-from",
                str(lm_dir),
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    assert "init: from the language model" in capsys.readouterr().out
    assert (
        main(
            ["train", str(tmp_path / "train.csv"), "--init-from", str(tmp_path / "none"), "--out", str(tmp_path / "m2")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "model.init_from" in err and "no such directory" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m2").exists()


def test_pretrained_with_init_from_grows_the_vocabulary(lm_dir, tmp_path):
    from grutext.models.transfer import load_transfer_source

    src = load_transfer_source(lm_dir)
    old_vocab = dict(src.tokenizer._hf.get_vocab())
    old_rows = src.embedding.clone()
    vec = tmp_path / "vectors.txt"
    vec.write_text("zyzzyva " + " ".join(["0.5"] * 12) + "\n" + "the " + " ".join(["0.1"] * 12) + "\n")
    grown = src.extend_vocabulary(["zyzzyva zyzzyva quux the"], str(vec), min_freq=1)
    assert grown == {"added": 2, "from_vectors": 1}
    vocab = src.tokenizer._hf.get_vocab()
    assert all(vocab[w] == i for w, i in old_vocab.items())  # old ids keep their meaning
    z = vocab["zyzzyva"]
    assert z == len(old_vocab) and torch.equal(src.embedding[: len(old_vocab)], old_rows)
    torch.testing.assert_close(src.embedding[z], torch.full((12,), 0.5))
    assert src.tokenizer.encode("zyzzyva quux")[0] == z and src.embedding.shape[0] == len(vocab)
    bad = tmp_path / "v3.txt"
    bad.write_text("zyzzyva 1 2 3\n")
    with pytest.raises(ConfigError, match="3-d vectors"):
        load_transfer_source(lm_dir).extend_vocabulary(["zyzzyva"], str(bad))
