"""The classifier's n-gram blend (model.blend): the NumPy n-gram model against scikit-learn, the weight
rule, and the blend through train -> save -> load -> predict/evaluate, the estimator and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.conftest import synthetic

from grutext.artifact import load_model
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.data.readers import TextDataset
from grutext.errors import ArtifactError, ConfigError
from grutext.infer.predict import Predictor
from grutext.ngrams import NgramModel, choose_weight, fit_temperature, ngrams, temper
from grutext.pipeline import Splits, train_classifier
from grutext.tasks.classification.blend import blend_weight, nll
from grutext.tasks.classification.evaluate import evaluate_classifier

TEXTS = [
    "Good movie, great fun!",
    "bad film. Awful acting",
    "great great acting, GREAT",
    "awful, bad, boring",
    "fun and good",
    "boring film, café été",
] * 8
PROBES = ["great acting but a boring film", "Café été", "zzz", "awful awful awful fun"]


def sklearn_pair(texts, y):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, dtype=np.float32)
    x = vec.fit_transform(texts)
    return vec, LogisticRegression(C=10.0, max_iter=1000).fit(x, y)


def test_ngrams_as_sklearn_forms_them():
    assert ngrams("The cat's HAT, a b") == ["the", "cat", "hat", "the cat", "cat hat"]
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyse = TfidfVectorizer(ngram_range=(1, 2)).build_analyzer()
    tricky = "L'été à São-Paulo, x y zz 12 3 _a a_ __ é ÉCOLE naïve\tcafé--bar x2 ٣٤ 東京 o'clock"
    assert ngrams(tricky) == analyse(tricky)


@pytest.mark.parametrize("classes", [2, 3])
def test_probabilities_match_sklearn(classes):
    y = np.arange(len(TEXTS)) % classes
    model = NgramModel.fit(TEXTS, y, "binary" if classes == 2 else "multiclass", {"min_df": 1})
    assert model.output == ("binary" if classes == 2 else "softmax") and model.num_classes == classes
    vec, lr = sklearn_pair(TEXTS, y)
    assert model.vocabulary == sorted(vec.vocabulary_, key=vec.vocabulary_.get)
    np.testing.assert_allclose(model.probabilities(PROBES), lr.predict_proba(vec.transform(PROBES)), atol=1e-5)


def test_multilabel_one_logistic_regression_per_label():
    y = np.stack([np.arange(len(TEXTS)) % 2, (np.arange(len(TEXTS)) // 2) % 2, np.ones(len(TEXTS), int)], axis=1)
    model = NgramModel.fit(TEXTS, y, "multilabel", {"min_df": 1})
    assert model.output == "sigmoid"
    p = model.probabilities(PROBES)
    vec, lr0 = sklearn_pair(TEXTS, y[:, 0])
    np.testing.assert_allclose(p[:, 0], lr0.predict_proba(vec.transform(PROBES))[:, 1], atol=1e-5)
    assert (p[:, 2] > 0.999).all()  # a label always on: a constant, certain logit


def test_save_load_round_trip(tmp_path):
    y = np.arange(len(TEXTS)) % 3
    model = NgramModel.fit(TEXTS, y, "multiclass")
    model.weight, model.temperature, model.network_temperature = 0.3, 0.5, 2.0
    model.save(tmp_path)
    back = NgramModel.load(tmp_path)
    assert back is not None and back.weight == 0.3 and back.vocabulary == model.vocabulary
    assert (back.temperature, back.network_temperature) == (0.5, 2.0)
    np.testing.assert_array_equal(back.probabilities(PROBES), model.probabilities(PROBES))
    net = np.tile(np.array([[0.6, 0.3, 0.1]], dtype=np.float32), (len(PROBES), 1))
    calibrated = temper(net, 2.0, "softmax")
    assert calibrated[0, 0] < 0.6  # a temperature above 1 softens
    np.testing.assert_allclose(back.blend(net, PROBES), 0.7 * calibrated + 0.3 * model.probabilities(PROBES), atol=1e-6)
    # a file written before calibration (no temperatures) loads with both at 1
    meta = json.loads((tmp_path / "ngrams.json").read_text())
    del meta["temperature"], meta["network_temperature"]
    (tmp_path / "ngrams.json").write_text(json.dumps(meta))
    old = NgramModel.load(tmp_path)
    assert old is not None and (old.temperature, old.network_temperature) == (1.0, 1.0)
    (tmp_path / "ngrams.safetensors").unlink()
    with pytest.raises(ValueError, match="ngrams.safetensors: missing"):
        NgramModel.load(tmp_path)


def test_temper_divides_the_logits():
    p = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], dtype=np.float32)
    np.testing.assert_array_equal(temper(p, 1.0, "binary"), p)
    logit = np.log(p[:, 1] / p[:, 0])
    np.testing.assert_allclose(temper(p, 2.0, "binary")[:, 1], 1 / (1 + np.exp(-logit / 2)), atol=1e-6)
    np.testing.assert_allclose(temper(p, 0.5, "softmax").sum(1), 1.0, atol=1e-6)
    q = np.array([[0.9, 0.2]], dtype=np.float32)  # multi-label: each entry its own sigmoid
    np.testing.assert_allclose(temper(q, 3.0, "sigmoid"), 1 / (1 + np.exp(-np.log(q / (1 - q)) / 3)), atol=1e-6)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_fit_temperature_recovers_over_confidence(output):
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.5, size=(6000, 3))
    if output == "softmax":
        truth = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        y = np.array([rng.choice(3, p=row) for row in truth])
        loud = np.exp(2 * z) / np.exp(2 * z).sum(1, keepdims=True)  # logits doubled: over-confident
    else:
        truth = 1 / (1 + np.exp(-z))
        y = (rng.random(z.shape) < truth).astype(int)
        loud = 1 / (1 + np.exp(-2 * z))
    assert fit_temperature(loud, y, output) == pytest.approx(2.0, rel=0.1)
    assert fit_temperature(truth, y, output) == pytest.approx(1.0, rel=0.1)
    assert fit_temperature(loud[:0], y[:0], output) == 1.0


def test_choose_weight_one_standard_error_rule():
    y = np.array([0, 1] * 50)
    good = np.eye(2)[y].astype(np.float32)  # always right
    bad = np.eye(2)[1 - y].astype(np.float32)  # always wrong

    def acc(p):
        return float((p.argmax(1) == y).mean())

    w, grid = choose_weight(bad, good, acc)  # the n-gram model right, the network wrong: all n-grams
    assert w > 0.5 and len(grid) == 11 and grid[-1] == (1.0, 1.0)
    w, _ = choose_weight(good, bad, acc)
    assert w < 0.5
    w, _ = choose_weight(good, good, acc)  # a tie everywhere: the even blend
    assert w == 0.5


def test_blend_setting_parsing():
    assert blend_weight("auto") is None and blend_weight("off") == 0.0 and blend_weight("0.25") == 0.25
    for bad in ("maybe", 1.5, -0.1, True):
        with pytest.raises(ConfigError, match="model.blend must be auto, off or a number from 0 to 1"):
            blend_weight(bad)
    assert any("model.blend" in p for p in Config(model=ModelConfig(blend="1.5")).problems())


def test_nll_hand_computed():
    p = np.array([[0.25, 0.75], [0.5, 0.5]])
    assert nll(p, np.array([1, 0]), "binary") == pytest.approx(-(np.log(0.75) + np.log(0.5)) / 2)


def _train(tmp_path, blend, out="m"):
    texts, labels = synthetic(160, classes=("pos", "neg", "mid"))
    tr, va = TextDataset(texts[:120], labels[:120], "t"), TextDataset(texts[120:], labels[120:], "v")
    cfg = Config(
        DataConfig(min_freq=1),
        ModelConfig(embed_dim=12, hidden_size=8, pretrained=None, blend=blend),
        TrainConfig(epochs=1, out=str(tmp_path / out)),
    )
    return train_classifier(cfg, splits=Splits(tr, va, va), verbose=False), va


def test_trained_blend_saved_loaded_and_predicted(tmp_path):
    run, va = _train(tmp_path, 0.4)
    assert run.ngrams is not None and run.ngrams.weight == 0.4
    out = tmp_path / "m"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["blend"]["weight"] == 0.4 and metrics["blend"]["chosen"] == "model.blend"
    temps = metrics["blend"]["temperatures"]
    assert set(metrics["blend"]["network_valid"]) == {"accuracy", "loss"}
    loaded = load_model(out)
    assert loaded.ngrams is not None and loaded.ngrams.weight == 0.4
    assert temps == {"network": loaded.ngrams.network_temperature, "ngrams": loaded.ngrams.temperature}
    net_only = Predictor(load_model(out, member=None))
    net_only.loaded.ngrams = None
    probs, net = Predictor.load(out).predict_proba(va.texts), net_only.predict_proba(va.texts)
    net = temper(net, temps["network"], loaded.ngrams.output)  # the network calibrated before the blend
    np.testing.assert_allclose(probs, 0.6 * net + 0.4 * loaded.ngrams.probabilities(va.texts), atol=1e-6)
    # the blended model is what evaluate scores, and what training reported; the network's own figures kept
    rep = evaluate_classifier(loaded, va, progress=False)
    assert rep["accuracy"] == pytest.approx(metrics["valid"]["accuracy"])
    assert rep["network"]["accuracy"] == pytest.approx(metrics["blend"]["network_valid"]["accuracy"])
    assert rep["blend_weight"] == 0.4


def test_blend_off_writes_no_ngram_files(tmp_path, capsys):
    run, _ = _train(tmp_path, "off")
    assert run.ngrams is None and run.blend is None
    out = tmp_path / "m"
    assert not (out / "ngrams.json").exists() and "blend" not in json.loads((out / "metrics.json").read_text())
    assert load_model(out).ngrams is None
    from grutext.cli import main

    assert main(["summary", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "blend: off"


def test_auto_blend_picks_weight_on_validation(tmp_path):
    run, _ = _train(tmp_path, "auto")
    assert run.blend is not None and run.blend["chosen"].startswith("validation")
    grid = {g["weight"]: g["accuracy"] for g in run.blend["validation_grid"]}
    assert len(grid) == 11 and grid[0.0] == pytest.approx(run.blend["network_valid"]["accuracy"])
    assert grid[1.0] == pytest.approx(run.blend["ngram_valid_accuracy"])
    assert grid[run.blend["weight"]] >= max(grid.values()) - 0.08  # within one standard error (n = 40)


def test_corrupt_ngram_file_is_an_artifact_error(tmp_path):
    _train(tmp_path, 0.5)
    out = tmp_path / "m"
    meta = json.loads((out / "ngrams.json").read_text())
    meta["vocabulary"] = meta["vocabulary"][:-1]
    (out / "ngrams.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError):  # the manifest's checksum, or the shapes
        load_model(out)


def test_estimator_blend_round_trip(tmp_path):
    from grutext.estimator import GRUTextClassifier

    texts, labels = synthetic(120, classes=("pos", "neg"))
    clf = GRUTextClassifier(
        embed_dim=8, hidden_size=8, epochs=1, pretrained=None, blend=0.5, baseline=False, verbose=False
    ).fit(texts, labels)
    assert clf.ngrams_ is not None and clf.blend_["weight"] == 0.5
    clf.save(str(tmp_path / "est"))
    back = GRUTextClassifier.load(str(tmp_path / "est"), verbose=False)
    assert back.ngrams_ is not None
    np.testing.assert_allclose(back.predict_proba(texts[:10]), clf.predict_proba(texts[:10]), atol=1e-6)
    off = GRUTextClassifier(embed_dim=8, hidden_size=8, epochs=1, pretrained=None, blend="off", verbose=False)
    assert off.fit(texts, labels).ngrams_ is None


@pytest.mark.parametrize("task", ["lm", "tag"])
def test_blend_is_refused_by_other_tasks(task, tmp_path, capsys):
    from grutext.cli import main

    data = tmp_path / "x.txt"
    data.write_text("a b c\n")
    assert main(["train", str(data), "--task", task, "--blend", "0.5", "--out", str(tmp_path / "o")]) != 0
    assert "--blend: does not apply" in capsys.readouterr().err


def test_fit_blend_calibrates_both_models_on_validation():
    from grutext.tasks.classification.blend import fit_blend
    from grutext.tasks.classification.evaluate import ClassificationTask

    texts, labels = synthetic(200, classes=("pos", "neg"))
    tr, va = TextDataset(texts[:150], labels[:150], "t"), TextDataset(texts[150:], labels[150:], "v")
    task = ClassificationTask("binary", ["neg", "pos"])
    y = np.array([task.labels.index(lab) for lab in va.labels])
    rng = np.random.default_rng(0)
    right = np.where(rng.random(len(y)) < 0.8, y, 1 - y)  # right 80% of the time, always 99% sure
    loud = np.where(right[:, None] == np.arange(2), 0.99, 0.01).astype(np.float32)
    model, info = fit_blend("auto", tr, va, loud, y, task)
    assert model is not None and info is not None
    assert model.network_temperature == fit_temperature(loud, y, "binary") > 1.5  # softened
    model.temperature = 1.0
    assert info["temperatures"]["ngrams"] == fit_temperature(model.probabilities(va.texts), y, "binary")
    assert info["temperatures"]["network"] == model.network_temperature
