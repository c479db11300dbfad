"""Statistics of an experiment: per-group summaries over seeds and the paired bootstrap comparison.

A comparison of two cells is paired: seed k of one cell saw the same data order and split as seed k of
the other, so the quantity of interest is the per-seed difference, and the interval is a percentile
bootstrap over seeds of its mean (Efron & Tibshirani 1993, ch. 13; resampling seeds as Reimers &
Gurevych 2017 recommend for comparing architectures across random seeds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0
FEW_SEEDS = 5  # below this, the sentence says the interval is optimistic


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation, min and max of some values (std 0 for one value)."""

    n: int
    mean: float
    std: float
    min: float
    max: float


def spread(values: Sequence[float]) -> Spread | None:
    """The spread of the finite values in `values`; None when there are none."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return None
    arr = np.asarray(xs, dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(xs) > 1 else 0.0
    return Spread(len(xs), float(arr.mean()), std, float(arr.min()), float(arr.max()))


@dataclass(frozen=True)
class Paired:
    """A paired comparison of `other` against `reference` over the seeds both have."""

    other: str
    reference: str
    n: int
    mean_diff: float
    low: float | None
    high: float | None
    verdict: str
    sentence: str


def bootstrap_interval(
    diffs: Sequence[float], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED, level: float = 0.95
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `diffs`: `samples` resamples of the seeds with
    replacement (a fixed `seed`, so the same input gives the same interval), the (1-level)/2 and
    (1+level)/2 percentiles of the resampled means."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        raise ValueError("bootstrap_interval: no differences")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(samples, d.size))
    means = d[idx].mean(axis=1)
    lo, hi = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def _num(x: float, digits: int) -> str:
    return f"{x:+.{digits}f}"


def paired_comparison(
    other: str,
    reference: str,
    other_values: dict[int, float],
    reference_values: dict[int, float],
    *,
    higher_is_better: bool,
    unit: str = "points",
    digits: int = 1,
    samples: int = BOOTSTRAP_SAMPLES,
) -> Paired | None:
    """`other` minus `reference` over the seeds both have a finite value for, with its 95% bootstrap interval
    and a sentence saying whether the difference is reliable (the interval excludes 0) and which is better.

    Returns None when no seed has both values."""
    seeds = sorted(
        s
        for s in set(other_values) & set(reference_values)
        if other_values[s] is not None
        and reference_values[s] is not None
        and math.isfinite(other_values[s])
        and math.isfinite(reference_values[s])
    )
    if not seeds:
        return None
    diffs = [other_values[s] - reference_values[s] for s in seeds]
    mean = float(np.mean(diffs))
    head = f"{other} vs {reference}: {_num(mean, digits)} {unit}"
    if len(seeds) < 2:
        return Paired(other, reference, 1, mean, None, None, "one seed", f"{head} (one seed: no interval)")
    lo, hi = bootstrap_interval(diffs, samples=samples)
    if lo > 0 or hi < 0:
        better = other if (mean > 0) == higher_is_better else reference
        verdict = f"{better} better"
    else:
        verdict = "no reliable difference"
    sentence = f"{head}, interval [{lo:.{digits}f}, {hi:.{digits}f}] over {len(seeds)} seeds: {verdict}"
    if len(seeds) < FEW_SEEDS:  # a bootstrap over 2-4 values cannot be wider than their spread
        sentence += f" (only {len(seeds)} seeds: the interval is optimistic)"
    return Paired(other, reference, len(seeds), mean, lo, hi, verdict, sentence)


__all__ = ["BOOTSTRAP_SAMPLES", "Paired", "Spread", "bootstrap_interval", "paired_comparison", "spread"]
