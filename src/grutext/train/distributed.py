"""Data-parallel training over several processes (``torch.distributed``): joining the process group
that ``torchrun`` (or ``grutext train --nproc N``) set up, each rank's part of every batch, the
exact all-reduce of gradients, and the launcher behind ``--nproc``.

The rules, each written once here:

- **Global batch.** ``train.batch_size`` is the *global* batch: every rank walks the same batch list
  (same seed, same length bucketing, same LM windows) and takes the r-th slice of each batch
  (rows ``B*r//N`` to ``B*(r+1)//N``). For a language model the slice of the (B, S) stream layout
  is a contiguous part of the token stream, batched as one process batches it. So the step count,
  the schedule and the learning rate are those of one process with the same ``--batch-size``: the
  learning rate is not rescaled (the "linear scaling rule" of Goyal et al. 2017 applies when the
  global batch grows with N; here it does not grow).
- **Gradients.** After each backward pass, every rank's gradient, multiplied by the count its loss
  is a mean over (`StepOut.weight`: examples, tokens), is summed across ranks in one flat
  all-reduce and divided by the summed count. The result is the gradient of the global batch's
  mean loss, exact even when slices differ in size, and a rank whose slice is empty adds zeros.
  We do this by hand instead of wrapping the model in ``DistributedDataParallel`` because DDP
  averages per-rank means (inexact for unequal slices), needs every rank to run a forward pass
  (an empty slice cannot), and needs ``find_unused_parameters`` bookkeeping for frozen layers
  (gradual unfreezing); the cost is no overlap of the all-reduce with the backward pass.
- **Equal steps.** All ranks iterate the same global batch list, so they take the same number of
  steps; a time budget (``--max-minutes``) is agreed in the same all-reduce (any rank out of time
  stops all), so an uneven shard or a slow rank never leaves a rank waiting in an all-reduce.
- **Only rank 0** prints, shows progress, writes checkpoints and saves the model directory;
  every rank validates on the whole validation set (the same weights give the same figures,
  so early stopping and plateau decay agree without a message).
- **Checkpoints** hold the global state (weights, optimizer, schedule), the same on every rank, so
  a run resumes on any number of ranks.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from grutext.errors import ConfigError

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: rank, number of ranks, rank on this machine, backend."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        """More than one rank: gradients and metrics are reduced."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that prints and writes."""
        return self.rank == 0


_CURRENT = Dist()


def current() -> Dist:
    """The process group this process joined (one rank when none)."""
    return _CURRENT


def is_main_process() -> bool:
    """Rank 0, or no distributed run: read from the environment torchrun sets, without joining anything."""
    return os.environ.get("RANK", "0") == "0"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment {name}={raw!r}: expected an integer (as torchrun sets it)") from None


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA tensors, gloo for CPU ones (the backends torch.distributed documents for each)."""
    return "nccl" if device.type == "cuda" else "gloo"


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group described by the environment (``WORLD_SIZE`` > 1), once per process.

    On CUDA each rank takes device ``cuda:LOCAL_RANK``. Ranks other than 0 send their standard
    output to the null device (errors still reach stderr).

    Returns:
        (this rank's `Dist`, the device this rank trains on).

    Raises:
        ConfigError: an inconsistent environment, or more CUDA ranks than visible devices.
    """
    global _CURRENT
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return _CURRENT, device
    import torch.distributed as tdist

    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world:
        raise ConfigError(f"environment RANK={rank}: expected 0..{world - 1} for WORLD_SIZE={world}")
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if device.index is not None:
            raise ConfigError(
                f"train.device='{device}': in a run of {world} processes each takes its own GPU "
                "(cuda:LOCAL_RANK); use --device cuda or auto"
            )
        if local >= count:
            raise ConfigError(
                f"LOCAL_RANK={local}: only {count} CUDA device(s) visible; start at most {count} processes per machine"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if _CURRENT.active:
        return _CURRENT, device
    backend = backend_for(device)
    if not tdist.is_initialized():
        if not tdist.is_available():
            raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        tdist.init_process_group(backend=backend, rank=rank, world_size=world)
    _CURRENT = Dist(rank, world, local, backend)
    if rank != 0:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
    return _CURRENT, device


def broadcast_module(model: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (the same seed gives the same ones; this makes sure)."""
    import torch.distributed as tdist

    if not _CURRENT.active:
        return
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            tdist.broadcast(t.data, src=0)


def barrier() -> None:
    """Wait for every rank (no-op with one)."""
    if _CURRENT.active:
        import torch.distributed as tdist

        tdist.barrier()


def reduce_gradients(params: Sequence[torch.nn.Parameter], weight: float, stop: bool) -> bool:
    """Replace each rank's gradient by the global batch's, and agree on stopping; one all-reduce.

    Args:
        params: the parameters the optimizer steps (the same list, in the same order, on every rank).
        weight: the count this rank's loss is a mean over (0 for an empty slice).
        stop: this rank wants to stop after this step (its time budget ran out).

    Returns:
        Whether any rank wants to stop.

    A parameter without a gradient on every rank keeps none (AdamW then skips it, as with one rank).
    """
    import torch.distributed as tdist

    if not params:
        return stop
    ref = params[0]
    parts = [(p.grad.reshape(-1) * weight) if p.grad is not None else p.new_zeros(p.numel()) for p in params]
    present = [1.0 if p.grad is not None else 0.0 for p in params]
    tail = torch.tensor([*present, float(weight), 1.0 if stop else 0.0], dtype=ref.dtype, device=ref.device)
    flat = torch.cat([*parts, tail])  # (sum numel + P + 2,)
    tdist.all_reduce(flat)
    n = len(params)
    total = float(flat[-2])
    any_stop = bool(flat[-1] > 0)
    offset = 0
    grads = flat[: flat.numel() - n - 2]
    if total > 0:
        grads /= total
    for k, p in enumerate(params):
        size = p.numel()
        if float(flat[grads.numel() + k]) > 0:
            g = grads[offset : offset + size].view_as(p)  # (numel,) -> the parameter's shape
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
        offset += size
    return any_stop


def reduce_sums(values: Sequence[float]) -> list[float]:
    """Sum of each value across ranks (float64; the values themselves with one rank)."""
    if not _CURRENT.active:
        return [float(v) for v in values]
    import torch.distributed as tdist

    device = torch.device("cuda", torch.cuda.current_device()) if _CURRENT.backend == "nccl" else torch.device("cpu")
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return [float(v) for v in t.cpu()]


def shard_batch(batch: dict[str, Any], rank: int, world: int) -> dict[str, Any] | None:
    """Rank `rank`'s rows ``B*rank//world`` to ``B*(rank+1)//world`` of a batch dict; None when empty.

    Every tensor (and list) whose first dimension is the batch's B is sliced; the rest (an LM
    window's ``reset`` flag) is kept. B is read from the first tensor of the batch.
    """
    sizes = [v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor) and v.dim() >= 1]
    if not sizes:
        raise ValueError("shard_batch: a batch without tensors")
    b = int(sizes[0])
    lo, hi = b * rank // world, b * (rank + 1) // world
    if hi == lo:
        return None
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == b:
            out[key] = value[lo:hi]  # (B, ...) -> (hi - lo, ...)
        elif isinstance(value, (list, tuple)) and len(value) == b:
            out[key] = value[lo:hi]
        else:
            out[key] = value
    return out


class ShardedBatches:
    """This rank's part of each of `inner`'s global batches (`shard_batch`); None for an empty slice.

    Everything else (``len``, ``set_epoch``, ``num_tokens``, other attributes) is `inner`'s, so the
    step count and the schedule are the global ones.
    """

    def __init__(self, inner: Any, rank: int, world: int) -> None:
        self.inner = inner
        self.rank = rank
        self.world = world

    def __len__(self) -> int:
        return len(self.inner)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not yet set (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        for batch in self.inner:
            yield shard_batch(batch, self.rank, self.world)


def dropout_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of rank `rank` > 0 for `epoch`: its own dropout masks, reproducible on resume."""
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2**63)


# ---- the launcher behind `grutext train --nproc N` ----------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_interface() -> str:
    """The loopback interface's name, for gloo on one machine."""
    return "lo0" if sys.platform == "darwin" else "lo"


def rank_environments(nproc: int, port: int, base: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The environment of each of `nproc` processes on this machine, as torchrun sets it.

    Threads: ``OMP_NUM_THREADS`` = CPUs / nproc (at least 1) unless already set, so N ranks do not
    each start one thread per core.
    """
    base = dict(os.environ if base is None else base)
    threads = base.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // nproc))
    envs = []
    for r in range(nproc):
        env = dict(base)
        env.update(
            RANK=str(r),
            LOCAL_RANK=str(r),
            WORLD_SIZE=str(nproc),
            LOCAL_WORLD_SIZE=str(nproc),
            GROUP_RANK="0",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS=threads,
        )
        env.setdefault("GLOO_SOCKET_IFNAME", loopback_interface())
        envs.append(env)
    return envs


def launch(argv: Sequence[str], nproc: int, *, poll_s: float = 0.2) -> int:
    """Run ``python -m grutext ARGV`` in `nproc` processes on this machine (ranks 0..nproc-1), as
    ``torchrun --standalone --nproc-per-node nproc -m grutext ARGV`` would, and wait for them.

    If one process fails, the others are stopped; returns rank 0's exit status, or the first
    failure's when rank 0 succeeded.
    """
    if "WORLD_SIZE" in os.environ and os.environ["WORLD_SIZE"] not in ("", "1"):
        raise ConfigError(
            f"--nproc {nproc}: this process is already rank {os.environ.get('RANK', '?')} of "
            f"{os.environ['WORLD_SIZE']} (torchrun); drop --nproc"
        )
    envs = rank_environments(nproc, free_port())
    procs = [subprocess.Popen([sys.executable, "-m", "grutext", *argv], env=env) for env in envs]
    codes: list[int | None] = [None] * nproc
    failed: int | None = None
    try:
        while any(c is None for c in codes):
            for r, p in enumerate(procs):
                if codes[r] is None:
                    codes[r] = p.poll()
                    if codes[r] not in (None, 0) and failed is None:
                        failed = r
            if failed is not None:
                _stop(procs)
                codes = [p.wait() for p in procs]
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        _stop(procs)
        for p in procs:
            p.wait()
        raise
    assert all(c is not None for c in codes)
    if failed is not None and failed != 0:
        print(
            f"grutext train: error: process {failed} of {nproc} failed with exit status {codes[failed]}",
            file=sys.stderr,
        )
        return int(codes[failed] or 1)
    return int(codes[0] or 0)


def _stop(procs: Sequence[subprocess.Popen[Any]], grace_s: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        left = max(0.0, deadline - time.monotonic())
        try:
            p.wait(timeout=left)
        except subprocess.TimeoutExpired:
            p.kill()


__all__ = [
    "Dist",
    "ShardedBatches",
    "backend_for",
    "barrier",
    "broadcast_module",
    "current",
    "dropout_seed",
    "free_port",
    "init_distributed",
    "is_main_process",
    "launch",
    "rank_environments",
    "reduce_gradients",
    "reduce_sums",
    "shard_batch",
]
