"""fit(): one plain training loop for every grutext model.

AdamW, the schedule of `grutext.train.schedule` (warm-up, decay, plateau, layer groups, early
stopping), gradient clipping, the best weights kept, checkpoint + resume (`grutext.train.checkpoint`),
a live progress line and an epoch trace. What differs between tasks (how a batch becomes a loss, how
validation is scored) sits in a small `Task` adapter with three methods; the loop never learns the task.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch

from grutext.config import TrainConfig, resolve_epochs
from grutext.errors import ArtifactError, TrainingError
from grutext.train import distributed
from grutext.train.average import WeightAverage  # re-exported (its old home)
from grutext.train.checkpoint import (  # noqa: F401  (re-exported: the loop's old home)
    _load_optimizer_tensors,
    _optimizer_tensors,
    load_average,
    load_checkpoint,
    save_checkpoint,
)
from grutext.train.precision import autocast, pin_batches, resolve_precision
from grutext.train.run import check_free_space, resolve_device, seed_everything, start_run
from grutext.train.schedule import (
    Monitor,
    ScaledLambdaLR,
    better,
    layer_depths,
    make_schedule,
    param_groups,
    plateau_decay,
    set_lr,
    set_trainable_depths,
)
from grutext.train.trace import EpochTable, Progress, track

_set_lr = set_lr  # the old private name


@dataclass
class StepOut:
    """What one training step reports: the loss to back-propagate and counts for the trace.

    ``weight`` is the count the loss is a mean over (None: ``items``); a distributed run weights
    each rank's gradient by it, so the global gradient is exact when ranks' slices differ in size.
    """

    loss: torch.Tensor
    tokens: int
    items: int
    correct: float | None = None
    weight: float | None = None


class Task(Protocol):
    """The `fit` adapter of a task: how a batch becomes a loss, and how a validation set is scored."""

    def step(self, model: torch.nn.Module, batch: dict[str, Any]) -> StepOut: ...

    def evaluate(self, model: torch.nn.Module, batches: Iterable[dict[str, Any]]) -> dict[str, float]: ...

    def epoch_metrics(self, mean_loss: float, correct: float | None, items: int) -> dict[str, float | None]: ...


def to_device(batch: dict[str, Any], device: torch.device, *, pin: bool = False) -> dict[str, Any]:
    """The batch's tensors on `device` (``lengths`` stays on the CPU); with `pin`, copied from pinned
    host memory so the copy runs asynchronously (`grutext.train.precision.pin_batches`)."""
    if device.type == "cpu":
        return batch
    return {
        k: (
            (v.pin_memory() if pin else v).to(device, non_blocking=True)
            if isinstance(v, torch.Tensor) and k != "lengths"
            else v
        )
        for k, v in batch.items()
    }


# ---- the loop ------------------------------------------------------------------------------


@dataclass
class FitResult:
    """What `fit` hands back: the epoch trace, the best epoch and its monitored value."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_value: float | None
    stopped_early: bool
    train_seconds: float


@dataclass
class _Loop:
    """One fit's fixed parts (built once) and its running state (what a checkpoint holds)."""

    model: torch.nn.Module
    task: Task
    cfg: TrainConfig
    device: torch.device
    params: list[torch.nn.Parameter]
    depths: list[list[torch.nn.Parameter]]
    optimizer: torch.optim.Optimizer
    scheduler: ScaledLambdaLR
    steps_per_epoch: int
    monitor: Monitor
    table: EpochTable | None
    average: WeightAverage | None
    ckpt: Path | None
    verbose: bool
    progress: bool | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    start_epoch: int = 1
    train_seconds: float = 0.0
    dist: distributed.Dist = field(default_factory=distributed.Dist)
    precision: str = "fp32"

    def averaged(self):
        return self.average.applied(self.model) if self.average is not None else contextlib.nullcontext()

    def say(self, message: str) -> None:
        if self.verbose:
            print(message)


def _setup(
    model: torch.nn.Module,
    task: Task,
    train_batches: Any,
    valid_batches: Any,
    cfg: TrainConfig,
    ckpt: str | Path | None,
    progress: bool | None,
    verbose: bool,
) -> _Loop:
    """Threads, seeds and device (the run preamble), then optimizer, schedule, monitor and trace."""
    from grutext.nn.fused import tune_allocator

    tune_allocator()  # large activations reuse freed memory instead of fresh pages each step
    started = start_run(cfg, save=False)
    device, dist = started.device, started.dist
    precision = resolve_precision(cfg.precision, device)
    model.to(device)
    if dist.active:
        distributed.broadcast_module(model)  # every rank starts from rank 0's weights
    params = [p for p in model.parameters() if p.requires_grad]
    depths = layer_depths(model, cfg)  # bottom (embedding) first, head last; one group when plain
    optimizer = torch.optim.AdamW(param_groups(depths, cfg), lr=cfg.lr)
    steps_per_epoch = max(len(train_batches), 1)
    scheduler = make_schedule(optimizer, steps_per_epoch * cfg.epochs, cfg.warmup, cfg.schedule)
    monitor = Monitor(cfg.monitor if valid_batches is not None else "loss")
    table = EpochTable() if verbose else None
    average = WeightAverage(model, cfg.ema) if cfg.ema > 0 else None
    ckpt_dir = Path(ckpt) if ckpt else None
    if ckpt_dir is not None:
        check_free_space(ckpt_dir, model)
    run = _Loop(
        model, task, cfg, device, params, depths, optimizer, scheduler, steps_per_epoch, monitor, table, average,
        ckpt_dir, verbose, progress,
    )  # fmt: skip
    run.dist, run.precision = dist, precision
    if dist.active or precision != "fp32":
        run.say(describe_run(dist, precision, cfg.batch_size, device))
    return run


def describe_run(dist: distributed.Dist, precision: str, batch_size: int, device: torch.device) -> str:
    """One line stating the distributed set-up, the global batch and the learning-rate rule, and the precision."""
    parts = []
    if dist.active:
        per = [batch_size * (r + 1) // dist.world - batch_size * r // dist.world for r in range(dist.world)]
        shares = f"{per[0]} per process" if len(set(per)) == 1 else f"{min(per)}-{max(per)} per process"
        parts.append(
            f"distributed: {dist.world} processes ({dist.backend}, {device.type}); global batch {batch_size} "
            f"({shares}), the same steps as one process with --batch-size {batch_size}, so the learning rate is "
            "used unscaled; gradients all-reduced exactly; rank 0 prints and saves"
        )
    if precision != "fp32":
        parts.append(f"precision: {precision} autocast on {device}, weights and optimizer in fp32")
    return "; ".join(parts)


def _resume(run: _Loop) -> None:
    """Continue from the checkpoint: weights, optimizer, schedule, trace, best weights, average."""
    if run.ckpt is None:
        raise ArtifactError("resume=True needs a checkpoint_dir")
    state, run.best_state = load_checkpoint(run.ckpt, run.model, run.optimizer, run.scheduler)
    run.history = state["history"]
    run.monitor.best_value, run.monitor.best_epoch = state["best_value"], state["best_epoch"]
    run.monitor.bad_epochs = state["bad_epochs"]
    run.start_epoch = state["epoch"] + 1
    if run.average is not None:
        run.average.load(load_average(run.ckpt), state.get("average_updates", 0))
    run.train_seconds = state.get("train_seconds", 0.0)
    done, reason = state["epoch"], state.get("stop_reason")
    if state.get("finished") and (reason or done >= run.cfg.epochs):
        run.start_epoch = run.cfg.epochs + 1
        why = reason or f"all {done} epochs done"
        run.say(f"nothing to resume in {run.ckpt}: the run finished after epoch {done} ({why})")
    elif state.get("finished"):
        run.say(f"resumed from {run.ckpt}: extending the finished {done}-epoch run to {run.cfg.epochs} epochs")
    else:
        run.say(f"resumed from {run.ckpt} after epoch {done}")
    if run.table is not None:
        for row in run.history:
            run.table.print_row(row)


def _train_epoch(run: _Loop, train_batches: Any, epoch: int) -> tuple[dict[str, Any], float, int, bool]:
    """One pass of optimizer steps; returns the epoch's training metrics, seconds, tokens and whether time ran out.

    In a distributed run a batch is this rank's slice (None when empty), the gradient is the global
    batch's (`distributed.reduce_gradients`), the stop is agreed, and the epoch's sums are reduced.
    """
    cfg, dist = run.cfg, run.dist
    pin = pin_batches(run.device)
    if dist.active and not dist.main:
        torch.manual_seed(distributed.dropout_seed(cfg.seed, epoch, dist.rank))  # its own dropout masks
    deadline = None if cfg.max_minutes is None else cfg.max_minutes * 60.0
    run.model.train()
    bar = Progress(run.steps_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}", enabled=run.progress)
    t0 = time.perf_counter()
    loss_sum, items, tokens, correct = 0.0, 0, 0, 0.0
    has_correct = False
    out_of_time = False
    for i, batch in enumerate(train_batches, 1):
        out, loss_value, late = _train_step(run, batch, epoch, i, pin, deadline, t0)
        if out is not None:
            loss_sum += loss_value * out.items
            items += out.items
            tokens += out.tokens
            if out.correct is not None:
                correct += out.correct
                has_correct = True
        bar.update(i, tokens, loss_sum / max(items, 1))
        if late:
            out_of_time = True
            break
    bar.close()
    if dist.active:  # the epoch's figures over the global batches
        loss_sum, n_items, n_tokens, correct, n_correct = distributed.reduce_sums(
            [loss_sum, items, tokens, correct, float(has_correct)]
        )
        items, tokens, has_correct = int(n_items), int(n_tokens), n_correct > 0
    elapsed = time.perf_counter() - t0
    run.train_seconds += elapsed
    row: dict[str, Any] = {"epoch": epoch}
    row.update(run.task.epoch_metrics(loss_sum / max(items, 1), correct if has_correct else None, items))
    return row, elapsed, tokens, out_of_time


def _train_step(
    run: _Loop, batch: dict[str, Any] | None, epoch: int, i: int, pin: bool, deadline: float | None, t0: float
) -> tuple[StepOut | None, float, bool]:
    """Optimizer step `i` of `epoch` on `batch` (None: this rank's slice is empty); returns the step's
    output (None without a batch), its loss and whether the time budget ran out (agreed across ranks)."""
    out: StepOut | None = None
    loss_value = 0.0
    if batch is not None:
        with autocast(run.device, run.precision):
            out = run.task.step(run.model, to_device(batch, run.device, pin=pin))
        loss_value = float(out.loss.detach())
        # one rank alone must not stop (the others would wait in the all-reduce): distributed runs
        # stop on the reduced gradient norm below, which every rank sees the same
        if not math.isfinite(loss_value) and not run.dist.active:
            _non_finite(run, epoch, i, f"the training loss is {loss_value}")
    run.optimizer.zero_grad(set_to_none=True)
    if out is not None:
        out.loss.backward()
    late = deadline is not None and run.train_seconds + time.perf_counter() - t0 > deadline
    if run.dist.active:
        weight = 0.0 if out is None else float(out.items if out.weight is None else out.weight)
        late = distributed.reduce_gradients(run.params, weight, late)
    if run.cfg.clip and run.cfg.clip > 0:
        norm = float(torch.nn.utils.clip_grad_norm_(run.params, run.cfg.clip))
        if not math.isfinite(norm):
            _non_finite(run, epoch, i, f"the gradient norm is {norm}")
    run.optimizer.step()
    run.scheduler.step()
    if run.average is not None:
        run.average.update(run.model)
    return out, loss_value, late


def _non_finite(run: _Loop, epoch: int, step: int, what: str) -> None:
    """Stop training with one line: where the numbers stopped being finite, what is kept, likely causes."""
    kept = "no model is saved"
    if run.ckpt is not None and (run.ckpt / "state.json").is_file():
        kept = f"the last good checkpoint {run.ckpt}/ (after epoch {epoch - 1}) is kept for --resume"
    raise TrainingError(
        f"epoch {epoch}, step {step}/{run.steps_per_epoch}: {what} (not finite); training stopped before the "
        f"weights were updated and {kept}. Likely causes: a learning rate too high (--lr {run.cfg.lr:g}: "
        "try 10x lower) or pretrained vectors holding NaN/Infinity (--pretrained)"
    )


def _close_epoch(run: _Loop, row: dict[str, Any], valid_batches: Any, elapsed: float, tokens: int) -> None:
    """Validate, finish the epoch's row, print it, keep the best weights, decay on a plateau."""
    if valid_batches is not None:
        run.model.eval()
        with torch.no_grad(), run.averaged():
            batches = track(valid_batches, desc=f"validation {row['epoch']}/{run.cfg.epochs}", enabled=run.progress)
            row.update(run.task.evaluate(run.model, batches))
    row.update(
        {"lr": run.optimizer.param_groups[0]["lr"], "time": elapsed, "tokens_per_s": tokens / max(elapsed, 1e-9)}
    )
    run.history.append(row)
    if run.table is not None:
        run.table.print_row(row)
    if run.monitor.update(row["epoch"], row.get(run.monitor.name)):
        with run.averaged():
            run.best_state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
    elif plateau_decay(run.optimizer, run.scheduler, run.cfg, run.monitor.bad_epochs):
        run.say(
            f"{run.monitor.name} has not improved for {run.monitor.bad_epochs} epoch(s): learning rate "
            f"x{run.cfg.plateau_factor} -> {run.optimizer.param_groups[0]['lr']:.2e}"
        )


def _save_checkpoint(run: _Loop, epoch: int, finished: bool, reason: str | None = None) -> None:
    m = run.monitor
    state = {
        "epoch": epoch,
        "history": run.history,
        "best_value": m.best_value,
        "best_epoch": m.best_epoch,
        "bad_epochs": m.bad_epochs,
        "train_seconds": run.train_seconds,
        "finished": bool(finished),
        "stop_reason": reason,  # early stop or time budget; None when the epochs ran out
        "monitor": m.name,
        "average_updates": run.average.updates if run.average else 0,
    }
    average = run.average.state() if run.average is not None else None
    assert run.ckpt is not None  # the caller checks
    if run.dist.main:  # the state is the same on every rank; one writer
        save_checkpoint(run.ckpt, run.model, run.optimizer, run.scheduler, state, run.best_state, average)
    distributed.barrier()


def _stop_reason(run: _Loop, epoch: int, out_of_time: bool) -> str | None:
    """Why training stops after `epoch` (time budget or patience), or None to go on."""
    if out_of_time:
        return f"stopped: training time budget of {run.cfg.max_minutes} min reached in epoch {epoch}"
    if run.monitor.patience_spent(run.cfg):
        m = run.monitor
        return (
            f"early stop: {m.name} has not improved for {m.bad_epochs} epochs "
            f"(best {m.best_value:.4f} at epoch {m.best_epoch})"
        )
    return None


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
    on_epoch_end: Callable[[dict[str, Any]], Any] | None = None,
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
        progress: progress through each epoch and each validation: True the live bar, False nothing,
            None (default) the bar on a terminal and a plain line every 30 s elsewhere.
        verbose: print the epoch table; False also silences the progress (``progress`` is ignored).
        on_epoch_end: optional `callback(row: dict)`.

    Returns:
        FitResult with the history (one dict per epoch).
    """
    verbose = verbose and distributed.is_main_process()  # in a distributed run only rank 0 prints
    progress = progress if verbose else False  # a quiet run prints nothing, not even progress lines
    if cfg.epochs == 0:  # auto, for a task that did not resolve it: ten passes
        cfg = replace(cfg, epochs=resolve_epochs(0))
    run = _setup(model, task, train_batches, valid_batches, cfg, checkpoint_dir, progress, verbose)
    if run.dist.active:  # this rank's slice of each global batch
        train_batches = distributed.ShardedBatches(train_batches, run.dist.rank, run.dist.world)
    if resume:
        _resume(run)
    stopped_early = False
    for epoch in range(run.start_epoch, cfg.epochs + 1):
        _begin_epoch(run, train_batches, epoch)
        row, elapsed, tokens, out_of_time = _train_epoch(run, train_batches, epoch)
        _close_epoch(run, row, valid_batches, elapsed, tokens)
        reason = _stop_reason(run, epoch, out_of_time)
        if run.ckpt is not None:
            _save_checkpoint(run, epoch, reason is not None or epoch == cfg.epochs, reason)
        if on_epoch_end is not None:
            on_epoch_end(row)
        if reason is not None:
            run.say(reason)
            stopped_early = True
            break
    return _hand_back(run, stopped_early)


def _begin_epoch(run: _Loop, train_batches: Any, epoch: int) -> None:
    """Reshuffle the batches for `epoch`; with gradual unfreezing, make the epoch's top layer groups trainable."""
    if hasattr(train_batches, "set_epoch"):
        train_batches.set_epoch(epoch)
    if run.cfg.unfreeze == "gradual":
        unfrozen = set_trainable_depths(run.depths, epoch)
        if len(run.depths) > 1 and epoch <= len(run.depths):
            run.say(f"epoch {epoch}: training the top {unfrozen} of {len(run.depths)} layer groups")


def _hand_back(run: _Loop, stopped_early: bool) -> FitResult:
    """Every layer trainable again and the best weights in the model; the fit's result."""
    if run.cfg.unfreeze == "gradual":
        set_trainable_depths(run.depths, len(run.depths))  # hand the model back as it came: all trainable
    if run.best_state is not None:
        run.model.load_state_dict(run.best_state)
    m = run.monitor
    return FitResult(run.history, m.best_epoch, m.best_value, stopped_early, run.train_seconds)


__all__ = [
    "FitResult",
    "StepOut",
    "Task",
    "WeightAverage",
    "better",
    "fit",
    "layer_depths",
    "load_checkpoint",
    "make_schedule",
    "param_groups",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
    "set_trainable_depths",
    "to_device",
]
