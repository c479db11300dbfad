import numpy as np
import pytest

from grutext.train.metrics import classification_report, multilabel_report


def test_report_matches_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, 4, 300))
    rep = classification_report(y, p, ["a", "b", "c", "d"])
    assert rep["accuracy"] == pytest.approx(sk.accuracy_score(y, p))
    assert rep["macro_f1"] == pytest.approx(sk.f1_score(y, p, average="macro"))
    prec = sk.precision_score(y, p, average=None)
    assert [rep["per_class"][k]["precision"] for k in "abcd"] == pytest.approx(prec)
    assert rep["confusion_matrix"] == sk.confusion_matrix(y, p).tolist()


def test_multilabel_report():
    sk = pytest.importorskip("sklearn.metrics")
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    p = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 1]])
    rep = multilabel_report(y, p, ["x", "y", "z"])
    assert rep["micro_f1"] == pytest.approx(sk.f1_score(y, p, average="micro"))
    assert rep["macro_f1"] == pytest.approx(sk.f1_score(y, p, average="macro"))
    assert rep["accuracy"] == pytest.approx(0.25)
