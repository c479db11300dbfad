"""The folder format: one sub-folder a class, one file a text."""

from __future__ import annotations

import warnings
from pathlib import Path

from grutext.data.dataset import TextDataset
from grutext.data.rawfile import _decode, _read_bytes
from grutext.errors import DataError


def _read_folder(path: Path, source: str, encoding: str | None) -> TextDataset:
    classes = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name != "unsup")
    if not classes:
        raise DataError(f"{source}: no class sub-folders, expected {path}/<class>/<file>.txt")
    texts: list[str] = []
    labels: list[str] = []
    for folder in classes:
        files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        if not files:
            raise DataError(f"{folder}: empty class folder, expected at least one text file")
        for f in files:
            body = _decode(_read_bytes(f), str(f), encoding).strip()
            if not body:
                raise DataError(f"{f}: empty file, expected a text for class {folder.name!r}")
            texts.append(body)
            labels.append(folder.name)
    if len(classes) < 2:
        warnings.warn(f"{source}: only one class folder ({classes[0].name!r})", stacklevel=3)
    return TextDataset(texts, labels, source)
