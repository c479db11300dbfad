"""The HTTP server: routes, limits, micro-batching, metrics and the web page (FastAPI).

`create_app(backend, settings)` builds the app around a loaded `Backend`. Every model call runs in
one worker thread; `/v1/predict` and `/v1/tag` go through a `MicroBatcher` each. Every error is a
JSON object `{"detail": "one line"}`; no response holds NaN or Infinity (a non-finite number is
sent as null and named in `"warnings"`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from grutext.errors import GrutextError
from grutext.serve.backend import Backend
from grutext.serve.batching import MicroBatcher

T = TypeVar("T")

# the routes each task answers (besides the common ones)
TASK_ROUTES: dict[str, tuple[str, ...]] = {
    "classifier": ("/v1/predict", "/v1/explain"),
    "language_model": ("/v1/next-word", "/v1/generate"),
    "tagger": ("/v1/tag",),
}
COMMON_ROUTES = ("/", "/health", "/ready", "/v1/model", "/metrics", "/docs", "/openapi.json")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


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


class ApiError(Exception):
    """An error answered as `{"detail": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---- JSON without NaN/Infinity -----------------------------------------------------------------


def finite_json(obj: Any, where: str = "", found: list[str] | None = None) -> tuple[Any, list[str]]:
    """`obj` with every non-finite float replaced by None, and the paths where that happened."""
    found = [] if found is None else found
    if isinstance(obj, float):
        if not math.isfinite(obj):
            found.append(where or "$")
            return None, found
        return obj, found
    if isinstance(obj, dict):
        return {k: finite_json(v, f"{where}.{k}" if where else str(k), found)[0] for k, v in obj.items()}, found
    if isinstance(obj, (list, tuple)):
        return [finite_json(v, f"{where}[{i}]", found)[0] for i, v in enumerate(obj)], found
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy scalar
        return finite_json(obj.item(), where, found)
    if hasattr(obj, "tolist"):
        return finite_json(obj.tolist(), where, found)
    return obj, found


def dumps(obj: Any) -> bytes:
    """Strict JSON (never NaN/Infinity): non-finite numbers become null, listed in "warnings"."""
    clean, found = finite_json(obj)
    if found and isinstance(clean, dict):
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        warnings = list(clean.get("warnings", []))
        warnings.append(f"the model produced non-finite numbers, sent as null: {shown}")
        clean["warnings"] = warnings
    return json.dumps(clean, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


# ---- request bodies ----------------------------------------------------------------------------


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


# ---- metrics and limits (ASGI middleware) -------------------------------------------------------


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


# ---- the app ------------------------------------------------------------------------------------


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = list(exc.errors())
    for e in errors:
        if e.get("type") == "json_invalid":
            ctx = e.get("ctx", {}) or {}
            return 400, f"request body: not valid JSON ({ctx.get('error', e.get('msg', 'parse error'))})"
    if not errors:
        return 422, "request body: invalid"
    e = errors[0]
    loc = [str(x) for x in e.get("loc", ()) if x != "body"]
    where = ".".join(loc) if loc else "request body"
    got = e.get("input")
    msg = e.get("msg", "invalid")
    if e.get("type") == "extra_forbidden":
        msg = "unknown field for this route"
    elif e.get("type") == "missing":
        msg = "required field missing"
    got_text = "" if e.get("type") == "missing" else f", got {json.dumps(got, default=str)[:60]}"
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return 422, f"{where}: {msg}{got_text}{more}"


def create_app(backend: Backend, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving `backend` with `settings` (limits, batching, timeout)."""
    settings = settings or ServeSettings()
    settings.check()
    kind = backend.kind
    metrics = Metrics()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grutext-model")
    predict_batcher = MicroBatcher(
        lambda texts: backend.predict(texts),
        executor,
        max_batch=settings.max_batch,
        max_wait_s=settings.max_wait_ms / 1000,
        on_batch=lambda n: metrics.batch_size.labels("predict").observe(n),
        enabled=settings.batching,
    )
    tag_batcher = MicroBatcher(
        lambda texts: backend.tag(texts),
        executor,
        max_batch=settings.max_batch,
        max_wait_s=settings.max_wait_ms / 1000,
        on_batch=lambda n: metrics.batch_size.labels("tag").observe(n),
        enabled=settings.batching,
    )
    state = {"ready": False}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await predict_batcher.start()
        await tag_batcher.start()
        state["ready"] = True
        try:
            yield
        finally:  # uvicorn has finished the in-flight requests before this runs
            state["ready"] = False
            await predict_batcher.stop()
            await tag_batcher.stop()
            executor.shutdown(wait=True)

    app = FastAPI(
        title="grutext serve",
        description=f"A grutext {kind} over HTTP. Routes of this model: {', '.join(TASK_ROUTES[kind])}.",
        version=str(backend.info.get("versions", {}).get("grutext", "")),
        default_response_class=SafeJSONResponse,
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.batchers = {"predict": predict_batcher, "tag": tag_batcher}
    known = set(COMMON_ROUTES) | {r for routes in TASK_ROUTES.values() for r in routes}
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, metrics=metrics, known=known)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return SafeJSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        status, message = _validation_message(exc)
        return SafeJSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}; this server's routes are listed at /docs"
        elif exc.status_code == 405:
            detail = f"{request.url.path}: method {request.method} not allowed"
        return SafeJSONResponse({"detail": str(detail)}, status_code=exc.status_code)

    @app.exception_handler(GrutextError)
    async def _grutext(request: Request, exc: GrutextError) -> Response:
        return SafeJSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        return SafeJSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"[:500]}, status_code=500)

    # ---- helpers ----

    def need(task: str, route: str) -> None:
        if kind != task:
            raise ApiError(
                404,
                f"{route} needs a {task.replace('_', ' ')}; this server's model is a {kind.replace('_', ' ')} "
                f"(its routes: {', '.join(TASK_ROUTES[kind])})",
            )

    def check_text(text: str, where: str) -> None:
        if not text.strip():
            raise ApiError(422, f"{where}: expected a non-empty text, got {text!r}")
        if len(text) > settings.max_chars:
            raise ApiError(
                422,
                f"{where}: {len(text)} characters, the limit is {settings.max_chars} per text (--max-chars)",
            )

    def texts_of(body: TextsIn) -> list[str]:
        if (body.text is None) == (body.texts is None):
            raise ApiError(422, 'request body: expected exactly one of "text" (a string) or "texts" (a list)')
        if body.text is not None:
            check_text(body.text, "text")
            return [body.text]
        texts = list(body.texts or [])
        if not texts:
            raise ApiError(422, "texts: expected at least one text, got []")
        if len(texts) > settings.max_texts:
            raise ApiError(
                422, f"texts: {len(texts)} texts, the limit is {settings.max_texts} per request (--max-texts)"
            )
        for i, t in enumerate(texts):
            check_text(t, f"texts[{i}]")
        return texts

    async def timed(aw: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(aw, settings.timeout_s)
        except TimeoutError:
            raise ApiError(504, f"the model did not answer within {settings.timeout_s:g} s (--timeout-s)") from None

    async def in_worker(fn: Callable[[], T]) -> T:
        return await timed(asyncio.get_running_loop().run_in_executor(executor, fn))

    # ---- common routes ----

    static = resources.files("grutext.serve") / "static"

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/health", summary="the process is up")
    async def health() -> Response:
        return SafeJSONResponse({"status": "ok"})

    @app.get("/ready", summary="the model is loaded and the server takes requests")
    async def ready() -> Response:
        if not state["ready"]:
            return SafeJSONResponse({"ready": False, "detail": "not ready (starting or shutting down)"}, 503)
        return SafeJSONResponse({"ready": True, "task": kind})

    @app.get("/v1/model", summary="the model: task, labels, versions, input limits")
    async def model_info() -> Response:
        info = dict(backend.info)
        versions = info.pop("versions", {})
        limits = asdict(settings)
        limits.pop("batching")
        limits.pop("max_batch")
        limits.pop("max_wait_ms")
        return SafeJSONResponse(
            {
                "task": kind,
                "labels": list(backend.labels),
                "routes": list(TASK_ROUTES[kind]) if info.get("explain") or kind != "classifier" else ["/v1/predict"],
                "versions": versions,
                "limits": limits,
                "batching": {
                    "enabled": settings.batching,
                    "max_batch": settings.max_batch,
                    "max_wait_ms": settings.max_wait_ms,
                },
                "info": info,
            }
        )

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ---- classifier ----

    @app.post("/v1/predict", summary="label and class probabilities of each text (classifiers)")
    async def predict(body: PredictIn) -> Response:
        need("classifier", "/v1/predict")
        texts = texts_of(body)
        if body.top_k is not None and not 1 <= body.top_k <= len(backend.labels):
            raise ApiError(
                422,
                f"top_k: expected an integer from 1 to {len(backend.labels)} (the model's classes), got {body.top_k}",
            )
        rows = await timed(predict_batcher.submit(texts))
        results = []
        for row in rows:
            probs = dict(row["probs"])
            if body.top_k is not None:
                order = sorted(probs.items(), key=lambda kv: -kv[1] if math.isfinite(kv[1]) else math.inf)
                probs = dict(order[: body.top_k])
            out = {"label": row["label"], "probs": probs}
            if "labels" in row:
                out["labels"] = row["labels"]
            results.append(out)
        return SafeJSONResponse({"results": results})

    @app.post("/v1/explain", summary="token importances and update-gate means for one text (classifiers)")
    async def explain(body: ExplainIn) -> Response:
        need("classifier", "/v1/explain")
        if not backend.info.get("explain"):
            raise ApiError(
                404,
                "/v1/explain needs a single-network model directory served with torch "
                f"(this model: {backend.info.get('backend')}, not explainable here)",
            )
        check_text(body.text, "text")
        fn = getattr(backend, "explain")  # noqa: B009 - only TorchBackend has it
        return SafeJSONResponse(dict(await in_worker(lambda: fn(body.text, body.method))))

    # ---- language model ----

    @app.post("/v1/next-word", summary="the most likely next words (or completions of the last word)")
    async def next_word(body: NextWordIn) -> Response:
        need("language_model", "/v1/next-word")
        check_text(body.text, "text")
        if not 1 <= body.k <= 100:
            raise ApiError(422, f"k: expected an integer from 1 to 100, got {body.k}")
        words = await in_worker(lambda: backend.next_word(body.text, body.k))
        return SafeJSONResponse({"suggestions": [{"word": w, "prob": p} for w, p in words]})

    @app.post(
        "/v1/generate",
        summary="continue a prompt; with stream=true as server-sent events (data: {token}; event: done)",
    )
    async def generate(body: GenerateIn) -> Response:
        need("language_model", "/v1/generate")
        check_text(body.prompt, "prompt")
        if not 1 <= body.max_tokens <= settings.max_tokens:
            raise ApiError(422, f"max_tokens: expected 1..{settings.max_tokens}, got {body.max_tokens}")
        options = body.model_dump(exclude={"prompt", "stream"})
        if not body.stream:
            text = await in_worker(lambda: backend.generate(body.prompt, **options))
            return SafeJSONResponse({"text": text})
        tokens: Iterator[str] = iter(backend.stream(body.prompt, **options))
        done = object()
        # the first token here, so bad options or prompts are a 422, not a broken stream
        first = await in_worker(lambda: next(tokens, done))
        deadline = time.monotonic() + settings.timeout_s
        return StreamingResponse(
            _events(first, tokens, done, deadline),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    async def _events(first: Any, tokens: Iterator[str], done: object, deadline: float) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        pieces: list[str] = []
        item = first
        while item is not done:
            pieces.append(str(item))
            yield b"data: " + dumps({"token": str(item)}) + b"\n\n"
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                item = await asyncio.wait_for(loop.run_in_executor(executor, next, tokens, done), left)
            except TimeoutError:
                message = f"the model did not finish within {settings.timeout_s:g} s (--timeout-s)"
                yield b"event: error\ndata: " + dumps({"detail": message}) + b"\n\n"
                return
            except Exception as exc:
                yield b"event: error\ndata: " + dumps({"detail": f"{type(exc).__name__}: {exc}"}) + b"\n\n"
                return
        yield b"event: done\ndata: " + dumps({"text": "".join(pieces), "tokens": len(pieces)}) + b"\n\n"

    # ---- tagger ----

    @app.post("/v1/tag", summary="tags and chunks (character spans) of each text (taggers)")
    async def tag(body: TextsIn) -> Response:
        need("tagger", "/v1/tag")
        texts = texts_of(body)
        rows = await timed(tag_batcher.submit(texts))
        return SafeJSONResponse({"results": rows})

    return app


__all__ = ["ApiError", "ServeSettings", "TASK_ROUTES", "create_app", "dumps", "finite_json"]
