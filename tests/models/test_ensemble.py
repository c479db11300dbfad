"""Ensembles (model.ensemble > 1): the averaging maths, training, the model directory, transfer,
and the tools that read one network (explain, trace) with --member."""

import json

import pytest
import torch
import torch.nn.functional as F
from tests.conftest import synthetic

from grutext.artifact import LoadedModel, load_model
from grutext.cli import main
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.data.readers import TextDataset
from grutext.errors import ArtifactError
from grutext.infer.predict import Predictor
from grutext.models.classifier import TextClassifier
from grutext.models.ensemble import EnsembleClassifier
from grutext.pipeline import Splits, train_classifier


def _members(task, classes, n=3):
    out = []
    for i in range(n):
        torch.manual_seed(i)
        out.append(TextClassifier(40, classes, task, embed_dim=6, hidden_size=5, dropout=0.0, embed_dropout=0.0))
    return out


@pytest.mark.parametrize("task,classes", [("binary", 2), ("multiclass", 4), ("multilabel", 3)])
def test_probabilities_and_loss_are_those_of_the_mean(task, classes):
    members = _members(task, classes)
    ens = EnsembleClassifier(members).eval()
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0], [9, 0, 0, 0]])
    lengths = torch.tensor([4, 2, 1])
    with torch.no_grad():
        mean = torch.stack([m.probabilities(m(ids, lengths)[0]) for m in members]).mean(0)  # (B, C)
        labels = {
            "binary": torch.tensor([1, 0, 1]),
            "multiclass": torch.tensor([3, 0, 2]),
            "multilabel": torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0]]),
        }[task]
        logits, loss = ens(ids, lengths, labels)
        torch.testing.assert_close(ens.probabilities(logits), mean, rtol=1e-5, atol=1e-6)
        if task == "multiclass":
            expected = F.nll_loss(torch.log(mean), labels)
        elif task == "binary":
            expected = F.binary_cross_entropy(mean[:, 1], labels.float())
        else:
            expected = F.binary_cross_entropy(mean, labels.float())
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_padding_invariance():
    ens = EnsembleClassifier(_members("multiclass", 3)).eval()
    alone, _ = ens(torch.tensor([[3, 4, 5]]), torch.tensor([3]))
    batched, _ = ens(torch.tensor([[3, 4, 5, 0, 0, 0], [6, 7, 8, 9, 10, 11]]), torch.tensor([3, 6]))
    torch.testing.assert_close(batched[0], alone[0], rtol=1e-5, atol=1e-6)


def test_members_must_agree():
    with pytest.raises(ValueError, match="member 1"):
        EnsembleClassifier([_members("multiclass", 3, 1)[0], _members("multiclass", 4, 1)[0]])


def _data():
    texts, labels = synthetic(220, classes=("pos", "neg", "mid"))
    return Splits(TextDataset(texts[:180], labels[:180], "t"), TextDataset(texts[180:], labels[180:], "v"), None)


def _cfg(out, ensemble, **model):
    return Config(
        DataConfig(min_freq=1),
        ModelConfig(embed_dim=12, hidden_size=8, ensemble=ensemble, **model),
        TrainConfig(epochs=6, lr=1e-2, batch_size=16, out=str(out)),
    )


@pytest.fixture(scope="module")
def ensemble_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ens")
    run = train_classifier(_cfg(d / "ens", 3), splits=_data(), verbose=False, progress=False)
    single = train_classifier(_cfg(d / "single", 1), splits=_data(), verbose=False, progress=False)
    return d, run, single


def test_training_saving_and_loading(ensemble_dir):
    d, run, single = ensemble_dir
    assert isinstance(run.model, EnsembleClassifier) and len(run.model) == 3
    assert run.valid_report["accuracy"] >= 0.9, (run.valid_report["accuracy"], single.valid_report["accuracy"])
    metrics = json.loads((d / "ens" / "metrics.json").read_text())
    assert [m["seed"] for m in metrics["members"]] == [0, 1, 2]
    assert sorted({row["member"] for row in metrics["history"]}) == [0, 1, 2]
    texts = ["the great movie", "an awful boring plot", "okay average"]
    direct = Predictor(
        LoadedModel(run.model, run.tokenizer, run.config, "classifier", run.labels, ngrams=run.ngrams)
    ).predict_proba(texts)
    loaded = load_model(d / "ens")
    assert isinstance(loaded.model, EnsembleClassifier) and loaded.config.model.ensemble == 3
    assert (Predictor(loaded).predict_proba(texts) == direct).all()
    # member 0 is exactly the single model (same seed); the others differ
    m0, m1 = load_model(d / "ens", member=0), load_model(d / "ens", member=1)
    assert isinstance(m0.model, TextClassifier) and m0.config.model.ensemble == 1
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(m0.model.state_dict()[k], v)
    assert not torch.equal(m0.model.head.weight, m1.model.head.weight)
    # the ensemble's network probabilities are the mean of its members' (a member alone has no blend);
    # the ensemble blends that mean with its n-gram model
    per_member = [Predictor(load_model(d / "ens", member=k)).predict_proba(texts) for k in range(3)]
    assert all(load_model(d / "ens", member=k).ngrams is None for k in range(2))
    mean = sum(per_member) / 3
    torch.testing.assert_close(
        torch.as_tensor(direct), torch.as_tensor(loaded.blend(mean, texts)), rtol=1e-5, atol=1e-6
    )


def test_member_argument_errors(ensemble_dir):
    d, _, _ = ensemble_dir
    with pytest.raises(ArtifactError, match=r"--member must be 0\.\.2"):
        load_model(d / "ens", member=3)
    with pytest.raises(ArtifactError, match="not an ensemble"):
        load_model(d / "single", member=0)


def test_explain_and_trace_need_a_member(ensemble_dir, capsys):
    d, _, _ = ensemble_dir
    for cmd in (["trace", str(d / "ens"), "a great movie"], ["explain", str(d / "ens"), "a great movie"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert "ensemble of 3 networks" in err and "--member K (0..2)" in err and len(err.splitlines()) == 1
        assert main(cmd + ["--member", "2"]) == 0
        assert "great" in capsys.readouterr().out
    assert main(["summary", str(d / "ens")]) == 0
    out = capsys.readouterr().out
    n = sum(p.numel() for p in load_model(d / "ens").model.parameters())
    assert "Ensemble of 3 networks" in out and f"{n:,} parameters in all" in out


def test_ensemble_from_an_ensemble_pairs_members(ensemble_dir, tmp_path):
    """Each member starts from its own counterpart in the source ensemble (member k from k mod M)."""
    from grutext.models.transfer import load_transfer_source

    d, _, _ = ensemble_dir
    source = load_model(d / "ens").model
    for k in range(4):
        src = load_transfer_source(d / "ens", member=k)
        assert (src.members, src.member) == (3, k % 3)
        torch.testing.assert_close(src.embedding, source.members[k % 3].embedding.weight)
    cfg = _cfg(tmp_path / "child", 2, init_from=str(d / "ens"))
    cfg = Config(cfg.data, cfg.model, TrainConfig(epochs=1, lr=1e-9, warmup=0.0, batch_size=16, out=cfg.train.out))
    child = train_classifier(cfg, splits=_data(), verbose=False, progress=False)
    for k in range(2):  # a vanishing learning rate: each member still holds its source member's encoder
        for name, value in source.members[k].encoder.state_dict().items():
            torch.testing.assert_close(child.model.members[k].encoder.state_dict()[name], value, rtol=0, atol=1e-6)


def test_config_rejects_a_bad_ensemble_size():
    from grutext.errors import ConfigError

    with pytest.raises(ConfigError, match="model.ensemble must be >= 1"):
        Config(DataConfig(), ModelConfig(ensemble=0), TrainConfig()).validate()


def test_report_explains_the_ensembles_mistakes_through_a_member(ensemble_dir, tmp_path):
    from tests.conftest import write_csv

    from grutext.explain.report import training_report

    d, _, _ = ensemble_dir
    texts, labels = synthetic(40, classes=("pos", "neg", "mid"), seed=7)
    labels = [{"pos": "neg", "neg": "mid", "mid": "pos"}[lab] if i % 4 == 0 else lab for i, lab in enumerate(labels)]
    write_csv(tmp_path / "valid.csv", texts, labels)  # every 4th label wrong: the ensemble "errs" there
    page = training_report(
        d / "ens", out=tmp_path / "r.html", data=str(tmp_path / "valid.csv"), mistakes=2, member=1
    ).read_text()
    assert "an ensemble of 3 networks" in page and "each explanation reads member 1" in page
    assert "Ensemble of 3 networks of this shape" in page
    best = [m["best_epoch"] for m in json.loads((d / "ens" / "metrics.json").read_text())["members"]]
    assert f"each member's best epoch (bold): {', '.join(map(str, best))}" in page and "<th>member</th>" in page
    assert "validation data not available" not in page
    with pytest.raises(ArtifactError, match=r"--member must be 0\.\.2"):
        training_report(d / "ens", out=tmp_path / "r2.html", data=str(tmp_path / "valid.csv"), member=5)


def test_resume_after_an_interrupted_ensemble(tmp_path):
    """Members checkpoint in OUT.ckpt/member-K; a resumed run keeps the finished members and trains the rest."""
    import shutil

    cfg = _cfg(tmp_path / "ens", 2)
    cfg = Config(
        cfg.data, cfg.model, TrainConfig(epochs=2, lr=1e-2, batch_size=16, out=cfg.train.out, keep_checkpoint=True)
    )
    straight = train_classifier(cfg, splits=_data(), verbose=False, progress=False)
    ckpt = tmp_path / "ens.ckpt"
    assert (ckpt / "member-0" / "state.json").is_file() and (ckpt / "member-1" / "state.json").is_file()
    shutil.rmtree(ckpt / "member-1")  # as if the run died before member 1 began
    resumed = train_classifier(cfg, splits=_data(), verbose=False, progress=False, resume=True)
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_summary_of_a_configured_ensemble(capsys):
    assert (
        main(
            [
                "summary",
                "--ensemble",
                "3",
                "--embed-dim",
                "64",
                "--hidden-size",
                "32",
                "--no-bidirectional",
                "--pooling",
                "last",
                "--vocab-size",
                "5000",
                "--num-classes",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    one = 320_000 + 9_408 + 33  # Embedding(5000, 64) + GRU(32) + Dense(1), as Keras counts them
    assert f"Total params: {one:,}" in out and f"{3 * one:,} parameters in all" in out


def test_estimator_trains_an_ensemble():
    from grutext.estimator import GRUTextClassifier

    texts, labels = synthetic(120, classes=("pos", "neg"))
    clf = GRUTextClassifier(ensemble=2, epochs=2, embed_dim=8, hidden_size=6).fit(texts, labels)
    assert isinstance(clf.model_, EnsembleClassifier) and len(clf.model_) == 2
    proba = clf.predict_proba(["a great film", "boring"])
    assert proba.shape == (2, 2) and abs(proba.sum(1) - 1).max() < 1e-5
    assert clf.get_params()["ensemble"] == 2
