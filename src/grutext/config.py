"""Run configuration: three plain dataclasses, loaded from TOML or JSON, validated at once.

A config file has up to three tables whose keys are the dataclass fields::

    [data]
    train = "data/train.csv"
    tokenizer = "word"

    [model]
    hidden_size = 128
    bidirectional = true

    [train]
    epochs = 5

`validate()` collects every problem and raises one `ConfigError` listing them all.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from grutext.config_help import FIELD_HELP  # one line of help per field (re-exported here)
from grutext.errors import ConfigError

# ---- allowed values: each list is written here once; the validation, the tokenizer, the batching
# and the CLI's choices read these names (nn.cells.CELLS / nn.pooling.POOLINGS must equal them: tested)
TOKENIZERS: tuple[str, ...] = ("word", "char", "bpe")
TRUNCATIONS: tuple[str, ...] = ("head", "tail", "head+tail")
TASKS: tuple[str, ...] = ("auto", "binary", "multiclass", "multilabel")
CELLS: tuple[str, ...] = ("gru", "lstm", "rnn", "mingru", "lngru")
POOLINGS: tuple[str, ...] = ("last", "mean", "max", "attention")
SCHEDULES: tuple[str, ...] = ("linear", "cosine", "constant", "plateau")
UNFREEZE: tuple[str, ...] = ("all", "gradual")
MONITORS: tuple[str, ...] = ("val_accuracy", "val_loss", "val_macro_f1", "val_chunk_f1")
WORD_SPLITS: tuple[str, ...] = ("punct", "whitespace")  # lm.word_split (grutext.lm.LMConfig)
TAG_SCHEMES: tuple[str, ...] = ("auto", "IOB1", "IOB2", "BIOES", "none")  # tag.scheme (tasks.tagging.config)
TAG_DECODERS: tuple[str, ...] = ("crf", "softmax")  # tag.decoder
CHAR_ENCODERS: tuple[str, ...] = ("gru", "cnn", "none")  # tag.char_encoder
# read by the tasks' own configs (tasks.language_model.config.LMConfig, tasks.tagging.config.TagConfig), not by Config
EXTRA_TABLES = ("lm", "tag")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")  # train.precision (grutext.train.precision)

CHOICES: dict[str, tuple[str, ...]] = {
    "data.tokenizer": TOKENIZERS,
    "data.truncation": TRUNCATIONS,
    "model.task": TASKS,
    "model.cell": CELLS,
    "model.pooling": POOLINGS,
    "train.schedule": SCHEDULES,
    "train.unfreeze": UNFREEZE,
    "train.monitor": MONITORS,
    "train.precision": PRECISIONS,
    "lm.word_split": WORD_SPLITS,
    "tag.scheme": TAG_SCHEMES,
    "tag.decoder": TAG_DECODERS,
    "tag.char_encoder": CHAR_ENCODERS,
}
"""The allowed values of every enumerated field, keyed ``"table.field"``."""


def blend_weight(setting: Any) -> float | None:
    """``model.blend`` as a weight: None for auto (picked on validation), 0.0 for off, the number in
    [0, 1] as given (a number or its text, as the command line gives it).

    Raises:
        ValueError: anything else (`Config.problems` reports it; `grutext.tasks.classification.blend`
            raises it as a ConfigError).
    """
    if setting == "auto":
        return None
    if setting == "off":
        return 0.0
    try:
        w = math.nan if isinstance(setting, bool) else float(setting)
    except (TypeError, ValueError):
        w = math.nan
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"model.blend must be auto, off or a number from 0 to 1; got {setting!r}")
    return w


DEFAULT_EPOCHS = 10  # train.epochs = 0 (auto) for language models and taggers
AUTO_STEPS, AUTO_EPOCHS = 3000, (10, 40)  # train.epochs = 0 for classifiers: passes for ~3,000 steps, 10 to 40


def resolve_epochs(epochs: int, steps_per_epoch: int | None = None) -> int:
    """``train.epochs`` as a number of passes: as given, or for 0 (auto) the passes that make about
    `AUTO_STEPS` optimizer steps of `steps_per_epoch` (within `AUTO_EPOCHS`), `DEFAULT_EPOCHS` without it.

    Small training sets get more passes (measured on the development suite, benchmarks/defaults.py: BBC
    News's 1,780 articles are 28 steps a pass, ten passes stopped its network while it still improved),
    large ones keep ten; early stopping ends a run sooner either way.
    """
    if epochs > 0:
        return epochs
    if not steps_per_epoch:
        return DEFAULT_EPOCHS
    lo, hi = AUTO_EPOCHS
    return max(lo, min(hi, -(-AUTO_STEPS // steps_per_epoch)))


# ---- the checked flags and numbers of [data], [model], [train], in the order `Config.problems` reports
# them: (path, lo, hi, flags). flags: "bool" (true or false; lo and hi unused), else a number >= lo
# (> lo with "open") and <= hi (None: no upper bound); "int" an integer, "optional" None allowed.
RULES: tuple[tuple[str, float | None, float | None, str], ...] = (
    ("data.lowercase", None, None, "bool"),
    ("data.strip_html", None, None, "bool"),
    ("data.split_contractions", None, None, "bool"),
    ("data.min_freq", 1, None, "int"),
    ("data.max_vocab", 5, None, "int optional"),
    ("data.bpe_vocab_size", 10, None, "int"),
    ("data.max_len", 1, None, "int"),
    ("data.valid_fraction", 0.0, 0.9, "open"),
    ("data.test_fraction", 0.0, 0.9, "open"),
    ("data.sentences", None, None, "bool"),
    ("data.sentence_min_words", 1, None, "int"),
    ("model.embed_dim", 1, None, "int"),
    ("model.hidden_size", 1, None, "int"),
    ("model.ensemble", 1, 64, "int"),
    ("model.num_layers", 1, 16, "int"),
    ("model.bidirectional", None, None, "bool"),
    ("model.freeze_embeddings", None, None, "bool"),
    ("model.keep_head", None, None, "bool"),
    ("model.dropout", 0.0, 0.95, ""),
    ("model.embed_dropout", 0.0, 0.95, ""),
    ("train.epochs", 0, None, "int"),  # 0 = auto
    ("train.batch_size", 1, None, "int"),
    ("train.lr", 0.0, 10.0, "open"),
    ("train.weight_decay", 0.0, None, ""),
    ("train.warmup", 0.0, 0.9, ""),
    ("train.plateau_factor", 0.0, 1.0, "open"),
    ("train.plateau_patience", 1, None, "int"),
    ("train.clip", 0.0, None, ""),
    ("train.ema", 0.0, 0.9999, ""),
    ("train.layer_lr_decay", 1.0, None, ""),
    ("train.patience", 0, None, "int"),
    ("train.seed", 0, None, "int"),
    ("train.threads", 1, None, "int optional"),
    ("train.max_minutes", 0.0, None, "open optional"),
    ("train.overwrite", None, None, "bool"),
    ("train.keep_checkpoint", None, None, "bool"),
    ("train.baseline", None, None, "bool"),
)
"""The range and type rules of the fields `CHOICES` does not cover (`Config.problems` checks them in this order)."""


def _rule_problem(path: str, value: Any, lo: float | None, hi: float | None, flags: str) -> str | None:
    """What is wrong with `value` under one `RULES` row (None: nothing)."""
    words = flags.split()
    if "bool" in words:
        return None if isinstance(value, bool) else f"{path} must be true or false; got {value!r}"
    if value is None and "optional" in words:
        return None
    integer, lo_open = "int" in words, "open" in words
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        return f"{path} must be {'an integer' if integer else 'a number'}; got {value!r}"
    assert lo is not None  # every number row has a lower bound
    bad_lo = value <= lo if lo_open else value < lo
    if bad_lo or (hi is not None and value > hi):
        rng = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
        return f"{path} must be {rng}; got {value!r}"
    return None


@dataclass
class DataConfig:
    """Where the text comes from and how it becomes ids.

    `train` is a file path, a folder (one sub-folder per class) or a named dataset: a row of
    the one table `grutext.data.named.NAMED` (`grutext.data.named.help_lines()` lists them).
    One line of help per field: `FIELD_HELP`; allowed values: `CHOICES`.
    """

    train: str | None = None
    valid: str | None = None
    test: str | None = None
    format: str | None = None
    text_col: str | None = None
    label_col: str | None = None
    tokenizer: str = "word"
    lowercase: bool = True
    strip_html: bool = True
    split_contractions: bool = True  # word tokenizer: "doesn't" -> "does n't" (Penn Treebank)
    min_freq: int = 2
    max_vocab: int | None = 30000
    bpe_vocab_size: int = 8000
    max_len: int = 400
    truncation: str = "head+tail"  # long texts keep their opening and their ending (Sun et al. 2019)
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    data_root: str | None = None
    # train on sentences: every split's texts become their sentences, each labelled as its text
    # (weak labels, e.g. a review's sentiment); splits are carved first, so no text is in two
    sentences: bool = False
    sentence_min_words: int = 4


@dataclass
class ModelConfig:
    """The network: embedding -> recurrent stack -> pooling -> head."""

    task: str = "auto"
    cell: str = "gru"
    embed_dim: int = 100
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    embed_dropout: float = 0.1
    pooling: str = "max"
    pretrained: str | None = "auto"  # GloVe 6B 50d when installed (measured: benchmarks/defaults.py), else random
    freeze_embeddings: bool = False
    init_from: str | None = None  # a model directory (language model or classifier) to start from
    keep_head: bool = True  # with init_from a classifier: keep its pooling (same kind) and head (same labels)
    ensemble: int = 1  # train this many networks (seeds seed, seed+1, ...) and average their probabilities
    blend: str | float = "auto"  # average with a TF-IDF n-gram model: auto (weight picked on validation), off, 0..1
    vocab_size: int = 0
    num_classes: int = 0


@dataclass
class TrainConfig:
    """The optimisation: AdamW, warm-up then decay, clipping, early stopping.

    ``schedule="plateau"`` keeps the learning rate constant after warm-up and multiplies it by
    ``plateau_factor`` each time the monitored validation value has not improved for
    ``plateau_patience`` epochs (as torch's ReduceLROnPlateau; the classic LM recipe).

    For fine-tuning a model started from another (``model.init_from``), ULMFiT's two devices
    (Howard & Ruder 2018): ``layer_lr_decay`` (discriminative learning rates: the head trains at
    ``lr``, the layer below at ``lr / layer_lr_decay``, the next at ``lr / layer_lr_decay**2``...,
    the embedding lowest; the paper uses 2.6) and ``unfreeze="gradual"`` (epoch 1 trains the head
    only, each later epoch unfreezes the next layer down, the embedding last).

    ``ema`` (0 = off, else a decay such as 0.99) keeps an exponential moving average of the
    weights, updated after every optimizer step (Polyak & Juditsky 1992); validation, early
    stopping and the saved model use the averaged weights. The decay ramps up as
    ``min(ema, (1 + n) / (10 + n))`` after n updates, as TensorFlow's ExponentialMovingAverage.
    """

    epochs: int = 0  # 0 = auto: classifiers about AUTO_STEPS optimizer steps (10 to 40 passes), other tasks 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.05
    schedule: str = "linear"  # linear | cosine | constant | plateau (decay when the monitor stalls)
    plateau_factor: float = 0.25
    plateau_patience: int = 1
    clip: float = 1.0
    ema: float = 0.0  # decay of an exponential moving average of the weights, used for validation and saving
    layer_lr_decay: float = 1.0  # discriminative fine-tuning: each layer below the head at lr / decay^depth
    unfreeze: str = "all"  # all | gradual (the head first, then one more layer each epoch, top down)
    patience: int = 3
    monitor: str = "val_accuracy"
    seed: int = 0
    threads: int | None = None
    max_minutes: float | None = None
    device: str = "auto"
    out: str | None = None
    overwrite: bool = False  # replace an existing grutext model directory at `out`
    keep_checkpoint: bool = False  # keep OUT.ckpt/ after a successful run (for a later --resume)
    baseline: bool = True  # classifiers: also fit TF-IDF + logistic regression on the same split and report it
    precision: str = "auto"  # auto (bf16 autocast on CUDA with bf16, else fp32) | fp32 | bf16


@dataclass
class Config:
    """The whole run: `data`, `model`, `train`."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> Config:
        """Build from nested dicts; unknown tables and keys are reported together."""
        problems: list[str] = []
        sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
        built: dict[str, Any] = {}
        for name in raw:
            if name not in sections and name not in EXTRA_TABLES:
                problems.append(_unknown(source, name, list(sections) + list(EXTRA_TABLES), what="table"))
        for name, klass in sections.items():
            table = raw.get(name, {}) or {}
            if not isinstance(table, dict):
                problems.append(f"{source}: [{name}] must be a table, got {type(table).__name__}")
                table = {}
            known = {f.name for f in fields(klass)}
            good = {}
            for key, value in table.items():
                if key not in known:
                    problems.append(_unknown(source, f"{name}.{key}", [f"{name}.{k}" for k in known]))
                else:
                    good[key] = value
            built[name] = klass(**good)
        cfg = cls(**built)
        problems.extend(cfg.problems(source))
        if problems:
            raise ConfigError(_join(problems))
        return cfg

    def problems(self, source: str = "config") -> list[str]:
        """Every problem found, one string each (empty when valid): `CHOICES`, then `RULES`, then the paths."""
        out: list[str] = []
        sections = {"data": self.data, "model": self.model, "train": self.train}
        for path, options in CHOICES.items():  # every enumerated field of [data], [model], [train]
            table, _, name = path.partition(".")
            if table in sections and (value := getattr(sections[table], name)) not in options:
                out.append(f"{source}: {path} must be one of {', '.join(options)}; got {value!r}")
        for path, lo, hi, flags in RULES:
            table, _, name = path.partition(".")
            problem = _rule_problem(path, getattr(sections[table], name), lo, hi, flags)
            if problem is not None:
                out.append(f"{source}: {problem}")
        t, m = self.train, self.model
        try:
            blend_weight(m.blend)
        except ValueError as exc:
            out.append(f"{source}: {exc}")
        if t.out is not None and not isinstance(t.out, str):
            out.append(f"{source}: train.out must be a folder path; got {t.out!r}")
        if t.device not in ("auto", "cpu") and not str(t.device).startswith("cuda"):
            out.append(f"{source}: train.device must be auto, cpu or cuda[:N]; got {t.device!r}")
        if m.init_from is not None and not isinstance(m.init_from, str):
            out.append(f"{source}: model.init_from must be a model directory path; got {m.init_from!r}")
        return out

    def validate(self, source: str = "config") -> Config:
        problems = self.problems(source)
        if problems:
            raise ConfigError(_join(problems))
        return self


def choices_for(key: str) -> tuple[str, ...] | None:
    """The allowed values of field `key` (``"data.tokenizer"``), or None when it is not enumerated."""
    return CHOICES.get(key)


def help_for(key: str) -> str:
    """The one-line help of field `key` (``"train.threads"``), with its choices when it has some.

    Raises:
        KeyError: `key` is no field (its message names the closest one).
    """
    if key not in FIELD_HELP:
        close = difflib.get_close_matches(key, list(FIELD_HELP), n=1)
        raise KeyError(f"{key!r}: no such config field" + (f"; did you mean {close[0]!r}?" if close else ""))
    options = CHOICES.get(key)
    return FIELD_HELP[key] + (f" (choices: {', '.join(options)})" if options else "")


def _unknown(source: str, key: str, known: list[str], what: str = "key") -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{source}: unknown {what} {key!r}{hint}"


def _join(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems: " + "; ".join(problems)


def read_config_tables(path: str | Path) -> dict[str, Any]:
    """The raw tables of a TOML/JSON config file (ConfigError if it is missing or unparsable)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            import tomllib

            raw = tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{p}: not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected tables [data], [model], [train]; got {type(raw).__name__}")
    return raw


def load_config(path: str | Path) -> Config:
    """Read a TOML (`.toml`) or JSON (`.json`) config file.

    Args:
        path: the file.

    Returns:
        A validated `Config`.

    Raises:
        ConfigError: file missing, unparsable, unknown keys or bad values (all listed at once).
    """
    return Config.from_dict(read_config_tables(path), source=str(Path(path)))


__all__ = [
    "Config",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "blend_weight",
    "resolve_epochs",
    "load_config",
    "read_config_tables",
    "CHOICES",
    "FIELD_HELP",
    "choices_for",
    "help_for",
]
