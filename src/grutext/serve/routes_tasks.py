"""The routes of each task: `/v1/predict` and `/v1/explain` (classifiers), `/v1/next-word` and
`/v1/generate` (language models, optionally streamed as server-sent events), `/v1/tag` (taggers)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response, StreamingResponse

from grutext.serve.context import ServerContext
from grutext.serve.responses import ApiError, SafeJSONResponse, dumps
from grutext.serve.schemas import ExplainIn, GenerateIn, NextWordIn, PredictIn, TextsIn


def shown_predictions(rows: list[dict[str, Any]], top_k: int | None) -> list[dict[str, Any]]:
    """The `/v1/predict` results of the backend's rows: `probs` cut to the `top_k` most likely."""
    results = []
    for row in rows:
        probs = dict(row["probs"])
        if top_k is not None:
            order = sorted(probs.items(), key=lambda kv: -kv[1] if math.isfinite(kv[1]) else math.inf)
            probs = dict(order[:top_k])
        out = {"label": row["label"], "probs": probs}
        if "labels" in row:
            out["labels"] = row["labels"]
        results.append(out)
    return results


def add_classifier_routes(app: FastAPI, ctx: ServerContext) -> None:
    backend = ctx.backend

    @app.post("/v1/predict", summary="label and class probabilities of each text (classifiers)")
    async def predict(body: PredictIn) -> Response:
        ctx.need("classifier", "/v1/predict")
        texts = ctx.texts_of(body)
        if body.top_k is not None and not 1 <= body.top_k <= len(backend.labels):
            raise ApiError(
                422,
                f"top_k: expected an integer from 1 to {len(backend.labels)} (the model's classes), got {body.top_k}",
            )
        rows = await ctx.timed(ctx.predict_batcher.submit(texts))
        return SafeJSONResponse({"results": shown_predictions(rows, body.top_k)})

    @app.post("/v1/explain", summary="token importances and update-gate means for one text (classifiers)")
    async def explain(body: ExplainIn) -> Response:
        ctx.need("classifier", "/v1/explain")
        if not backend.info.get("explain"):
            raise ApiError(
                404,
                "/v1/explain needs a single-network model directory served with torch "
                f"(this model: {backend.info.get('backend')}, not explainable here)",
            )
        ctx.check_text(body.text, "text")
        fn = getattr(backend, "explain")  # noqa: B009 - only TorchBackend has it
        return SafeJSONResponse(dict(await ctx.in_worker(lambda: fn(body.text, body.method))))


def add_language_model_routes(app: FastAPI, ctx: ServerContext) -> None:
    backend, settings = ctx.backend, ctx.settings

    @app.post("/v1/next-word", summary="the most likely next words (or completions of the last word)")
    async def next_word(body: NextWordIn) -> Response:
        ctx.need("language_model", "/v1/next-word")
        ctx.check_text(body.text, "text")
        if not 1 <= body.k <= 100:
            raise ApiError(422, f"k: expected an integer from 1 to 100, got {body.k}")
        words = await ctx.in_worker(lambda: backend.next_word(body.text, body.k))
        return SafeJSONResponse({"suggestions": [{"word": w, "prob": p} for w, p in words]})

    @app.post(
        "/v1/generate",
        summary="continue a prompt; with stream=true as server-sent events (data: {token}; event: done)",
    )
    async def generate(body: GenerateIn) -> Response:
        ctx.need("language_model", "/v1/generate")
        ctx.check_text(body.prompt, "prompt")
        if not 1 <= body.max_tokens <= settings.max_tokens:
            raise ApiError(422, f"max_tokens: expected 1..{settings.max_tokens}, got {body.max_tokens}")
        options = body.model_dump(exclude={"prompt", "stream"})
        if not body.stream:
            text = await ctx.in_worker(lambda: backend.generate(body.prompt, **options))
            return SafeJSONResponse({"text": text})
        tokens: Iterator[str] = iter(backend.stream(body.prompt, **options))
        done = object()
        # the first token here, so bad options or prompts are a 422, not a broken stream
        first = await ctx.in_worker(lambda: next(tokens, done))
        deadline = time.monotonic() + settings.timeout_s
        return StreamingResponse(
            token_events(ctx, first, tokens, done, deadline),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )


async def token_events(
    ctx: ServerContext, first: Any, tokens: Iterator[str], done: object, deadline: float
) -> AsyncIterator[bytes]:
    """Server-sent events: `data: {token}` per piece, then `event: done` (or `event: error`)."""
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
            item = await asyncio.wait_for(loop.run_in_executor(ctx.executor, next, tokens, done), left)
        except TimeoutError:
            message = f"the model did not finish within {ctx.settings.timeout_s:g} s (--timeout-s)"
            yield b"event: error\ndata: " + dumps({"detail": message}) + b"\n\n"
            return
        except Exception as exc:
            yield b"event: error\ndata: " + dumps({"detail": f"{type(exc).__name__}: {exc}"}) + b"\n\n"
            return
    yield b"event: done\ndata: " + dumps({"text": "".join(pieces), "tokens": len(pieces)}) + b"\n\n"


def add_tagger_routes(app: FastAPI, ctx: ServerContext) -> None:
    @app.post("/v1/tag", summary="tags and chunks (character spans) of each text (taggers)")
    async def tag(body: TextsIn) -> Response:
        ctx.need("tagger", "/v1/tag")
        texts = ctx.texts_of(body)
        rows = await ctx.timed(ctx.tag_batcher.submit(texts))
        return SafeJSONResponse({"results": rows})


__all__ = [
    "add_classifier_routes",
    "add_language_model_routes",
    "add_tagger_routes",
    "shown_predictions",
    "token_events",
]
