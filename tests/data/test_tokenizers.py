"""Tests for grutext.data.tokenizers: round trips, vocabulary limits, specials, persistence."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from grutext.data.tokenizers import SPECIALS, Tokenizer
from grutext.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")

TEXTS = [
    "The film was great!<br /><br />Really, GREAT.",
    "A bad film; the worst.",
    "the end",
]


@pytest.fixture(scope="module")
def word() -> Tokenizer:
    return Tokenizer.train(TEXTS, kind="word")


def test_specials_fixed(word: Tokenizer) -> None:
    for kind in ("word", "char", "bpe"):
        tok = word if kind == "word" else Tokenizer.train(TEXTS, kind=kind, bpe_vocab_size=300)
        assert [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2, 3]
        assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
        assert tok.kind == kind


def test_word_level_normalisation(word: Tokenizer) -> None:
    assert word.tokens("The film was GREAT!<br />") == ["the", "film", "was", "great", "!"]
    assert word.tokens("Really,great.") == ["really", ",", "great", "."]
    assert "<br" not in word.get_vocab() and "br" not in word.get_vocab()
    # NFKC: the ligature "ﬁ" becomes "fi", full-width letters become ASCII
    assert word.encode("\ufb01lm") == word.encode("film")
    assert word.encode("ＴＨＥ") == word.encode("the")


def test_word_round_trip_and_unk(word: Tokenizer) -> None:
    ids = word.encode("The worst film, really!")
    assert word.decode(ids) == "the worst film , really !"
    assert word.decode(word.encode("the zebra")) == "the <unk>"
    assert word.encode("the", add_bos=True, add_eos=True)[::2] == [2, 3]
    assert word.decode(word.encode("the", add_bos=True, add_eos=True)) == "the"
    assert word.id_to_token(word.token_to_id("film")) == "film"
    assert word.token_to_id("zebra") is None
    last = word.vocab_size - 1
    assert word.id_to_token(last) and word.id_to_token(0) == "<pad>"
    for bad in (9999, word.vocab_size, -1):
        with pytest.raises(DataError, match=rf"id_to_token: id {bad} out of range, expected 0\.\.{last}$"):
            word.id_to_token(bad)


def test_oov_rate_known_example(word: Tokenizer) -> None:
    # tokens: the, zebra, film, quokka -> 2 of 4 unknown
    assert word.oov_rate(["the zebra", "film quokka"]) == pytest.approx(0.5)
    assert word.oov_rate(TEXTS) == 0.0
    assert word.oov_rate([""]) == 0.0


def test_encode_batch_matches_encode(word: Tokenizer) -> None:
    batch = ["the film", "", "a bad, bad end!"]
    assert word.encode_batch(batch) == [word.encode(t) for t in batch]
    assert word.encode("") == []


def test_min_freq_and_max_size() -> None:
    texts = ["a a a a b b b c c d", "a b e"]  # a:5 b:4 c:2 d:1 e:1
    tok = Tokenizer.train(texts, min_freq=2)
    assert set(tok.get_vocab()) == set(SPECIALS) | {"a", "b", "c"}
    small = Tokenizer.train(texts, max_size=6)  # 4 specials + the 2 most frequent
    assert small.vocab_size == 6
    assert set(small.get_vocab()) == set(SPECIALS) | {"a", "b"}
    with pytest.raises(ConfigError, match=r"max_size: expected more than 4 \(the specials\), got 3"):
        Tokenizer.train(texts, max_size=3)
    with pytest.raises(ConfigError, match=r"tokenizer kind: expected one of \['word', 'char', 'bpe'\], got 'wrd'"):
        Tokenizer.train(texts, kind="wrd")
    with pytest.raises(DataError, match="expected at least one text"):
        Tokenizer.train([])


def test_char_level_exact_round_trip() -> None:
    text = "First Citizen:\nBefore we proceed,  hear me speak.\té ﬁ"
    tok = Tokenizer.train([text], kind="char")
    assert not tok.lowercase
    normalised = unicodedata.normalize("NFKC", text)
    ids = tok.encode(text)
    assert len(ids) == len(normalised)
    assert tok.decode(ids) == normalised
    assert tok.token_to_id(" ") is not None and tok.token_to_id("\n") is not None
    assert tok.decode(tok.encode("F#")) == "F<unk>"


def test_save_load_identical(tmp_path: Path, word: Tokenizer) -> None:
    texts = TEXTS + ["Unseen words here!"]
    for tok in (word, Tokenizer.train(TEXTS, kind="char"), Tokenizer.train(TEXTS, kind="bpe", bpe_vocab_size=300)):
        path = tok.save(tmp_path / f"{tok.kind}.json")
        back = Tokenizer.load(path)
        assert back.kind == tok.kind and back.vocab_size == tok.vocab_size
        assert back.lowercase == tok.lowercase
        assert back.encode_batch(texts) == tok.encode_batch(texts)
        assert Tokenizer.from_json_str(tok.to_json_str()) == tok
    # the file is the HF format plus one "grutext" key
    data = json.loads((tmp_path / "word.json").read_text())
    assert data["grutext"]["kind"] == "word" and data["model"]["type"] == "WordLevel"
    # saving into a folder writes tokenizer.json there
    (tmp_path / "art").mkdir()
    assert word.save(tmp_path / "art").name == "tokenizer.json"
    assert Tokenizer.load(tmp_path / "art") == word


def test_plain_hf_json_loads(word: Tokenizer) -> None:
    tok = Tokenizer.from_json_str(word.hf.to_str())
    assert tok.kind == "word" and tok.encode("the film") == word.encode("the film")


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_plain_hf_json_kind_is_guessed(kind: str) -> None:
    """A tokenizer.json without our "grutext" key: the kind comes from the model and pre-tokenizer."""
    tok = Tokenizer.train(TEXTS, kind=kind, bpe_vocab_size=300)
    back = Tokenizer.from_json_str(tok.hf.to_str())
    assert back.kind == kind and back.encode("the film") == tok.encode("the film")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.json: tokenizer file not found"):
        Tokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  oops")
    with pytest.raises(DataError, match=r"bad\.json line 2: invalid JSON"):
        Tokenizer.load(bad)
    bad.write_text('{"vocab": {}}')
    with pytest.raises(DataError, match=r"bad\.json: expected a tokenizer\.json object with a 'model' key"):
        Tokenizer.load(bad)


def test_bpe_round_trip_synthetic() -> None:
    tok = Tokenizer.train(TEXTS * 5, kind="bpe", bpe_vocab_size=300, lowercase=False)
    text = "Unseen wörds, émojis 🙂 and  spaces\nnewline"
    assert tok.decode(tok.encode(text)) == text
    assert tok.oov_rate([text]) == 0.0  # byte-level: nothing is unknown


@needs_shared
def test_bpe_on_real_text() -> None:
    text = (SHARED / "tiny_shakespeare" / "input.txt").read_text(encoding="utf-8")[:200_000]
    lines = [line for line in text.split("\n") if line.strip()]
    tok = Tokenizer.train(lines, kind="bpe", bpe_vocab_size=2000)
    assert 1000 < tok.vocab_size <= 2000
    sample = lines[-50:]
    for line in sample:
        assert tok.decode(tok.encode(line)) == line.lower()
    # BPE compresses: fewer tokens than characters
    n_tok = sum(len(ids) for ids in tok.encode_batch(sample))
    assert n_tok < 0.5 * sum(len(line) for line in sample)


@needs_shared
def test_word_level_on_sst2_slice() -> None:
    lines = (SHARED / "sst2" / "stsa.binary.train").read_text(encoding="utf-8").split("\n")[:2000]
    texts = [line.split(" ", 1)[1] for line in lines if line.strip()]
    tok = Tokenizer.train(texts[:1500], min_freq=2)
    rate = tok.oov_rate(texts[1500:])
    assert 0.0 < rate < 0.2


def test_word_tokenizer_splits_contractions_as_the_treebank():
    raw = "It doesn't work, it's BAD! Can't, won't; I'm sure we're fine."
    treebank = "it does n't work , it 's bad ! ca n't , wo n't ; i 'm sure we 're fine ."
    tok = Tokenizer.train([raw, treebank], kind="word")
    assert tok.encode(raw) == tok.encode(treebank)  # raw text and Treebank-tokenised text agree
    assert tok.decode(tok.encode("doesn't")) == "does n't"
    old = Tokenizer.train([raw], kind="word", split_contractions=False)
    assert old.decode(old.encode("doesn't")) == "doesn ' t"
    again = Tokenizer.from_json_str(tok.to_json_str())
    assert again.encode(raw) == tok.encode(raw) and again.kind == "word"
