"""Every bad input file type: one line naming the file (and line), exit 2, nothing written; columns
that would train on ids or classify labels are refused; the chosen columns are printed."""

from __future__ import annotations

import gzip

import pytest
from tests.conftest import synthetic, write_csv
from tests.faults.conftest import CLF_FLAGS
from tests.faults.util import fails, run, snapshot


def _rows(n=30):
    texts, labels = synthetic(n, classes=("pos", "neg", "mid"))
    return texts, labels


BAD_FILES = {
    "empty.csv": (b"", ["empty.csv", "empty"]),
    "header-only.csv": (b"text,label\n", ["header-only.csv", "no data rows"]),
    "ragged.csv": (b"text,label\ngood film,pos\nbad,film,neg\n", ["ragged.csv line 3", "expected 2 fields"]),
    "binary.csv": (bytes(range(256)) * 4, ["binary.csv"]),
    "bad.jsonl": (b'{"text": "good", "label": "pos"}\n{"text": "bad", "label"\n', ["bad.jsonl line 2", "invalid JSON"]),
    "notobject.jsonl": (b'["good", "pos"]\n', ["notobject.jsonl", "expected a JSON object"]),
    "corrupt.csv.gz": (b"\x1f\x8b\x08\x00garbage", ["corrupt.csv.gz", "gzip"]),
    "corrupt.parquet": (b"PAR1 not really", ["corrupt.parquet"]),
    "empty-text.csv": (b"text,label\ngood film,pos\n ,neg\n", ["empty-text.csv line 3"]),
    "nolabel.fasttext.txt": (b"__label__pos good film\nbad film\n", ["nolabel.fasttext.txt", "no labels"]),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_training_file_is_one_line(tmp_path, capsys, name):
    content, needles = BAD_FILES[name]
    (tmp_path / name).write_bytes(content)
    before = snapshot(tmp_path)
    fails(capsys, ["train", tmp_path / name, "--out", tmp_path / "m", *CLF_FLAGS], *needles, code=2)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["ragged.csv", "bad.jsonl", "binary.csv"])
def test_bad_evaluation_file_is_one_line(clf, tmp_path, capsys, name):
    content, needles = BAD_FILES[name]
    (tmp_path / name).write_bytes(content)
    before = snapshot(tmp_path)
    fails(capsys, ["evaluate", clf, tmp_path / name], *needles, code=2)
    assert snapshot(tmp_path) == before


def test_missing_file_and_folder_as_file(clf, tmp_path, capsys):
    fails(capsys, ["evaluate", clf, tmp_path / "nope.csv"], "nope.csv: file not found", code=2)
    (tmp_path / "dir.csv").mkdir()
    fails(capsys, ["predict", clf, "--file", tmp_path / "dir.csv"], "dir.csv", code=2)


def test_missing_model_folder(tmp_path, capsys):
    fails(capsys, ["predict", tmp_path / "no-model", "x"], "model directory not found", code=2)


def test_numeric_id_column_is_not_the_text(tmp_path, capsys):
    """A CSV of id,label used to train on the ids (chance accuracy, 100% unknown tokens)."""
    (tmp_path / "ids.csv").write_text("id,label\n" + "".join(f"{1000 + i},{'ab'[i % 2]}\n" for i in range(40)))
    before = snapshot(tmp_path)
    argv = ["train", tmp_path / "ids.csv", "--out", tmp_path / "m", *CLF_FLAGS]
    fails(capsys, argv, "column 'id'", "numbers only", "--text-col id", code=2)
    assert snapshot(tmp_path) == before


def test_numeric_text_column_named_explicitly_is_accepted(tmp_path):
    from grutext.data.readers import read_dataset

    (tmp_path / "ids.csv").write_text("id,label\n1,a\n2,b\n")
    assert read_dataset(tmp_path / "ids.csv", text_col="id").texts == ["1", "2"]


def test_predict_file_with_id_and_label_only_is_an_error(clf, tmp_path, capsys):
    (tmp_path / "data.csv").write_text("id,label\n1,pos\n2,neg\n3,mid\n")
    fails(capsys, ["predict", clf, "--file", tmp_path / "data.csv"], "column 'id'", "numbers only", code=2)


def test_predict_file_never_takes_the_label_column_as_text(clf, tmp_path, capsys):
    (tmp_path / "data.csv").write_text("sentence_id,label,review\n1,pos,a great film\n2,neg,an awful plot\n")
    r = run(capsys, "predict", clf, "--file", tmp_path / "data.csv", "--json")
    assert r.code == 0 and len(r.out.strip().splitlines()) == 2
    (tmp_path / "two.csv").write_text("words,label\ngreat film here,pos\nawful plot here,neg\n")
    r = run(capsys, "predict", clf, "--file", tmp_path / "two.csv", "--json")
    assert r.code == 0 and '"text": "great film here"' in r.out.replace("'", '"') or "great film here" in r.out


@pytest.mark.parametrize("sep,name,hint", [(";", "semi.csv", "';'-separated"), ("\t", "tabs.csv", "--format tsv")])
def test_other_delimiters_get_a_hint(tmp_path, capsys, sep, name, hint):
    texts, labels = _rows()
    (tmp_path / name).write_text(
        f"text{sep}label\n" + "".join(f"{t}{sep}{lab}\n" for t, lab in zip(texts, labels, strict=True))
    )
    before = snapshot(tmp_path)
    fails(capsys, ["train", tmp_path / name, "--out", tmp_path / "m", *CLF_FLAGS], name, hint, code=2)
    assert snapshot(tmp_path) == before


def test_hints_name_command_line_flags(tmp_path, capsys):
    (tmp_path / "cols.csv").write_text("alpha,beta\ngood film,x\nbad plot,y\n")
    r = fails(capsys, ["train", tmp_path / "cols.csv", "--out", tmp_path / "m", *CLF_FLAGS], "--label-col", code=2)
    assert "label_col=" not in r.err.split("(Python:")[0]


def test_training_prints_the_chosen_columns(tmp_path, capsys):
    texts, labels = _rows(60)
    with open(tmp_path / "t.csv", "w") as fh:
        fh.write("review,sentiment\n")
        fh.writelines(f"{t},{lab}\n" for t, lab in zip(texts, labels, strict=True))
    r = run(capsys, "train", tmp_path / "t.csv", "--out", tmp_path / "m", *CLF_FLAGS, "--epochs", "1")
    assert r.code == 0
    assert "columns: text 'review', label 'sentiment'" in r.out


def test_gzip_csv_still_reads(tmp_path):
    from grutext.data.readers import read_dataset

    texts, labels = _rows(6)
    write_csv(tmp_path / "t.csv", texts, labels)
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress((tmp_path / "t.csv").read_bytes()))
    assert read_dataset(tmp_path / "t.csv.gz").texts == texts
