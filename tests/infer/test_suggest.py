"""Next-word suggestions: word models (softmax, prefix renormalised) and char/BPE search."""

from __future__ import annotations

import string

import pytest
import torch

from grutext.data.tokenizers import Tokenizer
from grutext.errors import ConfigError, DataError
from grutext.infer.suggest import Suggester, split_prompt
from grutext.models.language_model import LanguageModel

TEXT = ["the market rose and the stock market fell", "the man made many maps", "a cat sat on the mat"]


def test_split_prompt():
    assert split_prompt("the stock ") == ("the stock ", "")
    assert split_prompt("the stock ma") == ("the stock ", "ma")
    assert split_prompt("ma") == ("", "ma")


def test_word_model_next_words_and_prefix():
    tok = Tokenizer.train(TEXT, kind="word")
    torch.manual_seed(0)
    lm = LanguageModel(tok.vocab_size, embed_dim=8, hidden_size=8, num_layers=1).eval()
    sug = Suggester(lm, tok)
    rows = sug.suggest("the stock ", k=5)
    assert len(rows) == 5 and all(not w.startswith("<") for w, _ in rows)
    ids = [tok.eos_id] + tok.encode("the stock ")
    with torch.no_grad():
        probs = torch.softmax(lm(torch.tensor([ids]))[0][0, -1], -1)
    for w, p in rows:  # raw model probabilities, best first
        assert abs(p - float(probs[tok.token_to_id(w)])) < 1e-5
    assert [p for _, p in rows] == sorted((p for _, p in rows), reverse=True)
    comp = sug.suggest("the stock ma", k=10)
    words = [w for w, _ in comp]
    assert set(words) == {"market", "man", "made", "many", "maps", "mat"}
    assert abs(sum(p for _, p in comp) - 1.0) < 1e-5  # renormalised over the candidates
    assert sug.suggest("the stock zq", k=3) == []
    with pytest.raises(ConfigError, match="k"):
        sug.suggest("the ", k=0)
    with pytest.raises(DataError, match="prompt"):
        sug.suggest("  ")
    with pytest.raises(DataError, match="unknown"):
        sug.suggest("zebra quokka ")


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_subword_models_complete_until_a_word_boundary(kind):
    tok = Tokenizer.train(TEXT * 5, kind=kind, bpe_vocab_size=300)
    torch.manual_seed(0)
    lm = LanguageModel(tok.vocab_size, embed_dim=8, hidden_size=16, num_layers=1).eval()
    sug = Suggester(lm, tok, beam=6, max_pieces=6)
    comp = sug.suggest("the stock ma", k=4)
    assert comp and len(comp) <= 4
    for w, p in comp:
        assert w.startswith("ma") and not any(c in string.whitespace + string.punctuation for c in w)
        assert 0 < p <= 1
    nxt = sug.suggest("the stock ", k=3)
    assert nxt and all(w and " " not in w for w, _ in nxt)
