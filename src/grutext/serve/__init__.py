"""`grutext serve`: a model folder or an ONNX export behind HTTP (FastAPI + uvicorn).

- `backend`: the small protocol the server talks to (`Backend`), `TorchBackend` over a model
  directory and `RuntimeBackend` over an export folder (`grutext.runtime`), and `open_backend`.
- `batching`: `MicroBatcher`, requests arriving within a few milliseconds share one forward pass.
- `app`: `create_app(backend, settings)`, which puts the server together from
  `settings` (`ServeSettings`, the routes of each task), `responses` (strict JSON, `ApiError`, the
  error handlers), `middleware` (metrics, the body limit), `schemas` (request bodies), `context`
  (`ServerContext`: what the routes share, their checks and timeouts), `routes_common` (the web
  page, health, readiness, model info, metrics) and `routes_tasks` (each task's routes).
- `cli`: the `grutext serve` command.

Nothing here is imported by `grutext --help`; FastAPI, uvicorn and prometheus-client (the
`serve` extra) are imported only when a server is built.
"""

from __future__ import annotations
