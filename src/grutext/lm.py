"""Deprecated: the language-model pipeline moved to `grutext.tasks.language_model` (``config``,
``data``, ``model``, ``train``, ``evaluate``, ``predict``); these re-exports go in a later release.
The ``generate`` / ``next-word`` commands live in `grutext.tasks.language_model.cli`.
"""

from __future__ import annotations

from grutext.tasks.language_model.config import LN2, WORD_SPLITS, LMConfig
from grutext.tasks.language_model.config import lm_config as _lm_config
from grutext.tasks.language_model.data import (
    NAMED_CORPORA,
    PLAIN_SUFFIXES,
    LMBatches,
    _is_plain,
    build_lm_tokenizer,
    encode_stream,
    expand_paths,
    named_corpus,
    named_corpus_splits,
    read_corpus,
)
from grutext.tasks.language_model.evaluate import (
    LanguageModelTask,
    _metrics,
    _state_batch,
    evaluate_language_model,
    format_scores,
    score_stream,
    stream_loss,
)
from grutext.tasks.language_model.predict import check_language_model, lm_settings
from grutext.tasks.language_model.train import TrainedLanguageModel, save_language_model, train_language_model

__all__ = [
    "LN2",
    "NAMED_CORPORA",
    "PLAIN_SUFFIXES",
    "WORD_SPLITS",
    "LMConfig",
    "LMBatches",
    "LanguageModelTask",
    "TrainedLanguageModel",
    "_is_plain",
    "_lm_config",
    "_metrics",
    "_state_batch",
    "read_corpus",
    "expand_paths",
    "named_corpus",
    "named_corpus_splits",
    "build_lm_tokenizer",
    "encode_stream",
    "train_language_model",
    "save_language_model",
    "score_stream",
    "format_scores",
    "evaluate_language_model",
    "check_language_model",
    "lm_settings",
    "stream_loss",
]
