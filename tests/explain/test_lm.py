"""Language models: surprisal per token (nats and bits), gates along prompt and generated tokens.

Runs against grutext's own `LanguageModel` (tiny, untrained, fp64) and against a stand-in module
with the same interface whose encoder is a plain multi-layer GRU.
"""

from __future__ import annotations

import math
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from torch import nn

from grutext.artifact import LoadedModel
from grutext.config import Config, ModelConfig
from grutext.errors import ArtifactError, DataError
from grutext.explain import explain_lm, render_html
from grutext.nn.gru import GRU

LINES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog met on the road"]


@pytest.fixture(scope="module")
def tiny_lm() -> LoadedModel:
    from grutext.lm import build_lm_tokenizer
    from grutext.models.language_model import LanguageModel

    tok = build_lm_tokenizer(LINES, "word")
    torch.manual_seed(0)
    model = (
        LanguageModel(
            tok.vocab_size,
            embed_dim=6,
            hidden_size=6,
            num_layers=2,
            dropout=0.0,
            input_dropout=0.0,
            layer_dropout=0.0,
            embed_dropout=0.0,
        )
        .double()
        .eval()
    )
    cfg = Config(
        model=ModelConfig(
            vocab_size=tok.vocab_size,
            embed_dim=6,
            hidden_size=6,
            num_layers=2,
            dropout=0.0,
            embed_dropout=0.0,
            bidirectional=False,
        )
    )
    return LoadedModel(model=model, tokenizer=tok, config=cfg, kind="language_model")


class StandIn(nn.Module):
    """The LanguageModel interface with a plain 2-layer GRU encoder (no StackedEncoder)."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.cell = "gru"
        self.embedding = nn.Embedding(vocab, 5)
        self.encoder = GRU(5, 7, num_layers=2, batch_first=True)
        self.decoder = nn.Linear(7, vocab)

    def forward(self, ids, targets=None, state=None):
        out, state = self.encoder(self.embedding(ids), None, state)  # (B, T, H), (L, B, H)
        return self.decoder(out), None, state


def _manual_nats(model, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0][0].double()  # (T, V)
    logp = torch.log_softmax(logits, -1)
    return np.array([math.nan] + [float(-logp[t - 1, ids[t]]) for t in range(1, len(ids))])


@pytest.mark.parametrize("which", ["language_model", "stand_in"])
def test_surprisal_is_minus_log_p_of_each_token(tiny_lm, which):
    loaded = tiny_lm
    if which == "stand_in":
        torch.manual_seed(1)
        loaded = replace(tiny_lm, model=StandIn(tiny_lm.tokenizer.vocab_size).double().eval())
    ex = explain_lm(loaded, "the cat sat on the log")
    assert ex.kind == "language_model"
    assert ex.tokens == ["<eos>", "the", "cat", "sat", "on", "the", "log"]  # line models start after <eos>
    want = _manual_nats(loaded.model, ex.ids)
    np.testing.assert_allclose(ex.surprisal_nats, want, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ex.surprisal_bits, want / math.log(2), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ex.token_prob, np.exp(-want), rtol=1e-12, equal_nan=True)
    assert np.isnan(ex.surprisal_nats[0]) and np.all(ex.surprisal_nats[1:] > 0)
    assert not ex.generated.any()


def test_gates_follow_the_stacked_encoder(tiny_lm):
    ex = explain_lm(tiny_lm, "the cat sat")
    T = len(ex.tokens)
    g = ex.gates
    assert g.z.shape == (2, 1, T, 6)  # (L, D, T, H)
    x = tiny_lm.model.embedding(torch.tensor([ex.ids]))
    out, _ = tiny_lm.model.encoder(x)  # (1, T, H): the model's own encoder
    np.testing.assert_allclose(g.h[-1, 0], out[0].detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.retention[0, 0, 0], g.z[0, 0, 1:].prod(0), rtol=1e-12)
    assert np.all((g.retention >= 0) & (g.retention <= 1))


def test_generated_tokens_are_traced(tiny_lm):
    ex = explain_lm(tiny_lm, "the cat", generate=4)
    assert len(ex.tokens) == 3 + 4 and ex.generated.tolist() == [False] * 3 + [True] * 4
    assert ex.gates.z.shape[2] == 7
    logits = tiny_lm.model(torch.tensor([ex.ids]))[0][0]  # (T, V)
    for t in range(3, 7):  # greedy: each generated token was the most likely one allowed
        row = logits[t - 1].clone()
        row[[tiny_lm.tokenizer.pad_id, tiny_lm.tokenizer.bos_id]] = -math.inf
        assert ex.ids[t] == int(row.argmax())
    sampled = explain_lm(tiny_lm, "the cat", generate=4, temperature=1.0, seed=3)
    assert sampled.ids == explain_lm(tiny_lm, "the cat", generate=4, temperature=1.0, seed=3).ids
    assert any("4 tokens generated" in n for n in ex.notes)


def test_lm_html_and_table(tiny_lm):
    ex = explain_lm(tiny_lm, "the dog sat", generate=2)
    page = render_html(ex)

    class Count(HTMLParser):
        n = 0

        def handle_starttag(self, tag, attrs):
            if tag == "span" and "tok" in (dict(attrs).get("class") or "").split():
                self.n += 1

    c = Count()
    c.feed(page)
    assert c.n == len(ex.tokens) == 6
    assert "Surprisal per token" in page and "surprisal (bits)" in page and "generated" in page
    rows = ex.rows()
    assert len(rows) == 6 * 2 and {"surprisal_bits", "token_prob", "generated"} <= set(rows[0])
    assert "bits/token" in ex.summary()


def test_lm_errors(tiny_lm):
    with pytest.raises(ArtifactError, match="expected a language model"):
        explain_lm(replace(tiny_lm, kind="classifier"), "the cat")
    with pytest.raises(DataError, match="text"):
        explain_lm(tiny_lm, "  ")


def test_cli_explain_language_model(tiny_lm, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from grutext.cli import main
    from grutext.lm import LMConfig, save_language_model

    out = save_language_model(tmp_path / "lm", tiny_lm.model.float(), tiny_lm.tokenizer, tiny_lm.config, LMConfig())
    tiny_lm.model.double()
    assert (
        main(
            [
                "explain",
                str(out),
                "the cat",
                "--generate",
                "2",
                "--html",
                str(tmp_path / "lm.html"),
                "--png",
                str(tmp_path / "lm.png"),
            ]
        )
        == 0
    )
    assert "bits/token" in capsys.readouterr().out
    assert (tmp_path / "lm.png").stat().st_size > 0 and (tmp_path / "lm.html").stat().st_size > 0


def test_report_of_a_language_model(tiny_lm, tmp_path):
    from grutext.explain import training_report
    from grutext.lm import LMConfig, save_language_model

    history = [
        {"epoch": 1, "loss": 5.0, "perplexity": 148.4, "val_loss": 4.9, "val_perplexity": 134.3},
        {"epoch": 2, "loss": 4.5, "perplexity": 90.0, "val_loss": 4.6, "val_perplexity": 99.5},
    ]
    metrics = {"history": history, "best_epoch": 2, "valid": {"loss": 4.6, "perplexity": 99.5}}
    out = save_language_model(
        tmp_path / "lm", tiny_lm.model.float(), tiny_lm.tokenizer, tiny_lm.config, LMConfig(), metrics=metrics
    )
    tiny_lm.model.double()
    page = training_report(out).read_text(encoding="utf-8")
    assert "val_perplexity" in page and "99.5" in page and "Curves" in page
    assert "mistakes" not in page and "Configuration" in page
