"""`python -m grutext serve` as a real uvicorn process on 127.0.0.1: it answers over HTTP, and SIGTERM
during a streamed generation finishes that request before the process exits cleanly; the command's
own argument errors are one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from grutext.cli.main import main  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_real_server_answers_and_stops_cleanly_on_sigterm(model_dirs, tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "grutext", "serve", str(model_dirs["lm"]), "--port", str(port), "--threads", "1"]
    cmd += ["--timeout-s", "120"]  # the first request loads the GRU's C++ loop: slow on a busy machine
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=120.0) as client:
            deadline = time.monotonic() + 90
            while True:  # wait for the server (importing torch takes a few seconds on a busy machine)
                assert proc.poll() is None, log.read_text()
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start within 90 s\n" + log.read_text()
                time.sleep(0.2)
            assert client.get("/ready").json() == {"ready": True, "task": "language_model"}
            assert client.get("/v1/model").json()["task"] == "language_model"
            r = client.post("/v1/next-word", json={"text": "the cat ", "k": 3})
            assert r.status_code == 200 and len(r.json()["suggestions"]) == 3
            r = client.post("/v1/predict", json={"text": "the cat"})
            assert r.status_code == 404 and "language model" in r.json()["detail"]

            # a long streamed generation is in flight when SIGTERM arrives: it must still complete
            body = {"prompt": "the cat", "max_tokens": 1000, "seed": 0, "stream": True}
            events: list[str] = []
            with client.stream("POST", "/v1/generate", json=body) as stream:
                assert stream.status_code == 200
                buffer = ""
                signalled = False
                for chunk in stream.iter_text():
                    buffer += chunk
                    while "\n\n" in buffer:
                        event, buffer = buffer.split("\n\n", 1)
                        events.append(event)
                    if events and not signalled:
                        proc.send_signal(signal.SIGTERM)
                        signalled = True
            assert signalled
        assert events[-1].startswith("event: done"), events[-3:]
        done = json.loads(events[-1].split("data: ", 1)[1])
        assert done["tokens"] == len(events) - 1 == 1000
        assert proc.wait(timeout=30) == 0, log.read_text()
        text = log.read_text()
        assert "Shutting down" in text and "Finished server process" in text
        assert "stopped by SIGTERM after finishing the requests in flight" in text
        assert "Traceback" not in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "{missing}"], "not found; expected a model directory or an export folder"),
        (["serve", "{clf}", "--no-batching", "--max-batch", "8"], "do not apply with --no-batching"),
        (["serve", "{clf}", "--no-batching", "--max-wait-ms", "5"], "do not apply with --no-batching"),
        (["serve", "{clf}", "--max-wait-ms", "nan"], "--max-wait-ms: expected a finite number >= 0, got nan"),
        (["serve", "{clf}", "--max-texts", "0"], "--max-texts: expected an integer >= 1, got 0"),
        (["serve", "{clf}", "--port", "70000"], "--port: expected 0..65535, got 70000"),
    ],
)
def test_serve_argument_errors_are_one_line(model_dirs, tmp_path, capsys, args, message):
    argv = [a.format(missing=tmp_path / "nope", clf=model_dirs["clf"]) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grutext serve: error: ") and message in err and "\n" not in err


PROBE = (
    "import sys, grutext.cli\n"
    "try:\n    grutext.cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
    "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn', 'prometheus_client') if m in sys.modules))\n"
)


@pytest.mark.parametrize("argv", [["--help"], ["serve", "--help"]])
def test_help_does_not_import_the_server_or_torch(argv):
    r = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout
    if argv[0] == "serve":
        assert "--max-wait-ms" in r.stdout and "--no-batching" in r.stdout
