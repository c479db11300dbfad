"""Token importance: the planted trigger ranks first for every method; bad input gives clear errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from tests.explain.zebra_data import zebra_texts

from grutext.errors import ArtifactError, ConfigError, DataError
from grutext.explain import explain, gate_summary, integrated_gradients

YES_TEXTS = [t for t, lab in zip(*zebra_texts(40, seed=7), strict=True) if lab == "yes"][:6]


def network(ex):
    """The network's own probabilities (what the importance explains; `probabilities` is the blend)."""
    return np.asarray(ex.details.get("network_probabilities", ex.probabilities))


@pytest.mark.parametrize("method", ["ig", "occlusion", "attention"])
def test_planted_trigger_ranks_first(zebra, method):
    for text in YES_TEXTS:
        ex = explain(zebra, text, method=method)
        assert ex.predicted == "yes" and ex.target == "yes"
        assert ex.importance.shape == (len(ex.tokens),)
        assert ex.tokens[int(np.argmax(ex.importance))] == "zebra", (method, text, ex.importance)


def test_chosen_target_flips_the_sign(zebra):
    """Explaining class "no" on a "yes" text: the trigger is the strongest evidence *against* it."""
    ex = explain(zebra, YES_TEXTS[0], method="occlusion", target="no")
    assert ex.target == "no" and ex.predicted == "yes"
    assert ex.tokens[int(np.argmin(ex.importance))] == "zebra"
    assert explain(zebra, YES_TEXTS[0], method="occlusion", target=0).target == "no"


def test_integrated_gradients_completeness(zebra):
    ex = explain(zebra, YES_TEXTS[1], method="ig", steps=48)
    d = ex.details
    assert d["steps"] == 48
    assert abs(d["completeness_gap"]) < 1e-2
    assert d["attribution_sum"] == pytest.approx(float(ex.importance.sum()), abs=1e-6)
    p = network(ex)[ex.labels.index("yes")]
    assert d["p_input"] == pytest.approx(p, abs=1e-5)


def test_integrated_gradients_converges_with_steps(zebra):
    model = zebra.model.eval()
    ids = torch.tensor([zebra.tokenizer.encode(YES_TEXTS[2])])
    lengths = torch.tensor([ids.shape[1]])
    coarse, dc = integrated_gradients(model, ids, lengths, 1, steps=4)
    fine, df = integrated_gradients(model, ids, lengths, 1, steps=64)
    assert abs(df["completeness_gap"]) <= abs(dc["completeness_gap"]) + 1e-6
    assert df["delta"] == pytest.approx(dc["delta"])


def test_occlusion_is_the_probability_drop(zebra):
    text = "the zebra movie"
    ex = explain(zebra, text, method="occlusion")
    p_full = network(ex)[ex.labels.index(ex.target)]
    without = explain(zebra, "the movie", method="occlusion")
    p_without = network(without)[ex.labels.index(ex.target)]
    assert ex.importance[1] == pytest.approx(p_full - p_without, abs=1e-6)


def test_probabilities_are_what_predict_answers(zebra):
    """A blended classifier: the shown probabilities and prediction are predict's (the blend), noted; the
    network's own are in details. Without an n-gram model they are the network's, with no note."""
    from grutext.infer.predict import Predictor

    assert zebra.ngrams is not None and zebra.ngrams.weight > 0  # trained with model.blend = auto
    text = "the zebra movie of the night"
    ex = explain(zebra, text, method="occlusion")
    np.testing.assert_allclose(ex.probabilities, Predictor(zebra).predict_proba([text])[0], atol=1e-6)
    assert ex.predicted == Predictor(zebra).predict([text])[0]["label"]
    assert any("blend the network with its n-gram model" in n for n in ex.notes)
    alone = replace(zebra, ngrams=None)
    plain = explain(alone, text, method="occlusion")
    np.testing.assert_allclose(network(ex), plain.probabilities, atol=1e-12)
    np.testing.assert_allclose(plain.probabilities, Predictor(alone).predict_proba([text])[0], atol=1e-6)
    assert "network_probabilities" not in plain.details and not any("n-gram" in n for n in plain.notes)
    assert np.abs(ex.probabilities - plain.probabilities).max() > 1e-3  # the blend really moves them


def test_explanation_has_gates_and_a_tidy_table(zebra):
    ex = explain(zebra, YES_TEXTS[0], method="occlusion")
    T = len(ex.tokens)
    assert ex.gates is not None and ex.gates.z.shape == (1, 2, T, 16)
    rows = ex.rows()
    assert len(rows) == T * 2
    assert {
        "token",
        "position",
        "layer",
        "direction",
        "z_mean",
        "r_mean",
        "n_mean",
        "dh",
        "retention",
        "importance",
    } <= set(rows[0])
    assert all(0.0 <= r["retention"] <= 1.0 for r in rows)
    summary = gate_summary(zebra, YES_TEXTS[0])
    assert len(summary) == 2 and summary[0]["most_retained"] in ex.tokens


def test_unknown_target_lists_classes(zebra):
    with pytest.raises(DataError, match=r"target: expected one of the model's classes 'no', 'yes'; got 'maybe'"):
        explain(zebra, "the zebra", target="maybe")
    with pytest.raises(DataError, match="got 5"):
        explain(zebra, "the zebra", target=5)


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_text(zebra, text):
    with pytest.raises(DataError, match="text"):
        explain(zebra, text)


def test_text_that_tokenizes_to_nothing(zebra, monkeypatch):
    class Nothing:  # what the tokenizer returns for a text with no tokens
        ids, tokens, offsets = [], [], []

    class Stub:
        def encode(self, *args, **kwargs):
            return Nothing()

    monkeypatch.setattr(zebra.tokenizer, "_hf", Stub())
    with pytest.raises(DataError, match="tokenizes to nothing"):
        explain(zebra, "!!!")


def test_long_text_is_truncated_and_said_so(zebra):
    short = replace(zebra, config=replace(zebra.config, data=replace(zebra.config.data, max_len=5)))
    ex = explain(short, "the zebra movie of a city night house car road", method="occlusion")
    assert len(ex.tokens) == 5 and ex.truncated
    assert any("10 tokens" in n and "at most 5" in n for n in ex.notes)


def test_unknown_words_are_shown_and_noted(zebra):
    ex = explain(zebra, "the zebra likes xylophones", method="occlusion")
    assert "xylophones" in ex.tokens
    assert ex.unknown[ex.tokens.index("xylophones")]
    assert any("not in the vocabulary" in n for n in ex.notes)


def test_bad_method_and_attention_on_other_pooling(zebra):
    with pytest.raises(ConfigError, match="method"):
        explain(zebra, "the zebra", method="shap")
    from grutext.models.classifier import TextClassifier

    m = TextClassifier(
        vocab_size=zebra.tokenizer.vocab_size, num_classes=2, task="binary", embed_dim=4, hidden_size=4, pooling="max"
    )
    other = replace(zebra, model=m)
    with pytest.raises(ConfigError, match="pooling 'attention'"):
        explain(other, "the zebra", method="attention")


def test_lstm_model_explains_without_gates(zebra):
    from grutext.models.classifier import TextClassifier

    m = TextClassifier(
        vocab_size=zebra.tokenizer.vocab_size, num_classes=2, task="binary", embed_dim=4, hidden_size=4, cell="lstm"
    )
    ex = explain(replace(zebra, model=m), "the zebra movie", method="ig")
    assert ex.gates is None and any("no gate traces" in n for n in ex.notes)
    assert len(ex.rows()) == 3


def test_not_a_classifier(zebra):
    with pytest.raises(ArtifactError, match="expected a classifier"):
        explain(replace(zebra, kind="language_model"), "the zebra")
