"""Tagging settings and the decisions every tagging stage shares, each written once.

- :class:`TagConfig`: the tagger's own settings (columns, scheme, decoder, character encoder);
  saved in the model directory's ``config.json`` under ``"tag"`` with the learnt vocabularies.
- :data:`TRAIN_SCHEME`: chunk tags are trained in BIOES (scores are reported in the file's scheme).
- :func:`case_id`: the case feature that goes with the lower-cased word lookup.
- :func:`tagger_config`: the shared settings that mean something else for a tagger, set right
  (the monitor: validation chunk F1 for chunk tags, token accuracy for plain labels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from grutext.config import CHOICES, Config
from grutext.data.tag_words import CASES, MAX_WORD_CHARS, case_id  # written once, shared with the runtime
from grutext.errors import ConfigError

KIND = "tagger"  # the artifact kind stored in config.json
SECTION = "tag"  # the config-file table, the flags' dest prefix and the config.json section
TRAIN_SCHEME = "BIOES"  # chunk tags are learnt in BIOES (Ratinov & Roth 2009); reported in the file's scheme
NO_SCHEME = "none"  # plain labels (POS): no chunks, no conversion, no transition constraints
CHUNK_MONITOR = "val_chunk_f1"  # validation chunk F1 (conlleval) picks the best epoch for chunk tags
LABEL_MONITOR = "val_accuracy"  # ... and token accuracy for plain labels


def column(value: Any) -> int | str:
    """A column given as text (``"-1"``, ``"pos"``): an index when it reads as an integer, else a name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        return text


@dataclass
class TagConfig:
    """Tagger settings that `Config` does not have.

    Attributes:
        tag_col: column holding the tags (index, negative from the end, or a name; JSONL: a key).
        token_col: column holding the tokens.
        feature_col: optional column fed as an extra embedding (POS); None = no feature.
        scheme: the file's tag scheme: auto (detected; POS-like tags read as plain labels), IOB1,
            IOB2, BIOES, or none (plain labels).
        decoder: ``"crf"`` (linear-chain CRF, constrained Viterbi) or ``"softmax"`` (per token).
        char_encoder: ``"gru"`` (a BiGRU over each word's characters), ``"cnn"`` (a convolution
            with max pooling) or ``"none"``.
        char_dim: size of the character embedding.
        char_hidden: the character encoder's units per direction (the CNN has twice as many filters).
        case_dim: size of the case-feature embedding.
        feature_dim: size of the feature-column embedding.
    """

    tag_col: int | str = -1
    token_col: int | str = 0
    feature_col: int | str | None = None
    scheme: str = "auto"
    decoder: str = "crf"
    char_encoder: str = "gru"
    char_dim: int = 25
    char_hidden: int = 25
    case_dim: int = 8
    feature_dim: int = 20

    def check(self) -> TagConfig:
        """Raise ConfigError naming every bad setting at once; return self (columns read as int/name)."""
        problems = []
        for name in ("scheme", "decoder", "char_encoder"):
            options = CHOICES[f"{SECTION}.{name}"]
            if getattr(self, name) not in options:
                problems.append(f"tag.{name}: expected one of {list(options)}, got {getattr(self, name)!r}")
        for name in ("char_dim", "char_hidden", "case_dim", "feature_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.append(f"tag.{name}: expected an integer >= 1, got {v!r}")
        if problems:
            raise ConfigError("; ".join(problems))
        self.tag_col, self.token_col = column(self.tag_col), column(self.token_col)
        if self.feature_col is not None:
            self.feature_col = column(self.feature_col)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> TagConfig:
        """The settings saved under ``"tag"`` in a model directory's config.json (defaults when absent)."""
        raw = meta.get(SECTION) or {}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


# shared settings the tagger does not read: set to anything but the default, they are an error, not ignored
# (the tagger's tokens are the file's words, its recurrent stack is always bidirectional, dropout is model.dropout)
NOT_FOR_TAGGERS: dict[str, tuple[str, ...]] = {
    "data": ("tokenizer", "bpe_vocab_size", "max_len", "truncation", "text_col", "label_col", "sentences"),
    "model": ("bidirectional", "embed_dropout", "pooling", "init_from", "ensemble", "blend"),
}


def monitor_for(cfg: Config, scheme: str) -> str:
    """The validation figure that picks the best epoch: chunk F1 for chunk tags, token accuracy for plain
    labels; ``val_loss`` when asked for."""
    if cfg.train.monitor == "val_loss":
        return "val_loss"
    return LABEL_MONITOR if scheme == NO_SCHEME else CHUNK_MONITOR


def tagger_config(cfg: Config, scheme: str) -> Config:
    """Shared settings that make no sense for a tagger, set right: word tokens, the monitor of `monitor_for`.

    Raises:
        ConfigError: a classifier/language-model setting changed from its default.
    """
    defaults = Config()
    for table, names in NOT_FOR_TAGGERS.items():
        for name in names:
            value, default = getattr(getattr(cfg, table), name), getattr(getattr(defaults, table), name)
            if value != default:
                raise ConfigError(
                    f"{table}.{name}: not used by the tagger (a classifier/language-model setting); got {value!r}, "
                    f"leave it at {default!r}"
                )
    train = replace(cfg.train, monitor=monitor_for(cfg, scheme))
    return replace(cfg, data=replace(cfg.data, tokenizer="word"), model=replace(cfg.model, task="auto"), train=train)


__all__ = [
    "CASES",
    "CHUNK_MONITOR",
    "KIND",
    "LABEL_MONITOR",
    "MAX_WORD_CHARS",
    "NOT_FOR_TAGGERS",
    "NO_SCHEME",
    "SECTION",
    "TRAIN_SCHEME",
    "TagConfig",
    "case_id",
    "column",
    "monitor_for",
    "tagger_config",
]
