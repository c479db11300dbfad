"""The classifier's blend: the network's probabilities averaged with a TF-IDF n-gram model's
(`grutext.ngrams.NgramModel`), the weight picked on the validation split (``model.blend``).

Why it is on by default (measured by benchmarks/defaults.py on IMDB, SST-2, SST-5, TREC-6 and BBC
News, seeds 0-2): the network wins on short texts where word order matters, the n-gram model on
long texts and small data where it sees every word; their average beats both more often than
either alone, and it bounds how far the product can fall below the linear baseline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from grutext.config import blend_weight as _parse
from grutext.errors import ConfigError
from grutext.ngrams import NgramModel, choose_weight, fit_temperature, temper
from grutext.tasks.classification.baseline import _targets
from grutext.train.metrics import nll

if TYPE_CHECKING:
    from grutext.data.readers import TextDataset


class _Scorer(Protocol):
    """What the blend needs of the task adapter (`ClassificationTask`): its head, labels and report."""

    task: str
    labels: list[str]

    def report(self, probs: np.ndarray, y: np.ndarray) -> dict[str, Any]: ...


AUTO, OFF = "auto", "off"


def blend_weight(setting: Any) -> float | None:
    """``model.blend`` as a weight: None for auto (picked on validation), 0.0 for off, else the number.

    Raises:
        ConfigError: anything but auto, off or a number in [0, 1].
    """
    try:
        return _parse(setting)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def fit_blend(
    setting: Any,
    train: TextDataset,
    valid: TextDataset,
    valid_probs: np.ndarray,
    valid_y: np.ndarray,
    ctask: _Scorer,
) -> tuple[NgramModel | None, dict[str, Any] | None]:
    """Fit the n-gram model on `train`, calibrate it and the network on `valid` (a temperature each),
    and set its blend weight (``model.blend``; auto: picked on `valid` among the calibrated blends).

    Returns:
        `(model or None, info)`: None when the blend is off or the weight came out 0 (the network
        alone); `info` (None when off) holds the weight, how it was chosen, the validation accuracy
        of each candidate weight and the n-gram model alone, and the fit's settings.
    """
    fixed = blend_weight(setting)
    if fixed == 0.0:
        return None, None
    targets = _targets(train, ctask.labels, ctask.task == "multilabel")
    model = NgramModel.fit(train.texts, targets, ctask.task)
    ngram_valid = model.probabilities(valid.texts)
    # calibrate both on validation (temperature scaling), then weigh them
    model.temperature = fit_temperature(ngram_valid, valid_y, model.output)
    model.network_temperature = fit_temperature(valid_probs, valid_y, model.output)
    ngram_valid = temper(ngram_valid, model.temperature, model.output)
    valid_probs = temper(valid_probs, model.network_temperature, model.output)

    def accuracy(p: np.ndarray) -> float:
        return float(ctask.report(p, valid_y)["accuracy"])

    grid: list[tuple[float, float]] = []
    if fixed is None:
        weight, grid = choose_weight(valid_probs, ngram_valid, accuracy)
    else:
        weight = fixed
    model.weight = weight
    info = {
        "weight": weight,
        "chosen": "validation (one-standard-error rule, closest to 0.5)" if fixed is None else "model.blend",
        "validation_grid": [{"weight": w, "accuracy": a} for w, a in grid],
        "ngram_valid_accuracy": accuracy(ngram_valid),
        "temperatures": {"network": model.network_temperature, "ngrams": model.temperature},
        "ngrams": len(model.vocabulary),
        "settings": model.settings,
    }
    return (model if weight > 0.0 else None), info


__all__ = ["AUTO", "OFF", "blend_weight", "fit_blend", "nll"]
