"""Where the C++ loops' builds live and whether one is there, without importing torch.

The build of a loop is named by a key of everything it depends on: the source's SHA-256, torch's
version, the Python executable (two installations on one machine never evict each other's build)
and the CPU's instruction-set flags (the loops are compiled with ``-march=native``: a build cache
copied to another CPU gets its own build). `grutext --version` reads `loop_status` (torch is not
imported: its version comes from the package metadata); `grutext.nn._build` compiles.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from pathlib import Path


def cpu_flags() -> str:
    """The CPU's instruction-set flags as the kernel lists them (``/proc/cpuinfo``), else the machine name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return platform.machine()


def build_key(source: Path, torch_version: str | None = None) -> str:
    """12 hex digits naming the build of `source` for this torch, this Python and this CPU.

    `torch_version`: the installed torch's version when known without importing torch (the
    package metadata, as `grutext --version` reads it); None imports torch to read it.
    """
    if torch_version is None:
        import torch

        torch_version = torch.__version__
    h = hashlib.sha256()
    for part in (source.read_bytes(), torch_version.encode(), sys.executable.encode(), cpu_flags().encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def _extensions_root() -> Path:
    """torch's extension build root (``TORCH_EXTENSIONS_DIR``, else the user cache's ``torch_extensions``)."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if root:
        return Path(root)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "torch_extensions"


def failure_marker(name: str, source: Path, torch_version: str | None = None) -> Path:
    """The file recording that the build `name` of `source` failed here (read by `loop_status`)."""
    return _extensions_root() / f"{name}_{build_key(source, torch_version)}.failed"


def record_failure(name: str, source: Path, exc: BaseException) -> None:
    """Note a failed build for `grutext --version` (best effort: a read-only cache is fine)."""
    try:
        marker = failure_marker(name, source)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{type(exc).__name__}: {str(exc)[:300]}\n", encoding="utf-8")
    except OSError:
        pass


def loop_status(name: str, source: Path, what: str) -> str:
    """One line saying which GRU loop `grutext` runs, without importing torch (for ``--version``).

    ``fused C++ (built ...)``: the build for this torch, Python and CPU is in the cache;
    ``pure-torch fallback``: GRUTEXT_NO_EXT is set or the build failed here (the reason);
    ``not built yet``: the first model use compiles it (~20 s), falling back to pure torch if it cannot.
    """
    from importlib.metadata import PackageNotFoundError, version

    if os.environ.get("GRUTEXT_NO_EXT"):
        return f"{what}: pure-torch fallback (GRUTEXT_NO_EXT is set)"
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        return f"{what}: unavailable (torch is not installed)"
    full = f"{name}_{build_key(source, torch_version)}"
    root = _extensions_root()
    built = sorted(root.glob(f"py*_*/{full}/{full}.so")) + sorted(root.glob(f"py*_*/{full}_serial/{full}_serial.so"))
    if built:
        return f"{what}: fused C++ (built for this installation and CPU: {built[0].parent})"
    marker = failure_marker(name, source, torch_version)
    if marker.is_file():
        reason = marker.read_text(encoding="utf-8", errors="replace").strip().splitlines()[:1]
        return f"{what}: pure-torch fallback (the C++ build failed here: {reason[0] if reason else 'unknown'})"
    return f"{what}: fused C++, not built yet (compiled at first use, ~20 s; pure-torch fallback if that fails)"


__all__ = ["build_key", "cpu_flags", "failure_marker", "loop_status", "record_failure"]
