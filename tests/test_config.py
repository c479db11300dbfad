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
    p.write_text('[model]\nhiden_size = 3\npooling = "avg"\n[train]\nepochs = -1\n[trian]\nx = 1\n')
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


# ---- the one table of allowed values (CHOICES) and of field help (FIELD_HELP)


def _all_fields():
    from dataclasses import fields

    from grutext.config import DataConfig, ModelConfig, TrainConfig
    from grutext.lm import LMConfig
    from grutext.tasks.tagging.config import TagConfig

    tables = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "lm": LMConfig, "tag": TagConfig}
    return {f"{t}.{f.name}": f for t, klass in tables.items() for f in fields(klass)}


def test_field_help_covers_every_field_once():
    from grutext.config import FIELD_HELP

    assert set(FIELD_HELP) == set(_all_fields())
    for key, text in FIELD_HELP.items():
        assert text and "\n" not in text and len(text) < 160, key


def test_field_help_says_what_a_none_default_does():
    from grutext.config import FIELD_HELP

    for key, f in _all_fields().items():
        if f.default is None:
            assert "None =" in FIELD_HELP[key], f"{key}: default None, but its help does not say what None does"


def test_choices_are_the_validated_values():
    from dataclasses import replace

    from grutext.config import CHOICES, Config
    from grutext.lm import LMConfig
    from grutext.tasks.tagging.config import TagConfig

    own_check = {"lm": LMConfig, "tag": TagConfig}  # the tasks' own tables check themselves
    all_fields = _all_fields()
    cfg = Config()
    for key, options in CHOICES.items():
        assert key in all_fields, key
        assert all_fields[key].default in options, key  # the default is allowed
        table, _, name = key.partition(".")
        if table in own_check:
            with pytest.raises(ConfigError, match=name):
                own_check[table](**{name: "nope"}).check()
            for value in options:
                own_check[table](**{name: value}).check()
            continue
        for value in options:
            assert Config(**{table: replace(getattr(cfg, table), **{name: value})}).problems() == []
        bad = Config(**{table: replace(getattr(cfg, table), **{name: "nope"})}).problems()
        assert len(bad) == 1 and key in bad[0] and ", ".join(options) in bad[0]


def test_rules_name_fields_and_pass_the_defaults():
    """Each `RULES` row names a [data]/[model]/[train] field once, and the defaults satisfy every row."""
    from grutext.config import RULES, Config

    paths = [row[0] for row in RULES]
    all_fields = _all_fields()
    assert len(paths) == len(set(paths))
    for path, lo, _hi, flags in RULES:
        assert path in all_fields and path.split(".")[0] in ("data", "model", "train"), path
        assert set(flags.split()) <= {"bool", "int", "open", "optional"}, path
        assert ("bool" in flags.split()) == (lo is None), path
    assert Config().problems() == []


def test_choices_written_once():
    """The layers that check the same values use the config's tuples (or equal ones, for nn/)."""
    from grutext import config, lm
    from grutext.data import batching, tokenizers
    from grutext.nn import cells, pooling

    assert tokenizers.KINDS is config.TOKENIZERS and batching.POLICIES is config.TRUNCATIONS
    assert cells.CELLS == config.CELLS and pooling.POOLINGS == config.POOLINGS
    assert lm.WORD_SPLITS == config.WORD_SPLITS


def test_help_for_and_choices_for():
    from grutext.config import choices_for, help_for

    assert choices_for("model.cell") == ("gru", "lstm", "rnn", "mingru", "lngru")
    assert choices_for("model.hidden_size") is None
    assert help_for("model.pooling").endswith("(choices: last, mean, max, attention)")
    assert "None = torch's default" in help_for("train.threads") and "choices" not in help_for("train.threads")
    with pytest.raises(KeyError, match="did you mean 'train.threads'"):
        help_for("train.thread")


def test_auto_epochs_scale_with_steps_per_pass():
    from grutext.config import AUTO_EPOCHS, AUTO_STEPS, DEFAULT_EPOCHS, TrainConfig, resolve_epochs

    assert TrainConfig().epochs == 0  # auto is the default
    assert resolve_epochs(7, 5) == 7  # a number given is kept
    assert resolve_epochs(0) == DEFAULT_EPOCHS  # no pass length known (other tasks): ten
    assert resolve_epochs(0, 28) == AUTO_EPOCHS[1]  # BBC News: 28 steps a pass -> the cap, 40
    assert resolve_epochs(0, 100) == AUTO_STEPS // 100 == 30
    assert resolve_epochs(0, 352) == AUTO_EPOCHS[0]  # IMDB: 352 steps -> the floor, 10
