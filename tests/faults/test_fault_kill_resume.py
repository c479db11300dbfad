"""`kill -9` during training, inside a checkpoint write, between its two renames and inside the final
save, then `--resume`: the final weights are bit for bit those of an uninterrupted run (CPU, one
thread, dropout on so the random-number state matters)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from tests.faults.conftest import CLF_FLAGS
from tests.faults.util import run

import grutext

EPOCHS = "3"

# run `grutext train` with one kill point armed (KILL_AT), in a fresh process that SIGKILLs itself
RUNNER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    mode = os.environ.get("KILL_AT", "")
    if mode.startswith("step:"):  # in the middle of an epoch, after N optimizer steps
        from grutext.tasks.classification.evaluate import ClassificationTask
        real_step, n = ClassificationTask.step, {"k": 0}
        def step(self, model, batch):
            n["k"] += 1
            if n["k"] == int(mode.split(":")[1]):
                die()
            return real_step(self, model, batch)
        ClassificationTask.step = step
    elif mode == "checkpoint-files":  # epoch 2's checkpoint files written, not yet renamed into place
        import grutext.manifest as manifest
        real_write, n = manifest.write_manifest, {"k": 0}
        def write_manifest(folder, **kw):
            real_write(folder, **kw)
            if ".ckpt.tmp-" in Path(folder).name:
                n["k"] += 1
                if n["k"] == 2:
                    die()
        manifest.write_manifest = write_manifest
    elif mode == "checkpoint-rename":  # epoch 2's checkpoint: the old one moved aside, the new one not yet in
        real_replace = os.replace
        def replace(src, dst):
            real_replace(src, dst)
            if str(dst).endswith(".ckpt.prev"):
                die()
        os.replace = replace
    elif mode == "model-save":  # the final model's files written, not yet renamed into place
        import grutext.artifact as artifact
        def swap_in(tmp, directory):
            die()
        artifact._swap_in = swap_in
    from grutext.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _train(
    tmp_path: Path, data: Path, out: Path, kill_at: str = "", resume: bool = False
) -> subprocess.CompletedProcess:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    argv = [sys.executable, str(script), "train", str(data), "--out", str(out), *CLF_FLAGS, "--epochs", EPOCHS]
    argv += ["--keep-checkpoint"]
    src = str(Path(grutext.__file__).resolve().parents[1])  # this checkout's code, whatever the cwd
    path = os.pathsep.join([src, os.environ["PYTHONPATH"]]) if os.environ.get("PYTHONPATH") else src
    env = dict(os.environ, KILL_AT=kill_at, OMP_NUM_THREADS="1", PYTHONPATH=path)
    return subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory) -> dict[str, torch.Tensor]:
    """The uninterrupted run (in this process: the resumed runs below are too, and the killed ones
    run the same code in a subprocess)."""
    import contextlib
    import io

    from grutext.cli import main

    tmp = tmp_path_factory.mktemp("uninterrupted")
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", str(data_dir / "train.csv"), "--out", str(tmp / "m"), *CLF_FLAGS, "--epochs", EPOCHS])
    assert code == 0
    return _weights(tmp / "m")


# 6 optimizer steps an epoch (81 training rows, batch 16): step 9 is in the middle of epoch 2, step 14
# early in epoch 3 (after two checkpoints); the fifth kill point (between a checkpoint's two renames)
# is the test after this one. Fixed points, one per phase, rather than random ones: each phase is
# covered on every run, and a failure reproduces.
@pytest.mark.parametrize("kill_at", ["step:9", "step:14", "checkpoint-files", "model-save"])
def test_kill_then_resume_gives_the_uninterrupted_weights(reference, data_dir, tmp_path, capsys, kill_at):
    out = tmp_path / "m"
    killed = _train(tmp_path, data_dir / "train.csv", out, kill_at)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    assert not out.exists()  # never a half-written model folder
    r = run(capsys, "train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--epochs", EPOCHS, "--resume")
    assert r.code == 0, r.err
    assert "Traceback" not in r.err
    resumed = _weights(out)
    assert resumed.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.equal(resumed[name], tensor), name
    assert not list(tmp_path.glob(".m*tmp-*")) and not (tmp_path / ".m.ckpt.prev").exists()


def test_a_kill_between_the_renames_is_resumable_in_a_subprocess(reference, data_dir, tmp_path, capsys):
    """The old checkpoint moved to .m.ckpt.prev, the new one still a temporary: resume uses .prev."""
    out = tmp_path / "m"
    killed = _train(tmp_path, data_dir / "train.csv", out, "checkpoint-rename")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (tmp_path / "m.ckpt").exists() and (tmp_path / ".m.ckpt.prev" / "state.json").is_file()
    r = run(capsys, "train", data_dir / "train.csv", "--out", out, *CLF_FLAGS, "--epochs", EPOCHS, "--resume")
    assert r.code == 0, r.err
    assert "resuming from" in r.err and ".m.ckpt.prev" in r.err
    for name, tensor in reference.items():
        assert torch.equal(_weights(out)[name], tensor), name
