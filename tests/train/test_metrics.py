import math

import numpy as np
import pytest

from grutext.train.metrics import (
    bits_per_char,
    classification_report,
    confusion_matrix,
    format_confusion,
    format_per_class,
    multilabel_report,
    perplexity,
)


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


def test_report_with_an_absent_class_and_zero_divisions():
    # class "c" is never true and never predicted; "b" is predicted but never right for one text
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0, 1, 1, 1, 0])
    rep = classification_report(y, p, ["a", "b", "c"])
    assert rep["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    assert rep["accuracy"] == pytest.approx(3 / 5) and rep["n"] == 5 and rep["labels"] == ["a", "b", "c"]
    assert rep["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert rep["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert rep["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert rep["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)  # over the classes present in y_true only
    assert all(type(v) is float for k, v in rep["per_class"]["c"].items() if k != "support")
    # a class predicted but never true: precision 0 (not NaN), recall 0 by convention
    rep = classification_report(np.array([0, 0]), np.array([1, 0]), ["a", "b"])
    assert rep["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert rep["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert rep["macro_f1"] == pytest.approx(2 / 3)
    # true but never predicted: recall 0, precision 0 (nothing predicted), F1 0
    rep = classification_report(np.array([0, 1]), np.array([0, 0]), ["a", "b"])
    assert rep["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # a class with a single example counts: recall 1 and in the macro average
    one = classification_report(np.array([0, 0, 1]), np.array([0, 0, 1]), ["a", "b"])
    assert one["per_class"]["b"]["recall"] == 1.0 and one["macro_f1"] == 1.0
    assert classification_report(np.array([0, 1]), np.array([0, 0]), ["a", "b"])["macro_f1"] == pytest.approx(1 / 3)
    empty = classification_report(np.array([], dtype=int), np.array([], dtype=int), ["a", "b"])
    assert empty["accuracy"] == 0.0 and empty["macro_f1"] == 0.0 and empty["n"] == 0
    assert empty["confusion_matrix"] == [[0, 0], [0, 0]]


def test_confusion_matrix_counts_pairs():
    cm = confusion_matrix(np.array([2, 0, 2, 2, 1]), np.array([2, 1, 0, 2, 1]), 3)
    assert cm.dtype == np.int64 and cm.tolist() == [[0, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert confusion_matrix([1.0, 1.0], [0.0, 1.0], 2).tolist() == [[0, 0], [1, 1]]  # float labels as indices


def test_multilabel_report_per_label_and_empty_labels():
    sk = pytest.importorskip("sklearn.metrics")
    y = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]])
    p = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [1, 0, 0, 0]])
    rep = multilabel_report(y, p, ["w", "x", "y", "z"])  # "z" never true nor predicted: F1 0
    per = sk.f1_score(y, p, average=None, zero_division=0)
    assert [rep["per_class"][k]["f1"] for k in "wxyz"] == pytest.approx(per)
    assert [rep["per_class"][k]["support"] for k in "wxyz"] == [3, 2, 2, 0]
    assert rep["macro_f1"] == pytest.approx(per.mean())
    assert rep["micro_f1"] == pytest.approx(sk.f1_score(y, p, average="micro"))
    assert rep["accuracy"] == pytest.approx(2 / 5) and rep["n"] == 5 and rep["labels"] == ["w", "x", "y", "z"]
    assert all(type(v["f1"]) is float and type(v["support"]) is int for v in rep["per_class"].values())
    none = multilabel_report(np.zeros((2, 2)), np.zeros((2, 2)), ["a", "b"])
    assert none["micro_f1"] == 0.0 and none["macro_f1"] == 0.0 and none["accuracy"] == 1.0


def test_perplexity_and_bits():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(7.0)) == pytest.approx(7.0, rel=1e-12)
    assert perplexity(2.5) == pytest.approx(math.exp(2.5), rel=1e-12)
    assert perplexity(1e6) == pytest.approx(math.exp(700.0))  # clamped, not an OverflowError
    assert isinstance(perplexity(1), float)
    assert bits_per_char(math.log(2.0)) == pytest.approx(1.0, rel=1e-12)
    assert bits_per_char(3.0) == pytest.approx(3.0 / math.log(2.0), rel=1e-12)


def test_text_tables():
    rep = classification_report(
        np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), ["a", "bb", "a-very-long-class-name"]
    )
    lines = format_confusion(rep["confusion_matrix"], rep["labels"]).split("\n")
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1  # aligned columns
    assert lines[0].split() == ["true\\pred", "a", "bb", "a-very-long-cl"]  # names cut to 14 characters
    assert [line.split()[1:] for line in lines[1:]] == [["1", "1", "0"], ["1", "2", "0"], ["0", "0", "0"]]
    assert [line.split()[0] for line in lines[1:]] == ["a", "bb", "a-very-long-cl"]
    assert all(len(line) == (15 + 2) + 15 * 3 for line in lines)  # columns one wider than the longest name
    assert lines[0].startswith("true\\pred ") and lines[0].endswith(" a-very-long-cl")  # names right-aligned
    assert lines[1].startswith("a ") and lines[1].endswith(" 0")  # row names left, counts right-aligned
    assert (
        format_confusion([[1, 2], [3, 4]], ["x", "y"])
        == "true\\pred     x     y\nx            1     2\ny            3     4"
    )
    wide = format_confusion([[1, 123456789], [0, 2]], ["x", "y"]).split("\n")
    assert all(len(line) == (10 + 2) + 10 * 2 for line in wide) and wide[1].endswith(" 123456789")
    table = format_per_class(rep).split("\n")
    assert table[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert table[1].split() == ["a", "0.5000", "0.5000", "0.5000", "2"]
    assert table[2].split() == ["bb", "0.6667", "0.6667", "0.6667", "3"]
    assert table[3].split() == ["a-very-long-cla", "0.0000", "0.0000", "0.0000", "0"]  # cut to 15
    assert len({len(line) for line in table}) == 1
    ml = multilabel_report(np.array([[1, 0]]), np.array([[1, 1]]), ["p", "q"])
    assert format_per_class(ml).split("\n")[1].split() == ["p", "nan", "nan", "1.0000", "1"]
