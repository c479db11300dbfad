"""Tests for grutext.data.conll and grutext.data.tag_schemes: reading, errors, schemes."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from grutext.data.conll import read_conll
from grutext.data.tag_schemes import (
    convert,
    detect_scheme,
    invalid_transitions,
    spans,
    split_tag,
    tags_from_spans,
)
from grutext.errors import DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CONLL2000 = SHARED / "conll2000" / "train.txt"

# -DOCSTART-, two blank lines in a row, a '#' token (CoNLL-2000 has them), a malformed
# sequence (I-VP after O, line 9) and a last sentence without a trailing blank line.
FIXTURE = """-DOCSTART- -X- O

He PRP B-NP
reckons VBZ B-VP


# # B-NP
1.8 CD I-NP
will MD O
narrow VB I-VP

Rates NNS B-NP
rise VBP B-VP"""


def write(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_fixture_reads_sentences_lines_features_and_reports_malformed_sequence(tmp_path: Path, gz: bool) -> None:
    path = write(tmp_path / ("train.txt.gz" if gz else "train.txt"), FIXTURE, gz=gz)
    corpus = read_conll(path, feature_col=1)
    assert len(corpus) == 3
    assert corpus[0].tokens == ("He", "reckons")
    assert corpus[1].tokens == ("#", "1.8", "will", "narrow")
    assert corpus[1].tags == ("B-NP", "I-NP", "O", "I-VP")
    assert corpus[1].features == ("#", "CD", "MD", "VB")
    assert corpus[1].lines == (7, 8, 9, 10)
    assert corpus[2].tokens == ("Rates", "rise") and corpus[2].lines == (12, 13)
    assert corpus.scheme == "IOB2"
    assert corpus.warnings == [f"{path} line 10: I-VP after O (IOB2 starts a chunk with B-VP)"]
    assert corpus.num_tokens() == 8
    assert corpus.tag_set() == ["B-NP", "B-VP", "I-NP", "I-VP", "O"]


def test_no_feature_column_by_default_and_tag_col_by_index(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", FIXTURE)
    corpus = read_conll(path)
    assert corpus[0].features is None
    pos = read_conll(path, tag_col=1, scheme="none")
    assert pos[0].tags == ("PRP", "VBZ") and pos.scheme == "none" and pos.warnings == []


def test_columns_by_name_from_header_and_argument(tmp_path: Path) -> None:
    body = "EU NNP B-ORG x\nrejects VBZ O x\n\nPeter NNP B-PER x\n"
    path = write(tmp_path / "h.txt", "# columns = token pos ner extra\n" + body)
    corpus = read_conll(path, tag_col="ner", feature_col="pos")
    assert corpus.columns == ("token", "pos", "ner", "extra")
    assert corpus[0].tags == ("B-ORG", "O") and corpus[0].features == ("NNP", "VBZ")
    assert corpus[0].lines == (2, 3)
    plain = write(tmp_path / "p.txt", body)
    named = read_conll(plain, columns=["w", "p", "n", "e"], tag_col="n", feature_col="p")
    assert named[1].tags == ("B-PER",) and named[1].features == ("NNP",)
    with pytest.raises(DataError, match=r"p.txt line 1: tag_col='ner' names a column but the file has no"):
        read_conll(plain, tag_col="ner")
    with pytest.raises(DataError, match=r"tag_col='chunk' is not a column name, columns are token, pos, ner, extra"):
        read_conll(path, tag_col="chunk")
    with pytest.raises(DataError, match=r"line 1: tag_col=7 is out of range, the file has 4 columns"):
        read_conll(plain, tag_col=7)
    # negative indices count from the end, down to -width (the first column)
    first = read_conll(plain, tag_col=-2, feature_col=-4, scheme="IOB2")
    assert first[0].features == ("EU", "rejects")
    with pytest.raises(DataError, match=r"line 1: feature_col=-5 is out of range, the file has 4 columns"):
        read_conll(plain, feature_col=-5)
    with pytest.raises(DataError, match=r"line 1: 3 column names \(w, p, n\) for 4 columns"):
        read_conll(plain, columns=["w", "p", "n"])


def test_iob1_and_bioes_detection_and_their_warnings(tmp_path: Path) -> None:
    iob1 = write(tmp_path / "iob1.txt", "a I-PER\nb I-PER\nc B-PER\nd O\ne I-LOC\nf O\ng B-LOC\n")
    corpus = read_conll(iob1)
    assert corpus.scheme == "IOB1"
    assert corpus.warnings == [f"{iob1} line 7: B-LOC after O (IOB1 uses B- only right after a LOC chunk)"]
    bioes = write(tmp_path / "bioes.txt", "a B-PER\nb E-PER\nc O\nd I-LOC\ne S-LOC\n")
    corpus = read_conll(bioes)
    assert corpus.scheme == "BIOES"
    assert corpus.warnings == [
        f"{bioes} line 4: I-LOC after O (BIOES opens a chunk with B-LOC or S-LOC)",
        f"{bioes} line 4: I-LOC before S-LOC (BIOES closes a chunk with E-LOC)",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a B-NP x\nb I-NP\n", r"bad.txt line 2: expected 3 columns as in the first sentence \(line 1\), got 2"),
        ("a B-NP\n\nb B-NP\nc I-NP extra\n", r"bad.txt line 4: expected 2 columns .* got 3"),
        ("a B-NP\nb I-NP\nc L-NP\n", r"bad.txt line 3: unknown tag prefix in 'L-NP'"),
        ("a B-NP\nb NP\nc I-NP\n", r"bad.txt line 2: unknown tag prefix in 'NP'"),
        ("", r"bad.txt: empty file"),
        ("\n\n-DOCSTART- O\n\n", r"bad.txt: empty file"),
    ],
)
def test_bad_input_is_one_line_error_naming_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(DataError, match=message) as info:
        read_conll(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_corrupt_gzip(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.txt: file not found"):
        read_conll(tmp_path / "nope.txt")
    broken = tmp_path / "b.txt.gz"
    broken.write_bytes(gzip.compress(b"a B-NP\n" * 100)[:30])
    with pytest.raises(DataError, match="b.txt.gz: corrupt gzip data"):
        read_conll(broken)


def test_jsonl_reads_and_reports_length_mismatch(tmp_path: Path) -> None:
    rows = [
        {"tokens": ["He", "runs"], "tags": ["B-NP", "B-VP"], "pos": ["PRP", "VBZ"]},
        {"tokens": [], "tags": [], "pos": []},
    ]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    corpus = read_conll(path, feature_col="pos")
    assert len(corpus) == 1 and corpus[0].tags == ("B-NP", "B-VP") and corpus[0].features == ("PRP", "VBZ")
    assert corpus[0].lines == (1, 1)
    gz = write(tmp_path / "d.jsonl.gz", json.dumps(rows[0]), gz=True)
    assert read_conll(gz)[0].tokens == ("He", "runs")
    bad = write(tmp_path / "m.jsonl", json.dumps(rows[0]) + "\n" + json.dumps({"tokens": ["a", "b"], "tags": ["O"]}))
    with pytest.raises(DataError, match=r"m.jsonl line 2: 2 tokens but 1 tags, expected one per token"):
        read_conll(bad)
    bad = write(tmp_path / "k.jsonl", json.dumps({"tokens": ["a"]}))
    with pytest.raises(DataError, match=r"k.jsonl line 1: key 'tags' must be a list of strings, got nothing"):
        read_conll(bad)
    bad = write(tmp_path / "j.jsonl", "{oops")
    with pytest.raises(DataError, match=r"j.jsonl line 1: invalid JSON"):
        read_conll(bad)
    with pytest.raises(DataError, match=r"v.jsonl line 2: unknown tag prefix in 'Q-NP'"):
        read_conll(
            write(tmp_path / "v.jsonl", json.dumps(rows[0]) + "\n" + json.dumps({"tokens": ["a"], "tags": ["Q-NP"]}))
        )
    pos = read_conll(write(tmp_path / "u.jsonl", json.dumps({"tokens": ["a", "b"], "tags": ["NN", "-LRB-"]})))
    assert pos.scheme == "none" and pos.warnings == []  # part-of-speech tags are plain labels


@pytest.mark.skipif(not CONLL2000.is_file(), reason="../shared/data/conll2000 not present")
def test_conll2000_train_reads_whole() -> None:
    corpus = read_conll(CONLL2000, feature_col=1)
    assert len(corpus) == 8936
    assert corpus.num_tokens() == 211727
    assert corpus.scheme == "IOB2" and corpus.warnings == []
    types = ["ADJP", "ADVP", "CONJP", "INTJ", "LST", "NP", "PP", "PRT", "SBAR", "UCP", "VP"]
    expected = {"O"} | {f"B-{t}" for t in types} | {f"I-{t}" for t in types if t != "LST"}
    assert set(corpus.tag_set()) == expected
    assert corpus[0].tokens[:3] == ("Confidence", "in", "the") and corpus[0].features[:3] == ("NN", "IN", "DT")


# ---- tag schemes ---------------------------------------------------------------------------


def test_split_tag() -> None:
    assert split_tag("O") == ("O", "")
    assert split_tag("B-I-X") == ("B", "I-X")
    for bad in ("NP", "B-", "U-PER", "o"):
        with pytest.raises(DataError, match="unknown tag prefix"):
            split_tag(bad)


def test_spans_read_leniently_like_conlleval() -> None:
    assert spans(["B-NP", "I-NP", "O", "I-VP", "E-VP", "S-PP"]) == [("NP", 0, 2), ("VP", 3, 5), ("PP", 5, 6)]
    assert spans(["I-NP", "I-VP", "B-VP", "B-VP"]) == [("NP", 0, 1), ("VP", 1, 2), ("VP", 2, 3), ("VP", 3, 4)]
    assert spans(["B-X", "E-X", "I-X", "S-X", "E-X"]) == [("X", 0, 2), ("X", 2, 3), ("X", 3, 4), ("X", 4, 5)]


def _random_chunks(rng: random.Random, length: int) -> list[tuple[str, int, int]]:
    chunks, i = [], 0
    while i < length:
        if rng.random() < 0.3:
            i += 1
            continue
        end = min(length, i + rng.randint(1, 3))
        chunks.append((rng.choice("XY"), i, end))
        i = end
    return chunks


def test_conversion_round_trips_between_all_schemes() -> None:
    rng = random.Random(0)
    schemes = ["IOB1", "IOB2", "BIOES"]
    for _ in range(300):
        length = rng.randint(1, 8)
        chunks = _random_chunks(rng, length)
        written = {s: tags_from_spans(chunks, length, s) for s in schemes}
        for src in schemes:
            assert spans(written[src]) == chunks
            assert invalid_transitions(written[src], src) == []
            assert detect_scheme([written[src]]) == (src if chunks else "IOB2")
            for dst in schemes:
                assert convert(written[src], src, dst) == written[dst]
                assert convert(convert(written[src], src, dst), dst, src) == written[src]


def test_conversion_examples() -> None:
    assert convert(["B-NP", "I-NP", "B-NP", "O", "B-VP"], "IOB2", "IOB1") == ["I-NP", "I-NP", "B-NP", "O", "I-VP"]
    assert convert(["B-NP", "I-NP", "I-NP", "B-VP"], "bio", "iobes") == ["B-NP", "I-NP", "E-NP", "S-VP"]
    assert convert(["S-NP", "B-VP", "E-VP"], "BIOES", "IOB2") == ["B-NP", "B-VP", "I-VP"]
    with pytest.raises(DataError, match="scheme: expected one of IOB1, IOB2"):
        convert(["O"], "BILOU", "IOB2")


def test_invalid_transitions_messages() -> None:
    assert invalid_transitions(["B-NP", "I-VP", "I-VP"], "IOB2") == [
        (1, "I-VP after B-NP (IOB2 starts a chunk with B-VP)")
    ]
    assert invalid_transitions(["I-NP"], "BIO") == [(0, "I-NP after sentence start (IOB2 starts a chunk with B-NP)")]
    assert invalid_transitions(["S-NP", "O"], "IOB2") == [(0, "S-NP is not an IOB2 tag (E-/S- belong to BIOES)")]
    assert invalid_transitions(["I-X", "I-X", "B-X", "B-Y"], "IOB1") == [
        (3, "B-Y after B-X (IOB1 uses B- only right after a Y chunk)")
    ]
    assert invalid_transitions(["O", "E-X", "S-Y"], "IOB1") == [
        (1, "E-X is not an IOB1 tag (E-/S- belong to BIOES)"),
        (2, "S-Y is not an IOB1 tag (E-/S- belong to BIOES)"),
    ]
    assert invalid_transitions(["O", "I-X"], "IOB2") == [(1, "I-X after O (IOB2 starts a chunk with B-X)")]
    assert invalid_transitions(["B-X", "E-Y"], "BIOES") == [
        (0, "B-X before E-Y (BIOES closes a chunk with E-X)"),
        (1, "E-Y after B-X (BIOES opens a chunk with B-Y or S-Y)"),
    ]


def test_detect_scheme() -> None:
    assert detect_scheme([["B-NP", "I-NP"], ["O", "B-VP"]]) == "IOB2"
    assert detect_scheme([["I-PER", "B-PER"], ["I-LOC"]]) == "IOB1"
    assert detect_scheme([["B-NP", "E-NP"]]) == "BIOES"
    assert detect_scheme([["O", "S-NP"]]) == "BIOES"
    assert detect_scheme([["O"]]) == "IOB2"


def test_converted_gives_every_sentence_in_another_scheme(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", "EU B-NP\nrejects B-VP\nGerman B-NP\ncall I-NP\n\nPeter B-NP\n")
    corpus = read_conll(path)
    assert corpus.scheme == "IOB2"
    assert corpus.converted("BIOES") == [["S-NP", "S-VP", "B-NP", "E-NP"], ["S-NP"]]
    assert corpus[0].tags == ("B-NP", "B-VP", "B-NP", "I-NP")  # the corpus itself is left as read
    plain = read_conll(path, scheme="none")
    with pytest.raises(DataError, match="plain labels .* cannot be converted to BIOES"):
        plain.converted("BIOES")


def test_bioes_tags_in_iob_files_are_named() -> None:
    for scheme in ("IOB2", "IOB1"):
        assert invalid_transitions(["E-NP"], scheme) == [(0, f"E-NP is not an {scheme} tag (E-/S- belong to BIOES)")]
        assert invalid_transitions(["S-NP"], scheme) == [(0, f"S-NP is not an {scheme} tag (E-/S- belong to BIOES)")]
