"""Checkpoints and runs: a tampered or incomplete checkpoint is one line naming the file, resume
says when there is nothing to do, the checkpoint folder is removed after success, permissions
follow the umask, OSError is one line (the traceback with --debug), and --version names the GRU loop."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from tests.faults.conftest import CLF_FLAGS
from tests.faults.util import fails, run, snapshot


@pytest.fixture(scope="module")
def kept(data_dir, tmp_path_factory) -> Path:
    """A finished 2-epoch run with its checkpoint kept (OUT and OUT.ckpt in one folder)."""
    import contextlib
    import io

    from grutext.cli import main

    root = tmp_path_factory.mktemp("kept")
    with contextlib.redirect_stdout(io.StringIO()):
        argv = ["train", str(data_dir / "train.csv"), "--out", str(root / "m"), *CLF_FLAGS, "--keep-checkpoint"]
        assert main(argv) == 0
    return root


def _copy_run(kept: Path, tmp_path: Path) -> Path:
    shutil.copytree(kept / "m", tmp_path / "m")
    shutil.copytree(kept / "m.ckpt", tmp_path / "m.ckpt")
    return tmp_path / "m"


def _flip(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "name,needle",
    [
        ("optimizer.safetensors", "optimizer.safetensors: contents do not match manifest.json"),
        ("rng.safetensors", "rng.safetensors: contents do not match manifest.json"),
        ("best.safetensors", "best.safetensors: contents do not match manifest.json"),
    ],
)
def test_tampered_checkpoint_file_is_named(kept, data_dir, tmp_path, capsys, name, needle):
    out = _copy_run(kept, tmp_path)
    _flip(tmp_path / "m.ckpt" / name)
    before = snapshot(tmp_path)
    argv = ["train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--epochs", "3", "--resume"]
    fails(capsys, argv, needle, code=2)
    assert snapshot(tmp_path) == before


def test_checkpoint_mixing_two_epochs_is_refused(kept, data_dir, tmp_path, capsys):
    """The old failure: epoch-2 weights with epoch-1 optimizer state. The manifest catches any such mixture."""
    out = _copy_run(kept, tmp_path)
    state = json.loads((tmp_path / "m.ckpt" / "state.json").read_text())
    state["epoch"] = 1
    (tmp_path / "m.ckpt" / "state.json").write_text(json.dumps(state))
    argv = ["train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--epochs", "3", "--resume"]
    fails(capsys, argv, "state.json: contents do not match manifest.json", code=2)


def test_checkpoint_missing_state_is_named(kept, data_dir, tmp_path, capsys):
    out = _copy_run(kept, tmp_path)
    (tmp_path / "m.ckpt" / "state.json").unlink()
    argv = ["train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--epochs", "3", "--resume"]
    fails(capsys, argv, "checkpoint is missing state.json", code=2)


def test_resume_of_a_finished_run_says_so(kept, data_dir, tmp_path, capsys):
    out = _copy_run(kept, tmp_path)
    r = run(capsys, "train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--resume")
    assert r.code == 0 and "nothing to resume" in r.out and "all 2 epochs done" in r.out


def test_resume_extends_a_finished_run(kept, data_dir, tmp_path, capsys):
    out = _copy_run(kept, tmp_path)
    r = run(capsys, "train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--epochs", "3", "--resume")
    assert r.code == 0 and "extending the finished 2-epoch run to 3 epochs" in r.out
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 3


def test_checkpoint_removed_after_success_and_permissions_follow_umask(data_dir, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        r = run(capsys, "train", data_dir / "train.csv", "--out", tmp_path / "m", *CLF_FLAGS, "--epochs", "1")
    finally:
        os.umask(old)
    assert r.code == 0 and "checkpoint removed" in r.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755
    assert {(p.stat().st_mode & 0o777) for p in (tmp_path / "m").iterdir()} == {0o644}


def test_os_error_is_one_line_and_debug_shows_it(clf, tmp_path, capsys, monkeypatch):
    import tempfile

    def mkstemp(*args, dir=None, **kwargs):
        raise OSError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    r = fails(capsys, ["explain", clf, "a film", "--html", tmp_path / "x.html"], "Permission denied", code=1)
    assert "--debug shows the traceback" in r.err
    from grutext.cli import main

    with pytest.raises(OSError, match="Permission denied"):
        main(["explain", str(clf), "a film", "--html", str(tmp_path / "x.html"), "--debug"])


def _version(capsys, monkeypatch, **env) -> str:
    from grutext.cli import main

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit):
        main(["--version"])
    return capsys.readouterr().out.strip().splitlines()[1]


def test_version_names_the_fallback_when_disabled(capsys, monkeypatch):
    assert _version(capsys, monkeypatch, GRUTEXT_NO_EXT="1") == "GRU loop: pure-torch fallback (GRUTEXT_NO_EXT is set)"


def test_version_says_not_built_yet_in_an_empty_cache(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("GRUTEXT_NO_EXT", raising=False)
    line = _version(capsys, monkeypatch, TORCH_EXTENSIONS_DIR=str(tmp_path))
    assert line.startswith("GRU loop: fused C++, not built yet")


def test_version_names_a_failed_build(capsys, monkeypatch, tmp_path):
    from grutext.extcache import record_failure

    monkeypatch.delenv("GRUTEXT_NO_EXT", raising=False)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    import grutext

    source = Path(grutext.__file__).parent / "nn" / "csrc" / "gru_loop.cpp"
    record_failure("grutext_gru_loop", source, RuntimeError("no C++ compiler"))
    line = _version(capsys, monkeypatch)
    assert line == "GRU loop: pure-torch fallback (the C++ build failed here: RuntimeError: no C++ compiler)"


def test_version_finds_a_build_in_the_cache(capsys, monkeypatch, tmp_path):
    from importlib.metadata import version

    import grutext
    from grutext.extcache import build_key

    monkeypatch.delenv("GRUTEXT_NO_EXT", raising=False)
    source = Path(grutext.__file__).parent / "nn" / "csrc" / "gru_loop.cpp"
    full = f"grutext_gru_loop_{build_key(source, version('torch'))}"
    (tmp_path / "py311_cpu" / full).mkdir(parents=True)
    (tmp_path / "py311_cpu" / full / f"{full}.so").write_bytes(b"")
    line = _version(capsys, monkeypatch, TORCH_EXTENSIONS_DIR=str(tmp_path))
    assert line.startswith("GRU loop: fused C++ (built for this installation and CPU")


def test_build_key_is_the_one_the_builder_uses():
    """--version reads torch's version from the package metadata; the builder from torch: same key."""
    from importlib.metadata import version

    import grutext
    from grutext.extcache import build_key

    source = Path(grutext.__file__).parent / "nn" / "csrc" / "gru_loop.cpp"
    assert build_key(source, version("torch")) == build_key(source)
