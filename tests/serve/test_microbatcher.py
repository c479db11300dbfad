"""The micro-batcher on its own: closed-loop clients are served as soon as all of them are back, not after
`max_wait_s` (counted as the waits that ran out, so no clock is read by the assertions)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from grutext.serve import batching
from grutext.serve.batching import MicroBatcher


def _closed_loop(monkeypatch: pytest.MonkeyPatch, clients: int, rounds: int) -> tuple[list[int], int]:
    """`clients` tasks each send `rounds` requests, the next only after the last answer: the batch sizes of
    the forward passes and how many times the collector waited out `max_wait_s`."""
    sizes: list[int] = []
    ran_out = [0]
    real_wait_for = asyncio.wait_for

    async def counting_wait_for(awaitable, timeout):  # type: ignore[no-untyped-def]
        try:
            return await real_wait_for(awaitable, timeout)
        except TimeoutError:
            ran_out[0] += 1
            raise

    monkeypatch.setattr(batching.asyncio, "wait_for", counting_wait_for)

    def run(texts: list[str]) -> list[str]:
        time.sleep(0.002)  # the model's time
        return [t.upper() for t in texts]

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(run, pool, max_batch=32, max_wait_s=0.05, on_batch=sizes.append)
            await batcher.start()

            async def client(k: int) -> None:
                for r in range(rounds):
                    assert await batcher.submit([f"c{k} r{r}"]) == [f"C{k} R{r}"]

            await real_wait_for(asyncio.gather(*(client(k) for k in range(clients))), timeout=60)
            await batcher.stop()

    asyncio.run(main())
    return sizes, ran_out[0]


def test_closed_loop_clients_do_not_wait_for_requests_that_cannot_come(monkeypatch: pytest.MonkeyPatch):
    """8 clients: once a pass has served all 8, the next starts as soon as the 8 are back. Waiting for a 9th
    request until max_wait_s (the old rule) ran out on nearly every one of the 10 passes."""
    sizes, ran_out = _closed_loop(monkeypatch, clients=8, rounds=10)
    assert sum(sizes) == 80 and sizes.count(8) >= 8  # the clients still share passes
    assert ran_out <= 2  # at most while the batch size is learnt and when the clients stop


def test_a_lone_client_never_waits(monkeypatch: pytest.MonkeyPatch):
    sizes, ran_out = _closed_loop(monkeypatch, clients=1, rounds=5)
    assert sizes == [1] * 5 and ran_out == 0
