"""`manifest.json`: what a model directory or a checkpoint held when grutext wrote it.

```
{"format": "grutext-manifest", "manifest_version": 1, "grutext_version": "0.1.0",
 "config_sha256": "...",              # canonical JSON of the run's config
 "depends": {"kind": ..., "labels": [...], "model.pooling": "max", ...},
 "files": {"config.json": "<sha256>", "model.safetensors": "<sha256>", ...}}
```

`write_manifest` is called last, on the complete folder, before it is renamed into place.
`verify_manifest` is called before anything in the folder is used: a config field the weights
depend on that differs from the manifest, an edited config, and a file whose bytes changed or
that is missing are each one `ArtifactError` naming the file (or field). A folder without a
manifest (saved before grutext 0.1.1, e.g. ``tests/fixtures/legacy``) is read unchecked.

The manifest guards against accidents (a truncated copy, a flipped byte, a hand-edited
config.json), not against someone who rewrites the manifest too: it is a checksum, not a
signature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grutext.errors import ArtifactError
from grutext.safeio import sha256_file, sha256_json
from grutext.version import __version__

NAME = "manifest.json"
FORMAT = "grutext-manifest"

# config.model fields the saved weights were built from: change one and the same tensors mean
# something else (pooling, the cell) or no longer fit (sizes, classes)
WEIGHT_FIELDS = (
    "task",
    "cell",
    "embed_dim",
    "hidden_size",
    "num_layers",
    "bidirectional",
    "pooling",
    "ensemble",
    "vocab_size",
    "num_classes",
)


def depends_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The parts of a model's config.json that its weights depend on: kind, labels, the model fields
    of `WEIGHT_FIELDS` and every task section (``lm``, ``tag``...)."""
    model = (meta.get("config") or {}).get("model") or {}
    out: dict[str, Any] = {"kind": meta.get("kind"), "labels": meta.get("labels", [])}
    for name in WEIGHT_FIELDS:
        if name in model:
            out[f"model.{name}"] = model[name]
    for key, value in meta.items():
        if key not in ("format", "format_version", "grutext_version", "torch_version", "kind", "config", "labels"):
            out[key] = value
    return out


def write_manifest(
    folder: Path, *, config: dict[str, Any] | None = None, depends: dict[str, Any] | None = None
) -> None:
    """Write `folder/manifest.json` with the SHA-256 of every file in `folder` (subfolders are not used)."""
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != NAME}
    doc = {
        "format": FORMAT,
        "manifest_version": 1,
        "grutext_version": __version__,
        "config_sha256": sha256_json(config) if config is not None else None,
        "depends": depends or {},
        "files": files,
    }
    (folder / NAME).write_text(json.dumps(doc, indent=1, allow_nan=False), encoding="utf-8")


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of `folder`, or None when it has none (a folder from before manifests)."""
    path = folder / NAME
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("files"), dict):
        raise ArtifactError(f"{path}: not a grutext manifest (expected format {FORMAT!r} with a 'files' table)")
    return doc


def verify_manifest(
    folder: Path, *, config: dict[str, Any] | None = None, depends: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Check `folder` against its manifest; returns the manifest (None when the folder has none).

    Args:
        folder: a model directory or checkpoint.
        config: the config as now read (checked against ``config_sha256``).
        depends: the weight-defining fields as now read (checked field by field, named in the error).

    Raises:
        ArtifactError: naming the field or file that does not match.
    """
    doc = read_manifest(folder)
    if doc is None:
        return None
    saved = doc.get("depends") or {}
    for key, value in (depends or {}).items():
        if key in saved and saved[key] != value:
            raise ArtifactError(
                f"{folder / 'config.json'}: {key} is {_short(value)} but the weights were saved with "
                f"{_short(saved[key])} ({NAME}); config.json was edited after saving: restore it or retrain"
            )
    if config is not None and doc.get("config_sha256") not in (None, sha256_json(config)):
        raise ArtifactError(
            f"{folder / 'config.json'}: the run's config differs from the one saved ({NAME} config hash); "
            "config.json was edited after saving: restore it or retrain"
        )
    for name, digest in doc["files"].items():
        path = folder / name
        if Path(name).name != name:
            raise ArtifactError(f"{folder / NAME}: file name {name!r} is not a plain name inside the folder")
        if path.is_symlink():
            raise ArtifactError(f"{path}: is a symbolic link, expected the file {NAME} lists (links are not followed)")
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in {NAME} but missing (incomplete copy?)")
        if sha256_file(path) != digest:
            raise ArtifactError(
                f"{path}: contents do not match {NAME} (SHA-256 differs: changed or corrupted after saving)"
            )
    return doc


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) > 6:
        return f"{len(value)} items {value[:4]!r}..."
    return repr(value)


__all__ = ["NAME", "WEIGHT_FIELDS", "depends_of", "read_manifest", "verify_manifest", "write_manifest"]
