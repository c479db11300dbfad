"""The routes every server has: the web page, `/health`, `/ready`, `/v1/model` and `/metrics`."""

from __future__ import annotations

from dataclasses import asdict
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from grutext.serve.context import ServerContext
from grutext.serve.responses import SafeJSONResponse
from grutext.serve.settings import TASK_ROUTES


def add_page(app: FastAPI) -> None:
    """The web page at `/` and its files under `/static`."""
    static = resources.files("grutext.serve") / "static"

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")


def model_description(ctx: ServerContext) -> dict[str, object]:
    """The `/v1/model` answer: task, labels, routes, the n-gram blend's weight (null: the network alone),
    versions, limits, batching and the backend's info."""
    backend, settings, kind = ctx.backend, ctx.settings, ctx.kind
    info = dict(backend.info)
    versions = info.pop("versions", {})
    blend_weight = info.pop("blend_weight", None)
    limits = asdict(settings)
    limits.pop("batching")
    limits.pop("max_batch")
    limits.pop("max_wait_ms")
    return {
        "task": kind,
        "labels": list(backend.labels),
        "routes": list(TASK_ROUTES[kind]) if info.get("explain") or kind != "classifier" else ["/v1/predict"],
        "blend_weight": blend_weight,
        "versions": versions,
        "limits": limits,
        "batching": {
            "enabled": settings.batching,
            "max_batch": settings.max_batch,
            "max_wait_ms": settings.max_wait_ms,
        },
        "info": info,
    }


def add_status_routes(app: FastAPI, ctx: ServerContext) -> None:
    """`/health`, `/ready`, `/v1/model` and `/metrics`."""

    @app.get("/health", summary="the process is up")
    async def health() -> Response:
        return SafeJSONResponse({"status": "ok"})

    @app.get("/ready", summary="the model is loaded and the server takes requests")
    async def ready() -> Response:
        if not ctx.ready:
            return SafeJSONResponse({"ready": False, "detail": "not ready (starting or shutting down)"}, 503)
        return SafeJSONResponse({"ready": True, "task": ctx.kind})

    @app.get("/v1/model", summary="the model: task, labels, versions, input limits")
    async def model_info() -> Response:
        return SafeJSONResponse(model_description(ctx))

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)


__all__ = ["add_page", "add_status_routes", "model_description"]
