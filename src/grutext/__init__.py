"""grutext: raw text to a trained, explained and deployable GRU model.

The public API is re-exported here; heavy pieces load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from grutext.version import __version__

_EXPORTS = {
    "Config": "grutext.config",
    "DataConfig": "grutext.config",
    "ModelConfig": "grutext.config",
    "TrainConfig": "grutext.config",
    "load_config": "grutext.config",
    "GrutextError": "grutext.errors",
    "DataError": "grutext.errors",
    "ConfigError": "grutext.errors",
    "ArtifactError": "grutext.errors",
    "NotFittedError": "grutext.errors",
    "TextDataset": "grutext.data.readers",
    "read_dataset": "grutext.data.readers",
    "load_named": "grutext.data.readers",
    "Tokenizer": "grutext.data.tokenizers",
    "GRU": "grutext.nn.gru",
    "make_encoder": "grutext.nn.cells",
    "TextClassifier": "grutext.tasks.classification.model",
    "fit": "grutext.train.loop",
    "train_classifier": "grutext.tasks.classification.train",
    "evaluate_classifier": "grutext.tasks.classification.evaluate",
    "save_model": "grutext.artifact",
    "load_model": "grutext.artifact",
    "Predictor": "grutext.infer.predict",
    "model_summary": "grutext.summary",
    "pipeline_trace": "grutext.summary",
    "GRUTextClassifier": "grutext.estimator",
    "GRUTagger": "grutext.tasks.tagging.estimator",
    "explain": "grutext.explain",
    "explain_lm": "grutext.explain",
    "training_report": "grutext.explain",
    "LanguageModel": "grutext.tasks.language_model.model",
    "LMConfig": "grutext.tasks.language_model.config",
    "train_language_model": "grutext.tasks.language_model.train",
    "evaluate_language_model": "grutext.tasks.language_model.evaluate",
    "Generator": "grutext.infer.generate",
    "generate": "grutext.infer.generate",
    "Suggester": "grutext.infer.suggest",
    "next_words": "grutext.infer.suggest",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'grutext' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
