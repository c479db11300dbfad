"""The run preamble every task's training starts with, written once: threads, seeds, device, the
model directory and its checkpoint folder, and the log."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grutext.config import TrainConfig
from grutext.errors import ConfigError
from grutext.train.distributed import Dist, init_distributed


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; any other name as torch reads it.

    Raises:
        ConfigError: ``cuda`` asked for on a machine or a torch build without CUDA.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        build = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise ConfigError(
            f"train.device={name!r}: {build}; use --device cpu (or auto), or install a CUDA build of torch"
        )
    return device


def _quiet(*args: Any, **kwargs: Any) -> None:
    return None


@dataclass
class Run:
    """What the preamble settled: where the run writes, how it logs, which device it uses.

    Attributes:
        out: the model directory to write (None: nothing is saved).
        checkpoint: the checkpoint folder beside it (``OUT.ckpt``), or None.
        log: `print` when verbose, else a no-op.
        device: the resolved `train.device` (``cuda:LOCAL_RANK`` on a rank of a CUDA run).
        dist: this process's rank in a distributed run (`grutext.train.distributed`); one rank otherwise.
    """

    out: Path | None
    checkpoint: Path | None
    log: Callable[..., None]
    device: torch.device
    dist: Dist = field(default_factory=Dist)


def start_run(
    train: TrainConfig, *, save: bool = True, verbose: bool = True, kind: str = "model", resume: bool = False
) -> Run:
    """Set threads and seeds from `train`, check and name the output folders; every task's `train_*` calls it.

    Before any training: `train.out` must be a folder grutext may write (see `check_output_folder`);
    with ``out = None`` the run writes a new ``runs/<kind>-<YYYYmmdd-HHMMSS>`` folder.
    In a distributed run (``WORLD_SIZE`` > 1) the process joins its group here; ranks other than 0
    log nothing and save nothing (``out`` None), but know the checkpoint folder to resume from.
    """
    dist, device = init_distributed(resolve_device(train.device))
    log = print if verbose and dist.main else _quiet
    out: Path | None = None
    if not dist.main:
        if train.threads:
            torch.set_num_threads(train.threads)
        seed_everything(train.seed)
        ckpt = checkpoint_folder(Path(train.out)) if save and train.out is not None else None
        return Run(None, ckpt, log, device, dist)
    if save:
        if train.out is None:
            if resume:
                raise ConfigError("train.resume: name the run to resume with --out DIR (train.out)")
            out = Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
            log(f"output: {out}/ (no --out given)")
        else:
            out = Path(train.out)
        check_output_folder(out, overwrite=train.overwrite or resume)
    if train.threads:
        torch.set_num_threads(train.threads)
    seed_everything(train.seed)
    checkpoint = checkpoint_folder(out) if out is not None else None
    return Run(out, checkpoint, log, device, dist)


def checkpoint_folder(out: Path) -> Path:
    """The checkpoint folder beside model directory `out` (``OUT.ckpt``)."""
    return out.with_name(out.name + ".ckpt")


def is_model_folder(path: Path) -> bool:
    """Whether `path` is a folder grutext wrote as a model directory (its config.json says so)."""
    import json

    try:
        meta = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == "grutext-model"


def check_output_folder(out: Path, *, overwrite: bool) -> None:
    """Refuse, before training, an output folder grutext must not write.

    - ``.``, a path ending in ``..`` or an existing file: never a model directory.
    - An existing folder that is not a grutext model directory and is not empty: refused always,
      since replacing it would delete files grutext did not write (name a new or empty folder).
    - An existing model directory: replaced only with ``overwrite`` (``--overwrite``; ``--resume`` too).
    - The folder the model goes in must be writable.

    Raises:
        ConfigError: one line naming the folder and what is there.
    """
    if out.name in ("", ".", "..") or out.resolve() == Path.cwd().resolve():
        raise ConfigError(f"--out {str(out)!r}: expected a new folder name for the model, got the current folder")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is an existing file, expected a folder name for the model directory")
    if out.is_dir():
        if is_model_folder(out):
            if not overwrite:
                raise ConfigError(
                    f"--out {out}: a grutext model directory is already there; pass --overwrite to replace it "
                    "(or --resume to continue its run), or choose another --out"
                )
        else:
            entries = sorted(p.name for p in out.iterdir())
            if entries:
                shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
                raise ConfigError(
                    f"--out {out}: an existing folder that is not a grutext model directory (it holds {shown}); "
                    "grutext never replaces files it did not write: choose a new or empty folder"
                )
    parent = out.parent if str(out.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: cannot write in {probe} (permission denied or read-only file system)")


# bytes written per weight byte while training: the checkpoint (weights, best weights, optimizer's
# two moments, the weight average) while the previous one is kept, plus the model directory
FREE_SPACE_FACTOR = 12


def check_free_space(folder: Path, model: torch.nn.Module) -> None:
    """Refuse, before the first epoch, a disk without room for the checkpoints and the model.

    The need is `FREE_SPACE_FACTOR` times the weights' bytes (two checkpoints of ~5x during the
    swap, the model directory 1x, some slack).

    Raises:
        ConfigError: naming the folder, the free and the needed megabytes.
    """
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    need = FREE_SPACE_FACTOR * weights
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need:
        raise ConfigError(
            f"--out {folder}: {free / 1e6:,.1f} MB free in {probe}, training needs about {need / 1e6:,.1f} MB "
            "(checkpoints and the model directory); free some space or choose another --out"
        )


def finish_run(run: Run, *, keep_checkpoint: bool) -> None:
    """After a successful save: remove the run's checkpoint folder (grutext wrote it; 3-5x the model's size)
    unless `keep_checkpoint`, and say which."""
    ckpt = run.checkpoint
    if ckpt is None or not ckpt.is_dir():
        return
    if keep_checkpoint:
        run.log(f"checkpoint kept: {ckpt}/ (--resume continues from it)")
        return
    from grutext.train.checkpoint import leftovers

    for extra in leftovers(ckpt):
        shutil.rmtree(extra, ignore_errors=True)
    shutil.rmtree(ckpt, ignore_errors=True)
    run.log(f"checkpoint removed: {ckpt}/ (pass --keep-checkpoint to keep it for a later --resume)")


__all__ = [
    "FREE_SPACE_FACTOR",
    "Run",
    "check_free_space",
    "check_output_folder",
    "checkpoint_folder",
    "finish_run",
    "is_model_folder",
    "resolve_device",
    "seed_everything",
    "start_run",
]
