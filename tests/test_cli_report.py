"""The terminal report of a classifier: the full confusion matrix up to 15 classes, the most
frequent confusions (true -> predicted, count) above that."""

from __future__ import annotations

import io

from grutext.tasks.classification.cli import MAX_MATRIX_CLASSES, format_confusions, print_report, top_confusions


def report(n_classes: int) -> dict:
    labels = [f"class{i:02d}" for i in range(n_classes)]
    cm = [[0] * n_classes for _ in range(n_classes)]
    for i in range(n_classes):
        cm[i][i] = 50
    # planted mistakes with distinct counts: (true, predicted, count)
    planted = [(3, 7, 40), (7, 3, 33), (0, 19 % n_classes, 31), (5, 6, 29), (6, 5, 27), (9, 2, 25)]
    planted += [(10 % n_classes, 11 % n_classes, 21), (12 % n_classes, 1, 17), (4, 8, 13), (8, 4, 11), (2, 9, 7)]
    planted += [(1, 2, 3), (2, 1, 2)]
    for t, p, c in planted:
        cm[t][p] = c
    per_class = {lab: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 60} for lab in labels}
    return {
        "accuracy": 0.8,
        "macro_f1": 0.7,
        "loss": 0.5,
        "n": sum(map(sum, cm)),
        "labels": labels,
        "per_class": per_class,
        "confusion_matrix": cm,
    }, planted


def test_twenty_classes_show_the_top_ten_confusions():
    rep, planted = report(20)
    buf = io.StringIO()
    print_report(rep, stream=buf)
    text = buf.getvalue()
    assert "true\\pred" not in text  # no 20x20 matrix
    assert max(len(line) for line in text.splitlines()) < 120
    lines = text.split("most frequent confusions", 1)[1].splitlines()[1:]
    expected = sorted(planted, key=lambda p: -p[2])[:10]
    assert len(lines) == 10
    for line, (t, p, c) in zip(lines, expected, strict=True):
        assert line.split() == [f"class{t:02d}", "->", f"class{p:02d}", str(c)], line
    assert "class01 -> class02" not in text  # the 11th and later mistakes are left out
    assert "accuracy 0.8000" in text and "class19" in text  # the per-class table keeps every class


def test_few_classes_keep_the_full_matrix():
    rep, _ = report(MAX_MATRIX_CLASSES)
    text = format_confusions(rep["confusion_matrix"], rep["labels"])
    assert text.startswith("true\\pred") and len(text.splitlines()) == MAX_MATRIX_CLASSES + 1


def test_top_confusions_skip_the_diagonal_and_zeros():
    cm = [[9, 0, 1], [2, 8, 0], [0, 0, 7]]
    assert top_confusions(cm, ["a", "b", "c"]) == [("b", "a", 2), ("a", "c", 1)]
    assert "none" in format_confusions([[5] + [0] * 16] + [[0] * 17 for _ in range(16)], [str(i) for i in range(17)])
