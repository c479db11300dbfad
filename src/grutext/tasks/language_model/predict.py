"""What prediction with a saved language model needs before the first token: the kind check and the
LM settings saved with it (`grutext.infer.generate` and `grutext.infer.suggest` build on these)."""

from __future__ import annotations

import json
from typing import Any

from grutext.errors import ArtifactError
from grutext.tasks.language_model.config import KIND, LMConfig, resolve_add_eos


def lm_settings(loaded: Any) -> LMConfig:
    """The LMConfig saved with a loaded language model (defaults when absent)."""
    meta: dict[str, Any] = getattr(loaded, "meta", None) or {}
    if not meta and loaded.path is not None and (loaded.path / "config.json").is_file():
        meta = json.loads((loaded.path / "config.json").read_text())
    return LMConfig.from_meta(meta)


def starts_after_eos(loaded: Any, add_eos: bool | None = None) -> bool:
    """Whether the model saw ``<eos>`` before each line: `add_eos` when given, else the saved setting,
    else the default for its tokenizer (`resolve_add_eos`)."""
    if add_eos is None:
        add_eos = lm_settings(loaded).add_eos
    return resolve_add_eos(loaded.tokenizer.kind, add_eos)


def check_language_model(loaded: Any, command: str = "this operation") -> None:
    """Raise ArtifactError unless `loaded` is a language model."""
    kind = getattr(loaded, "kind", None)
    if kind != KIND:
        where = getattr(loaded, "path", None) or "model"
        raise ArtifactError(
            f"{where}: is a {kind or 'non-language'} model; {command} needs a language model "
            f"(train one with `grutext train --task lm`)"
        )


__all__ = ["check_language_model", "lm_settings", "starts_after_eos"]
