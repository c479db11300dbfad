"""data.sentences: documents become their sentences, each with its document's label."""

from __future__ import annotations

from pathlib import Path

import pytest

from grutext.config import Config, DataConfig
from grutext.data import TextDataset, split_sentences
from grutext.errors import ConfigError, DataError
from grutext.pipeline import load_splits


def test_split_sentences_labels_html_quotes_and_short_ones() -> None:
    ds = TextDataset(
        [
            'A truly great film. I loved every minute!<br /><br />Ok. He said "what a ride!" Then it ended badly.',
            "Dull and far too long for its story? Yes.",
        ],
        ["pos", "neg"],
        "inline",
    )
    out = split_sentences(ds, min_words=3)
    assert out.texts == [
        "A truly great film.",
        "I loved every minute!",
        'He said "what a ride!"',
        "Then it ended badly.",
        "Dull and far too long for its story?",
    ]
    assert out.labels == ["pos", "pos", "pos", "pos", "neg"]
    assert out.source == "inline (sentences)"
    unlabelled = split_sentences(TextDataset(["One two three. Four five six."], None, "u"), min_words=3)
    assert unlabelled.labels is None and len(unlabelled) == 2
    multi = split_sentences(TextDataset(["One two three. Four five six."], [["a", "b"]], "m"), min_words=3)
    assert multi.labels == [["a", "b"], ["a", "b"]]


def test_split_sentences_nothing_left_is_a_clear_error() -> None:
    with pytest.raises(DataError, match=r"^inline: no sentence of at least 9 words"):
        split_sentences(TextDataset(["Too short. Also short."], ["x"], "inline"), min_words=9)


def test_load_splits_carves_documents_before_splitting(tmp_path: Path) -> None:
    rows = [
        f"{'pos' if i % 2 else 'neg'}\tdocument {i} first sentence here. document {i} second one here!\n"
        for i in range(40)
    ]
    f = tmp_path / "docs.tsv"
    f.write_text("label\ttext\n" + "".join(rows), encoding="utf-8")
    d = DataConfig(train=str(f), valid_fraction=0.25, sentences=True, sentence_min_words=3)
    splits = load_splits(d, seed=0)
    assert len(splits.train) == 2 * 30 and len(splits.valid) == 2 * 10
    doc = lambda text: text.split()[1]  # noqa: E731 - the document number
    assert not {doc(t) for t in splits.train.texts} & {doc(t) for t in splits.valid.texts}
    for text, label in zip(splits.train.texts, splits.train.labels, strict=True):
        assert label == ("pos" if int(doc(text)) % 2 else "neg")
    assert any(n.startswith("sentences: 60 training sentences") for n in splits.notes)


def test_sentence_min_words_is_checked() -> None:
    with pytest.raises(ConfigError, match="data.sentence_min_words"):
        Config(data=DataConfig(train="x", sentences=True, sentence_min_words=0)).validate()
