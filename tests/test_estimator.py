import numpy as np
import pytest
from tests.conftest import synthetic, write_csv

from grutext.errors import NotFittedError
from grutext.estimator import GRUTextClassifier

FAST = dict(embed_dim=12, hidden_size=8, epochs=4, batch_size=16, lr=1e-2, min_freq=1, patience=0)


def test_contract():
    clf = GRUTextClassifier(**FAST)
    assert clf.get_params()["hidden_size"] == 8
    assert not any(k.endswith("_") for k in vars(clf))  # __init__ only stores
    with pytest.raises(NotFittedError):
        clf.predict(["x"])
    texts, labels = synthetic(200)
    assert clf.fit(texts, labels) is clf
    assert list(clf.classes_) == ["neg", "pos"]
    proba = clf.predict_proba(texts[:5])
    assert proba.shape == (5, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert clf.score(texts, labels) > 0.9
    assert set(clf.predict(texts[:10])) <= {"neg", "pos"}


def test_integer_labels_come_back_as_given():
    texts, labels = synthetic(120, classes=("pos", "neg", "mid"))
    y = np.array([{"pos": 2, "neg": 0, "mid": 10}[lab] for lab in labels])
    clf = GRUTextClassifier(**FAST).fit(texts, y)
    assert sorted(clf.classes_.tolist()) == [0, 2, 10]
    assert clf.predict(texts[:3]).dtype.kind == "i"


def test_pipeline_and_grid_search():
    sk = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    texts, labels = synthetic(200)
    c = clone(GRUTextClassifier(**FAST))
    assert c.get_params() == GRUTextClassifier(**FAST).get_params()
    pipe = make_pipeline(FunctionTransformer(lambda xs: [x.lower() for x in xs]), GRUTextClassifier(**FAST))
    pipe.fit(texts, labels)
    assert pipe.score(texts, labels) > 0.75  # chance is 0.5
    grid = GridSearchCV(GRUTextClassifier(**FAST), {"hidden_size": [4, 8]}, cv=2)
    grid.fit(np.array(texts, dtype=object), np.array(labels))
    assert grid.best_params_["hidden_size"] in (4, 8)
    assert sk.base.is_classifier(GRUTextClassifier())


def test_bad_input():
    from grutext.errors import DataError

    clf = GRUTextClassifier(**FAST)
    with pytest.raises(DataError, match=r"X\[1\]: empty"):
        clf.fit(["a b", "  "], ["x", "y"])
    with pytest.raises(DataError, match="expected 2 labels"):
        clf.fit(["a b", "c"], ["x"])
    with pytest.raises(DataError, match=r"y\[1\]: missing label"):
        clf.fit(["a b", "c d"], ["x", float("nan")])
    with pytest.raises(ValueError, match="(?i)invalid parameter"):
        clf.set_params(hiden=3)


# ---- one set of defaults, a loadable model, and the same model from every entry point


def test_defaults_are_the_config_defaults():
    """Every estimator parameter that is a config field defaults to that field's default (the CLI's)."""
    import inspect
    from dataclasses import fields

    from grutext.config import DataConfig, ModelConfig, TrainConfig

    defaults = {f.name: f.default for klass in (DataConfig, ModelConfig, TrainConfig) for f in fields(klass)}
    params = inspect.signature(GRUTextClassifier.__init__).parameters
    shared = [name for name in params if name in defaults]
    assert len(shared) >= 20
    for name in shared:
        assert params[name].default == defaults[name], name
    assert params["random_state"].default == TrainConfig().seed
    cfg = GRUTextClassifier()._config()
    assert cfg.data.min_freq == DataConfig().min_freq and cfg.train.batch_size == TrainConfig().batch_size
    assert GRUTextClassifier().verbose is True  # prints what `grutext train` prints


def test_a_bare_string_is_a_clear_error():
    from grutext.errors import DataError

    texts, labels = synthetic(120)
    clf = GRUTextClassifier(**FAST, verbose=False).fit(texts, labels)
    for method in (clf.predict, clf.predict_proba):
        with pytest.raises(
            DataError, match=r"X: expected a list of texts, got one str \('a great film'\); pass \[text\]"
        ):
            method("a great film")
    with pytest.raises(DataError, match="X: expected a list of texts"):
        clf.score("a great film", ["pos"])
    with pytest.raises(DataError, match="y: expected a list of labels"):
        clf.score(["a great film"], "pos")
    with pytest.raises(DataError, match="X: expected a list of texts"):
        GRUTextClassifier(**FAST).fit("great awful", ["pos", "neg"])
    assert clf.predict(["a great film"]).shape == (1,)


def test_load_round_trip(tmp_path):
    texts, labels = synthetic(160, classes=("pos", "neg", "mid"))
    y = np.array([{"pos": 2, "neg": 0, "mid": 10}[lab] for lab in labels])
    clf = GRUTextClassifier(**FAST, verbose=False, lowercase=False, max_len=20, truncation="tail").fit(texts, y)
    clf.save(str(tmp_path / "m"))
    back = GRUTextClassifier.load(str(tmp_path / "m"))
    probe = texts[:40] + ["A Great film, GREAT!", "okay " * 500]
    np.testing.assert_array_equal(back.predict_proba(probe), clf.predict_proba(probe))
    np.testing.assert_array_equal(back.predict(probe), clf.predict(probe))
    assert back.classes_.tolist() == clf.classes_.tolist() and sorted(back.classes_.tolist()) == [0, 2, 10]
    # the saved config holds what training used: pretrained = "auto" resolved (here: no vectors package)
    assert back.get_params() | {"verbose": False, "pretrained": "auto"} == clf.get_params()
    assert back.pretrained == clf.config_.model.pretrained is None
    assert back.score(texts, y) == clf.score(texts, y)
    assert len(back.history_) == len(clf.history_)


def test_load_a_cli_model_and_reject_non_models(tmp_path):
    from grutext.errors import ArtifactError

    with pytest.raises(ArtifactError):
        GRUTextClassifier.load(str(tmp_path / "nothing"))


def test_estimator_config_api_and_cli_train_the_same_model(tmp_path):
    """The same data and seed give the same predictions through all three entry points."""
    import csv

    import grutext
    from grutext.artifact import LoadedModel
    from grutext.cli import main
    from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
    from grutext.infer.predict import Predictor

    texts, labels = synthetic(160, seed=3)
    path = tmp_path / "train.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, labels, strict=True))
    probe, _ = synthetic(30, seed=9)
    small = dict(embed_dim=12, hidden_size=8, epochs=2, batch_size=16, lr=1e-2, random_state=5)

    est = GRUTextClassifier(**small, verbose=False).fit(texts, labels).predict_proba(probe)

    run = grutext.train_classifier(
        Config(
            DataConfig(train=str(path)),
            ModelConfig(embed_dim=12, hidden_size=8),
            TrainConfig(epochs=2, batch_size=16, lr=1e-2, seed=5),
        ),
        save=False,
        verbose=False,
    )
    loaded = LoadedModel(run.model, run.tokenizer, run.config, "classifier", run.labels, ngrams=run.ngrams)
    api = Predictor(loaded).predict_proba(probe)
    assert run.ngrams is not None  # the default blend, through all three

    out = tmp_path / "cli-model"
    argv = ["train", str(path), "--embed-dim", "12", "--hidden-size", "8", "--epochs", "2", "--batch-size", "16"]
    assert main([*argv, "--lr", "0.01", "--seed", "5", "--out", str(out)]) == 0
    cli = GRUTextClassifier.load(str(out), verbose=False).predict_proba(probe)

    np.testing.assert_allclose(api, est, rtol=0, atol=1e-6)
    np.testing.assert_allclose(cli, est, rtol=0, atol=1e-6)
    assert not np.allclose(est, est.mean(0))  # a model that tells the texts apart, not a constant


def test_a_config_file_trains_the_same_model_as_the_estimator_and_the_flags(tmp_path):
    """`grutext train --config FILE` (every setting in the TOML file), the same settings as flags, and
    the estimator: one model from the same data and seed (defaults left alone: the shared ones)."""
    from grutext.cli import main

    texts, labels = synthetic(160, seed=4)
    path = write_csv(tmp_path / "train.csv", texts, labels)
    probe, _ = synthetic(30, seed=8)
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'[data]\ntrain = "{path.as_posix()}"\nmin_freq = 1\n\n[model]\nembed_dim = 12\nhidden_size = 8\n\n'
        f'[train]\nepochs = 2\nbatch_size = 16\nlr = 0.01\nseed = 7\nout = "{(tmp_path / "from-file").as_posix()}"\n'
    )
    assert main(["train", "--config", str(toml)]) == 0
    from_file = GRUTextClassifier.load(str(tmp_path / "from-file"), verbose=False).predict_proba(probe)
    flags = ["--min-freq", "1", "--embed-dim", "12", "--hidden-size", "8", "--epochs", "2", "--batch-size", "16"]
    assert main(["train", str(path), *flags, "--lr", "0.01", "--seed", "7", "--out", str(tmp_path / "cli")]) == 0
    from_flags = GRUTextClassifier.load(str(tmp_path / "cli"), verbose=False).predict_proba(probe)
    est = GRUTextClassifier(
        min_freq=1, embed_dim=12, hidden_size=8, epochs=2, batch_size=16, lr=1e-2, random_state=7, verbose=False
    )
    from_estimator = est.fit(texts, labels).predict_proba(probe)
    np.testing.assert_allclose(from_file, from_estimator, rtol=0, atol=1e-6)
    np.testing.assert_allclose(from_flags, from_estimator, rtol=0, atol=1e-6)
    assert not np.allclose(from_estimator, from_estimator.mean(0))
