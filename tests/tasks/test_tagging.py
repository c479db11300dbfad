"""The tagging task end to end on a tiny planted chunking corpus (written by the tests): it learns the
pattern, saves and loads exactly, is padding-invariant, scores in the file's scheme, and the CLI trains,
evaluates and predicts (brackets, JSON offsets, --format conll) with one-line errors for bad input."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tests.tasks.planted_chunks import sentence as _sentence

from grutext.cli.main import main
from grutext.config import Config
from grutext.data.tag_schemes import convert


def _write(path: Path, sentences: list[list[tuple[str, str]]], scheme: str = "IOB2") -> Path:
    lines = []
    for s in sentences:
        tags = convert([t for _, t in s], "IOB2", scheme) if scheme != "IOB2" else [t for _, t in s]
        lines += [f"{w} X {t}" for (w, _), t in zip(s, tags, strict=True)] + [""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("tagcorpus")
    train = [_sentence(rng) for _ in range(300)]
    test = [_sentence(rng) for _ in range(60)]
    return {
        "train": _write(root / "train.txt", train),
        "test": _write(root / "test.txt", test),
        "train_iob1": _write(root / "train1.txt", train, "IOB1"),
        "test_iob1": _write(root / "test1.txt", test, "IOB1"),
        "root": root,
    }


def _cfg(train: Path, test: Path | None, out: Path, **train_opts) -> Config:
    cfg = Config()
    opts = dict(epochs=3, batch_size=8, lr=1e-2, threads=1, out=str(out))
    opts.update(train_opts)
    return replace(
        cfg,
        data=replace(cfg.data, train=str(train), test=str(test) if test else None),
        model=replace(cfg.model, hidden_size=24, embed_dim=16),
        train=replace(cfg.train, **opts),
    )


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    from grutext.tasks.tagging.config import TagConfig
    from grutext.tasks.tagging.train import train_tagger

    out = tmp_path_factory.mktemp("tagmodel") / "m"
    return train_tagger(
        _cfg(corpus["train"], corpus["test"], out), TagConfig(char_hidden=8, char_dim=8), verbose=False, progress=False
    )


def test_learns_the_planted_chunks(trained):
    assert trained.vocab.file_scheme == "IOB2" and trained.vocab.train_scheme == "BIOES"
    assert trained.config.train.monitor == "val_chunk_f1"
    assert [h.get("val_chunk_f1") is not None for h in trained.fit.history] == [True] * len(trained.fit.history)
    assert trained.test_scores["f1"] >= 0.97, trained.test_scores["f1"]
    assert trained.test_scores["accuracy"] >= 0.98


def test_save_load_round_trip_predicts_the_same(trained, corpus):
    from grutext.artifact import load_model
    from grutext.data.conll import read_conll
    from grutext.tasks.tagging.data import Encoder, TagBatches
    from grutext.tasks.tagging.evaluate import predict_tags
    from grutext.tasks.tagging.predict import tag_tokens

    loaded = load_model(trained.out_dir)
    assert loaded.kind == "tagger" and loaded.meta["tag"]["tags"] == trained.vocab.tags
    test = read_conll(corpus["test"])
    sentences = [list(s.tokens) for s in test]
    items = Encoder(trained.tokenizer, trained.vocab).encode_corpus(test)
    batch = next(iter(TagBatches(items, 16)))
    trained.model.eval()
    with torch.no_grad():
        before = trained.model.emissions(batch)
        after = loaded.model.emissions(batch)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
    assert loaded.model.crf is not None and loaded.model.crf.transitions.abs().sum() > 0  # trained CRF weights loaded
    trained_tags, _ = predict_tags(trained.model, TagBatches(items, 16), trained.vocab)
    assert tag_tokens(loaded, sentences) == trained_tags
    # the constraints are not in the state dict: the loader rebuilds them from the saved tag names
    crf = loaded.model.crf
    assert not crf.allowed_transitions.all()
    assert torch.equal(crf.allowed_transitions, trained.model.crf.allowed_transitions)
    assert torch.equal(crf.allowed_start, trained.model.crf.allowed_start)


def test_a_sentence_tagged_alone_equals_it_in_a_padded_batch(trained):
    from grutext.tasks.tagging.data import Encoder, collate

    enc = Encoder(trained.tokenizer, trained.vocab)
    short = enc.encode(["The", "dog", "sees", "a", "cat", "."])
    longer = [
        enc.encode(
            [
                "the",
                "very",
                "big",
                "old",
                "Paris",
                "near",
                "London",
                "likes",
                "this",
                "quick",
                "red",
                "car",
                "in",
                "every",
                "house",
                "on",
                "a",
                "man",
                ".",
            ]
        ),
        enc.encode(["A", "man", "."]),
    ]
    model = trained.model.eval()
    with torch.no_grad():
        alone = model.emissions(collate([short]))[0]  # (T, K)
        batch = collate([longer[0], short, longer[1]])
        mixed = model.emissions(batch)[1, : len(short.words)]
        paths = model.predict(batch)
    torch.testing.assert_close(mixed, alone, rtol=0, atol=1e-5)
    assert paths[1] == model.predict(collate([short]))[0]


def test_scores_and_predictions_are_in_the_files_scheme(corpus, tmp_path):
    """An IOB1 file is learnt in BIOES; evaluation and predictions come back in IOB1."""
    from grutext.artifact import load_model
    from grutext.tasks.tagging.config import TagConfig
    from grutext.tasks.tagging.evaluate import evaluate_tagger
    from grutext.tasks.tagging.predict import conll_lines
    from grutext.tasks.tagging.train import train_tagger

    res = train_tagger(
        _cfg(corpus["train_iob1"], None, tmp_path / "m1"), TagConfig(char_encoder="none"), verbose=False, progress=False
    )
    assert res.vocab.file_scheme == "IOB1"
    loaded = load_model(tmp_path / "m1")
    rep = evaluate_tagger(loaded, str(corpus["test_iob1"]))
    assert rep["scheme"] == "IOB1" and rep["f1"] >= 0.95
    predicted = [line.split()[-1] for line in conll_lines(loaded, str(corpus["test_iob1"])) if line]
    gold = [line.split()[-1] for line in corpus["test_iob1"].read_text().splitlines() if line]
    assert not any(t.startswith(("E-", "S-")) for t in predicted)  # not the training scheme
    assert sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold) >= 0.97  # IOB1 agrees with IOB1


def test_softmax_decoder_and_cnn_characters(corpus, tmp_path):
    from grutext.tasks.tagging.config import TagConfig
    from grutext.tasks.tagging.train import train_tagger

    res = train_tagger(
        _cfg(corpus["train"], corpus["test"], tmp_path / "s"),
        TagConfig(decoder="softmax", char_encoder="cnn", char_hidden=8),
        save=False,
        verbose=False,
        progress=False,
    )
    assert res.model.crf is None and type(res.model.chars).__name__ == "CharCNN"
    assert res.test_scores["f1"] >= 0.95


@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_other_cells_drive_the_word_level_stack(corpus, tmp_path, capsys, cell):
    """`--cell` reaches the tagger's bidirectional stack (the character encoder stays a BiGRU); the model saves
    and loads with that cell; an LSTM tagger has no GRU gates to explain and no ONNX export: one-line errors."""
    from grutext.artifact import load_model
    from grutext.errors import ConfigError
    from grutext.nn.cells import make_encoder
    from grutext.tasks.tagging.config import TagConfig
    from grutext.tasks.tagging.explain import explain_tagger
    from grutext.tasks.tagging.train import train_tagger

    out = tmp_path / cell
    cfg = _cfg(corpus["train"], corpus["test"], out)
    res = train_tagger(
        replace(cfg, model=replace(cfg.model, cell=cell)), TagConfig(char_hidden=8), verbose=False, progress=False
    )
    want = type(make_encoder(cell, 4, 4, bidirectional=True))
    assert type(res.model.encoder) is want and res.model.encoder.num_directions == 2
    assert type(res.model.chars.rnn).__name__ == "GRU"
    assert res.test_scores["f1"] >= 0.9
    loaded = load_model(out)
    assert type(loaded.model.encoder) is want and loaded.model.cell == cell
    if cell == "lstm":
        with pytest.raises(ConfigError, match="gate traces: expected a model with a GRU-family cell"):
            explain_tagger(loaded, "the dog sees a cat")
        pytest.importorskip("onnx")
        assert main(["export", str(out), str(tmp_path / "onnx")]) == 2
        assert "export supports cell 'gru'" in capsys.readouterr().err and not (tmp_path / "onnx").exists()
    else:
        assert explain_tagger(loaded, "the dog sees a cat").gates.num_layers == 1


def test_words_are_looked_up_lower_cased(trained):
    from grutext.tasks.tagging.data import word_ids

    unk = trained.tokenizer.unk_id
    ids = word_ids(trained.tokenizer, ["The", "the", "THE", "Paris", "paris", "zebra"])
    assert ids[0] == ids[1] == ids[2] != unk and ids[3] == ids[4] != unk and ids[0] != ids[3]
    assert ids[5] == unk


def test_case_feature():
    from grutext.tasks.tagging.config import CASES, case_id

    got = {w: CASES[case_id(w)] for w in ["dog", "IBM", "Paris", "McDonald", "1984", "B2B", ",", "I"]}
    assert got == {
        "dog": "lower",
        "IBM": "upper",
        "Paris": "title",
        "McDonald": "mixed",
        "1984": "digits",
        "B2B": "has_digit",
        ",": "other",
        "I": "title",
    }


# ---- the command line ------------------------------------------------------------------------------------


def _train_cli(corpus, out: Path, *extra: str) -> int:
    return main(
        ["train", str(corpus["train"]), "--task", "tag", "--epochs", "3", "--batch-size", "8", "--lr", "0.01",
         "--hidden-size", "24", "--embed-dim", "16", "--threads", "1", "--char-hidden", "8", "--out", str(out), *extra]
    )  # fmt: skip


@pytest.fixture(scope="module")
def cli_model(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("clitag") / "m"
    assert _train_cli(corpus, out) == 0
    return out


def test_cli_train_evaluate(cli_model, corpus, capsys):
    cfg = json.loads((cli_model / "config.json").read_text())
    assert cfg["kind"] == "tagger" and cfg["tag"]["decoder"] == "crf" and cfg["tag"]["file_scheme"] == "IOB2"
    assert main(["evaluate", str(cli_model), str(corpus["test"])]) == 0
    out = capsys.readouterr().out.splitlines()
    n_tokens = sum(1 for line in corpus["test"].read_text().splitlines() if line)
    assert out[0].startswith(f"processed {n_tokens} tokens with ") and "phrases; found:" in out[0]
    assert out[1].startswith("accuracy: ") and "FB1:" in out[1]
    assert main(["evaluate", str(cli_model), str(corpus["test"]), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["f1"] >= 0.97 and set(rep["per_type"]) == {"NP", "PP", "VP"}


def test_cli_predict_brackets_and_json(cli_model, capsys):
    assert (
        main(["predict", str(cli_model), "The big dog sees a cat near this old London.", "every man wants this car"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "[NP The big dog] [VP sees] [NP a cat] [PP near] [NP this old London] .",
        "[NP every man] [VP wants] [NP this car]",
    ]
    text = "The  old cat likes   a house."
    assert main(["predict", str(cli_model), "--json", text]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["tokens"] == ["The", "old", "cat", "likes", "a", "house", "."]
    assert [(c["type"], c["text"]) for c in row["chunks"]] == [
        ("NP", "The  old cat"),
        ("VP", "likes"),
        ("NP", "a house"),
    ]
    assert all(text[c["char_start"] : c["char_end"]] == c["text"] for c in row["chunks"])
    assert main(["predict", str(cli_model), "--tokenized", "--json", "the dog sees a cat ."]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"][-1] == "."


def test_cli_predict_conll_appends_the_tag(cli_model, corpus, capsys, tmp_path):
    from grutext.train.chunk_metrics import score_conll_lines

    src = corpus["test"].read_text().splitlines()
    assert main(["predict", str(cli_model), "--file", str(corpus["test"]), "--format", "conll"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(src)
    for a, b in zip(src, out, strict=True):
        assert (a == b == "") or (b.startswith(a + " ") and len(b.split()) == len(a.split()) + 1)
    scores = score_conll_lines(out)  # conlleval's own input: ... gold predicted
    assert scores.f1 >= 0.97
    assert main(["evaluate", str(cli_model), str(corpus["test"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["f1"] == pytest.approx(scores.f1)


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


def test_cli_bad_inputs_are_one_line_errors(cli_model, corpus, capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("the X B-NP\ndog B-NP\n")
    assert "bad.txt line 2" in _error(capsys, ["train", str(bad), "--task", "tag", "--out", str(tmp_path / "x")])
    prefix = tmp_path / "prefix.txt"
    prefix.write_text("the X B-NP\ndog X L-NP\n")
    assert "L-NP" in _error(capsys, ["train", str(prefix), "--task", "tag", "--out", str(tmp_path / "x")])
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert "empty" in _error(capsys, ["train", str(empty), "--task", "tag", "--out", str(tmp_path / "x")])
    err = _error(capsys, ["train", str(corpus["train"]), "--task", "tag", "--decoder", "hmm"])
    assert "tag.decoder" in err and "crf" in err
    assert "add --task tag" in _error(capsys, ["train", str(corpus["train"]), "--decoder", "softmax"])
    assert "tag.char_dim" in _error(capsys, ["train", str(corpus["train"]), "--task", "tag", "--char-dim", "0"])
    assert "--file" in _error(capsys, ["predict", str(cli_model), "--format", "conll"])
    assert "not found" in _error(capsys, ["evaluate", str(cli_model), str(tmp_path / "nope.txt")])
