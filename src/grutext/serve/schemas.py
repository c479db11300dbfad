"""The request bodies of the routes (pydantic; an unknown field is an error)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextsIn(_Body):
    text: str | None = Field(None, description="one text (or give `texts`)")
    texts: list[str] | None = Field(None, description="several texts (or give `text`)")


class PredictIn(TextsIn):
    top_k: int | None = Field(None, description="only the k most likely classes in `probs`")


class ExplainIn(_Body):
    text: str
    method: Literal["ig", "occlusion", "attention"] = "ig"


class NextWordIn(_Body):
    text: str
    k: int = Field(5, description="number of suggestions")


class GenerateIn(_Body):
    prompt: str
    max_tokens: int = 50
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stream: bool = Field(False, description="send tokens as server-sent events as they are generated")


__all__ = ["ExplainIn", "GenerateIn", "NextWordIn", "PredictIn", "TextsIn"]
