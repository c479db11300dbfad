"""Deprecated: moved to `grutext.tasks.classification.model`; this re-export goes in a later release."""

from grutext.tasks.classification.model import EnsembleClassifier, build_classifier

__all__ = ["EnsembleClassifier", "build_classifier"]
