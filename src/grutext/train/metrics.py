"""Classification and language-model metrics on plain numpy arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """`(C, C)` counts, rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Args:
        y_true, y_pred: `(N,)` class indices.
        labels: class names, index order.

    Returns:
        A JSON-ready dict.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    cm = confusion_matrix(y_true, y_pred, len(labels))
    tp = np.diag(cm).astype(float)
    pred_count = cm.sum(0).astype(float)
    true_count = cm.sum(1).astype(float)
    precision = np.divide(tp, pred_count, out=np.zeros_like(tp), where=pred_count > 0)
    recall = np.divide(tp, true_count, out=np.zeros_like(tp), where=true_count > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = true_count > 0
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(true_count[i]),
        }
        for i, name in enumerate(labels)
    }
    return {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "labels": list(labels),
        "n": int(len(y_true)),
    }


def multilabel_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Subset accuracy, micro/macro F1 and per-label scores for `(N, C)` 0/1 arrays."""
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_pred).astype(bool)
    tp = (y_true & y_pred).sum(0).astype(float)
    fp = (~y_true & y_pred).sum(0).astype(float)
    fn = (y_true & ~y_pred).sum(0).astype(float)

    def f1(t, p, n):
        d = 2 * t + p + n
        return np.divide(2 * t, d, out=np.zeros_like(np.asarray(t, dtype=float)), where=d > 0)

    per = f1(tp, fp, fn)
    micro = float(f1(np.array([tp.sum()]), np.array([fp.sum()]), np.array([fn.sum()]))[0])
    return {
        "accuracy": float((y_true == y_pred).all(1).mean()),
        "micro_f1": micro,
        "macro_f1": float(per.mean()),
        "per_class": {n: {"f1": float(per[i]), "support": int(y_true[:, i].sum())} for i, n in enumerate(labels)},
        "labels": list(labels),
        "n": int(len(y_true)),
    }


def nll(probs: np.ndarray, y: np.ndarray, task: str) -> float:
    """Mean negative log-likelihood of labels `y` under `probs` (multi-label: mean binary cross-entropy)."""
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    if task == "multilabel":
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    return float(-np.log(p[np.arange(len(y)), y]).mean())


def perplexity(mean_nll: float) -> float:
    """exp of the mean negative log-likelihood in nats (inf-safe; the clamp is the language model's
    `PERPLEXITY_CLAMP`, decided once in `grutext.tasks.language_model.config`)."""
    from grutext.tasks.language_model.config import perplexity as lm_perplexity

    return float(lm_perplexity(mean_nll))


def bits_per_char(mean_nll: float) -> float:
    """Mean NLL in nats converted to bits."""
    return float(mean_nll / math.log(2))


def format_confusion(cm: list[list[int]], labels: list[str]) -> str:
    """The confusion matrix as an aligned text table (rows true, columns predicted)."""
    names = [str(n)[:14] for n in labels]
    width = max(6, max(len(n) for n in names) + 1, max(len(str(v)) for row in cm for v in row) + 1)
    head = "true\\pred".ljust(width + 2) + "".join(n.rjust(width) for n in names)
    rows = [names[i].ljust(width + 2) + "".join(str(v).rjust(width) for v in row) for i, row in enumerate(cm)]
    return "\n".join([head, *rows])


MAX_MATRIX_CLASSES = 15  # above this many classes the terminal shows the top confusions, not the matrix
TOP_CONFUSIONS = 10


def top_confusions(cm: list[list[int]], labels: list[str], top: int = TOP_CONFUSIONS) -> list[tuple[str, str, int]]:
    """The `top` most frequent mistakes as (true, predicted, count), most frequent first (ties in
    matrix order); the diagonal and zero cells are left out."""
    pairs = [
        (labels[i], labels[j], int(count))
        for i, row in enumerate(cm)
        for j, count in enumerate(row)
        if i != j and count > 0
    ]
    pairs.sort(key=lambda p: -p[2])  # stable: ties keep the matrix order
    return pairs[:top]


def format_confusions(cm: list[list[int]], labels: list[str], max_classes: int = MAX_MATRIX_CLASSES) -> str:
    """The confusion matrix as text, or above `max_classes` classes its most frequent confusions
    (true -> predicted, count): a 50x50 matrix does not fit a terminal (the PNG keeps it all)."""
    if len(labels) <= max_classes:
        return format_confusion(cm, labels)
    pairs = top_confusions(cm, labels)
    lines = [f"most frequent confusions ({len(labels)} classes; full matrix in confusion.png or --json):"]
    if not pairs:
        lines.append("  none: every example is on the diagonal")
    width = max((len(str(t)) for t, _, _ in pairs), default=0)
    lines += [f"  {str(t):<{width}} -> {p}  {n}" for t, p, n in pairs]
    return "\n".join(lines)


def format_per_class(report: dict[str, Any]) -> str:
    """Per-class precision / recall / F1 / support as an aligned text table."""
    lines = [f"{'class':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for name, s in report["per_class"].items():
        lines.append(
            f"{str(name)[:15]:<16}{s.get('precision', float('nan')):>10.4f}"
            f"{s.get('recall', float('nan')):>10.4f}{s['f1']:>10.4f}{s['support']:>9d}"
        )
    return "\n".join(lines)
