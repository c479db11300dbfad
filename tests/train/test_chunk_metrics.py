"""Tests for grutext.train.chunk_metrics: conlleval-exact counts (derived by hand), strict mode, report."""

from __future__ import annotations

import random

import pytest

from grutext.data.tag_schemes import spans
from grutext.errors import ConfigError, DataError
from grutext.train import chunk_metrics
from grutext.train.chunk_metrics import ChunkCounts, chunk_scores, conlleval_report, score_conll_lines

# Two sentences, gold | predicted. The gold data is mostly clean IOB2 (one stray I-PP in
# sentence 2); the predictions break IOB2 in every way conlleval has a rule for.
#
#      token  gold   pred
S1 = [
    ("t1", "B-NP", "I-NP"),  # I- at sentence start (prev O): startOfChunk (O, I) opens NP
    ("t2", "I-NP", "I-NP"),
    ("t3", "B-VP", "I-VP"),  # pred: type change NP -> VP ends NP and opens VP
    ("t4", "O", "O"),
    ("t5", "B-NP", "B-NP"),
    ("t6", "I-NP", "I-VP"),  # pred: type change mid-chunk: NP(t5) ends, VP(t6) opens
    ("t7", "O", "O"),
    ("t8", "B-PP", "O"),
    ("t9", "B-NP", "E-NP"),  # pred: E- without B-: startOfChunk (O, E) opens NP
    ("t10", "O", "O"),  # pred: endOfChunk (E, O) closes it
]
S2 = [
    ("u1", "I-PP", "I-PP"),  # both: I- after the sentence boundary (an O) opens PP
    ("u2", "B-NP", "B-NP"),
    ("u3", "I-NP", "B-NP"),  # pred: (B, B) closes NP(u2), opens NP(u3)
    ("u4", "I-NP", "I-NP"),
]
GOLD = [[g for _, g, _ in S1], [g for _, g, _ in S2]]
PRED = [[p for _, _, p in S1], [p for _, _, p in S2]]

# Hand derivation with conlleval's rules (endOfChunk / startOfChunk, the inCorrect flag):
#
# gold chunks: S1 NP[t1-t2] VP[t3] NP[t5-t6] PP[t8] NP[t9]; S2 PP[u1] NP[u2-u4]
#   -> 7 = NP 4, VP 1, PP 2
# pred chunks: S1 NP[t1-t2] (O,I) VP[t3] (type change) NP[t5] VP[t6] (type change) NP[t9] (O,E);
#              S2 PP[u1] (O,I) NP[u2] NP[u3-u4] (B,B)
#   -> 8 = NP 5, VP 2, PP 1
# correct (same start, same end, same type):
#   NP[t1-t2]: both start at t1 as NP; at t3 gold ends (I,B), pred ends (type change), types NP=NP -> correct
#   VP[t3]:    both start at t3 as VP; at t4 both end ((B,O) and (I,O)) -> correct
#   NP[t5..]:  at t6 gold does not end (B,I) but pred does (type change) -> inCorrect cleared, not correct
#   NP[t9]:    gold (O,B) and pred (O,E) both start NP; at t10 both end ((B,O), (E,O)) -> correct
#   PP[u1]:    both start after the boundary; at u2 both end ((I,B)) with types PP=PP -> correct
#   NP[u2..]:  at u3 pred ends (B,B), gold does not (B,I) -> not correct
#   -> 4 = NP 2, VP 1, PP 1
# tokens 14; equal tags: t2 t4 t5 t7 t10 u1 u2 u4 = 8
EXPECTED_REPORT = (
    "processed 14 tokens with 7 phrases; found: 8 phrases; correct: 4.\n"
    "accuracy:  57.14%; precision:  50.00%; recall:  57.14%; FB1:  53.33\n"
    "               NP: precision:  40.00%; recall:  50.00%; FB1:  44.44  5\n"
    "               PP: precision: 100.00%; recall:  50.00%; FB1:  66.67  1\n"
    "               VP: precision:  50.00%; recall: 100.00%; FB1:  66.67  2\n"
)


def test_malformed_fixture_counts_derived_by_hand() -> None:
    scores = chunk_scores(GOLD, PRED)
    assert scores.tokens == 14 and scores.correct_tags == 8
    assert scores.overall == ChunkCounts(correct=4, gold=7, predicted=8)
    assert scores.per_type == {
        "NP": ChunkCounts(2, 4, 5),
        "PP": ChunkCounts(1, 2, 1),
        "VP": ChunkCounts(1, 1, 2),
    }
    assert scores.overall.precision == 0.5 and scores.overall.recall == pytest.approx(4 / 7)
    assert scores.f1 == pytest.approx(2 * 0.5 * (4 / 7) / (0.5 + 4 / 7))
    assert scores.accuracy == pytest.approx(8 / 14)
    assert conlleval_report(scores) == EXPECTED_REPORT


def test_sentence_boundary_ends_chunks() -> None:
    # one chunk I-NP I-NP split by a sentence break is two chunks; joined it would be one
    split = chunk_scores([["B-NP"], ["I-NP"]], [["I-NP"], ["I-NP"]])
    assert split.overall == ChunkCounts(correct=2, gold=2, predicted=2)  # the boundary (O O) closes and reopens
    joined = chunk_scores([["B-NP", "I-NP"]], [["I-NP", "I-NP"]])
    assert joined.overall == ChunkCounts(correct=1, gold=1, predicted=1)


def test_normal_case() -> None:
    gold = [["B-NP", "I-NP", "B-VP", "O", "B-PP", "B-NP"], ["B-NP", "O"]]
    pred = [["B-NP", "I-NP", "B-VP", "O", "B-PP", "I-PP"], ["B-NP", "O"]]
    scores = chunk_scores(gold, pred)
    # gold NP NP VP PP NP = 5 (NP 3); pred NP VP PP(2 tokens) NP = 4; correct NP, VP, NP = 3
    assert scores.overall == ChunkCounts(3, 5, 4)
    assert scores.per_type["PP"] == ChunkCounts(0, 1, 1)
    assert scores.per_type["NP"] == ChunkCounts(2, 3, 2)
    assert (scores.tokens, scores.correct_tags) == (8, 7)
    assert conlleval_report(scores).splitlines()[:2] == [
        "processed 8 tokens with 5 phrases; found: 4 phrases; correct: 3.",
        "accuracy:  87.50%; precision:  75.00%; recall:  60.00%; FB1:  66.67",
    ]
    perfect = chunk_scores(gold, gold)
    assert perfect.f1 == 1.0 and perfect.accuracy == 1.0


def test_bioes_in_conlleval_mode_and_strict_mode() -> None:
    gold = [["S-NP", "B-VP", "E-VP", "O", "B-NP", "I-NP", "E-NP"]]
    pred = [["S-NP", "B-VP", "I-VP", "O", "I-NP", "I-NP", "E-NP"]]
    # conlleval: pred NP[0] (S), VP[1-2] ends at O ((I,O) as gold's (E,O)), NP[4-6] opened by (O,I)
    # and still open with gold's at the sentence end -> all 3 correct
    assert chunk_scores(gold, pred).overall == ChunkCounts(3, 3, 3)
    # strict BIOES: B-VP I-VP has no E-VP and I-NP I-NP E-NP no B-NP: both dropped -> 1 chunk
    strict = chunk_scores(gold, pred, mode="strict")
    assert strict.overall == ChunkCounts(1, 3, 1) and strict.mode == "strict"
    # S- opens and closes: S-NP S-NP is two chunks (the 2004 script alone would read one)
    assert chunk_scores([["S-NP", "S-NP"]], [["S-NP", "S-NP"]]).overall == ChunkCounts(2, 2, 2)
    # E- then B- of the same type: two chunks
    assert chunk_scores([["B-X", "E-X", "B-X", "E-X"]], [["B-X", "E-X", "B-X", "E-X"]]).overall.gold == 2


def test_strict_iob2_drops_chunks_without_b() -> None:
    strict = chunk_scores(GOLD, PRED, mode="strict", scheme="IOB2")
    # gold: u1 I-PP has no B-PP: 6 chunks; pred: only B-started NP[t5] NP[u2] NP[u3-u4]; none matches
    assert strict.overall == ChunkCounts(0, 6, 3)
    assert strict.tokens == 14 and strict.correct_tags == 8
    assert chunk_scores([["B-NP", "I-NP"]], [["I-NP", "I-NP"]], mode="strict").overall == ChunkCounts(0, 1, 0)
    with pytest.raises(ConfigError, match="scheme: strict mode expects IOB2"):
        chunk_scores(GOLD, PRED, mode="strict", scheme="IOB1")


def test_conlleval_mode_equals_lenient_span_matching_on_random_sequences() -> None:
    rng = random.Random(0)
    tags = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "I-Y", "E-Y", "S-Y"]
    for _ in range(400):
        gold = [[rng.choice(tags) for _ in range(rng.randint(1, 7))] for _ in range(rng.randint(1, 3))]
        pred = [[rng.choice(tags) for _ in seq] for seq in gold]
        scores = chunk_scores(gold, pred)
        g = [{c for c in spans(s)} for s in gold]
        p = [{c for c in spans(s)} for s in pred]
        correct = sum(len(a & b) for a, b in zip(g, p, strict=True))
        assert scores.overall == ChunkCounts(correct, sum(map(len, g)), sum(map(len, p)))


# conlleval.pl 2004-01-26, written out as the test's independent reference (no IOBES rules)
def _end_2004(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    end = (prev_tag, tag) in {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"), ("E", "I"), ("E", "O")}
    return end or (prev_tag not in ("O", ".") and prev_type != type_) or prev_tag in ("[", "]")


def _start_2004(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    start = (prev_tag, tag) in {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"), ("E", "I"), ("O", "E")}
    return start or (tag not in ("O", ".") and prev_type != type_) or tag in ("[", "]")


def test_iobes_extension_leaves_iob_and_ioe_files_as_the_2004_script(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1)
    tags = ["O", "B-X", "I-X", "E-X", "B-Y", "I-Y", "E-Y"]
    cases = []
    while len(cases) < 300:
        seq = [[rng.choice(tags) for _ in range(rng.randint(1, 7))] for _ in range(2)]
        pred = [[rng.choice(tags) for _ in s] for s in seq]
        if any(
            a.startswith("E-") and b.startswith("B-") for s in (*seq, *pred) for a, b in zip(s[:-1], s[1:], strict=True)
        ):
            continue
        cases.append((seq, pred))
    ours = [chunk_scores(g, p) for g, p in cases]
    monkeypatch.setattr(chunk_metrics, "_end_of_chunk", _end_2004)
    monkeypatch.setattr(chunk_metrics, "_start_of_chunk", _start_2004)
    reference = [chunk_scores(g, p) for g, p in cases]
    assert ours == reference


def test_score_conll_lines_reads_conlleval_input() -> None:
    lines = ["-DOCSTART- -X- O O\n", "\n"]
    lines += [f"{tok} x {g} {p}\n" for tok, g, p in S1] + ["\n"] + [f"{tok} x {g} {p}\n" for tok, g, p in S2]
    scores = score_conll_lines(lines)
    # the -DOCSTART- line is a token to conlleval (O O, correct): 15 tokens, 9 equal tags, same chunks
    assert (scores.tokens, scores.correct_tags) == (15, 9)
    assert scores.overall == ChunkCounts(4, 7, 8)
    assert (
        conlleval_report(scores).splitlines()[0] == "processed 15 tokens with 7 phrases; found: 8 phrases; correct: 4."
    )
    with pytest.raises(DataError, match="line 2: expected 4 fields as on line 1, got 3"):
        score_conll_lines(["a x B-NP B-NP", "b I-NP I-NP"])


def test_quirks_of_the_tag_split_and_report_edges() -> None:
    # the first hyphen splits: B-I-X is type "I-X"; a type "0" is "" to Perl
    assert chunk_scores([["B-I-X", "I-I-X"]], [["B-I-X", "I-I-X"]]).per_type == {"I-X": ChunkCounts(1, 1, 1)}
    assert list(chunk_scores([["B-0"]], [["B-0"]]).per_type) == [""]
    # typeless tags: only the (O, I) rule opens a chunk here (no type change to fire)
    assert chunk_scores([["O", "I", "I"]], [["O", "I", "O"]]).overall == ChunkCounts(0, 1, 1)
    # a type only predicted: precision 0, recall 0, printed with its count
    report = conlleval_report(chunk_scores([["O"]], [["B-NP"]]))
    assert report.splitlines()[-1] == "               NP: precision:   0.00%; recall:   0.00%; FB1:   0.00  1"
    assert (
        conlleval_report(chunk_scores([], [])) == "processed 0 tokens with 0 phrases; found: 0 phrases; correct: 0.\n"
    )


def test_length_mismatch_and_bad_mode() -> None:
    with pytest.raises(DataError, match="predictions sentence 2: expected 2 tags as in the gold data, got 1"):
        chunk_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(DataError, match="predictions: expected 2 sentences"):
        chunk_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ConfigError, match="mode: expected 'conlleval' or 'strict'"):
        chunk_scores([["O"]], [["O"]], mode="loose")  # type: ignore[arg-type]
