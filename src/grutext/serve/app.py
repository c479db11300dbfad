"""The HTTP server: `create_app(backend, settings)` puts the pieces together (FastAPI).

Every model call runs in one worker thread; `/v1/predict` and `/v1/tag` go through a `MicroBatcher`
each. Every error is a JSON object `{"detail": "one line"}`; no response holds NaN or Infinity (a
non-finite number is sent as null and named in `"warnings"`). The pieces:

- `settings`: `ServeSettings` (the limits and batching) and the routes of each task.
- `responses`: strict JSON (`dumps`, `SafeJSONResponse`), `ApiError` and the error handlers.
- `middleware`: the Prometheus `Metrics` and `Guard` (the body limit, the request metrics).
- `schemas`: the request bodies.
- `context`: `ServerContext`, what the routes share, and the checks and waits they use.
- `routes_common`: the web page, `/health`, `/ready`, `/v1/model`, `/metrics`.
- `routes_tasks`: the classifier, language model and tagger routes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from grutext.serve.backend import Backend
from grutext.serve.context import ServerContext
from grutext.serve.middleware import Guard, Metrics
from grutext.serve.responses import ApiError, SafeJSONResponse, add_error_handlers, dumps, finite_json
from grutext.serve.routes_common import add_page, add_status_routes
from grutext.serve.routes_tasks import add_classifier_routes, add_language_model_routes, add_tagger_routes
from grutext.serve.settings import COMMON_ROUTES, TASK_ROUTES, ServeSettings


def create_app(backend: Backend, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving `backend` with `settings` (limits, batching, timeout)."""
    settings = settings or ServeSettings()
    settings.check()
    kind = backend.kind
    metrics = Metrics()
    ctx = ServerContext(backend, settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        try:
            yield
        finally:  # uvicorn has finished the in-flight requests before this runs
            await ctx.stop()

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
    app.state.batchers = {"predict": ctx.predict_batcher, "tag": ctx.tag_batcher}
    known = set(COMMON_ROUTES) | {r for routes in TASK_ROUTES.values() for r in routes}
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, metrics=metrics, known=known)
    add_error_handlers(app)
    add_page(app)
    add_status_routes(app, ctx)
    add_classifier_routes(app, ctx)
    add_language_model_routes(app, ctx)
    add_tagger_routes(app, ctx)
    return app


__all__ = ["ApiError", "ServeSettings", "TASK_ROUTES", "create_app", "dumps", "finite_json"]
