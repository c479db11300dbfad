"""The server's routes, limits, errors, batching, timeouts and metrics, through FastAPI's test client
on tiny models (each answer is checked against the library's own Predictor/Generator/Suggester/tagger)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from fastapi.testclient import TestClient  # noqa: E402

from grutext.errors import ArtifactError  # noqa: E402
from grutext.serve.app import ServeSettings, create_app, dumps, finite_json  # noqa: E402
from grutext.serve.backend import TorchBackend, is_export, open_backend  # noqa: E402


def strict(text: str) -> Any:
    """json.loads that refuses NaN and Infinity."""

    def bad(name: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=bad)


@pytest.fixture(scope="module")
def backends(model_dirs) -> dict[str, TorchBackend]:
    torch.set_num_threads(1)
    return {k: TorchBackend(d) for k, d in model_dirs.items()}


@pytest.fixture(scope="module")
def clf(backends):
    with TestClient(create_app(backends["clf"])) as c:
        yield c


@pytest.fixture(scope="module")
def lm(backends):
    with TestClient(create_app(backends["lm"])) as c:
        yield c


@pytest.fixture(scope="module")
def tagger(backends):
    with TestClient(create_app(backends["tag"])) as c:
        yield c


class Spy:
    """A backend that delegates to a real one, records the size of every predict call and can be slow."""

    def __init__(self, inner: TorchBackend, delay_s: float = 0.0) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def predict(self, texts: list[str], top_k: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            self.calls.append(len(texts))
        time.sleep(self.delay_s)
        return self.inner.predict(texts, top_k)


# ---- common routes ----------------------------------------------------------------------------------


def test_health_ready_model_docs_page(clf, backends):
    assert clf.get("/health").json() == {"status": "ok"}
    assert clf.get("/ready").json() == {"ready": True, "task": "classifier"}
    info = clf.get("/v1/model").json()
    assert info["task"] == "classifier"
    assert info["labels"] == backends["clf"].labels == ["mid", "neg", "pos"]
    assert info["versions"]["grutext"] and info["versions"]["torch"] == torch.__version__
    assert info["limits"]["max_texts"] == 64 and info["limits"]["max_chars"] == 10_000
    assert info["routes"] == ["/v1/predict", "/v1/explain"]
    assert info["blend_weight"] == backends["clf"].loaded.ngrams.weight > 0  # trained with model.blend = auto
    assert "/v1/predict" in clf.get("/openapi.json").json()["paths"]
    assert "swagger" in clf.get("/docs").text.lower()
    page = clf.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text
    assert clf.get("/static/app.js").status_code == 200 and clf.get("/static/style.css").status_code == 200


def test_unknown_route_and_method_are_json(clf):
    r = clf.get("/v2/nothing")
    assert r.status_code == 404 and "no route GET /v2/nothing" in r.json()["detail"]
    r = clf.get("/v1/predict")
    assert r.status_code == 405 and "GET not allowed" in r.json()["detail"]


# ---- classifier -------------------------------------------------------------------------------------


def test_predict_equals_the_predictor(clf, backends):
    from grutext.infer.predict import Predictor

    texts = ["the great movie of the night", "an awful boring plot", "okay average film"]
    expected = Predictor(backends["clf"].loaded).predict(texts)
    got = clf.post("/v1/predict", json={"texts": texts}).json()["results"]
    assert [g["label"] for g in got] == [e["label"] for e in expected] == ["pos", "neg", "mid"]
    for g, e in zip(got, expected, strict=True):
        assert g["probs"].keys() == e["probabilities"].keys()
        for lab, p in g["probs"].items():
            assert p == pytest.approx(e["probabilities"][lab], abs=1e-6)
        assert list(g["probs"].values()) == sorted(g["probs"].values(), reverse=True)
    one = clf.post("/v1/predict", json={"text": texts[1]}).json()["results"]
    assert len(one) == 1 and one[0]["label"] == "neg"


def test_predict_is_the_blend_and_a_model_without_one_the_network(clf, backends, tmp_path):
    """The classifier's probabilities blend its n-gram model in (as Predictor does); a model without one
    answers its network's, with blend_weight null (the language model's too)."""
    from tests.export.helpers import save_classifier

    from grutext.infer.predict import Predictor

    texts = ["the great movie of the night", "an awful boring plot"]
    loaded = backends["clf"].loaded
    network = Predictor(dataclasses.replace(loaded, ngrams=None))
    want = loaded.ngrams.blend(network.predict_proba(texts), texts)
    got = clf.post("/v1/predict", json={"texts": texts}).json()["results"]
    for g, w in zip(got, want, strict=True):
        assert [g["probs"][lab] for lab in loaded.labels] == pytest.approx(list(w), abs=1e-6)
    plain = TorchBackend(save_classifier(tmp_path / "plain"))
    with TestClient(create_app(plain)) as c:
        assert c.get("/v1/model").json()["blend_weight"] is None
        got = c.post("/v1/predict", json={"texts": texts}).json()["results"]
    want = Predictor.load(tmp_path / "plain").predict_proba(texts)
    np.testing.assert_allclose([[g["probs"][lab] for lab in plain.labels] for g in got], want, atol=1e-6)
    with TestClient(create_app(backends["lm"])) as c:
        assert c.get("/v1/model").json()["blend_weight"] is None


def test_top_k(clf):
    r = clf.post("/v1/predict", json={"text": "a great film", "top_k": 2}).json()["results"][0]
    assert len(r["probs"]) == 2 and next(iter(r["probs"])) == r["label"] == "pos"
    for bad in (0, 4):
        r = clf.post("/v1/predict", json={"text": "a great film", "top_k": bad})
        assert r.status_code == 422 and "top_k: expected an integer from 1 to 3" in r.json()["detail"]


def test_explain_route(clf, backends):
    from grutext.explain.core import explain

    r = clf.post("/v1/explain", json={"text": "the great movie", "method": "occlusion"})
    assert r.status_code == 200
    got = r.json()
    ex = explain(backends["clf"].loaded, "the great movie", method="occlusion")
    assert got["tokens"] == ex.tokens == ["the", "great", "movie"]
    assert got["importance"] == pytest.approx(list(ex.importance), abs=1e-6)
    assert got["label"] == "pos" and len(got["update_gate"]) == 3
    assert all(0.0 <= z <= 1.0 for z in got["update_gate"])
    r = clf.post("/v1/explain", json={"text": "the great movie", "method": "magic"})
    assert r.status_code == 422 and r.json()["detail"].startswith("method:")


# ---- language model and tagger ----------------------------------------------------------------------


def test_next_word_equals_the_suggester(lm, backends):
    from grutext.infer.suggest import Suggester

    b = backends["lm"]
    expected = Suggester(b.loaded.model, b.loaded.tokenizer).suggest("the cat ", 4)
    got = lm.post("/v1/next-word", json={"text": "the cat ", "k": 4}).json()["suggestions"]
    assert [s["word"] for s in got] == [w for w, _ in expected]
    assert [s["prob"] for s in got] == pytest.approx([p for _, p in expected])
    assert lm.post("/v1/next-word", json={"text": "the cat ", "k": 0}).status_code == 422


def test_generate_plain_and_streamed(lm, backends):
    from grutext.infer.generate import Generator

    b = backends["lm"]
    opts = {"max_tokens": 6, "temperature": 0.9, "seed": 3}
    expected = Generator(b.loaded.model, b.loaded.tokenizer).generate("the dog", **opts)
    assert lm.post("/v1/generate", json={"prompt": "the dog", **opts}).json() == {"text": expected}
    r = lm.post("/v1/generate", json={"prompt": "the dog", "stream": True, **opts})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [e for e in r.text.split("\n\n") if e.strip()]
    tokens = [strict(e.removeprefix("data: "))["token"] for e in events[:-1]]
    assert events[-1].startswith("event: done\ndata: ")
    done = strict(events[-1].split("data: ", 1)[1])
    assert "".join(tokens) == done["text"] == expected and done["tokens"] == len(tokens)


def test_generate_bad_options_are_422_before_the_stream(lm):
    r = lm.post("/v1/generate", json={"prompt": "the dog", "temperature": 0, "stream": True})
    assert r.status_code == 422 and r.json()["detail"].startswith("temperature: expected a number > 0")
    r = lm.post("/v1/generate", json={"prompt": "the dog", "max_tokens": 1001})
    assert r.status_code == 422 and "max_tokens: expected 1..1000" in r.json()["detail"]
    r = lm.post("/v1/generate", json={"prompt": "zzz qqq"})
    assert r.status_code == 422 and "unknown" in r.json()["detail"]


def test_tag_equals_the_tagger(tagger, backends):
    from grutext.tasks.tagging.predict import predict_texts

    texts = ["the dog sees a cat .", "this car likes the house ."]
    expected = predict_texts(backends["tag"].loaded, texts)
    got = tagger.post("/v1/tag", json={"texts": texts}).json()["results"]
    for g, e, text in zip(got, expected, texts, strict=True):
        assert g["tokens"] == e["tokens"] and g["tags"] == e["tags"]
        assert [s["text"] for s in g["spans"]] == [c["text"] for c in e["chunks"]]
        assert all(text[s["start"] : s["end"]] == s["text"] for s in g["spans"])
    assert [s["type"] for s in got[0]["spans"]] == ["NP", "VP", "NP"]


@pytest.mark.parametrize(
    ("server", "route", "body", "task"),
    [
        ("clf", "/v1/tag", {"text": "a"}, "classifier"),
        ("clf", "/v1/generate", {"prompt": "a"}, "classifier"),
        ("lm", "/v1/predict", {"text": "a"}, "language model"),
        ("lm", "/v1/explain", {"text": "a"}, "language model"),
        ("tagger", "/v1/next-word", {"text": "a"}, "tagger"),
    ],
)
def test_route_of_another_task(request, server, route, body, task):
    r = request.getfixturevalue(server).post(route, json=body)
    assert r.status_code == 404
    assert f"this server's model is a {task}" in r.json()["detail"] and route in r.json()["detail"]


# ---- limits and bad requests ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(backends):
    settings = ServeSettings(max_texts=3, max_chars=20, max_body_bytes=300)
    with TestClient(create_app(backends["clf"], settings)) as c:
        yield c


def test_body_limit_413(small):
    r = small.post("/v1/predict", json={"text": "x" * 400})
    assert r.status_code == 413
    assert (
        r.json()["detail"].startswith("request body: ")
        and "the limit is 300 bytes (--max-body-bytes)" in r.json()["detail"]
    )

    def chunks():  # no Content-Length: counted while reading
        yield b'{"text": "'
        for _ in range(40):
            yield b"x" * 10
        yield b'"}'

    r = small.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "more than 300 bytes" in r.json()["detail"]


def test_text_limits_422(small):
    r = small.post("/v1/predict", json={"texts": ["a", "b", "c", "d"]})
    assert r.status_code == 422 and r.json()["detail"] == "texts: 4 texts, the limit is 3 per request (--max-texts)"
    r = small.post("/v1/predict", json={"texts": ["a", "x" * 21]})
    assert r.status_code == 422
    assert r.json()["detail"] == "texts[1]: 21 characters, the limit is 20 per text (--max-chars)"
    assert small.post("/v1/predict", json={"texts": ["a", "x" * 20]}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"text": "a"', 400, "request body: not valid JSON"),
        (b"not json", 400, "request body: not valid JSON"),
        (b'{"text": 5}', 422, "text: Input should be a valid string, got 5"),
        (b'{"texts": ["a", null]}', 422, "texts.1: Input should be a valid string"),
        (b'{"txt": "a"}', 422, "txt: unknown field for this route"),
        (b"{}", 422, 'expected exactly one of "text" (a string) or "texts" (a list)'),
        (b'{"text": "a", "texts": ["b"]}', 422, "expected exactly one of"),
        (b'{"texts": []}', 422, "texts: expected at least one text"),
        (b'{"text": "   "}', 422, "text: expected a non-empty text"),
    ],
)
def test_bad_requests_get_one_clear_line(clf, body, status, message):
    r = clf.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and message in detail


# ---- NaN-safe JSON ----------------------------------------------------------------------------------


def test_finite_json_and_dumps():
    clean, found = finite_json({"a": [1.0, float("nan")], "b": {"c": float("inf")}, "d": np.float32(2.5)})
    assert clean == {"a": [1.0, None], "b": {"c": None}, "d": 2.5} and found == ["a[1]", "b.c"]
    out = strict(dumps({"p": float("-inf")}))
    assert out["p"] is None and "non-finite" in out["warnings"][0] and "p" in out["warnings"][0]


def test_a_model_with_nan_weights_answers_strict_json(model_dirs):
    broken = TorchBackend(model_dirs["clf"])
    with torch.no_grad():
        for p in broken.loaded.model.parameters():
            p.fill_(float("nan"))
    with TestClient(create_app(broken)) as c:
        r = c.post("/v1/predict", json={"text": "a great film"})
    assert r.status_code == 200
    body = strict(r.text)
    row = body["results"][0]
    assert row["label"] is None and set(row["probs"].values()) == {None}
    assert "non-finite" in body["warnings"][0] and "results[0].probs" in body["warnings"][0]
    assert "NaN" not in r.text


# ---- batching, timeouts, metrics --------------------------------------------------------------------


def _burst(client: TestClient, n: int, per_request: int = 1) -> list[int]:
    texts = ["the great movie", "an awful plot", "okay film"]
    bodies = [{"texts": [texts[(i + j) % 3] for j in range(per_request)]} for i in range(n)]
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(client.post, "/v1/predict", json=b) for b in bodies]
        return [f.result().status_code for f in futures]


def test_concurrent_requests_share_forward_passes(backends):
    spy = Spy(backends["clf"], delay_s=0.05)
    with TestClient(create_app(spy, ServeSettings(max_batch=32, max_wait_ms=100))) as c:
        assert _burst(c, 12) == [200] * 12
        metrics = c.get("/metrics").text
    assert sum(spy.calls) == 12 and max(spy.calls) > 1 and len(spy.calls) < 12
    count = float(re.search(r'grutext_batch_size_count\{op="predict"\} (\S+)', metrics).group(1))
    total = float(re.search(r'grutext_batch_size_sum\{op="predict"\} (\S+)', metrics).group(1))
    assert (count, total) == (len(spy.calls), 12.0)


def test_batches_are_bounded_and_off_means_one_request_per_pass(backends):
    spy = Spy(backends["clf"], delay_s=0.02)
    with TestClient(create_app(spy, ServeSettings(max_batch=4, max_wait_ms=100))) as c:
        assert _burst(c, 10) == [200] * 10
    assert sum(spy.calls) == 10 and max(spy.calls) <= 4
    spy = Spy(backends["clf"], delay_s=0.02)  # requests never split: 3 + 3 > 4, so one per pass
    with TestClient(create_app(spy, ServeSettings(max_batch=4, max_wait_ms=100))) as c:
        assert _burst(c, 6, per_request=3) == [200] * 6
    assert spy.calls == [3] * 6
    spy = Spy(backends["clf"], delay_s=0.02)  # a request larger than max_batch runs alone
    with TestClient(create_app(spy, ServeSettings(max_batch=2, max_wait_ms=100))) as c:
        assert _burst(c, 3, per_request=3) == [200] * 3
    assert spy.calls == [3] * 3
    spy = Spy(backends["clf"], delay_s=0.02)
    with TestClient(create_app(spy, ServeSettings(batching=False))) as c:
        assert _burst(c, 8) == [200] * 8
    assert spy.calls == [1] * 8


def test_a_lone_client_never_waits_for_company(backends):
    """Sequential requests: waiting --max-wait-ms (here 60 s) for others would exceed the 5 s timeout."""
    with TestClient(create_app(backends["clf"], ServeSettings(max_wait_ms=60_000, timeout_s=5))) as c:
        for _ in range(3):
            assert c.post("/v1/predict", json={"text": "a great film"}).status_code == 200


def test_timeout_504(backends):
    spy = Spy(backends["clf"], delay_s=0.6)
    with TestClient(create_app(spy, ServeSettings(timeout_s=0.2))) as c:
        r = c.post("/v1/predict", json={"text": "a great film"})  # the 504 itself says the wait was cut
        assert r.status_code == 504 and r.json()["detail"] == "the model did not answer within 0.2 s (--timeout-s)"
        assert 'grutext_errors_total{route="/v1/predict",status="504"} 1.0' in c.get("/metrics").text


class SlowStream:
    """A language model whose second token comes only after `delay_s`."""

    def __init__(self, inner: TorchBackend, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stream(self, prompt: str, **options: Any):
        for i, token in enumerate(self.inner.stream(prompt, **options)):
            if i == 1:
                time.sleep(self.delay_s)
            yield token


def test_a_stream_past_the_timeout_ends_with_an_error_event(backends):
    with TestClient(create_app(SlowStream(backends["lm"], 1.5), ServeSettings(timeout_s=0.5))) as c:
        r = c.post("/v1/generate", json={"prompt": "the dog", "max_tokens": 5, "seed": 0, "stream": True})
    assert r.status_code == 200
    events = [e for e in r.text.split("\n\n") if e.strip()]
    assert events[0].startswith("data: ") and len(events) == 2
    assert events[-1] == 'event: error\ndata: {"detail":"the model did not finish within 0.5 s (--timeout-s)"}'


def test_metrics_count_requests_errors_and_latency(backends):
    with TestClient(create_app(backends["clf"], ServeSettings(max_body_bytes=200))) as c:
        for _ in range(3):
            assert c.post("/v1/predict", json={"text": "a great film"}).status_code == 200
        assert c.post("/v1/predict", json={"texts": []}).status_code == 422
        assert c.post("/v1/predict", json={"text": "x" * 300}).status_code == 413
        assert c.get("/nowhere").status_code == 404
        text = c.get("/metrics").text
    assert 'grutext_requests_total{route="/v1/predict",status="200"} 3.0' in text
    assert 'grutext_errors_total{route="/v1/predict",status="422"} 1.0' in text
    assert 'grutext_errors_total{route="/v1/predict",status="413"} 1.0' in text
    assert 'grutext_errors_total{route="other",status="404"} 1.0' in text
    assert 'grutext_request_latency_seconds_count{route="/v1/predict"} 5.0' in text
    assert not any('status="200"' in line and "/v1/predict" in line and "errors" in line for line in text.splitlines())


def test_settings_are_checked():
    from grutext.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--max-texts: expected an integer >= 1, got 0"):
        ServeSettings(max_texts=0).check()
    with pytest.raises(ConfigError, match=r"--timeout-s: expected a number > 0"):
        ServeSettings(timeout_s=0).check()
    with pytest.raises(ConfigError, match=r"--max-wait-ms: expected a finite number >= 0"):
        ServeSettings(max_wait_ms=math.inf).check()


# ---- backends ---------------------------------------------------------------------------------------


def test_open_backend_errors(tmp_path, model_dirs):
    with pytest.raises(ArtifactError, match="not found; expected a model directory or an export folder"):
        open_backend(tmp_path / "missing")
    with pytest.raises(ArtifactError, match="incomplete model directory"):
        open_backend(tmp_path)
    (tmp_path / "grutext-export.json").write_text('{"format": "other"}')
    with pytest.raises(ArtifactError, match='expected "format": "grutext-onnx"'):
        is_export(tmp_path)
    (tmp_path / "grutext-export.json").write_text("{oops")
    with pytest.raises(ArtifactError, match="grutext-export.json: not valid JSON"):
        open_backend(tmp_path)
    assert not is_export(model_dirs["clf"])
    from grutext.errors import ConfigError

    with pytest.raises(ConfigError, match="--threads: expected an integer >= 1"):
        open_backend(model_dirs["clf"], threads=0)
