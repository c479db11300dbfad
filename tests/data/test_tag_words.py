"""The tagger's input helpers, shared by training and the torch-free runtime (grutext.data.tag_words)."""

from __future__ import annotations

import pytest

from grutext.data.tag_words import CASES, UNK_ID, case_id, feature_ids


def test_feature_ids_look_up_each_feature_and_fill_in_unknown() -> None:
    index = {"NN": 2, "VB": 3}
    assert feature_ids(["NN", "VB", "JJ"], index, 3) == [2, 3, UNK_ID]
    assert feature_ids(None, index, 4) == [UNK_ID] * 4  # raw text: no feature column
    assert feature_ids([], index, 0) == []


@pytest.mark.parametrize(
    ("token", "shape"),
    [
        ("film", "lower"),
        ("EU", "upper"),
        ("I", "title"),  # one capital letter is a title-case word
        ("German", "title"),
        ("McDonald", "mixed"),
        ("1.8", "has_digit"),
        ("1998", "digits"),
        ("A4", "has_digit"),
        (",", "other"),
        ("-", "other"),
        ("x-ray", "lower"),
    ],
)
def test_case_classes(token: str, shape: str) -> None:
    assert CASES[case_id(token)] == shape
