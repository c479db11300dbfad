"""The server's Prometheus metrics and `Guard`, the ASGI middleware for the body limit and metrics."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from grutext.serve.responses import dumps

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The server's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "grutext_requests", "HTTP requests answered", ["route", "status"], registry=self.registry
        )
        self.errors = Counter(
            "grutext_errors", "HTTP requests answered with status >= 400", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "grutext_request_latency_seconds",
            "time from request to the end of the response",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "grutext_batch_size", "texts per forward pass", ["op"], buckets=BATCH_BUCKETS, registry=self.registry
        )


class Guard:
    """ASGI middleware: the request-body limit (413) and the request metrics."""

    def __init__(self, app: Any, *, max_body_bytes: int, metrics: Metrics, known: set[str]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.known = known

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in self.known or path.startswith("/static/") else "other"
        if route.startswith("/static/"):
            route = "/static"
        start = time.perf_counter()
        status = {"code": 500}

        async def send_counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            body_receive = await self._limited(scope, receive, send_counted)
            if body_receive is not None:
                await self.app(scope, body_receive, send_counted)
        finally:
            code = str(status["code"])
            self.metrics.requests.labels(route, code).inc()
            if status["code"] >= 400:
                self.metrics.errors.labels(route, code).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)

    async def _limited(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """A `receive` that replays the body read here, or None after answering 413."""
        limit = self.max_body_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, f"{int(declared)} bytes")
            return None
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return receive  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, f"more than {limit} bytes")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        return replay

    async def _too_large(self, send: Any, got: str) -> None:
        body = dumps({"detail": f"request body: {got}, the limit is {self.max_body_bytes} bytes (--max-body-bytes)"})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS", "Guard", "Metrics"]
