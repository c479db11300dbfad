"""End-to-end CLI runs on small fixtures, and every bad input of the foundation issue: each gives
a one-line error naming file/line/field, exit code 2, no traceback, nothing half-written."""

import gzip
import json
import re
import subprocess
import sys

import pytest
from tests.conftest import synthetic, write_csv

from grutext.cli import main

FAST = ["--epochs", "2", "--embed-dim", "12", "--hidden-size", "8", "--min-freq", "1", "--batch-size", "16"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    texts, labels = synthetic(200, classes=("pos", "neg", "mid"))
    write_csv(d / "train.csv", texts, labels)
    assert main(["train", str(d / "train.csv"), "--out", str(d / "model"), *FAST]) == 0
    return d / "model"


def test_train_writes_model_dir(model_dir):
    assert (model_dir / "model.safetensors").is_file()
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert len(metrics["history"]) == 2


def test_predict_text_and_json(model_dir, capsys):
    assert main(["predict", str(model_dir), "--json", "a great film", "boring plot"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and set(rows[0]["probabilities"]) == {"mid", "neg", "pos"}
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-4


def test_predict_file(model_dir, tmp_path, capsys):
    f = tmp_path / "in.txt"
    f.write_text("great movie\nawful movie\n")
    assert main(["predict", str(model_dir), "--file", str(f)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_summary_and_trace(model_dir, capsys):
    assert main(["summary", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "Bidirectional(GRU)" in out and "Total params" in out
    assert main(["trace", str(model_dir), "a great movie"]) == 0
    out = capsys.readouterr().out
    for stage in ("tokens", "ids", "padded ids", "embeddings", "recurrent output", "pooled", "probabilities"):
        assert stage in out


def test_summary_and_trace_show_the_blend(model_dir, capsys):
    """The model trained with model.blend = auto: summary's last line is the blend with the validation
    accuracies metrics.json holds; trace adds the blended probabilities, which predict answers."""
    from grutext.artifact import load_model
    from grutext.infer.predict import Predictor

    metrics = json.loads((model_dir / "metrics.json").read_text())
    weight, network = metrics["blend"]["weight"], metrics["blend"]["network_valid"]["accuracy"]
    assert main(["summary", str(model_dir)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    want = f"blend: n-gram model weight {weight:.2f} (network valid {network:.1%}, "
    assert last == want + f"blended {metrics['valid']['accuracy']:.1%})"
    assert main(["trace", str(model_dir), "a great movie"]) == 0
    rows = {ln[:22].strip(): ln[22:] for ln in capsys.readouterr().out.splitlines()}
    probs = Predictor(load_model(model_dir)).predict(["a great movie"])[0]["probabilities"]
    shown = re.findall(r"(\w+): ([\d.]+)", rows[f"blend (n-grams {weight:.2f})"])
    assert {lab: float(p) for lab, p in shown} == pytest.approx(probs, abs=1e-4)
    assert "network probabilities" in rows


def test_evaluate(model_dir, tmp_path, capsys):
    texts, labels = synthetic(30, classes=("pos", "neg", "mid"), seed=5)
    write_csv(tmp_path / "test.csv", texts, labels)
    assert main(["evaluate", str(model_dir), str(tmp_path / "test.csv"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n"] == 30 and len(rep["confusion_matrix"]) == 3


def test_config_file_and_flags(tmp_path, capsys):
    texts, labels = synthetic(120)
    write_csv(tmp_path / "t.csv", texts, labels)
    (tmp_path / "run.toml").write_text(
        f'[data]\ntrain = "{tmp_path / "t.csv"}"\nmin_freq = 1\n[model]\nhidden_size = 6\nembed_dim = 8\n'
        f'[train]\nepochs = 1\nout = "{tmp_path / "m"}"\n'
    )
    assert main(["train", "--config", str(tmp_path / "run.toml"), "--hidden-size", "5", "--no-bidirectional"]) == 0
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())["config"]
    assert cfg["model"]["hidden_size"] == 5 and cfg["model"]["bidirectional"] is False
    assert cfg["model"]["embed_dim"] == 8


def _fails(argv, capsys, *needles):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def test_bad_inputs(tmp_path, capsys):
    out = str(tmp_path / "never")
    base = ["--out", out, *FAST]
    # empty file
    (tmp_path / "empty.csv").write_text("")
    _fails(["train", str(tmp_path / "empty.csv"), *base], capsys, "empty.csv", "empty")
    # misspelled column
    texts, labels = synthetic(40)
    write_csv(tmp_path / "t.csv", texts, labels)
    _fails(["train", str(tmp_path / "t.csv"), "--label-col", "lable", *base], capsys, "t.csv", "'lable'", "label")
    # whitespace-only text, named by line
    (tmp_path / "ws.csv").write_text("text,label\ngood film,pos\n   ,neg\nbad film,neg\n")
    _fails(["train", str(tmp_path / "ws.csv"), *base], capsys, "ws.csv", "line 3")
    # one class only
    write_csv(tmp_path / "one.csv", texts, ["pos"] * len(texts))
    _fails(["train", str(tmp_path / "one.csv"), *base], capsys, "one.csv", "one class")
    # labels in test unseen in training
    write_csv(tmp_path / "test.csv", texts[:5], ["pos", "neg", "zzz", "pos", "neg"])
    _fails(["train", str(tmp_path / "t.csv"), "--test", str(tmp_path / "test.csv"), *base], capsys, "'zzz'")
    # NaN label
    (tmp_path / "nan.csv").write_text("text,label\ngood film,pos\nbad film,NaN\nok film,neg\n")
    _fails(["train", str(tmp_path / "nan.csv"), *base], capsys, "nan.csv", "line 3")
    # wrong config key
    (tmp_path / "bad.toml").write_text("[model]\nhiden_size = 3\n")
    _fails(
        ["train", str(tmp_path / "t.csv"), "--config", str(tmp_path / "bad.toml"), *base],
        capsys,
        "hiden_size",
        "hidden_size",
    )
    # bad flag value
    _fails(["train", str(tmp_path / "t.csv"), "--pooling", "avg", *base], capsys, "model.pooling", "'avg'")
    # corrupt / incomplete model directory
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    _fails(["predict", str(tmp_path / "half"), "x"], capsys, "half", "missing")
    assert not (tmp_path / "never").exists()  # nothing half-written
    assert not any(p.name.startswith(".never") for p in tmp_path.iterdir())


def test_non_utf8_and_huge_line(tmp_path, capsys):
    # latin-1 bytes: read with a warning, training works
    texts, labels = synthetic(60)
    rows = ["text,label"] + [f"{t} caf\xe9,{lab}" for t, lab in zip(texts, labels, strict=True)]
    (tmp_path / "latin.csv").write_bytes("\n".join(rows).encode("latin-1"))
    with pytest.warns(UnicodeWarning):
        assert main(["train", str(tmp_path / "latin.csv"), "--out", str(tmp_path / "m1"), *FAST]) == 0
    # a 10 MB single line is read and truncated to max_len, not a crash
    big = " ".join(["great"] * 1_700_000)[: 10 * 1024 * 1024]
    with gzip.open(tmp_path / "big.jsonl.gz", "wt") as fh:
        for t, lab in zip(texts, labels, strict=True):
            fh.write(json.dumps({"text": t, "label": lab}) + "\n")
        fh.write(json.dumps({"text": big, "label": "pos"}) + "\n")
    assert main(["train", str(tmp_path / "big.jsonl.gz"), "--out", str(tmp_path / "m2"), "--max-len", "64", *FAST]) == 0


def test_console_script_help():
    r = subprocess.run([sys.executable, "-m", "grutext.cli", "train", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "--hidden-size" in r.stdout and "--config" in r.stdout and "Train a classifier" in r.stdout
