"""`grutext tune`: budget parsing, the search on the validation split only, resuming an interrupted
study (trial numbers continue), the leaderboard, best.toml that `grutext train --config` takes, the plot."""

from __future__ import annotations

import json

import pytest
import torch
from tests.conftest import synthetic, write_csv

from grutext.cli import main
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.errors import ConfigError

pytest.importorskip("optuna")

# everything but dropout, lr and pooling fixed: small and fast
FIXED = {
    "model.cell", "model.hidden_size", "model.num_layers", "model.bidirectional", "model.pretrained",
    "train.ema", "train.weight_decay", "model.embed_dropout",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_budget_parsing():
    from grutext.tune import parse_budget

    assert parse_budget("90s") == 90 and parse_budget("30m") == 1800 and parse_budget("1h") == 3600
    assert parse_budget("1h30m") == 5400 and parse_budget("0.5m") == 30
    for bad in ("30", "abc", "0s", "30 minutes", "m", "-5m"):
        with pytest.raises(ConfigError, match="--budget"):
            parse_budget(bad)


def _base(tmp_path):
    train = write_csv(tmp_path / "tr.csv", *synthetic(120, seed=1))
    test = write_csv(tmp_path / "te.csv", *synthetic(40, seed=2))
    return Config(
        DataConfig(train=str(train), test=str(test), min_freq=1),
        ModelConfig(embed_dim=8, hidden_size=6, bidirectional=False),
        TrainConfig(epochs=2, batch_size=32, seed=3),
    ), test


def test_an_interrupted_study_resumes_and_never_sees_the_test_split(tmp_path, monkeypatch, capsys):
    import optuna

    import grutext.tune as tuning

    base, test_file = _base(tmp_path)
    test_texts = set(synthetic(40, seed=2)[0])
    seen: list = []
    real = tuning.run_trial

    def spy(cfg, splits, report):
        seen.append(splits)
        return real(cfg, splits, report)

    monkeypatch.setattr(tuning, "run_trial", spy)
    out = tmp_path / "tune"
    first = tuning.tune(base, out, trials=1, fixed=FIXED, train_best=False)
    assert first["trials"] == 1 and first["best_trial"] == 0
    printed = capsys.readouterr().out
    assert "trial 0: complete" in printed and "leaderboard (1 complete, 0 pruned):" in printed
    assert "  1. trial   0  valid acc" in printed

    def interrupted(cfg, splits, report):
        raise KeyboardInterrupt

    monkeypatch.setattr(tuning, "run_trial", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tuning.tune(base, out, trials=5, fixed=FIXED, train_best=False)

    monkeypatch.setattr(tuning, "run_trial", spy)
    again = tuning.tune(base, out, trials=2, fixed=FIXED, train_best=True)
    printed = capsys.readouterr().out
    assert "resuming" in printed and "at trial 2" in printed
    study = optuna.load_study(study_name=tuning.STUDY_NAME, storage=f"sqlite:///{out / 'study.db'}")
    numbers = [(t.number, t.state.name) for t in study.trials]
    assert numbers == [(0, "COMPLETE"), (1, "FAIL"), (2, "COMPLETE")]
    assert again["trials"] == 3
    # trial 0 was the defaults (the base config's values of the searched settings)
    assert study.trials[0].params == {"model.pooling": "max", "model.dropout": 0.3, "train.lr": 2e-3}
    # the search saw train and valid only; the final model (after the search) saw the test split
    assert len(seen) == 2 and all(s.test is None for s in seen)
    assert all(not (set(s.train.texts) | set(s.valid.texts)) & test_texts for s in seen)
    assert "the test split's first use" in printed
    final = json.loads((out / "best-model" / "metrics.json").read_text())
    assert final["test"]["n"] == 40 and final["baseline"]["test"]["n"] == 40
    assert (out / "search.png").stat().st_size > 1000 and "data:image/png;base64" in (out / "report.html").read_text()

    # best.toml is a config `grutext train --config` takes, and it trains the best settings
    toml = (out / "best.toml").read_text()
    assert f"seed = {base.train.seed}" in toml and "[model]" in toml
    from grutext.config import load_config

    best = load_config(out / "best.toml")
    assert best.model.pooling == study.best_params["model.pooling"]
    assert best.train.lr == study.best_params["train.lr"]
    again_out = tmp_path / "from-toml"
    assert main(["train", "--config", str(out / "best.toml"), "--out", str(again_out), "--no-baseline"]) == 0
    assert json.loads((again_out / "metrics.json").read_text())["valid"]["accuracy"] == pytest.approx(
        study.best_value, abs=1e-12
    )


def test_cli_errors(tmp_path, capsys):
    data = write_csv(tmp_path / "tr.csv", *synthetic(60, seed=1))
    assert main(["tune", str(data), "--out", str(tmp_path / "t")]) == 2
    assert "give --budget (e.g. 30m) or --trials N" in capsys.readouterr().err
    assert main(["tune", str(data), "--out", str(tmp_path / "t"), "--budget", "soon"]) == 2
    assert "--budget: expected a duration such as 90s" in capsys.readouterr().err
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert main(["tune", str(data), "--out", str(other), "--trials", "1"]) == 2
    assert "a folder with files and no study.db" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "keep me" and sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_flags_given_are_fixed_and_the_space_is_the_rest(tmp_path):
    from grutext.cli.main import build_parser
    from grutext.cli.tune import fixed_fields
    from grutext.tune import SPACE, space

    args = build_parser(["tune"]).parse_args(["tune", "x.csv", "--out", "d", "--cell", "lstm", "--epochs", "3"])
    fixed = fixed_fields(args)
    assert {"model.cell", "train.epochs"} <= fixed
    searched = space(fixed)
    assert "model.cell" not in searched and "train.lr" in searched and set(searched) <= set(SPACE)


def test_defaults_trial_cut_short_runs_again_on_resume(tmp_path, monkeypatch, capsys):
    """Killed during trial 0 (the defaults), the resumed study runs the defaults again before searching."""
    import optuna

    import grutext.tune as tuning

    base, _ = _base(tmp_path)
    real = tuning.run_trial

    def interrupted(cfg, splits, report):
        raise KeyboardInterrupt

    out = tmp_path / "tune"
    monkeypatch.setattr(tuning, "run_trial", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tuning.tune(base, out, trials=3, fixed=FIXED, train_best=False)
    monkeypatch.setattr(tuning, "run_trial", real)
    tuning.tune(base, out, trials=2, fixed=FIXED, train_best=False)
    assert "the defaults' trial did not finish before; it runs again first" in capsys.readouterr().out
    study = optuna.load_study(study_name=tuning.STUDY_NAME, storage=f"sqlite:///{out / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE", "COMPLETE"]  # --trials counts finished ones
    assert study.trials[1].params == {"model.pooling": "max", "model.dropout": 0.3, "train.lr": 2e-3}
    # a third run finds the defaults done and does not run them again
    tuning.tune(base, out, trials=3, fixed=FIXED, train_best=False)
    assert "runs again" not in capsys.readouterr().out
