"""Reading a data file's bytes (gzip-aware) and decoding them (UTF-8, warned cp1252 fallback)."""

from __future__ import annotations

import difflib
import gzip
import warnings
from collections.abc import Sequence
from pathlib import Path

from grutext.errors import ConfigError, DataError


def _where(source: str, line: int | None = None, unit: str = "line") -> str:
    return source if line is None else f"{source} {unit} {line:,}"


def _strip_gz(path: Path) -> tuple[str, bool]:
    """Return (lower-case suffix after removing .gz, is_gzip)."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    return Path(name).suffix, gz


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a file (use fmt='folder')") from None
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the extension says
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from None
    return raw


def _decode(raw: bytes, source: str, encoding: str | None) -> str:
    """Decode `raw`: strict when `encoding` is given, else UTF-8 with a cp1252 fallback."""
    if encoding is not None:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise DataError(
                f"{_where(source, line)}: byte 0x{raw[exc.start]:02x} at offset {exc.start:,} is not "
                f"valid {encoding} (save the file as UTF-8; Python: encoding='cp1252')"
            ) from None
        except LookupError:
            raise ConfigError(f"encoding: unknown codec {encoding!r}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        warnings.warn(
            f"{_where(source, line)}: byte 0x{raw[exc.start]:02x} at offset {exc.start:,} is not "
            f"valid UTF-8; decoding the whole file as cp1252 (save it as UTF-8 to avoid the guess; Python: "
            "read_dataset(encoding=...))",
            UnicodeWarning,
            stacklevel=3,
        )
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:  # cp1252 leaves 5 bytes undefined; latin-1 maps every byte
            return raw.decode("latin-1")


def _closest(name: str, options: Sequence[str]) -> str:
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""
