"""Loopback load test of `grutext serve`: micro-batching on vs off, at several concurrencies.

Starts two servers on 127.0.0.1 with the demo BBC News model (`grutext demo` trains it when the
folder is missing): one with micro-batching (the defaults: --max-batch 32 --max-wait-ms 5) and one
with --no-batching, both with --threads 1. For each concurrency it sends the same number of
`POST /v1/predict` requests (one 50-word BBC text each) to one server, then to the other, from a
bounded pool of keep-alive connections (a raw asyncio HTTP/1.1 client, on the same CPU as the
server; see `load`), and records requests/s, latency p50/p99, errors (any non-200 answer or
transport error) and the mean batch size read from the server's own /metrics.

    python benchmarks/serve_load.py                          # 2,000 requests per run, c = 1, 8, 32
    python benchmarks/serve_load.py --requests 300           # a short check
    python benchmarks/serve_load.py --model runs/demo-bbc --out benchmarks/results/serve_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from _machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from grutext.data.readers import load_named  # noqa: E402
from grutext.version import __version__  # noqa: E402


def texts_50_words(n: int = 500) -> list[str]:
    """The first 50 words of n BBC News articles (the corpus the demo model trained on)."""
    ds = load_named("bbc-news")["train"]
    out = [" ".join(t.split()[:50]) for t in ds.texts if len(t.split()) >= 50]
    return out[:n]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m grutext serve MODEL` in a subprocess on a free 127.0.0.1 port."""

    def __init__(self, model: Path, batching: bool, threads: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "grutext", "serve", str(model), "--port", str(self.port)]
        cmd += ["--threads", str(threads), "--log-level", "warning"] + ([] if batching else ["--no-batching"])
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(threads)}
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"server not ready after {timeout} s; see {self.log.name}")

    def batch_stats(self) -> tuple[float, float]:
        """(forward passes, texts) so far, from /metrics."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        count = re.search(r'grutext_batch_size_count\{op="predict"\} (\S+)', text)
        total = re.search(r'grutext_batch_size_sum\{op="predict"\} (\S+)', text)
        return (float(count.group(1)) if count else 0.0, float(total.group(1)) if total else 0.0)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


def _predicted(body: bytes) -> bool:
    return isinstance(json.loads(body)["results"][0]["label"], str)


def _healthy(body: bytes) -> bool:
    return isinstance(json.loads(body), dict)


async def load(url: str, texts: list[str] | None, n: int, concurrency: int) -> dict[str, Any]:
    """n requests from `concurrency` keep-alive connections, each sending its next request when the
    last is answered.

    The client writes pre-encoded HTTP/1.1 requests on raw asyncio streams and reads each answer by
    its Content-Length (then checks status 200 and a label in the JSON). A general client costs more
    CPU per request than the server does: with httpx on this 2-core machine both modes ran at the
    client's speed (about 100 requests/s, mean batch size 1.3 at concurrency 32).

    texts None: ``GET /health`` instead, no model call: the requests/s of the HTTP stack itself (server and
    this client on the same machine), the ceiling that no batching can pass.
    """
    host, port = url.removeprefix("http://").split(":")
    if texts is None:
        requests, check = [f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()], _healthy
    else:
        bodies = [json.dumps({"text": t}).encode() for t in texts]
        head = f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        requests, check = [head.encode() + b"Content-Length: %d\r\n\r\n" % len(b) + b for b in bodies], _predicted
    latencies: list[float] = []
    errors: list[str] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while next_index < n:
                i = next_index
                next_index += 1
                t0 = time.perf_counter()
                try:
                    writer.write(requests[i % len(requests)])
                    answer = await reader.readuntil(b"\r\n\r\n")
                    status = int(answer[9:12])
                    length = re.search(rb"content-length: *(\d+)", answer, re.I)
                    body = await reader.readexactly(int(length.group(1)) if length else 0)
                    if status != 200 or not check(body):
                        errors.append(f"{status}: {body[:80]!r}")
                except (OSError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
                latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    lat = sorted(latencies)
    return {
        "requests": n,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "requests_per_s": round(n / seconds, 1),
        "p50_ms": round(1000 * statistics.median(lat), 2),
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "runs" / "demo-bbc"), help="demo model folder (trained if missing)")
    ap.add_argument("--requests", type=int, default=2000, help="requests per (mode, concurrency) run")
    ap.add_argument("--concurrency", default="1,8,32", help="comma-separated concurrencies")
    ap.add_argument("--threads", type=int, default=1, help="model threads of each server")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve_load.json"))
    ap.add_argument("--logs", default="/tmp", help="folder for the servers' logs")
    ap.add_argument("--note", default="", help="a remark stored with the results (how the run was made)")
    args = ap.parse_args()
    model = Path(args.model)
    if not (model / "config.json").is_file():
        print(f"training the demo model into {model} (grutext demo)", file=sys.stderr)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        subprocess.run([sys.executable, "-m", "grutext", "demo", "--out", str(model)], check=True, env=env)
    texts = texts_50_words()
    levels = [int(c) for c in args.concurrency.split(",")]
    servers = {
        "batching": Server(model, True, args.threads, Path(args.logs) / "serve-load-batching.log"),
        "no_batching": Server(model, False, args.threads, Path(args.logs) / "serve-load-no-batching.log"),
    }
    runs: list[dict[str, Any]] = []
    try:
        for s in servers.values():
            s.wait_ready()
            asyncio.run(load(s.url, texts, 100, 8))  # warm-up, not recorded
        for c in levels:  # both modes at one concurrency back to back, so they see the same machine load
            for mode, s in servers.items():
                before = s.batch_stats()
                load_avg = os.getloadavg()[0]
                row = asyncio.run(load(s.url, texts, args.requests, c))
                after = s.batch_stats()
                passes, n_texts = after[0] - before[0], after[1] - before[1]
                row = {
                    "mode": mode,
                    **row,
                    "forward_passes": int(passes),
                    "mean_batch_size": round(n_texts / passes, 2) if passes else None,
                    "load_avg_1min_before": round(load_avg, 2),
                }
                runs.append(row)
                print(
                    f"{mode:<12} c={c:<3} {row['requests_per_s']:>8.1f} req/s  p50 {row['p50_ms']:>7.2f} ms  "
                    f"p99 {row['p99_ms']:>7.2f} ms  errors {row['errors']}  mean batch {row['mean_batch_size']}  "
                    f"(load {load_avg:.1f})",
                    flush=True,
                )
        top = max(levels)  # the HTTP stack alone at the top concurrency: the most any batching could reach
        ceiling = asyncio.run(load(servers["batching"].url, None, args.requests, top))
        print(
            f"GET /health    c={top:<3} {ceiling['requests_per_s']:>8.1f} req/s (no model: the HTTP ceiling)",
            flush=True,
        )
    finally:
        exit_codes = {mode: s.stop() for mode, s in servers.items()}
    speedup = {}
    for c in levels:
        on = next(r for r in runs if r["mode"] == "batching" and r["concurrency"] == c)
        off = next(r for r in runs if r["mode"] == "no_batching" and r["concurrency"] == c)
        speedup[str(c)] = round(on["requests_per_s"] / off["requests_per_s"], 2)
    result = {
        "benchmark": "serve_load",
        "grutext": __version__,
        "model": str(model),
        "request": "POST /v1/predict, one 50-word BBC News text",
        "server_flags": {"threads": args.threads, "batching": "--max-batch 32 --max-wait-ms 5", "host": "127.0.0.1"},
        "client": "raw asyncio HTTP/1.1 on the same machine, one keep-alive connection per concurrent worker",
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "note": "shared machine: other jobs ran at the same time (load average per run below)",
        },
        "note": args.note,
        "runs": runs,
        "batching_speedup_rps": speedup,
        "http_ceiling": {
            **ceiling,
            "request": "GET /health (no model)",
            "most_speedup_possible": round(
                ceiling["requests_per_s"]
                / next(r["requests_per_s"] for r in runs if r["mode"] == "no_batching" and r["concurrency"] == top),
                2,
            ),
        },
        "server_exit_codes": exit_codes,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    print(f"speed-up of batching (requests/s on / off): {speedup}; written {out}")


if __name__ == "__main__":
    main()
