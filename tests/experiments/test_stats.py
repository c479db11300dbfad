"""The paired bootstrap over seeds, checked against hand computations."""

from __future__ import annotations

import pytest

from grutext.experiments.stats import bootstrap_interval, paired_comparison, spread


def test_bootstrap_interval_matches_the_hand_computation():
    # diffs (0, 0, 0, 10): a resample's mean is 10 k / 4 with k ~ Binomial(4, 1/4) copies of the 10.
    # P(k = 0) = 0.316 > 2.5%, so the 2.5th percentile is 0; P(k >= 3) = 0.0508 > 2.5% and P(k = 4) = 0.0039
    # < 2.5%, so the 97.5th percentile is 3 * 10 / 4 = 7.5.
    lo, hi = bootstrap_interval([0.0, 0.0, 0.0, 10.0])
    assert (lo, hi) == (0.0, 7.5)
    # two seeds (1, 3): resampled means 1, 2, 3 with probabilities 1/4, 1/2, 1/4 -> the interval is [1, 3]
    assert bootstrap_interval([1.0, 3.0]) == (1.0, 3.0)
    # the same input, the same interval (a fixed generator)
    assert bootstrap_interval([0.3, -0.2, 0.9, 0.1]) == bootstrap_interval([0.3, -0.2, 0.9, 0.1])


def test_the_comparison_is_paired_over_seeds():
    # seed-to-seed spread of 10 points, but lstm beats gru by exactly 1 point on every seed: paired, that is
    # a reliable difference with a zero-width interval (unpaired, the intervals would overlap widely)
    gru = {1: 10.0, 2: 20.0, 3: 30.0}
    lstm = {1: 11.0, 2: 21.0, 3: 31.0}
    c = paired_comparison("lstm", "gru", lstm, gru, higher_is_better=True)
    assert c is not None
    assert (c.n, c.mean_diff, c.low, c.high) == (3, pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0))
    assert c.verdict == "lstm better"
    assert c.sentence == (
        "lstm vs gru: +1.0 points, interval [1.0, 1.0] over 3 seeds: lstm better "
        "(only 3 seeds: the interval is optimistic)"
    )
    five = paired_comparison(
        "lstm", "gru", {k: 1.0 + k for k in range(5)}, {k: k for k in range(5)}, higher_is_better=True
    )
    assert five is not None and five.sentence.endswith("over 5 seeds: lstm better")


def test_no_reliable_difference_and_lower_is_better():
    c = paired_comparison(
        "rnn", "gru", {1: 1.0, 2: -1.0, 3: 1.0, 4: -1.0}, {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}, higher_is_better=True
    )
    assert c is not None and c.verdict == "no reliable difference"
    assert c.low is not None and c.high is not None and c.low < 0 < c.high
    # perplexity: lower is better, so a negative difference means the other cell is better
    p = paired_comparison(
        "lstm", "gru", {1: 100.0, 2: 110.0}, {1: 105.0, 2: 116.0}, higher_is_better=False, unit="perplexity", digits=2
    )
    assert p is not None and p.verdict == "lstm better"
    assert p.sentence.startswith("lstm vs gru: -5.50 perplexity, interval [-6.00, -5.00]")


def test_only_seeds_both_cells_have_count_and_one_seed_has_no_interval():
    c = paired_comparison("lstm", "gru", {1: 2.0, 2: 5.0}, {1: 1.0, 3: 0.0}, higher_is_better=True)
    assert c is not None and c.n == 1 and c.low is None and "one seed" in c.sentence
    assert paired_comparison("lstm", "gru", {2: 1.0}, {1: 1.0}, higher_is_better=True) is None


def test_spread_ignores_missing_and_non_finite_values():
    s = spread([1.0, 3.0, None, float("nan")])  # type: ignore[list-item]
    assert s is not None and (s.n, s.mean, s.min, s.max) == (2, 2.0, 1.0, 3.0)
    assert s.std == pytest.approx(2**0.5)
    assert spread([]) is None
