"""The export folder's manifest (``grutext-export.json``): its format, reading it, file checksums."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from grutext.errors import ArtifactError

FORMAT = "grutext-onnx"
FORMAT_VERSION = 1
MANIFEST = "grutext-export.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The parsed ``grutext-export.json`` of an export folder, checked for format and version.

    Raises:
        ArtifactError: no folder, no manifest, not JSON, another format, or a newer version.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: export folder not found (expected the OUT of `grutext export`)")
    mf = folder / MANIFEST
    if not mf.is_file():
        raise ArtifactError(f"{folder}: not a grutext export folder (no {MANIFEST}); create one with `grutext export`")
    try:
        info = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{mf}: expected JSON, could not read it ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        got = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise ArtifactError(f"{mf}: expected format {FORMAT!r}, got {got!r}")
    version = info.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{mf}: format_version {version!r} is not one this grutext reads (<= {FORMAT_VERSION}); upgrade grutext"
        )
    return info


__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "read_manifest", "sha256_file"]
