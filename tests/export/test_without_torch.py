"""grutext without torch: the package's own requirements and the runtime extra name no torch, a
command that needs torch says which extra installs it, and an export is served with torch absent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.export.helpers import save_classifier  # noqa: E402

from grutext.export.exporter import export_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# a meta-path finder that makes `import torch` (and scikit-learn, the other training-only package)
# fail as it does where they are not installed; everything else imports as usual
NO_TORCH = textwrap.dedent(
    """
    import sys
    class _Absent:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "sklearn"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, _Absent())
    sys.path.insert(0, SRC)
    """
)


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = f"SRC = {str(ROOT / 'src')!r}\n" + NO_TORCH + textwrap.dedent(script)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )


def test_a_torch_command_without_torch_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("text,label\n" + "a fine film,pos\na dull film,neg\n" * 20)
    res = _run(
        """
        from grutext.cli import main
        raise SystemExit(main(["train", "t.csv", "--out", "run"]))
        """,
        tmp_path,
    )
    assert res.returncode == 2, res.stderr
    (line,) = res.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("grutext train: error: this command needs torch, which is not installed")
    assert "pip install 'grutext[train]'" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("missing", ["grutext.no_such_module", "not_an_extra_package"])
def test_a_missing_module_not_in_an_extra_is_not_dressed_up(monkeypatch, missing: str) -> None:
    import argparse
    import importlib

    cli = importlib.import_module("grutext.cli.main")  # the module (grutext.cli.main is also the function)

    def fails(args: argparse.Namespace) -> int:
        raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)

    parsed = argparse.Namespace(command="train", func=fails)
    monkeypatch.setattr(
        cli, "build_parser", lambda populate=(): argparse.Namespace(parse_known_args=lambda a: (parsed, []))
    )
    with pytest.raises(ModuleNotFoundError, match=missing):
        cli.main(["train"])


def test_an_export_is_served_with_torch_absent(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    save_classifier(tmp_path / "clf", blend=0.4)
    export_model(tmp_path / "clf", tmp_path / "clf-onnx", log=lambda s: None)
    res = _run(
        """
        import json, sys
        from fastapi.testclient import TestClient
        from grutext.serve.app import create_app
        from grutext.serve.backend import open_backend
        with TestClient(create_app(open_backend("clf-onnx", threads=1))) as client:
            r = client.post("/v1/predict", json={"text": "the great film"})
        assert "torch" not in sys.modules and "sklearn" not in sys.modules
        print(r.status_code, json.dumps(r.json()))
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    status, body = res.stdout.strip().split(" ", 1)
    assert status == "200"
    from grutext import runtime

    want = runtime.load(tmp_path / "clf-onnx").predict(["the great film"])[0]
    got = json.loads(body)["results"][0]
    assert got["label"] == want["label"]
    assert got["probs"] == pytest.approx(want["probs"], abs=1e-6)


def _requirements(tmp_path: Path) -> list[str]:
    """Requires-Dist of the wheel built from this checkout."""
    src = tmp_path / "project"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    code = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "dist")], cwd=src, check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def test_runtime_extra_installs_no_torch(tmp_path: Path) -> None:
    from packaging.requirements import Requirement

    reqs = [Requirement(r) for r in _requirements(tmp_path)]

    def names(extra: str | None) -> set[str]:
        env = {"extra": extra or ""}
        return {r.name for r in reqs if r.marker is None or (extra and r.marker.evaluate(env))}

    assert names(None) == {"numpy", "tokenizers", "safetensors"}
    assert "torch" not in names("runtime") and "onnxruntime" in names("runtime")
    assert "torch" not in names("serve")
    assert {"torch", "scikit-learn"} <= names("train")
    assert "torch" in names("dev")
