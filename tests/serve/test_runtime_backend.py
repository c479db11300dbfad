"""The server over an export folder (`grutext export`, run by `grutext.runtime` with onnxruntime): the
same answers as the torch model directory. Skipped, saying why, where grutext.runtime or the export
command is not part of this checkout."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from grutext.cli.main import BY_NAME, main  # noqa: E402
from grutext.serve.app import create_app  # noqa: E402
from grutext.serve.backend import RuntimeBackend, TorchBackend, open_backend  # noqa: E402

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("grutext.runtime") is None or "export" not in BY_NAME,
    reason="grutext.runtime / `grutext export` are not in this checkout (issue 15 part A)",
)


@pytest.fixture(scope="module")
def exports(model_dirs, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("exports")
    out = {}
    for k in ("clf", "lm", "tag"):
        assert main(["export", str(model_dirs[k]), str(root / k)]) == 0
        out[k] = root / k
    return out


def test_an_export_folder_is_served_by_the_runtime(exports):
    backend = open_backend(exports["clf"])
    assert isinstance(backend, RuntimeBackend) and backend.kind == "classifier"
    assert json.loads((exports["clf"] / "grutext-export.json").read_text())["format"] == "grutext-onnx"


def test_runtime_predictions_equal_torch(exports, model_dirs):
    texts = ["the great movie of the night", "an awful boring plot", "okay average film"]
    torch_backend = TorchBackend(model_dirs["clf"])
    want = torch_backend.predict(texts)
    with TestClient(create_app(open_backend(exports["clf"]))) as c:
        info = c.get("/v1/model").json()
        assert info["info"]["backend"] == "onnxruntime" and info["labels"] == ["mid", "neg", "pos"]
        assert info["blend_weight"] == torch_backend.info["blend_weight"] > 0  # the export blends as torch does
        got = c.post("/v1/predict", json={"texts": texts}).json()["results"]
        r = c.post("/v1/explain", json={"text": texts[0]})
        assert r.status_code == 404 and "onnxruntime" in r.json()["detail"]
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want, strict=True):
        for lab, p in w["probs"].items():
            assert g["probs"][lab] == pytest.approx(p, abs=1e-4)


def test_an_export_without_ngrams_serves_the_network(tmp_path):
    from tests.export.helpers import save_classifier

    from grutext.export.exporter import export_model

    save_classifier(tmp_path / "plain")
    export_model(tmp_path / "plain", tmp_path / "onnx", log=lambda s: None)
    texts = ["the great movie of the night", "an awful boring plot"]
    want = TorchBackend(tmp_path / "plain").predict_proba(texts)
    with TestClient(create_app(open_backend(tmp_path / "onnx"))) as c:
        assert c.get("/v1/model").json()["blend_weight"] is None
        got = c.post("/v1/predict", json={"texts": texts}).json()["results"]
    labels = ["mid", "neg", "pos"]
    np.testing.assert_allclose([[g["probs"][lab] for lab in labels] for g in got], want, atol=1e-5)


def test_runtime_language_model_routes(exports, model_dirs):
    with TestClient(create_app(open_backend(exports["lm"]))) as c:
        words = c.post("/v1/next-word", json={"text": "the cat ", "k": 3}).json()["suggestions"]
        assert len(words) == 3 and all(0 <= w["prob"] <= 1 for w in words)
        r = c.post("/v1/generate", json={"prompt": "the cat", "max_tokens": 5, "seed": 0, "stream": True})
        assert r.status_code == 200 and "event: done" in r.text


def test_runtime_tagger_serves_tag_as_torch(exports, model_dirs):
    texts = ["the dog sees a cat .", "This house likes the car.", "a cat"]
    want = TorchBackend(model_dirs["tag"]).tag(texts)
    backend = open_backend(exports["tag"])
    assert isinstance(backend, RuntimeBackend) and backend.kind == "tagger"
    with TestClient(create_app(backend)) as c:
        info = c.get("/v1/model").json()
        assert info["task"] == "tagger" and info["routes"] == ["/v1/tag"] and info["info"]["backend"] == "onnxruntime"
        got = c.post("/v1/tag", json={"texts": texts}).json()["results"]
        one = c.post("/v1/tag", json={"text": texts[0]}).json()["results"]
        assert c.post("/v1/predict", json={"text": "a"}).status_code == 404
    assert got == want and one == want[:1]
    spans = [s for row in got for s in row["spans"]]
    assert {s["type"] for s in spans} == {"NP", "VP"}  # character spans, as the web page reads them
    assert all(texts[0][s["start"] : s["end"]] == s["text"] for s in got[0]["spans"])
