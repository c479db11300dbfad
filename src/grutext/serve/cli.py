"""`grutext serve MODEL_OR_EXPORT_DIR`: the model behind HTTP on uvicorn (see grutext.serve.app)."""

from __future__ import annotations

import argparse
import signal
import sys

from grutext.errors import ConfigError


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL_OR_EXPORT_DIR", help="a model directory, or a folder from `grutext export`")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    p.add_argument("--max-batch", type=int, default=None, help="most texts in one forward pass (default: 32)")
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=None,
        help="longest wait for more requests to batch after the first arrives (default: 5)",
    )
    p.add_argument("--no-batching", action="store_true", help="one forward pass per request")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of the model (default: the library's)")
    p.add_argument("--max-texts", type=int, default=64, help="most texts in one request (default: 64)")
    p.add_argument("--max-chars", type=int, default=10_000, help="most characters in one text (default: 10000)")
    p.add_argument(
        "--max-body-bytes", type=int, default=1_000_000, help="largest request body in bytes (default: 1000000)"
    )
    p.add_argument("--timeout-s", type=float, default=30.0, help="per-request time limit in seconds (default: 30)")
    p.add_argument("--max-tokens", type=int, default=1000, help="most tokens one /v1/generate may ask (default: 1000)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level (default: info)",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a model over HTTP: JSON routes (/v1/predict, /v1/next-word, /v1/generate, /v1/tag,
    /v1/explain), a web page at /, OpenAPI docs at /docs and Prometheus metrics at /metrics.
    Requests arriving within --max-wait-ms share one forward pass. SIGTERM or Ctrl-C finishes the
    requests in flight, then exits."""
    try:
        import uvicorn

        from grutext.serve.app import ServeSettings, create_app
        from grutext.serve.backend import open_backend
    except ImportError as exc:
        raise ConfigError(f"grutext serve needs the serve extra: pip install 'grutext[serve]' ({exc})") from None

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port: expected 0..65535, got {args.port}")
    if args.no_batching and (args.max_batch is not None or args.max_wait_ms is not None):
        raise ConfigError("--max-batch / --max-wait-ms: do not apply with --no-batching")
    settings = ServeSettings(
        max_batch=32 if args.max_batch is None else args.max_batch,
        max_wait_ms=5.0 if args.max_wait_ms is None else args.max_wait_ms,
        batching=not args.no_batching,
        max_texts=args.max_texts,
        max_chars=args.max_chars,
        max_body_bytes=args.max_body_bytes,
        timeout_s=args.timeout_s,
        max_tokens=args.max_tokens,
    )
    settings.check()
    backend = open_backend(args.model, threads=args.threads)
    app = create_app(backend, settings)
    print(
        f"grutext serve: {backend.kind} from {args.model} ({backend.info.get('backend')}), "
        f"batching {'on' if settings.batching else 'off'}; page at http://{args.host}:{args.port}/",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    )
    # uvicorn finishes the requests in flight on SIGTERM, then raises the signal again for its default
    # action (death by signal); this handler takes it instead, so a graceful stop exits with status 0
    stopped: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda sig, frame: stopped.append(sig))
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stopped:
        print("grutext serve: stopped by SIGTERM after finishing the requests in flight", file=sys.stderr)
    return 0


__all__ = ["add_serve_arguments", "cmd_serve"]
