"""Compiling the C++ step loops (``nn/csrc``) at first use: written once for every loop.

The build is named by a key of everything it depends on: the source's SHA-256, torch's version,
the Python executable (so two installations on one machine never evict each other's build) and the
CPU's instruction-set flags (the loops are compiled with ``-march=native``: a build cache copied to
another CPU gets its own build instead of crashing on an illegal instruction).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from grutext.extcache import build_key, cpu_flags, failure_marker, loop_status, record_failure


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
