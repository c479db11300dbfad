"""Generation: samplers on known logits, streaming vs full recomputation, beam search, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from grutext.data.tokenizers import Tokenizer
from grutext.errors import ArtifactError, ConfigError, DataError
from grutext.infer.generate import Generator, next_token_probs
from grutext.models.language_model import LanguageModel

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", "and", "a"]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train([" ".join(WORDS)], kind="word")


class TableLM(torch.nn.Module):
    """A bigram model with known logits: logits after token t are table[t]; the state counts steps."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids, targets=None, state=None):
        return self.table[ids], None, (state if state is not None else torch.zeros(1, ids.shape[0], 1))


def table_for(V: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(V, V, generator=g) * 2.0
    t[:, :4] = -1e4  # specials never likely
    return t


def test_next_token_probs_greedy_topk_topp_temperature():
    logits = torch.tensor([0.5, 2.0, -1.0, 1.0, 3.0, 0.0])
    p = next_token_probs(logits, greedy=True)
    assert p.tolist() == [0, 0, 0, 0, 1.0, 0]
    p = next_token_probs(logits, top_k=2)
    assert set(torch.nonzero(p).flatten().tolist()) == {1, 4}
    assert math.isclose(float(p[4] / p[1]), math.exp(1.0), rel_tol=1e-5)
    full = torch.softmax(logits, -1)
    p = next_token_probs(logits, top_p=0.8)
    kept = torch.nonzero(p).flatten().tolist()
    order = torch.argsort(full, descending=True).tolist()
    assert kept == sorted(order[: len(kept)])  # the most likely tokens
    assert float(full[kept].sum()) >= 0.8 and float(full[kept].sum() - full[kept].min()) < 0.8  # minimal set
    assert torch.allclose(next_token_probs(logits, temperature=0.5), torch.softmax(logits / 0.5, -1))
    assert torch.allclose(next_token_probs(logits, top_p=1.0), full)
    pen = next_token_probs(logits, repetition_penalty=2.0, history=[4, 2], temperature=1.0)
    expect = logits.clone()
    expect[4], expect[2] = 1.5, -2.0
    assert torch.allclose(pen, torch.softmax(expect, -1))
    assert float(next_token_probs(logits, banned=[4])[4]) == 0.0


def test_samplers_on_a_model_with_known_logits(tok):
    V = tok.vocab_size
    table = table_for(V)
    gen = Generator(TableLM(table), tok, add_eos=False)
    seq = list(gen.stream_ids("the", max_tokens=8, greedy=True))
    prev = tok.encode("the")[-1]
    for t in seq:  # greedy = argmax of the known row
        assert t == int(torch.argmax(table[prev]))
        prev = t
    for seed in range(5):
        prev = tok.encode("the")[-1]
        for t in gen.stream_ids("the", max_tokens=30, top_k=3, seed=seed):
            assert t in torch.topk(table[prev], 3).indices.tolist()  # never leaves the top k
            prev = t
        prev = tok.encode("the")[-1]
        for t in gen.stream_ids("the", max_tokens=30, top_p=0.5, seed=seed):
            probs = torch.softmax(table[prev], -1)
            nucleus = next_token_probs(table[prev], top_p=0.5)
            assert nucleus[t] > 0 and float(probs[nucleus > 0].sum()) >= 0.5
            prev = t
    # the empirical first-token distribution matches softmax(logits / T)
    row = table[tok.encode("cat")[-1]]
    expect = torch.softmax(row / 0.7, -1)
    counts = torch.zeros(V)
    for seed in range(1500):
        counts[next(gen.stream_ids("cat", max_tokens=1, temperature=0.7, seed=seed))] += 1
    assert float((counts / counts.sum() - expect).abs().max()) < 0.05


def test_seed_reproducible_and_stream_matches_full_recomputation(tok):
    torch.manual_seed(0)
    lm = LanguageModel(tok.vocab_size, embed_dim=8, hidden_size=16, num_layers=2).eval()
    gen = Generator(lm, tok)
    opts = dict(max_tokens=15, temperature=0.9, top_k=8, top_p=0.95, repetition_penalty=1.3, seed=7)
    streamed = list(gen.stream_ids("the cat", **opts))
    assert streamed == list(gen.stream_ids("the cat", **opts))
    # reference: re-run the whole sequence from scratch at every step (no carried state)
    ids = gen.prompt_ids("the cat")
    rng = torch.Generator()
    rng.manual_seed(7)
    ref = []
    with torch.no_grad():
        for _ in range(15):
            logits = lm(torch.tensor([ids]))[0][0, -1]
            p = next_token_probs(
                logits, temperature=0.9, top_k=8, top_p=0.95, repetition_penalty=1.3, history=ids, banned=gen.banned
            )
            t = int(torch.multinomial(p, 1, generator=rng))
            ref.append(t)
            ids = ids + [t]
    assert streamed == ref
    assert "".join(gen.stream("the cat", **opts)) == gen.generate("the cat", **opts) == gen.render(streamed)


def test_beam_one_equals_greedy_and_scores(tok):
    torch.manual_seed(1)
    lm = LanguageModel(tok.vocab_size, embed_dim=8, hidden_size=16, num_layers=1).eval()
    gen = Generator(lm, tok)
    greedy = list(gen.stream_ids("a dog", max_tokens=10, greedy=True))
    ((ids, score),) = gen.beam_search_ids("a dog", beam=1, max_tokens=10)
    assert ids == greedy
    best = gen.beam_search_ids("a dog", beam=4, max_tokens=6, n_best=3)
    assert len(best) == 3 and [s for _, s in best] == sorted((s for _, s in best), reverse=True)
    ((_, greedy6),) = gen.beam_search_ids("a dog", beam=1, max_tokens=6)  # greedy over the same 6 tokens
    assert best[0][1] >= greedy6 - 1e-4  # a wider beam finds a continuation at least as likely
    ctx = gen.prompt_ids("a dog")  # the score is the summed log-probability of the continuation
    with torch.no_grad():
        logp = torch.log_softmax(lm(torch.tensor([ctx + best[0][0]]))[0][0], -1)
    total = sum(float(logp[len(ctx) - 1 + i, t]) for i, t in enumerate(best[0][0]))
    assert math.isclose(total, best[0][1], abs_tol=1e-3)
    assert isinstance(gen.beam_search("a dog", beam=2, max_tokens=3)[0][0], str)


def test_stop_tokens(tok):
    V = tok.vocab_size
    table = torch.full((V, V), -10.0)
    cat, sat, on = tok.token_to_id("cat"), tok.token_to_id("sat"), tok.token_to_id("on")
    table[:, sat] = 0.0
    table[sat, on] = 5.0
    table[on, cat] = 5.0
    gen = Generator(TableLM(table), tok, add_eos=False)
    assert gen.generate("the", max_tokens=5, greedy=True) == " sat on cat sat on"
    assert gen.generate("the", max_tokens=5, greedy=True, stop=["cat"]) == " sat on"


def test_bad_inputs(tok):
    lm = LanguageModel(tok.vocab_size, embed_dim=8, hidden_size=8, num_layers=1)
    gen = Generator(lm, tok)
    with pytest.raises(DataError, match="prompt"):
        list(gen.stream_ids("   "))
    with pytest.raises(DataError, match="unknown"):
        list(gen.stream_ids("zebra quokka"))
    for kw, name in [
        ({"temperature": 0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"max_tokens": 0}, "max_tokens"),
    ]:
        with pytest.raises(ConfigError, match=name) as exc:
            list(gen.stream_ids("the cat", **kw))
        assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="beam"):
        gen.beam_search("the cat", beam=0)


def test_classifier_given_to_generate(tmp_path):
    from grutext.artifact import save_model
    from grutext.config import Config, ModelConfig
    from grutext.models.classifier import TextClassifier

    tok = Tokenizer.train(["good film", "bad film"], kind="word")
    m = ModelConfig(vocab_size=tok.vocab_size, num_classes=2, task="binary", embed_dim=4, hidden_size=4)
    save_model(tmp_path / "clf", TextClassifier.from_config(m), tok, Config(model=m), labels=["neg", "pos"])
    with pytest.raises(ArtifactError, match="language model"):
        Generator.load(tmp_path / "clf")


def test_beam_search_is_exact_when_the_beam_holds_every_prefix(tok):
    """With beam >= V**(T-1) nothing is pruned: the best T-token continuation by brute force."""
    import itertools

    V = tok.vocab_size
    table = table_for(V, seed=3)
    gen = Generator(TableLM(table), tok, add_eos=False)
    logp = torch.log_softmax(table, -1)
    start = gen.prompt_ids("the")[-1]
    words = [i for i in range(4, V)]  # specials are never likely (and banned)

    def score(seq: tuple[int, ...]) -> float:
        prev, total = start, 0.0
        for t in seq:
            total, prev = total + float(logp[prev, t]), t
        return total

    ranked = sorted(itertools.product(words, repeat=3), key=score, reverse=True)
    best = gen.beam_search_ids("the", beam=V * V, max_tokens=3, n_best=5)
    assert [tuple(ids) for ids, _ in best] == ranked[:5]
    assert [s for _, s in best] == pytest.approx([score(r) for r in ranked[:5]], abs=1e-4)
    narrow = gen.beam_search_ids("the", beam=1, max_tokens=3)[0]
    assert narrow[1] <= best[0][1] + 1e-6
