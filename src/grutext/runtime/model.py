"""`RuntimeModel`, what every exported model has: the files checked against the manifest, the
tokenizer and the onnxruntime session."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grutext.errors import ArtifactError, ConfigError, DataError
from grutext.runtime.manifest import MANIFEST, sha256_file
from grutext.runtime.tokenizer import RuntimeTokenizer


def _session(path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads: expected an integer >= 1 or None (onnxruntime's default), got {threads!r}")
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        raise ArtifactError(f"{path}: onnxruntime could not load it ({str(exc).splitlines()[0]})") from None


class RuntimeModel:
    """What every exported model has: ``kind``, ``labels``, ``info``, ``path``, the session."""

    kind: str = ""
    optional_files: tuple[str, ...] = ()  # files beside the graph and tokenizer checked when the manifest lists them

    def __init__(self, path: Path, info: dict[str, Any], threads: int | None, int8: bool) -> None:
        self.path = path
        self.info = info
        self.int8 = int8
        files = info.get("files") or {}
        name = "model.int8.onnx" if int8 else "model.onnx"
        if name not in files:
            hint = " (export with --int8 to get one)" if int8 and self.kind != "tagger" else ""
            raise ArtifactError(f"{path}: this export has no {name}{hint}")
        for fname, entry in files.items():
            if fname not in (name, "tokenizer.json", *self.optional_files):
                continue
            fpath = path / fname
            if not fpath.is_file():
                raise ArtifactError(f"{fpath}: missing; the export folder is incomplete")
            if sha256_file(fpath) != entry.get("sha256"):
                raise ArtifactError(f"{fpath}: sha256 differs from {MANIFEST}; the file was changed or damaged")
        self.tokenizer = RuntimeTokenizer(path / "tokenizer.json")
        self.session = _session(path / name, threads)
        self.labels: list[str] = list(info.get("labels") or [])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, int8={self.int8})"


def _check_texts(texts: Any, name: str = "texts") -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise DataError(f"{name}: expected a list of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str) or not t.strip():
            raise DataError(f"{name}[{i}]: expected a non-empty string, got {t!r:.40}")
    return out


__all__ = ["RuntimeModel"]
