"""fit(): one plain training loop for every grutext model.

AdamW, linear warm-up then linear/cosine decay (or decay on a validation plateau), gradient clipping, early stopping on a
validation metric, the best weights kept, checkpoint + resume, seeding, a live progress line
and an epoch trace. What differs between tasks (how a batch becomes a loss, how validation is
scored) sits in a small `Task` object with two methods; the loop itself never learns the task.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from grutext.config import TrainConfig
from grutext.errors import ArtifactError
from grutext.train.trace import EpochTable, Progress


@dataclass
class StepOut:
    """What one training step reports: the loss to back-propagate and counts for the trace."""

    loss: torch.Tensor
    tokens: int
    items: int
    correct: float | None = None


class Task(Protocol):
    """How a batch becomes a loss, and how a validation set is scored."""

    def step(self, model: torch.nn.Module, batch: dict[str, Any]) -> StepOut: ...

    def evaluate(self, model: torch.nn.Module, batches: Iterable[dict[str, Any]]) -> dict[str, float]: ...

    def epoch_metrics(self, mean_loss: float, correct: float | None, items: int) -> dict[str, float]: ...


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return batch
    return {
        k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) and k != "lengths" else v)
        for k, v in batch.items()
    }


def make_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup: float, kind: str):
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

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    scheduler.lr_scale = lr_scale  # type: ignore[attr-defined]
    return scheduler


def _set_lr(optimizer: torch.optim.Optimizer, scheduler) -> None:
    """The learning rate in force, recomputed from the schedule at its current step."""
    for group, base, lam in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * lam(scheduler.last_epoch)


def better(monitor: str, new: float, best: float | None) -> bool:
    if best is None:
        return True
    return (
        new < best
        if monitor.endswith("loss") or monitor.endswith("perplexity") or monitor.endswith("bpc")
        else new > best
    )


class WeightAverage:
    """An exponential moving average of a model's floating-point weights (``train.ema``).

    ``update`` follows each optimizer step: ``avg = d * avg + (1 - d) * w`` with
    ``d = min(decay, (1 + n) / (10 + n))`` after n updates, so early averages are not dominated by
    the initial weights (TensorFlow's ExponentialMovingAverage with ``num_updates``). ``applied``
    swaps the averaged weights into the model for evaluation and swaps them back after.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.is_floating_point()}
        self.names = list(self.shadow)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        params = dict(model.named_parameters())
        torch._foreach_lerp_([self.shadow[n] for n in self.names], [params[n].detach() for n in self.names], 1.0 - d)

    @torch.no_grad()
    def _swap(self, model: torch.nn.Module) -> None:
        """Exchange the model's weights and the average, tensor by tensor (one tensor's copy at a time)."""
        params = dict(model.named_parameters())
        for n in self.names:
            tmp = params[n].detach().clone()
            params[n].copy_(self.shadow[n])
            self.shadow[n].copy_(tmp)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module):
        self._swap(model)
        try:
            yield model
        finally:
            self._swap(model)

    def state(self) -> dict[str, torch.Tensor]:
        return {n: t.detach().cpu().contiguous() for n, t in self.shadow.items()}

    def load(self, tensors: dict[str, torch.Tensor], updates: int) -> None:
        if set(tensors) != set(self.names):
            raise ArtifactError("checkpoint's weight average does not match this model's parameters")
        for n, t in tensors.items():
            self.shadow[n].copy_(t)
        self.updates = int(updates)


# ---- checkpoints (safetensors + JSON, no pickle) -------------------------------------------


def save_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
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
    for name, data in files.items():
        tmp = directory / (name + ".tmp")
        save_file(data, str(tmp))
        os.replace(tmp, directory / name)
    payload = dict(
        state, optimizer=meta, scheduler=scheduler.state_dict()["last_epoch"], lr_scale=scheduler.lr_scale[0]
    )
    tmp = directory / "state.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, directory / "state.json")


def load_checkpoint(
    directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
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
    _set_lr(optimizer, scheduler)
    best = load_file(str(directory / "best.safetensors")) if (directory / "best.safetensors").is_file() else None
    return state, best


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


# ---- layer groups: discriminative learning rates and gradual unfreezing ----------------------


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
    groups = [[p for p in g if id(p) in trainable] for g in model.layer_groups()]
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


# ---- the loop ------------------------------------------------------------------------------


@dataclass
class FitResult:
    """What `fit` hands back: the epoch trace, the best epoch and its monitored value."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_value: float | None
    stopped_early: bool
    train_seconds: float


def fit(
    model: torch.nn.Module,
    task: Task,
    train_batches: Any,
    valid_batches: Any,
    cfg: TrainConfig,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    verbose: bool = True,
    on_epoch_end=None,
) -> FitResult:
    """Train `model` in place and leave the best validation weights in it.

    Args:
        model: a module whose forward computes its own loss (through `task.step`).
        task: the task adapter (`ClassificationTask`, `LanguageModelTask`).
        train_batches: re-iterable over batch dicts, with `set_epoch(e)` and `num_tokens` if it can.
        valid_batches: re-iterable, or None (then the monitor falls back to the training loss).
        cfg: the `TrainConfig`.
        checkpoint_dir: where to write a checkpoint after each epoch (model, best, optimizer, state).
        resume: continue from `checkpoint_dir`.
        progress: force the live progress line on/off (default: when stderr is a terminal).
        verbose: print the epoch table.
        on_epoch_end: optional `callback(row: dict)`.

    Returns:
        FitResult with the history (one dict per epoch).
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    from grutext.nn.fused import tune_allocator

    tune_allocator()  # large activations reuse freed memory instead of fresh pages each step
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    depths = layer_depths(model, cfg)  # bottom (embedding) first, head last; one group when plain
    optimizer = torch.optim.AdamW(param_groups(depths, cfg), lr=cfg.lr)
    steps_per_epoch = max(len(train_batches), 1)
    scheduler = make_schedule(optimizer, steps_per_epoch * cfg.epochs, cfg.warmup, cfg.schedule)
    monitor = cfg.monitor if valid_batches is not None else "loss"
    table = EpochTable() if verbose else None
    average = WeightAverage(model, cfg.ema) if cfg.ema > 0 else None

    history: list[dict[str, Any]] = []
    best_value: float | None = None
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs = 0
    start_epoch = 1
    train_seconds = 0.0
    ckpt = Path(checkpoint_dir) if checkpoint_dir else None
    if resume:
        if ckpt is None:
            raise ArtifactError("resume=True needs a checkpoint_dir")
        state, best_state = load_checkpoint(ckpt, model, optimizer, scheduler)
        history = state["history"]
        best_value, best_epoch, bad_epochs = state["best_value"], state["best_epoch"], state["bad_epochs"]
        start_epoch = state["epoch"] + 1
        if average is not None:
            from safetensors.torch import load_file

            path = ckpt / "average.safetensors"
            if not path.is_file():
                raise ArtifactError(f"{ckpt}: cannot resume with train.ema, the checkpoint has no average.safetensors")
            average.load(load_file(str(path)), state.get("average_updates", 0))
        train_seconds = state.get("train_seconds", 0.0)
        if state.get("finished"):
            start_epoch = cfg.epochs + 1
        if verbose:
            print(f"resumed from {ckpt} after epoch {state['epoch']}")
            if table is not None:
                for row in history:
                    table.print_row(row)

    deadline = None if cfg.max_minutes is None else cfg.max_minutes * 60.0
    stopped_early = False
    for epoch in range(start_epoch, cfg.epochs + 1):
        if hasattr(train_batches, "set_epoch"):
            train_batches.set_epoch(epoch)
        if cfg.unfreeze == "gradual":
            unfrozen = set_trainable_depths(depths, epoch)
            if verbose and len(depths) > 1 and epoch <= len(depths):
                print(f"epoch {epoch}: training the top {unfrozen} of {len(depths)} layer groups")
        model.train()
        bar = Progress(steps_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}", enabled=progress)
        t0 = time.perf_counter()
        loss_sum, items, tokens, correct = 0.0, 0, 0, 0.0
        has_correct = False
        out_of_time = False
        for i, batch in enumerate(train_batches, 1):
            batch = to_device(batch, device)
            out = task.step(model, batch)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if cfg.clip and cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip)
            optimizer.step()
            scheduler.step()
            if average is not None:
                average.update(model)
            loss_sum += float(out.loss.detach()) * out.items
            items += out.items
            tokens += out.tokens
            if out.correct is not None:
                correct += out.correct
                has_correct = True
            bar.update(i, tokens, loss_sum / max(items, 1))
            if deadline is not None and train_seconds + time.perf_counter() - t0 > deadline:
                out_of_time = True
                break
        bar.close()
        elapsed = time.perf_counter() - t0
        train_seconds += elapsed
        row: dict[str, Any] = {"epoch": epoch}
        row.update(task.epoch_metrics(loss_sum / max(items, 1), correct if has_correct else None, items))
        if valid_batches is not None:
            model.eval()
            with torch.no_grad(), average.applied(model) if average is not None else contextlib.nullcontext():
                row.update(task.evaluate(model, valid_batches))
        row.update(
            {"lr": optimizer.param_groups[0]["lr"], "time": elapsed, "tokens_per_s": tokens / max(elapsed, 1e-9)}
        )
        history.append(row)
        if table is not None:
            table.print_row(row)
        value = row.get(monitor)
        if value is not None and better(monitor, value, best_value):
            best_value, best_epoch, bad_epochs = float(value), epoch, 0
            with average.applied(model) if average is not None else contextlib.nullcontext():
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
            if cfg.schedule == "plateau" and bad_epochs % cfg.plateau_patience == 0:
                scheduler.lr_scale[0] *= cfg.plateau_factor  # the monitor stalled: decay the learning rate
                _set_lr(optimizer, scheduler)
                if verbose:
                    print(
                        f"{monitor} has not improved for {bad_epochs} epoch(s): learning rate x{cfg.plateau_factor} "
                        f"-> {optimizer.param_groups[0]['lr']:.2e}"
                    )
        finished = out_of_time or (cfg.patience and bad_epochs >= cfg.patience) or epoch == cfg.epochs
        if ckpt is not None:
            save_checkpoint(
                ckpt,
                model,
                optimizer,
                scheduler,
                {
                    "epoch": epoch,
                    "history": history,
                    "best_value": best_value,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                    "train_seconds": train_seconds,
                    "finished": bool(finished),
                    "monitor": monitor,
                    "average_updates": average.updates if average else 0,
                },
                best_state,
                average.state() if average is not None else None,
            )
        if on_epoch_end is not None:
            on_epoch_end(row)
        if out_of_time:
            if verbose:
                print(f"stopped: training time budget of {cfg.max_minutes} min reached in epoch {epoch}")
            stopped_early = True
            break
        if cfg.patience and bad_epochs >= cfg.patience:
            if verbose:
                print(
                    f"early stop: {monitor} has not improved for {bad_epochs} epochs "
                    f"(best {best_value:.4f} at epoch {best_epoch})"
                )
            stopped_early = True
            break
    if cfg.unfreeze == "gradual":
        set_trainable_depths(depths, len(depths))  # hand the model back as it came: all trainable
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(history, best_epoch, best_value, stopped_early, train_seconds)
