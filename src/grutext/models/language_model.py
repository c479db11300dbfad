"""Deprecated: moved to `grutext.tasks.language_model.model`; this re-export goes in a later release."""

from grutext.tasks.language_model.model import (
    LM_ARCH_KEYS,
    LanguageModel,
    StackedEncoder,
    State,
    build_language_model,
    detach_state,
    embedding_dropout,
    locked_dropout,
    select_state,
    unigram_perplexity,
)

__all__ = [
    "LM_ARCH_KEYS",
    "LanguageModel",
    "StackedEncoder",
    "State",
    "build_language_model",
    "detach_state",
    "embedding_dropout",
    "locked_dropout",
    "select_state",
    "unigram_perplexity",
]
