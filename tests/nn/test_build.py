"""The C++ loops' build key: one build per source, torch, Python installation and CPU."""

from __future__ import annotations

import sys

from grutext import extcache
from grutext.nn import _build


def test_build_key_changes_with_source_python_and_cpu(tmp_path, monkeypatch):
    src = tmp_path / "loop.cpp"
    src.write_text("int x;")
    base = _build.build_key(src)
    assert base == _build.build_key(src) and len(base) == 12
    src.write_text("int y;")
    assert _build.build_key(src) != base  # an edited source is rebuilt
    src.write_text("int x;")
    monkeypatch.setattr(sys, "executable", "/other/venv/bin/python")
    other_install = _build.build_key(src)
    assert other_install != base  # a second installation never evicts the first one's build
    monkeypatch.setattr(extcache, "cpu_flags", lambda: "fpu sse2")
    assert _build.build_key(src) != other_install  # -march=native builds are not shared across CPUs


def test_the_fused_loops_load_under_their_keyed_names():
    from grutext.nn import fused

    if not fused.extension_available():
        import pytest

        pytest.skip("no C++ toolchain here")
    import torch

    libs = [str(p) for p in getattr(torch.ops, "loaded_libraries", set())]
    key = _build.build_key(fused._CSRC)
    assert any(f"grutext_gru_loop_{key}" in p for p in libs), libs
