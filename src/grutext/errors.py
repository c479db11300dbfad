"""Errors raised for user input. Each message names the argument, file or line, what was
expected and what came, on one line."""

from __future__ import annotations


class GrutextError(Exception):
    """Base class of every error grutext raises on purpose."""


class DataError(GrutextError, ValueError):
    """A data file, column, text or label is not what grutext can use."""


class ConfigError(GrutextError, ValueError):
    """A configuration value or key is wrong."""


class ArtifactError(GrutextError):
    """A model directory is missing, incomplete, corrupt or of another version."""


class TrainingError(GrutextError):
    """Training cannot go on (a non-finite loss or gradient): what happened, where, and what to try."""


class NotFittedError(GrutextError, AttributeError):
    """An estimator was used before `fit`."""


__all__ = ["GrutextError", "DataError", "ConfigError", "ArtifactError", "NotFittedError", "TrainingError"]
