"""Writing files and JSON so that nothing is lost and nothing is silent.

- `dumps`: every JSON grutext prints or writes goes through it. Non-finite floats (NaN, +-Infinity,
  which `json.dumps` writes as bare ``NaN``/``Infinity``, text that strict parsers and
  ``JSON.parse`` reject) become ``null``, and the paths of the replaced values are reported on
  stderr; the text is then produced with ``allow_nan=False``, so it is always valid JSON.
- `write_output`: a user-facing output (report.html, explain --html/--png, plots) is written to a
  temporary file beside it and renamed into place; a symlink at the target is refused, never
  followed (a model folder may come from anyone).
- `sha256_file`: the digest the model and checkpoint manifests record.
- `inside`: whether a path stored in a model folder resolves inside that folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grutext.errors import GrutextError


def _finite(obj: Any, where: str, found: list[str]) -> Any:
    """`obj` with every non-finite float replaced by None; the JSON paths replaced go to `found`."""
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        found.append(where or "$")
        return None
    if isinstance(obj, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k), found) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v, f"{where}[{i}]", found) for i, v in enumerate(obj)]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy / torch scalars and arrays
        return _finite(obj.tolist(), where, found)
    return obj


def finite_json(obj: Any) -> tuple[Any, list[str]]:
    """`(obj with NaN/Infinity replaced by None, the paths replaced)`."""
    found: list[str] = []
    return _finite(obj, "", found), found


def dumps(obj: Any, *, what: str = "JSON output", note: bool = True, **kwargs: Any) -> str:
    """`json.dumps` that never writes NaN or Infinity.

    Non-finite numbers become ``null``; when any were replaced and `note` is true, one line on stderr
    says how many and where (the first three paths), so the null is never silent.

    Args:
        obj: JSON-ready data (numpy/torch values are converted with ``tolist``).
        what: names the output in the note (``"metrics.json"``, ``"predict --json"``).
        note: print the note to stderr.
        **kwargs: passed to `json.dumps` (``indent``, ``ensure_ascii``...).
    """
    clean, found = finite_json(obj)
    if found and note:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        print(f"note: {what}: {len(found)} non-finite value(s) written as null ({shown})", file=sys.stderr)
    kwargs.setdefault("default", _default)
    return json.dumps(clean, allow_nan=False, **kwargs)


def _default(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return _finite(x.tolist(), "", [])
    return str(x)


def loads_strict(text: str) -> Any:
    """`json.loads` that refuses NaN/Infinity (the tests' strict parser; what ``JSON.parse`` accepts)."""

    def bad(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=bad)


def refuse_symlink(path: Path, flag: str | None = None) -> None:
    """Raise GrutextError when `path` is a symlink: outputs are never written through one."""
    if path.is_symlink():
        name = f"{flag} {path}" if flag else str(path)
        raise GrutextError(
            f"{name}: is a symbolic link (to {os.readlink(path)}); grutext never writes through a link: "
            "remove it or choose another output path"
        )


@contextmanager
def output_path(path: str | Path, flag: str | None = None) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` when the block succeeds, removed
    when it fails. A symlink at `path` is refused before anything is written (the rename would replace
    the link itself, not its target, but a link there is someone else's doing: say so)."""
    path = Path(path)
    refuse_symlink(path, flag)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        refuse_symlink(path, flag)  # a link made while we wrote
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_output(path: str | Path, data: str | bytes | Callable[[Path], Any], flag: str | None = None) -> Path:
    """Write `data` (text, bytes, or a `writer(path)`) to `path` through `output_path`."""
    path = Path(path)
    with output_path(path, flag) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        elif isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            data(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def follow_umask(path: Path, *, directory: bool) -> None:
    """Give `path` the permissions a plain mkdir/open would (0777 or 0666 less the umask)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def check_finite(state: dict[str, Any], what: str) -> None:
    """Raise ArtifactError naming the first tensor of `state` holding NaN or Infinity."""
    import torch

    from grutext.errors import ArtifactError

    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ArtifactError(f"{what}: weight {name} holds {bad} non-finite value(s) (NaN or Infinity)")


def temp_prefix(name: str) -> str:
    """Prefix of a temporary folder beside `name` made by this process: ``.NAME.tmp-PID-``."""
    return f".{name}.tmp-{os.getpid()}-"


def remove_stale_temporaries(folder: Path, name: str, kind: str = "tmp") -> None:
    """Remove ``.NAME.tmp-PID-*`` folders (``kind="old"``: ``.NAME.old-PID``, a replaced model set
    aside) beside `name` left by processes that are gone (a run killed while writing); a live
    process's folder is left alone."""
    import shutil

    for path in folder.glob(f".{name}.{kind}-*"):
        pid_text = path.name[len(f".{name}.{kind}-") :].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
                continue  # still running: its folder
            except ProcessLookupError:
                pass
            except PermissionError:
                continue  # someone else's live process
        shutil.rmtree(path, ignore_errors=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex SHA-256 of `obj` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def inside(path: str | Path, folder: Path) -> bool:
    """Whether `path` (relative paths taken from `folder`) resolves inside `folder`, links followed."""
    p = Path(path)
    if not p.is_absolute():
        p = folder / p
    try:
        return p.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


__all__ = [
    "check_finite",
    "dumps",
    "follow_umask",
    "finite_json",
    "inside",
    "loads_strict",
    "output_path",
    "refuse_symlink",
    "remove_stale_temporaries",
    "sha256_file",
    "sha256_json",
    "temp_prefix",
    "write_output",
]
