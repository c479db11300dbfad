"""The server's settings (`ServeSettings`, the `grutext serve` flags) and the routes of each task."""

from __future__ import annotations

import math
from dataclasses import dataclass

# the routes each task answers (besides the common ones)
TASK_ROUTES: dict[str, tuple[str, ...]] = {
    "classifier": ("/v1/predict", "/v1/explain"),
    "language_model": ("/v1/next-word", "/v1/generate"),
    "tagger": ("/v1/tag",),
}
COMMON_ROUTES = ("/", "/health", "/ready", "/v1/model", "/metrics", "/docs", "/openapi.json")


@dataclass
class ServeSettings:
    """The server's limits and batching (the `grutext serve` flags)."""

    max_batch: int = 32  # most texts in one forward pass
    max_wait_ms: float = 5.0  # longest wait for more requests after the first
    batching: bool = True
    max_texts: int = 64  # texts per request
    max_chars: int = 10_000  # characters per text (and per prompt)
    max_body_bytes: int = 1_000_000  # request body
    timeout_s: float = 30.0  # per request, queueing included
    max_tokens: int = 1000  # most tokens one /v1/generate call may ask for

    def check(self) -> None:
        from grutext.errors import ConfigError

        for name in ("max_batch", "max_texts", "max_chars", "max_body_bytes", "max_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: expected an integer >= 1, got {v!r}")
        for name in ("max_wait_ms", "timeout_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"--{name.replace('_', '-')}: expected a finite number >= 0, got {v!r}")
        if self.timeout_s <= 0:
            raise ConfigError(f"--timeout-s: expected a number > 0, got {self.timeout_s!r}")


__all__ = ["COMMON_ROUTES", "TASK_ROUTES", "ServeSettings"]
