import pytest

from grutext.config import Config, load_config
from grutext.errors import ConfigError


def test_toml_round_trip(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text(
        '[data]\ntrain = "x.csv"\nmax_len = 50\n[model]\nhidden_size = 32\nbidirectional = false\n'
        "[train]\nepochs = 3\nlr = 0.01\n"
    )
    cfg = load_config(p)
    assert cfg.data.max_len == 50 and cfg.model.hidden_size == 32 and cfg.model.bidirectional is False
    assert cfg.train.epochs == 3 and cfg.train.lr == 0.01
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_json_config(tmp_path):
    p = tmp_path / "run.json"
    p.write_text('{"model": {"cell": "lstm"}}')
    assert load_config(p).model.cell == "lstm"


def test_every_problem_reported_at_once(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[model]\nhiden_size = 3\npooling = "avg"\n[train]\nepochs = 0\n[trian]\nx = 1\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "\n" not in msg
    assert "4 problems" in msg  # all four at once, counted
    assert "model.hiden_size" in msg and "did you mean 'model.hidden_size'" in msg
    assert "model.pooling" in msg and "'avg'" in msg
    assert "train.epochs" in msg
    assert "'trian'" in msg and str(p) in msg


def test_bad_toml_syntax(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text("[model\nhidden_size = ")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_config(p)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
