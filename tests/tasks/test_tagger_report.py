"""The tagger's report sections (per-type chunk scores, chunk-type confusion), the confusion's
counting rules on a hand-made case, and `grutext evaluate --strict`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from planted_chunks import sentences, write_conll

from grutext.cli.main import main
from grutext.config import Config
from grutext.tasks.tagging.evaluate import chunk_confusion


def test_chunk_confusion_counts_by_exact_span():
    gold = [["B-NP", "I-NP", "B-VP", "B-NP", "O", "B-PP"]]
    pred = [["B-NP", "I-NP", "B-NP", "I-NP", "O", "B-VP"]]
    # gold chunks NP(0,2) VP(2,3) NP(3,4) PP(5,6); predicted NP(0,2) NP(2,4) VP(5,6)
    conf = chunk_confusion(gold, pred)
    labels, m = conf["labels"], conf["matrix"]
    assert labels == ["NP", "PP", "VP", "(none)"]
    cell = {(r, c): m[i][j] for i, r in enumerate(labels) for j, c in enumerate(labels) if m[i][j]}
    assert cell == {
        ("NP", "NP"): 1,  # (0, 2) right
        ("NP", "(none)"): 1,  # (3, 4) swallowed by the predicted NP (2, 4)
        ("VP", "(none)"): 1,  # (2, 3) likewise
        ("(none)", "NP"): 1,  # predicted (2, 4) matches no gold span
        ("PP", "VP"): 1,  # (5, 6) right span, wrong type
    }


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from grutext.tasks.tagging.config import TagConfig
    from grutext.tasks.tagging.train import train_tagger

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tagreport")
    X, y = sentences(150, 0)
    Xt, yt = sentences(40, 1)
    train, test = write_conll(root / "train.txt", X, y), write_conll(root / "test.txt", Xt, yt)
    cfg = Config()
    cfg = replace(
        cfg,
        data=replace(cfg.data, train=str(train), test=str(test)),
        model=replace(cfg.model, hidden_size=12, embed_dim=16),
        train=replace(cfg.train, epochs=2, batch_size=8, lr=1e-2, threads=1, out=str(root / "m")),
    )
    run = train_tagger(cfg, TagConfig(char_dim=8, char_hidden=8), verbose=False, progress=False)
    return {"dir": root / "m", "test": test, "run": run}


def test_metrics_and_report_have_per_type_scores_and_confusion(model, tmp_path, capsys):
    metrics = json.loads((model["dir"] / "metrics.json").read_text())
    conf = metrics["test"]["chunk_confusion"]
    assert conf["labels"][-1] == "(none)" and set(conf["labels"][:-1]) == {"NP", "PP", "VP"}
    # the diagonal is conlleval's correct chunks per type
    for i, t in enumerate(conf["labels"][:-1]):
        assert conf["matrix"][i][i] == metrics["test"]["per_type"][t]["correct"]
    out = tmp_path / "r.html"
    assert main(["report", str(model["dir"]), "--out", str(out)]) == 0
    page = out.read_text()
    assert "Chunks (conlleval)" in page and "test: chunks per type" in page
    assert "test: confusion of chunk types" in page and "validation: chunks per type" in page
    f1 = 100 * metrics["test"]["per_type"]["NP"]["f1"]
    assert f"{f1:.4f}" in page  # the NP row's F1 as formatted


def test_report_refuses_the_mistake_options_for_a_tagger(model, capsys, tmp_path):
    out = tmp_path / "r.html"
    for extra in (["--data", str(model["test"])], ["--mistakes", "3"], ["--method", "occlusion"]):
        assert main(["report", str(model["dir"]), "--out", str(out), *extra]) != 0
        err = capsys.readouterr().err.strip()
        assert "a tagger has none" in err and "\n" not in err, err
        assert not out.exists()


def test_evaluate_strict(model, capsys, tmp_path):
    assert main(["evaluate", str(model["dir"]), str(model["test"]), "--strict", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["mode"] == "strict"
    assert main(["evaluate", str(model["dir"]), str(model["test"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "conlleval"
    assert main(["evaluate", str(model["dir"]), str(model["test"]), "--strict"]) == 0
    text = capsys.readouterr().out
    assert "seqeval strict mode" in text and "FB1:" in text


def test_settings_the_tagger_does_not_read_are_errors(model, capsys, tmp_path):
    out = tmp_path / "x"
    for flag, value, name in [
        ("--embed-dropout", "0.2", "model.embed_dropout"),
        ("--pooling", "mean", "model.pooling"),
        ("--max-len", "50", "data.max_len"),
    ]:
        argv = ["train", str(model["test"]), "--task", "tag", flag, value, "--out", str(out), "--threads", "1"]
        assert main(argv) != 0
        err = capsys.readouterr().err.strip()
        # one line, naming the setting: the shared-flag check (issue 13) answers first where it knows the flag
        named = (name in err and "not used by the tagger" in err) or f"{flag}: does not apply to --task tag" in err
        assert named and "\n" not in err, err
        assert not out.exists() and not list(tmp_path.iterdir())
