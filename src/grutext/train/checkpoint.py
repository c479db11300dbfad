"""Checkpoints of a training run (safetensors + JSON, no pickle): save after each epoch, atomically and
with a manifest; resume after verifying it."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from grutext.errors import ArtifactError
from grutext.train.schedule import ScaledLambdaLR, set_lr


def previous_folder(directory: Path) -> Path:
    """Where the previous checkpoint waits while a new one is renamed into place (``.NAME.prev``)."""
    return directory.with_name(f".{directory.name}.prev")


def leftovers(directory: Path) -> list[Path]:
    """The previous checkpoint and unfinished temporary folders grutext may have left beside `directory`."""
    found = [previous_folder(directory)] if previous_folder(directory).exists() else []
    if directory.parent.is_dir():
        found += sorted(directory.parent.glob(f".{directory.name}.tmp-*"))
    return found


def save_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: ScaledLambdaLR,
    state: dict[str, Any],
    best_state: dict[str, torch.Tensor] | None,
    average: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write model, best weights, optimizer tensors, the weight average, RNG and loop state as one checkpoint.

    Every file goes into a new temporary folder beside `directory`, with a `manifest.json` of their
    SHA-256, flushed to disk; then the previous checkpoint is renamed to ``.NAME.prev``, the new folder
    renamed to `directory` and the previous one removed. At every instant one complete checkpoint
    exists (`load_checkpoint` falls back to ``.NAME.prev`` when killed between the two renames), and
    a checkpoint is never a mixture of two epochs.
    """
    from grutext.safeio import remove_stale_temporaries, temp_prefix

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(directory.parent, directory.name)  # a run killed while writing one
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(directory.name), dir=directory.parent))
    try:
        _write_files(tmp, directory, model, optimizer, scheduler, state, best_state, average)
        _swap_in(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(previous_folder(directory), ignore_errors=True)


def _write_files(
    tmp: Path,
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: ScaledLambdaLR,
    state: dict[str, Any],
    best_state: dict[str, torch.Tensor] | None,
    average: dict[str, torch.Tensor] | None,
) -> None:
    """Write the checkpoint's files and their manifest into the temporary folder `tmp`."""
    from safetensors.torch import save_file

    from grutext.manifest import write_manifest
    from grutext.safeio import dumps

    tensors, meta = _optimizer_tensors(optimizer)
    files = {
        "model.safetensors": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "optimizer.safetensors": tensors,
    }
    if best_state is not None:
        files["best.safetensors"] = {k: v.contiguous() for k, v in best_state.items()}
    if average is not None:
        files["average.safetensors"] = average
    rng_tensors, rng_meta = rng_state()
    files["rng.safetensors"] = rng_tensors
    for name, data in files.items():
        save_file(data, str(tmp / name))
    payload = dict(
        state,
        optimizer=meta,
        rng=rng_meta,
        scheduler=scheduler.state_dict()["last_epoch"],
        lr_scale=scheduler.lr_scale[0],
    )
    (tmp / "state.json").write_text(dumps(payload, what=f"{directory / 'state.json'}", indent=1))
    write_manifest(tmp)


def _swap_in(tmp: Path, directory: Path) -> None:
    """Flush `tmp` to disk, move the current checkpoint to ``.NAME.prev`` and rename `tmp` to `directory`."""
    from grutext.safeio import follow_umask

    for path in tmp.iterdir():
        follow_umask(path, directory=False)
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
    follow_umask(tmp, directory=True)
    prev = previous_folder(directory)
    if directory.exists():
        if prev.exists():
            shutil.rmtree(prev)
        os.replace(directory, prev)
    os.replace(tmp, directory)
    _fsync_dir(directory.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: ScaledLambdaLR,
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Load model, optimizer and schedule from `directory`; returns (loop state, best weights or None).

    The checkpoint's `manifest.json` is verified first (checkpoints from before 0.1.1 have none);
    when `directory` is missing because a run was killed between the two renames of
    `save_checkpoint`, the complete previous checkpoint (``.NAME.prev``) is used.

    Raises:
        ArtifactError: a missing or changed file (named), or a checkpoint of another model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from grutext.manifest import verify_manifest
    from grutext.safeio import check_finite

    directory = Path(directory)
    prev = previous_folder(directory)
    if not directory.is_dir() and prev.is_dir():
        print(f"note: {directory} is missing (a run stopped while replacing it): resuming from {prev}", file=sys.stderr)
        directory = prev
    need = ["state.json", "model.safetensors", "optimizer.safetensors"]
    missing = [n for n in need if not (directory / n).is_file()]
    if missing:
        raise ArtifactError(f"{directory}: cannot resume, checkpoint is missing {', '.join(missing)}")
    verify_manifest(directory)
    try:
        state = json.loads((directory / "state.json").read_text())
        weights = load_file(str(directory / "model.safetensors"))
        check_finite(weights, str(directory / "model.safetensors"))
        model.load_state_dict(weights)
        _load_optimizer_tensors(optimizer, load_file(str(directory / "optimizer.safetensors")), state["optimizer"])
    except (ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        raise ArtifactError(f"{directory}: checkpoint does not match this model: {str(exc).splitlines()[0]}") from None
    scheduler.last_epoch = state["scheduler"]
    scheduler.lr_scale[0] = float(state.get("lr_scale", 1.0))
    set_lr(optimizer, scheduler)
    best = load_file(str(directory / "best.safetensors")) if (directory / "best.safetensors").is_file() else None
    if (directory / "rng.safetensors").is_file() and "rng" in state:  # checkpoints before 0.1.1 have none
        set_rng_state(load_file(str(directory / "rng.safetensors")), state["rng"])
    return state, best


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every random-number state a run draws from (torch CPU and CUDA, NumPy, Python's `random`), as
    tensors for safetensors plus JSON scalars: restored on resume, the dropout masks, shuffles and
    samples after it are the uninterrupted run's."""
    import random

    import numpy as np

    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, st in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = st
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss = random.getstate()
    tensors["python"] = torch.tensor(internal, dtype=torch.int64)
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(cached)], "python": [version, gauss]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Restore what `rng_state` saved."""
    import random

    import numpy as np

    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, gauss = meta["python"]
    random.setstate((version, tuple(int(v) for v in tensors["python"].tolist()), gauss))


def load_average(directory: Path) -> dict[str, torch.Tensor]:
    """The weight average saved with a checkpoint (``train.ema``)."""
    from safetensors.torch import load_file

    if not directory.is_dir() and previous_folder(directory).is_dir():
        directory = previous_folder(directory)
    path = directory / "average.safetensors"
    if not path.is_file():
        raise ArtifactError(f"{directory}: cannot resume with train.ema, the checkpoint has no average.safetensors")
    return load_file(str(path))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"{pid}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optimizer_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, val in list(tensors.items()) + list(meta["scalars"].items()):
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


__all__ = [
    "leftovers",
    "load_average",
    "load_checkpoint",
    "previous_folder",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]
