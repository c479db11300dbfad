"""Language-model settings and the decisions every LM stage shares, each written once.

- :class:`LMConfig`: the LM-only settings that `Config` does not have; saved in the model
  directory's ``config.json`` under ``"lm"``.
- :func:`resolve_add_eos`: whether each line of text ends with ``<eos>`` (word/BPE yes, char no).
- :data:`TIE_WEIGHTS`: the decoder shares the embedding matrix unless told otherwise.
- :func:`perplexity` with :data:`PERPLEXITY_CLAMP`: ``exp(nats)`` that never overflows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from grutext.config import Config
from grutext.errors import ConfigError

KIND = "language_model"  # the artifact kind stored in config.json
LN2 = math.log(2.0)
WORD_SPLITS = ("punct", "whitespace")
TIE_WEIGHTS = True  # the decoder shares the embedding matrix (Press & Wolf 2017) unless told otherwise
# exp() of more than ~709.78 overflows a float; 700 nats/token is far beyond any real loss, so below
# this the perplexity is exact, above it the report says "astronomically bad" without an OverflowError
PERPLEXITY_CLAMP = 700.0
# validation during training: at least this many parallel streams (AWD-LSTM's eval batch), more
# when the training batch is wider (scoring is forward-only, so the training batch always fits)
EVAL_STREAMS = 10


def resolve_add_eos(tokenizer_kind: str, add_eos: bool | None = None) -> bool:
    """Whether each line ends with ``<eos>``: `add_eos` when given, else yes for word/BPE and no
    for char (a char stream keeps the newlines as characters)."""
    return tokenizer_kind != "char" if add_eos is None else bool(add_eos)


def perplexity(nats: float) -> float:
    """``exp(nats)``, the exponent clamped at :data:`PERPLEXITY_CLAMP` so it never overflows."""
    return math.exp(min(nats, PERPLEXITY_CLAMP))


@dataclass
class LMConfig:
    """Language-model settings that `Config` does not have.

    Attributes:
        bptt: truncated-BPTT window length (tokens).
        vary_length: vary the window length per batch (AWD-LSTM).
        eval_batch_size: parallel streams when scoring validation during training (None: the
            training batch size, at least `EVAL_STREAMS`; see `eval_streams`). Each stream starts
            from a zero state, so its first tokens have less context than at batch 1 and the
            figure runs slightly above the batch-1 one; the test set is scored at batch 1.
        add_eos: end each line with ``<eos>`` (None: `resolve_add_eos`, yes for word/BPE, no for
            char, which keeps the newlines as characters).
        word_split: ``"punct"`` (punctuation marks are their own tokens) or ``"whitespace"``
            (already tokenised corpora such as PTB: split on whitespace only).
        tie_weights: decoder shares the embedding matrix.
        input_dropout: locked dropout on embeddings (None: model.dropout).
        layer_dropout: locked dropout between layers (None: model.dropout).
        weight_drop: DropConnect on W_hh.
        epoch_tokens: if set, one "epoch" of `fit` is about this many training tokens (windows
            continue where the last epoch stopped), so long corpora get frequent validation.
    """

    bptt: int = 70
    vary_length: bool = True
    eval_batch_size: int | None = None
    add_eos: bool | None = None
    word_split: str = "punct"
    tie_weights: bool = TIE_WEIGHTS
    input_dropout: float | None = None
    layer_dropout: float | None = None
    weight_drop: float = 0.0
    epoch_tokens: int | None = None

    def check(self) -> LMConfig:
        """Raise ConfigError naming every bad setting at once; return self."""
        problems = []
        for name in ("bptt", "eval_batch_size"):
            v = getattr(self, name)
            if name == "eval_batch_size" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.append(f"lm.{name}: expected an integer >= 1, got {v!r}")
        if self.word_split not in WORD_SPLITS:
            problems.append(f"lm.word_split: expected one of {list(WORD_SPLITS)}, got {self.word_split!r}")
        if self.epoch_tokens is not None and (not isinstance(self.epoch_tokens, int) or self.epoch_tokens < 1):
            problems.append(f"lm.epoch_tokens: expected None or an integer >= 1, got {self.epoch_tokens!r}")
        for name in ("input_dropout", "layer_dropout", "weight_drop"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1):
                problems.append(f"lm.{name}: expected a float in [0, 1), got {v!r}")
        if problems:
            raise ConfigError("; ".join(problems))
        return self

    def eval_streams(self, train_batch_size: int) -> int:
        """Parallel streams of validation during training: `eval_batch_size`, or when None the
        training batch size but at least `EVAL_STREAMS` (forward-only scoring is cheapest per
        token at the widest batch; PTB's validation then costs a few percent of an epoch)."""
        if self.eval_batch_size is not None:
            return self.eval_batch_size
        return max(EVAL_STREAMS, train_batch_size)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> LMConfig:
        """The settings saved under ``"lm"`` in a model directory's config.json (defaults when absent)."""
        raw = meta.get("lm") or {}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def lm_config(cfg: Config) -> Config:
    """Classifier defaults that make no sense for a language model, set right."""
    train = cfg.train
    if train.monitor != "val_loss":
        train = replace(train, monitor="val_loss")
    return replace(cfg, model=replace(cfg.model, bidirectional=False, task="auto", pooling="last"), train=train)


__all__ = [
    "EVAL_STREAMS",
    "KIND",
    "LN2",
    "LMConfig",
    "PERPLEXITY_CLAMP",
    "TIE_WEIGHTS",
    "WORD_SPLITS",
    "lm_config",
    "perplexity",
    "resolve_add_eos",
]
