"""`ServerContext`: what the routes share (backend, settings, the model thread, the batchers) and the
checks and waits every route uses (the task, text limits, the timeout)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from grutext.serve.backend import Backend
from grutext.serve.batching import MicroBatcher
from grutext.serve.middleware import Metrics
from grutext.serve.responses import ApiError
from grutext.serve.schemas import TextsIn
from grutext.serve.settings import TASK_ROUTES, ServeSettings

T = TypeVar("T")


class ServerContext:
    """One server's backend, settings, metrics, model thread and `MicroBatcher`s (predict and tag)."""

    def __init__(self, backend: Backend, settings: ServeSettings, metrics: Metrics) -> None:
        self.backend = backend
        self.settings = settings
        self.metrics = metrics
        self.kind = backend.kind
        self.ready = False
        # every model call runs in this one thread
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grutext-model")

        def batcher(call: Any, route: str) -> MicroBatcher:
            return MicroBatcher(
                call,
                self.executor,
                max_batch=settings.max_batch,
                max_wait_s=settings.max_wait_ms / 1000,
                on_batch=lambda n: metrics.batch_size.labels(route).observe(n),
                enabled=settings.batching,
            )

        self.predict_batcher = batcher(lambda texts: backend.predict(texts), "predict")
        self.tag_batcher = batcher(lambda texts: backend.tag(texts), "tag")

    async def start(self) -> None:
        await self.predict_batcher.start()
        await self.tag_batcher.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.predict_batcher.stop()
        await self.tag_batcher.stop()
        self.executor.shutdown(wait=True)

    # ---- checks ----

    def need(self, task: str, route: str) -> None:
        """A 404 unless the served model is a `task`."""
        kind = self.kind
        if kind != task:
            raise ApiError(
                404,
                f"{route} needs a {task.replace('_', ' ')}; this server's model is a {kind.replace('_', ' ')} "
                f"(its routes: {', '.join(TASK_ROUTES[kind])})",
            )

    def check_text(self, text: str, where: str) -> None:
        if not text.strip():
            raise ApiError(422, f"{where}: expected a non-empty text, got {text!r}")
        if len(text) > self.settings.max_chars:
            raise ApiError(
                422,
                f"{where}: {len(text)} characters, the limit is {self.settings.max_chars} per text (--max-chars)",
            )

    def texts_of(self, body: TextsIn) -> list[str]:
        """The texts of a body with `text` or `texts`, each checked against the limits."""
        if (body.text is None) == (body.texts is None):
            raise ApiError(422, 'request body: expected exactly one of "text" (a string) or "texts" (a list)')
        if body.text is not None:
            self.check_text(body.text, "text")
            return [body.text]
        texts = list(body.texts or [])
        if not texts:
            raise ApiError(422, "texts: expected at least one text, got []")
        if len(texts) > self.settings.max_texts:
            raise ApiError(
                422, f"texts: {len(texts)} texts, the limit is {self.settings.max_texts} per request (--max-texts)"
            )
        for i, t in enumerate(texts):
            self.check_text(t, f"texts[{i}]")
        return texts

    # ---- waits ----

    async def timed(self, aw: Awaitable[T]) -> T:
        """`aw`'s result, or a 504 after the request timeout."""
        timeout_s = self.settings.timeout_s
        try:
            return await asyncio.wait_for(aw, timeout_s)
        except TimeoutError:
            raise ApiError(504, f"the model did not answer within {timeout_s:g} s (--timeout-s)") from None

    async def in_worker(self, fn: Callable[[], T]) -> T:
        """`fn()` run in the model thread, within the request timeout."""
        return await self.timed(asyncio.get_running_loop().run_in_executor(self.executor, fn))


__all__ = ["ServerContext"]
