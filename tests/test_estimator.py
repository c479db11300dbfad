import numpy as np
import pytest
from tests.conftest import synthetic

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
