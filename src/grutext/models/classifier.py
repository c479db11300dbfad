"""Deprecated: moved to `grutext.tasks.classification.model`; this re-export goes in a later release."""

from grutext.tasks.classification.model import TASKS, TextClassifier, TokenDropout

__all__ = ["TASKS", "TextClassifier", "TokenDropout"]
