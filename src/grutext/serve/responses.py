"""Strict JSON answers and errors: no NaN or Infinity, every error `{"detail": "one line"}`.

`dumps` sends a non-finite number as null and names it in `"warnings"`; `SafeJSONResponse` is the
app's default response class; `add_error_handlers` makes every exception a one-line JSON answer.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from grutext.errors import GrutextError


class ApiError(Exception):
    """An error answered as `{"detail": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


def validation_message(exc: RequestValidationError) -> tuple[int, str]:
    """The status and one-line message of a request body FastAPI refused."""
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


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error as `{"detail": "one line"}`: ours, FastAPI's, grutext's and the unexpected."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return SafeJSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        status, message = validation_message(exc)
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


__all__ = ["ApiError", "SafeJSONResponse", "add_error_handlers", "dumps", "finite_json", "validation_message"]
