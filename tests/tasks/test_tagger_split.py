"""Raw sentences split for tagging as the Penn Treebank does: numbers with inner separators and dotted
abbreviations stay whole (the word tokenizer's punctuation split would break them), offsets exact."""

from __future__ import annotations

from grutext.tasks.tagging.data import build_word_tokenizer, split_text


def test_numbers_and_abbreviations_stay_whole():
    tok = build_word_tokenizer([["the", "deficit"]])
    text = "It fell 1.8 % to 1,000 at 10:30 , 3/4 of U.S. cases , e.g. here ; it doesn't end 1."
    words, offsets = split_text(tok, text)
    assert words == [
        "It", "fell", "1.8", "%", "to", "1,000", "at", "10:30", ",", "3/4", "of", "U.S.", "cases", ",",
        "e.g.", "here", ";", "it", "does", "n't", "end", "1", ".",
    ]  # fmt: skip
    assert [text[a:b] for a, b in offsets] == words
