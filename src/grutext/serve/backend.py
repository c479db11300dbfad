"""What the server asks a model: one small protocol, two implementations.

`TorchBackend` runs a grutext model directory with torch (`Predictor`, `Generator`,
`Suggester`, the tagger's `predict_texts`, the explainer); `RuntimeBackend` wraps
`grutext.runtime.load` for a folder written by `grutext export` (it needs only onnxruntime). A
blended classifier's probabilities are blended with its n-gram model by both (``info["blend_weight"]``,
None for the network alone).
`open_backend(path)` picks one: a folder with `grutext-export.json` is an export, else a model
directory. The server calls every method from one worker thread.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from grutext.errors import ArtifactError, ConfigError
from grutext.version import __version__

EXPORT_MARKER = "grutext-export.json"
KINDS = ("classifier", "language_model", "tagger")


class Backend(Protocol):
    """The model behind the server (`grutext.runtime.RuntimeModel` has the same members)."""

    kind: str  # "classifier" | "language_model" | "tagger"
    labels: list[str]
    info: dict[str, Any]

    def predict(self, texts: Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def next_word(self, text: str, k: int = 5) -> list[tuple[str, float]]: ...

    def generate(
        self,
        prompt: str,
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> str: ...

    def stream(
        self,
        prompt: str,
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> Iterator[str]: ...

    def tag(self, texts: Sequence[str]) -> list[dict[str, Any]]: ...


def rows_from_probs(labels: Sequence[str], probs: np.ndarray, top_k: int | None = None) -> list[dict[str, Any]]:
    """`[{"label", "probs": {label: p}}]` from `(N, C)` probabilities; `top_k` keeps the k most likely
    classes (most likely first). A row with a non-finite probability has label None."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"top_k: expected an integer >= 1, got {top_k!r}")
    rows = []
    for p in np.asarray(probs, dtype=np.float64):
        finite = bool(np.isfinite(p).all())
        order = np.argsort(-np.nan_to_num(p, nan=-1.0), kind="stable")
        keep = order[:top_k] if top_k is not None else order
        rows.append(
            {
                "label": labels[int(order[0])] if finite else None,
                "probs": {labels[int(j)]: float(p[j]) for j in keep},
            }
        )
    return rows


def tag_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`/v1/tag` results of tagged raw texts (`predict_texts` / `TaggerModel.tag` rows): tokens, tags and
    the chunks as spans with character offsets (``start``, ``end``) and their text."""
    return [
        {
            "tokens": row["tokens"],
            "tags": row["tags"],
            "spans": [
                {"type": c["type"], "start": c["char_start"], "end": c["char_end"], "text": c["text"]}
                for c in row["chunks"]
            ],
        }
        for row in rows
    ]


class TorchBackend:
    """A grutext model directory run with torch.

    Args:
        path: the model directory (`grutext train` / `save_model` output).
        threads: torch intra-op threads (None: torch's default).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import torch

        from grutext.artifact import load_model

        if threads is not None:
            torch.set_num_threads(threads)
        self.path = Path(path)
        self.loaded = load_model(self.path)
        self.kind: str = self.loaded.kind
        if self.kind not in KINDS:
            raise ArtifactError(f"{self.path}: a {self.kind!r} model; the server knows {', '.join(KINDS)}")
        self.labels: list[str] = list(self.loaded.labels) if self.kind == "classifier" else []
        self._predictor: Any = None
        self._generator: Any = None
        self._suggester: Any = None
        if self.kind == "classifier":
            from grutext.infer.predict import Predictor

            self._predictor = Predictor(self.loaded)
        elif self.kind == "language_model":
            from grutext.infer.generate import Generator
            from grutext.infer.suggest import Suggester
            from grutext.tasks.language_model.predict import lm_settings

            add_eos = lm_settings(self.loaded).add_eos
            self._generator = Generator(self.loaded.model, self.loaded.tokenizer, add_eos=add_eos)
            self._suggester = Suggester(self.loaded.model, self.loaded.tokenizer, add_eos=add_eos)
        cfg = self.loaded.config
        self.info: dict[str, Any] = {
            "backend": "torch",
            "path": str(self.path),
            "format": self.loaded.meta.get("format"),
            "format_version": self.loaded.meta.get("format_version"),
            "model_task": cfg.model.task if self.kind == "classifier" else None,
            "multilabel": self.kind == "classifier" and cfg.model.task == "multilabel",
            "tokenizer": self.loaded.tokenizer.kind,
            "max_len": cfg.data.max_len,
            "explain": self.kind == "classifier" and _single_network(self.loaded),
            "blend_weight": None if self.loaded.ngrams is None else float(self.loaded.ngrams.weight),
            "versions": {
                "grutext": __version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
                "model_written_by": self.loaded.meta.get("grutext_version"),
            },
        }

    # ---- classifier -------------------------------------------------------------------------------

    def _need(self, kind: str, what: str) -> None:
        if self.kind != kind:
            raise ArtifactError(f"{self.path}: {what} needs a {kind}; this model is a {self.kind}")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._need("classifier", "predict")
        return np.asarray(self._predictor.predict_proba(list(texts)))

    def predict(self, texts: Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]:
        rows = rows_from_probs(self.labels, self.predict_proba(texts), top_k)
        if self.info["multilabel"]:  # every class at p >= 0.5, as Predictor does
            for row in rows:
                row["labels"] = [lab for lab, p in row["probs"].items() if p >= 0.5]
        return rows

    def explain(self, text: str, method: str = "ig") -> dict[str, Any]:
        """Token importances for the predicted class, and the mean update gate per token and layer."""
        from grutext.explain.core import explain

        self._need("classifier", "explain")
        ex = explain(self.loaded, text, method=method)
        out: dict[str, Any] = {
            "tokens": ex.tokens,
            "importance": [float(v) for v in np.asarray(ex.importance)],
            "method": ex.method,
            "label": ex.predicted,
            "target": ex.target,
            "probs": {lab: float(p) for lab, p in zip(ex.labels, np.asarray(ex.probabilities), strict=True)},
            "notes": ex.notes,
            "update_gate": None,
        }
        if ex.gates is not None:  # (L, D, T) -> mean over layers and directions: (T,)
            z = np.asarray(ex.gates.mean("z"), dtype=np.float64)
            out["update_gate"] = [float(v) for v in z.reshape(-1, z.shape[-1]).mean(axis=0)]
        return out

    # ---- language model ---------------------------------------------------------------------------

    def next_word(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        self._need("language_model", "next-word")
        return [(w, float(p)) for w, p in self._suggester.suggest(text, k)]

    def _options(
        self, max_tokens: int, temperature: float, top_k: int | None, top_p: float | None, seed: int | None
    ) -> dict[str, Any]:
        self._need("language_model", "generate")
        return {"max_tokens": max_tokens, "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}

    def generate(
        self,
        prompt: str,
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> str:
        return str(self._generator.generate(prompt, **self._options(max_tokens, temperature, top_k, top_p, seed)))

    def stream(
        self,
        prompt: str,
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        return iter(self._generator.stream(prompt, **self._options(max_tokens, temperature, top_k, top_p, seed)))

    # ---- tagger -----------------------------------------------------------------------------------

    def tag(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        from grutext.tasks.tagging.predict import predict_texts

        self._need("tagger", "tag")
        return tag_rows(predict_texts(self.loaded, list(texts)))


def _single_network(loaded: Any) -> bool:
    from grutext.tasks import task_for

    return bool(task_for(loaded.kind, loaded.path).members(loaded.config) == 1)


class RuntimeBackend:
    """An export folder (`grutext export`) run by `grutext.runtime` (onnxruntime, no torch)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import importlib

        try:
            runtime: Any = importlib.import_module("grutext.runtime")
        except ImportError as exc:
            raise ArtifactError(
                f"{path}: an export folder needs grutext.runtime (pip install 'grutext[runtime]'); "
                f"it could not be imported ({exc})"
            ) from None
        self.path = Path(path)
        self.model = runtime.load(self.path, threads=threads)
        self.kind = str(self.model.kind)
        if self.kind not in KINDS:
            raise ArtifactError(f"{self.path}: a {self.kind!r} export; the server knows {', '.join(KINDS)}")
        self.labels = list(self.model.labels or [])
        info = dict(self.model.info or {})
        versions = dict(info.pop("versions", {}) or {})
        versions.setdefault("grutext", __version__)
        versions.setdefault("python", platform.python_version())
        try:
            import onnxruntime

            versions.setdefault("onnxruntime", onnxruntime.__version__)
        except ImportError:  # pragma: no cover - runtime.load needs it
            pass
        self.info = {
            **info,
            "backend": "onnxruntime",
            "path": str(self.path),
            "explain": False,
            "blend_weight": getattr(self.model, "blend_weight", None),  # the export's n-gram model, blended in
            "multilabel": bool(info.get("multilabel", False)),
            "versions": versions,
        }

    def predict(self, texts: Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]:
        return list(self.model.predict(list(texts), top_k=top_k))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(list(texts)))

    def next_word(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        return [(str(w), float(p)) for w, p in self.model.next_word(text, k=k)]

    def generate(
        self,
        prompt: str,
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> str:
        return str(
            self.model.generate(
                prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed
            )
        )

    def stream(
        self,
        prompt: str,
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        return iter(
            self.model.stream(
                prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed
            )
        )

    def tag(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        if self.kind != "tagger":
            raise ArtifactError(f"{self.path}: tag needs a tagger; this export is a {self.kind}")
        return tag_rows(self.model.tag(list(texts)))  # raw texts: rows as the torch predictor's


def is_export(path: str | Path) -> bool:
    """A folder written by `grutext export` (it holds grutext-export.json with format grutext-onnx)."""
    marker = Path(path) / EXPORT_MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{marker}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != "grutext-onnx":
        raise ArtifactError(f'{marker}: expected "format": "grutext-onnx", got {meta!r:.80}')
    return True


def open_backend(path: str | Path, threads: int | None = None) -> TorchBackend | RuntimeBackend:
    """The backend for a model directory (torch) or an export folder (onnxruntime).

    Raises:
        ArtifactError: the path is neither, or cannot be loaded (naming the file).
        ConfigError: threads < 1.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"--threads: expected an integer >= 1, got {threads!r}")
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: not found; expected a model directory or an export folder")
    if is_export(path):
        return RuntimeBackend(path, threads)
    return TorchBackend(path, threads)


__all__ = [
    "Backend",
    "EXPORT_MARKER",
    "KINDS",
    "RuntimeBackend",
    "TorchBackend",
    "is_export",
    "open_backend",
    "rows_from_probs",
    "tag_rows",
]
