"""Server-side micro-batching: requests that arrive within a few milliseconds share one forward pass.

Each `MicroBatcher` owns an asyncio queue and one collector task. The collector takes the first
waiting request, then keeps taking requests until the batch holds `max_batch` texts or
`max_wait_s` has passed since the first one, and runs the whole batch in the model's single worker
thread (`executor`, shared by every batcher and every other model call, so the model never runs
twice at once). While a batch runs, new requests queue, so under load batches fill without waiting
(the same adaptive effect as BentoML's adaptive batching). The collector takes every request already
queued, and waits for more (up to `max_wait_s`) only while the batch has fewer requests than the last
forward pass served: so a lone client, whose next request cannot come before this answer, never waits,
and N clients that each wait for their answer before sending again (a closed loop) are served as soon
as all N are back, not after `max_wait_s` (`benchmarks/serve_load.py`, 8 such clients: 1.02x -> 1.78x
the requests/s of no batching). A request never
splits: one with more texts than `max_batch` runs alone. Requests cancelled while queued (timeouts)
are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Item:
    texts: list[str]
    future: asyncio.Future[list[Any]]
    extra: dict[str, Any] = field(default_factory=dict)


class MicroBatcher:
    """Collect texts from concurrent requests into shared calls of `run(texts) -> results`.

    Args:
        run: the model call, one result per text in order (runs in `executor`).
        executor: the model's worker (one thread).
        max_batch: most texts in one call (a single larger request still runs, alone).
        max_wait_s: longest wait for more requests after the first one arrives.
        on_batch: called with the number of texts of each call (metrics).
        enabled: False = no batching: every request is one call of its own texts.
    """

    def __init__(
        self,
        run: Callable[[list[str]], Sequence[Any]],
        executor: Executor,
        *,
        max_batch: int = 32,
        max_wait_s: float = 0.005,
        on_batch: Callable[[int], None] | None = None,
        enabled: bool = True,
    ) -> None:
        self.run = run
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self.enabled = enabled
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._carry: _Item | None = None
        self._last_requests = 1  # requests served by the last forward pass

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._collect())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, texts: Sequence[str]) -> list[Any]:
        """Results for `texts`, computed in a batch with whatever other requests arrive meanwhile."""
        texts = list(texts)
        loop = asyncio.get_running_loop()
        if not self.enabled:
            results = await loop.run_in_executor(self.executor, self._call, texts)
            return list(results)
        if self._task is None:
            await self.start()
        assert self._queue is not None
        fut: asyncio.Future[list[Any]] = loop.create_future()
        await self._queue.put(_Item(texts, fut))
        return await fut

    def _call(self, texts: list[str]) -> Sequence[Any]:
        results = self.run(texts)
        if len(results) != len(texts):
            raise RuntimeError(f"model returned {len(results)} results for {len(texts)} texts")
        if self.on_batch is not None:
            self.on_batch(len(texts))
        return results

    async def _next(self) -> _Item:
        assert self._queue is not None
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        return await self._queue.get()

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next()
            if first.future.done():  # cancelled while queued
                continue
            items = [first]
            n = len(first.texts)
            deadline = loop.time() + self.max_wait_s
            while n < self.max_batch:
                try:
                    if self._queue.empty():
                        wait = deadline - loop.time()
                        if wait <= 0 or len(items) >= self._last_requests:
                            break  # waited long enough, or every client of the last pass is back in
                        item = await asyncio.wait_for(self._queue.get(), wait)
                    else:
                        item = self._queue.get_nowait()
                except TimeoutError:
                    break
                if item.future.done():
                    continue
                if n + len(item.texts) > self.max_batch:
                    self._carry = item  # first in the next batch
                    break
                items.append(item)
                n += len(item.texts)
            self._last_requests = len(items)
            texts = [t for it in items for t in it.texts]
            try:
                results = await loop.run_in_executor(self.executor, self._call, texts)
            except Exception as exc:
                if len(items) == 1:
                    if not first.future.done():
                        first.future.set_exception(exc)
                    continue
                # one request's texts may have failed the batch: run each alone, so only it gets the error
                for it in items:
                    if it.future.done():
                        continue
                    try:
                        part = await loop.run_in_executor(self.executor, self._call, it.texts)
                    except Exception as one:
                        if not it.future.done():
                            it.future.set_exception(one)
                    else:
                        if not it.future.done():
                            it.future.set_result(list(part))
                continue
            start = 0
            for it in items:
                part = list(results[start : start + len(it.texts)])
                start += len(it.texts)
                if not it.future.done():
                    it.future.set_result(part)


__all__ = ["MicroBatcher"]
