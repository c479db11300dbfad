"""Compiling the C++ step loops (``nn/csrc``) at first use: written once for every loop.

The build is named by a key of everything it depends on: the source's SHA-256, torch's version,
the Python executable (so two installations on one machine never evict each other's build) and the
CPU's instruction-set flags (the loops are compiled with ``-march=native``: a build cache copied to
another CPU gets its own build instead of crashing on an illegal instruction).
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


def load_loop(name: str, source: Path, what: str) -> None:
    """Compile (once) and load the C++ loop `source` as torch ops, under ``NAME_<build key>``.

    OpenMP first (ATen's parallel_for runs the (direction, batch chunk) items in parallel only with
    ``_OPENMP``; the loops link the libgomp torch has already loaded), then a serial build when the
    compiler has no OpenMP. A first build says so on stderr, since it takes ~20 s. A second failure
    propagates to the caller, which falls back to the torch loops.
    """
    from torch.utils import cpp_extension

    full = f"{name}_{build_key(source)}"
    extra_path = [str(Path(sys.executable).parent)]  # ninja may sit in the venv's bin, the venv not activated
    try:
        import ninja

        extra_path.append(ninja.BIN_DIR)
    except ImportError:
        pass
    try:
        built = (Path(cpp_extension._get_build_directory(full, verbose=False)) / f"{full}.so").is_file()
    except Exception:  # noqa: BLE001 - a private helper of torch's; only the message depends on it
        built = True
    if not built:
        print(f"grutext: building the {what} (one time for this installation and CPU, ~20 s)", file=sys.stderr)
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([*extra_path, old_path])
    flags = ["-O3", "-march=native", "-ffast-math", "-fno-finite-math-only"]
    try:
        try:
            cpp_extension.load(
                name=full,
                sources=[str(source)],
                extra_cflags=[*flags, "-fopenmp"],
                extra_ldflags=["-fopenmp"],
                is_python_module=False,
                verbose=False,
            )
        except Exception:  # noqa: BLE001 - retried without OpenMP; a second failure propagates
            cpp_extension.load(
                name=f"{full}_serial", sources=[str(source)], extra_cflags=flags, is_python_module=False, verbose=False
            )
    finally:
        os.environ["PATH"] = old_path


__all__ = ["build_key", "cpu_flags", "failure_marker", "load_loop", "loop_status", "record_failure"]
