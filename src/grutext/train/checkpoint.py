"""Checkpoints of a training run (safetensors + JSON, no pickle): save after each epoch, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from grutext.errors import ArtifactError
from grutext.train.schedule import ScaledLambdaLR, set_lr


def save_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: ScaledLambdaLR,
    state: dict[str, Any],
    best_state: dict[str, torch.Tensor] | None,
    average: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write model, best weights, optimizer tensors, the weight average and loop state; atomic per file."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
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
        tmp = directory / (name + ".tmp")
        save_file(data, str(tmp))
        os.replace(tmp, directory / name)
    payload = dict(
        state,
        optimizer=meta,
        rng=rng_meta,
        scheduler=scheduler.state_dict()["last_epoch"],
        lr_scale=scheduler.lr_scale[0],
    )
    tmp = directory / "state.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, directory / "state.json")


def load_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: ScaledLambdaLR,
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Load model, optimizer and schedule from `directory`; returns (loop state, best weights or None).

    Raises:
        ArtifactError: a missing file, or a checkpoint of another model.
    """
    from safetensors.torch import load_file

    need = ["state.json", "model.safetensors", "optimizer.safetensors"]
    missing = [n for n in need if not (directory / n).is_file()]
    if missing:
        raise ArtifactError(f"{directory}: cannot resume, checkpoint is missing {', '.join(missing)}")
    try:
        state = json.loads((directory / "state.json").read_text())
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        _load_optimizer_tensors(optimizer, load_file(str(directory / "optimizer.safetensors")), state["optimizer"])
    except (ValueError, RuntimeError, KeyError) as exc:
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


__all__ = ["load_average", "load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]
