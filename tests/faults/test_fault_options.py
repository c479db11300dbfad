"""Options that cannot apply are errors naming the task or the option (never silently ignored), and
output folders that must not be written are refused before training; nothing in the working folder
changes."""

from __future__ import annotations

import pytest
from tests.faults.conftest import CLF_FLAGS
from tests.faults.util import fails, run, snapshot

LM_MISUSE = [
    (["--bidirectional"], "--bidirectional: does not apply to --task lm (language model)"),
    (["--no-bidirectional"], "--no-bidirectional: does not apply to --task lm"),
    (["--ensemble", "2"], "--ensemble: does not apply to --task lm"),
    (["--pooling", "mean"], "--pooling: does not apply to --task lm"),
    (["--label-col", "label"], "--label-col: does not apply to --task lm"),
    (["--init-from", "somewhere"], "--init-from: does not apply to --task lm"),
    (["--decoder", "softmax"], "--decoder: a tagger option; add --task tag"),
]


@pytest.mark.parametrize("extra,needle", LM_MISUSE, ids=[m[0][0] for m in LM_MISUSE])
def test_language_model_refuses_classifier_options(data_dir, tmp_path, capsys, extra, needle):
    before = snapshot(tmp_path)
    argv = ["train", "--task", "lm", data_dir / "lm.txt", "--out", tmp_path / "lm", "--epochs", "1", *extra]
    fails(capsys, argv, needle, code=2)
    assert snapshot(tmp_path) == before  # refused before anything was written


TAG_MISUSE = [
    (["--pooling", "mean"], "--pooling: does not apply to --task tag (tagger)"),
    (["--ensemble", "3"], "--ensemble: does not apply to --task tag"),
    (["--no-bidirectional"], "--no-bidirectional: does not apply to --task tag"),
    (["--bptt", "20"], "--bptt: a language-model option; add --task lm"),
]


@pytest.mark.parametrize("extra,needle", TAG_MISUSE, ids=[m[0][0] for m in TAG_MISUSE])
def test_tagger_refuses_options_it_does_not_read(tmp_path, capsys, extra, needle):
    conll = tmp_path / "train.conll"
    conll.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nsaw O\n", encoding="utf-8")
    before = snapshot(tmp_path)
    fails(capsys, ["train", "--task", "tag", conll, "--out", tmp_path / "tagger", *extra], needle, code=2)
    assert snapshot(tmp_path) == before


CLF_MISUSE = [
    (["--decoder", "softmax"], "--decoder: a tagger option; add --task tag"),
    (["--char-encoder", "cnn"], "--char-encoder: a tagger option; add --task tag"),
    (["--bptt", "35"], "--bptt: a language-model option; add --task lm"),
    (["--weight-drop", "0.2"], "--weight-drop: a language-model option; add --task lm"),
]


@pytest.mark.parametrize("extra,needle", CLF_MISUSE, ids=[m[0][0] for m in CLF_MISUSE])
def test_classifier_refuses_other_tasks_options(data_dir, tmp_path, capsys, extra, needle):
    before = snapshot(tmp_path)
    fails(capsys, ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS, *extra], needle, code=2)
    assert snapshot(tmp_path) == before


GENERATE_MISUSE = [
    (["--beam", "0"], "--beam 0: expected a beam width >= 1"),
    (["--beam", "-2"], "--beam -2: expected a beam width >= 1"),
    (["--n-best", "2"], "--n-best: applies to beam search only"),
    (["--beam", "2", "--temperature", "0.5"], "--temperature: a sampling option; beam search"),
    (["--beam", "2", "--top-k", "3"], "--top-k: a sampling option"),
    (["--beam", "2", "--seed", "1"], "--seed: a sampling option"),
]


@pytest.mark.parametrize("extra,needle", GENERATE_MISUSE, ids=["-".join(m[0]) for m in GENERATE_MISUSE])
def test_generate_refuses_options_that_cannot_apply(lm, capsys, extra, needle):
    fails(capsys, ["generate", lm, "--prompt", "the cat", *extra], needle, code=2)


def test_beam_of_one_or_more_still_works(lm, capsys):
    r = run(capsys, "generate", lm, "--prompt", "the cat", "--beam", "2", "--max-tokens", "3")
    assert r.code == 0 and len(r.out.strip().splitlines()) == 2


WRONG_TASK = [
    (lambda clf, lm: ["generate", clf, "--prompt", "a"], "language model"),
    (lambda clf, lm: ["next-word", clf, "--prompt", "a"], "language model"),
    (lambda clf, lm: ["trace", lm, "the cat"], "language model"),
    (lambda clf, lm: ["summary", clf, "--member", "1"], "not an ensemble"),
    (lambda clf, lm: ["explain", clf, "a film", "--member", "0"], "not an ensemble"),
]


@pytest.mark.parametrize("case", range(len(WRONG_TASK)))
def test_commands_on_a_folder_of_the_wrong_task(clf, lm, capsys, case):
    argv, needle = WRONG_TASK[case]
    fails(capsys, argv(clf, lm), needle, code=2)


def test_out_dot_is_refused(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    fails(capsys, ["train", data_dir / "train.csv", "--out", ".", *CLF_FLAGS], "got the current folder", code=2)
    assert snapshot(tmp_path) == before


def test_out_file_is_refused(data_dir, tmp_path, capsys):
    (tmp_path / "model").write_text("my file")
    before = snapshot(tmp_path)
    argv = ["train", data_dir / "train.csv", "--out", tmp_path / "model", *CLF_FLAGS]
    fails(capsys, argv, "is an existing file", code=2)
    assert snapshot(tmp_path) == before


def test_out_user_folder_is_refused(data_dir, tmp_path, capsys):
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "notes.md").write_text("notes")
    (project / "sub" / "data.csv").write_text("text,label\n")
    before = snapshot(tmp_path)
    argv = ["train", data_dir / "train.csv", "--out", project, *CLF_FLAGS]
    fails(capsys, argv, "not a grutext model directory", "notes.md", code=2)
    assert snapshot(tmp_path) == before


def test_existing_model_needs_overwrite(clf, data_dir, tmp_path, capsys):
    import shutil

    shutil.copytree(clf, tmp_path / "model")
    before = snapshot(tmp_path)
    argv = ["train", data_dir / "train.csv", "--out", tmp_path / "model", *CLF_FLAGS]
    fails(capsys, argv, "--overwrite", code=2)
    assert snapshot(tmp_path) == before


def test_device_cuda_without_cuda_is_one_line(data_dir, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = ["train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS, "--device", "cuda"]
    fails(capsys, argv, "train.device='cuda'", code=2)
    assert not (tmp_path / "m").exists()


def test_debug_shows_the_traceback(lm):
    from grutext.cli import main
    from grutext.errors import ConfigError

    with pytest.raises(ConfigError, match="--beam 0"):
        main(["--debug", "generate", str(lm), "--prompt", "a", "--beam", "0"])


def test_split_applies_to_named_datasets_only(clf, data_dir, capsys):
    fails(capsys, ["evaluate", clf, data_dir / "test.csv", "--split", "dev"], "--split dev", "named dataset", code=2)
    r = run(capsys, "evaluate", clf, data_dir / "test.csv", "--json")
    assert r.code == 0


def test_text_col_without_file_is_an_error(clf, capsys):
    fails(capsys, ["predict", clf, "a film", "--text-col", "review"], "--text-col review: applies to --file", code=2)


CONFIG_MISUSE = [
    ("[model]\nbidirectional = true\n", "[model] bidirectional does not apply to --task lm (language model)"),
    ("[model]\nensemble = 2\n", "[model] ensemble does not apply to --task lm"),
    ('[data]\nlabel_col = "label"\n', "[data] label_col does not apply to --task lm"),
]


@pytest.mark.parametrize("table,needle", CONFIG_MISUSE, ids=["bidirectional", "ensemble", "label_col"])
def test_a_config_file_cannot_set_what_the_task_ignores(data_dir, tmp_path, capsys, table, needle):
    """The same rule for keys read from --config FILE as for flags: an LM refuses classifier settings."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(table, encoding="utf-8")
    before = snapshot(tmp_path)
    argv = ["train", "--task", "lm", data_dir / "lm.txt", "--config", cfg, "--out", tmp_path / "lm", "--epochs", "1"]
    fails(capsys, argv, needle, code=2)
    assert snapshot(tmp_path) == before
