"""What trains when, and how fast: the learning-rate schedule (warm-up, linear/cosine decay, decay on a
plateau), layer groups (discriminative learning rates, gradual unfreezing) and early stopping."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch

from grutext.config import TrainConfig


class ScaledLambdaLR(torch.optim.lr_scheduler.LambdaLR):
    """A LambdaLR whose factors are all multiplied by ``lr_scale[0]`` (see `make_schedule`)."""

    lr_scale: list[float]


def make_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup: float, kind: str) -> ScaledLambdaLR:
    """LambdaLR: linear warm-up over `warmup * total_steps`, then linear/cosine decay or constant.

    Every factor is multiplied by ``scheduler.lr_scale[0]`` (1.0 at first), which the loop lowers
    on a plateau (``kind="plateau"``: constant after warm-up, decayed by the loop).
    """
    warm = max(int(round(warmup * total_steps)), 0)
    lr_scale = [1.0]

    def factor(step: int) -> float:
        return lr_scale[0] * _shape(step)

    def _shape(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if kind in ("constant", "plateau"):
            return 1.0
        progress = min((step - warm) / max(total_steps - warm, 1), 1.0)
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(1.0 - progress, 0.0)

    scheduler = ScaledLambdaLR(optimizer, factor)
    scheduler.lr_scale = lr_scale
    return scheduler


def set_lr(optimizer: torch.optim.Optimizer, scheduler: ScaledLambdaLR) -> None:
    """The learning rate in force, recomputed from the schedule at its current step."""
    for group, base, lam in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base * lam(scheduler.last_epoch)


def better(monitor: str, new: float, best: float | None) -> bool:
    """Whether `new` improves on `best` for `monitor` (losses, perplexity and bpc go down; the rest up)."""
    if best is None:
        return True
    return (
        new < best
        if monitor.endswith("loss") or monitor.endswith("perplexity") or monitor.endswith("bpc")
        else new > best
    )


@dataclass
class Monitor:
    """Early stopping's bookkeeping: the best monitored value, its epoch, and epochs since."""

    name: str
    best_value: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, epoch: int, value: float | None) -> bool:
        """Record epoch `epoch`'s value; True when it is the best so far."""
        if value is not None and better(self.name, value, self.best_value):
            self.best_value, self.best_epoch, self.bad_epochs = float(value), epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def patience_spent(self, cfg: TrainConfig) -> bool:
        return bool(cfg.patience and self.bad_epochs >= cfg.patience)


def plateau_decay(
    optimizer: torch.optim.Optimizer, scheduler: ScaledLambdaLR, cfg: TrainConfig, bad_epochs: int
) -> bool:
    """``schedule = "plateau"``: every `plateau_patience` epochs without improvement the learning
    rate is multiplied by `plateau_factor`; returns whether it was."""
    if cfg.schedule != "plateau" or bad_epochs % cfg.plateau_patience != 0:
        return False
    scheduler.lr_scale[0] *= cfg.plateau_factor  # the monitor stalled: decay the learning rate
    set_lr(optimizer, scheduler)
    return True


# ---- layer groups: discriminative learning rates and gradual unfreezing ----------------------


class _Grouped(Protocol):
    def layer_groups(self) -> list[list[torch.nn.Parameter]]: ...


def layer_depths(model: torch.nn.Module, cfg: TrainConfig) -> list[list[torch.nn.Parameter]]:
    """The trainable parameters by depth, bottom first.

    A model with ``layer_groups()`` (the classifier: embedding, each recurrent layer, pooling and
    head) is split that way when ``cfg.layer_lr_decay != 1`` or ``cfg.unfreeze == "gradual"``;
    otherwise everything is one group.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if (cfg.layer_lr_decay == 1.0 and cfg.unfreeze == "all") or not hasattr(model, "layer_groups"):
        return [params]
    trainable = {id(p) for p in params}
    groups = [[p for p in g if id(p) in trainable] for g in cast(_Grouped, model).layer_groups()]
    groups = [g for g in groups if g]
    if sum(len(g) for g in groups) != len(params):
        raise RuntimeError("layer_groups() must cover every trainable parameter exactly once")
    return groups


def param_groups(depths: list[list[torch.nn.Parameter]], cfg: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: per depth, matrices with weight decay and vectors without; the depth ``d``
    below the top trains at ``lr / layer_lr_decay**d``."""
    out = []
    top = len(depths) - 1
    for d, group in enumerate(depths):
        lr = cfg.lr / cfg.layer_lr_decay ** (top - d)
        out.append({"params": [p for p in group if p.dim() > 1], "weight_decay": cfg.weight_decay, "lr": lr})
        out.append({"params": [p for p in group if p.dim() <= 1], "weight_decay": 0.0, "lr": lr})
    return out


def set_trainable_depths(depths: list[list[torch.nn.Parameter]], epoch: int) -> int:
    """Gradual unfreezing: in epoch ``e`` (from 1) the top ``e`` groups train; returns how many."""
    n = min(max(epoch, 1), len(depths))
    for d, group in enumerate(depths):
        for p in group:
            p.requires_grad_(d >= len(depths) - n)
    return n


__all__ = [
    "Monitor",
    "better",
    "layer_depths",
    "make_schedule",
    "param_groups",
    "plateau_decay",
    "set_lr",
    "set_trainable_depths",
]
