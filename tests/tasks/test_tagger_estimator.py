"""GRUTagger: fit on token/tag lists or a CoNLL path, predict, score (conlleval chunk F1), save/load,
get_params/clone, and one-line errors for bad input."""

from __future__ import annotations

import pytest
import torch
from planted_chunks import sentences, write_conll

from grutext.errors import ConfigError, DataError, NotFittedError
from grutext.tasks.tagging.estimator import GRUTagger

SMALL = dict(embed_dim=16, hidden_size=24, char_dim=8, char_hidden=8, epochs=3, batch_size=8, lr=1e-2, verbose=False)


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return sentences(300, 0), sentences(60, 1)


@pytest.fixture(scope="module")
def fitted(data):
    (X, y), _ = data
    return GRUTagger(**SMALL).fit(X, y)


def test_fit_lists_predict_and_score(fitted, data):
    _, (Xt, yt) = data
    assert fitted.scheme_ == "IOB2" and "E-NP" in fitted.tags_ and "S-VP" in fitted.tags_  # learnt in BIOES
    pred = fitted.predict(Xt)
    assert [len(p) for p in pred] == [len(s) for s in Xt]
    assert all(t in {"O", "B-NP", "I-NP", "B-VP", "B-PP"} for p in pred for t in p)  # the file's scheme
    f1 = fitted.score(Xt, yt)
    assert 0.97 <= f1 <= 1.0, f1
    rep = fitted.score_report(Xt, yt)
    assert rep["f1"] == f1 and set(rep["per_type"]) == {"NP", "VP", "PP"}
    # a wrong tagging scores lower: score reads y, not a constant
    shifted = [["O"] * len(t) for t in yt]
    assert fitted.score(Xt, shifted) == 0.0


def test_fit_on_a_conll_path_and_score_a_path(tmp_path, data):
    (X, y), (Xt, yt) = data
    train = write_conll(tmp_path / "train.txt", X, y)
    test = write_conll(tmp_path / "test.txt", Xt, yt)
    est = GRUTagger(**SMALL).fit(str(train))
    assert est.score(test) == pytest.approx(est.score(Xt, yt))
    assert est.predict(test) == est.predict(Xt)


def test_save_load_round_trip(fitted, data, tmp_path):
    _, (Xt, _) = data
    fitted.save(tmp_path / "m")
    back = GRUTagger.load(tmp_path / "m", verbose=False)
    assert back.predict(Xt) == fitted.predict(Xt)
    assert back.get_params()["hidden_size"] == 24 and back.get_params()["char_hidden"] == 8
    assert back.tags_ == fitted.tags_ and back.scheme_ == "IOB2"


def test_params_and_clone():
    import grutext

    assert grutext.GRUTagger is GRUTagger
    sklearn = pytest.importorskip("sklearn")
    est = GRUTagger(hidden_size=32, decoder="softmax")
    twin = sklearn.base.clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    est.set_params(char_encoder="cnn", cell="lstm")
    assert est.char_encoder == "cnn"
    cfg, tag_cfg = est._configs()
    assert cfg.model.cell == "lstm" and tag_cfg.char_encoder == "cnn"  # the params reach the training configs
    with pytest.raises(ValueError, match="(?i)invalid parameter"):
        est.set_params(nope=1)


def test_errors(fitted, data, tmp_path):
    (X, y), _ = data
    with pytest.raises(NotFittedError):
        GRUTagger().predict(X)
    with pytest.raises(DataError, match=r"y\[1\]: expected 2 tags"):
        GRUTagger(**SMALL).fit([["a", "b"], ["c", "d"]], [["O", "O"], ["O"]])
    with pytest.raises(DataError, match="expected 2 tag lists"):
        GRUTagger(**SMALL).fit(X[:2], y[:1])
    with pytest.raises(DataError, match=r"y line 2: unknown tag prefix in 'L-NP'"):
        GRUTagger(**SMALL).fit([["a"], ["b"]], [["B-NP"], ["L-NP"]])
    with pytest.raises(DataError, match="pass y=None"):
        GRUTagger(**SMALL).fit(str(write_conll(tmp_path / "x.txt", X, y)), y)
    with pytest.raises(DataError, match="is not a file"):
        GRUTagger(**SMALL).fit(str(tmp_path / "nope.txt"))
    with pytest.raises(ConfigError, match="feature column"):
        GRUTagger(**SMALL, feature_col=1).fit(X, y)
    with pytest.raises(ConfigError, match="model.cell"):
        GRUTagger(**SMALL, cell="lsmt").fit(X, y)
    with pytest.raises(ConfigError, match="tag.decoder"):
        GRUTagger(**{**SMALL, "decoder": "hmm"}).fit(X, y)
    with pytest.raises(DataError, match=r"X\[0\]: expected a list of token strings"):
        fitted.predict(["a sentence as one string"])
    with pytest.raises(DataError, match="not a file; expected a CoNLL"):
        fitted.predict("the dog")
    with pytest.raises(DataError, match=r"X\[1\]: an empty sentence"):
        fitted.predict([["a"], []])
    with pytest.raises(ConfigError, match="sample_weight"):
        fitted.score(X[:3], y[:3], sample_weight=[1, 1, 1])
