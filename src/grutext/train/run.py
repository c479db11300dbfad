"""The run preamble every task's training starts with, written once: threads, seeds, device, the
model directory and its checkpoint folder, and the log."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grutext.config import TrainConfig


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _quiet(*args: Any, **kwargs: Any) -> None:
    return None


@dataclass
class Run:
    """What the preamble settled: where the run writes, how it logs, which device it uses.

    Attributes:
        out: the model directory to write (None: nothing is saved).
        checkpoint: the checkpoint folder beside it (``OUT.ckpt``), or None.
        log: `print` when verbose, else a no-op.
        device: the resolved `train.device`.
    """

    out: Path | None
    checkpoint: Path | None
    log: Callable[..., None]
    device: torch.device


def start_run(train: TrainConfig, *, save: bool = True, verbose: bool = True) -> Run:
    """Set threads and seeds from `train` and name the output folders; every task's `train_*` calls it."""
    if train.threads:
        torch.set_num_threads(train.threads)
    seed_everything(train.seed)
    out = Path(train.out) if save else None
    checkpoint = out.with_name(out.name + ".ckpt") if out is not None else None
    return Run(out, checkpoint, print if verbose else _quiet, resolve_device(train.device))


__all__ = ["Run", "resolve_device", "seed_everything", "start_run"]
