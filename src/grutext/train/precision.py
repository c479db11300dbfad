"""The GPU path's two decisions, written once: the autocast precision (``train.precision``) and
whether batches are copied from pinned memory.

``auto`` trains in bf16 autocast on a CUDA device that supports bf16 (compute capability 8.0 and
up: A100, H100...) and in fp32 everywhere else. Under ``torch.autocast`` the weights, the optimizer
state and the gradients stay fp32; matrix products (and cuDNN's GRU) run in bf16, losses and
reductions in fp32 (torch's autocast op lists). bf16 keeps fp32's exponent range, so no loss
scaling is needed (unlike fp16). On the CPU, ``bf16`` is refused: our fused C++ recurrence and the
explicit GRU compute in fp32, and CPU autocast would only add casts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from grutext.errors import ConfigError


def cuda_bf16_supported() -> bool:
    """Whether the current CUDA device computes in bf16 natively (False without CUDA)."""
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def resolve_precision(name: str, device: torch.device, bf16_supported: Callable[[], bool] = cuda_bf16_supported) -> str:
    """``"fp32"`` or ``"bf16"``: the precision a run on `device` trains in.

    Args:
        name: ``train.precision``: auto, fp32 or bf16.
        device: the run's device.
        bf16_supported: the capability check (tests pass their own).

    Raises:
        ConfigError: bf16 asked for on the CPU, or on a GPU without bf16.
    """
    if name == "fp32":
        return "fp32"
    if name not in ("auto", "bf16"):
        raise ConfigError(f"train.precision={name!r}: expected auto, fp32 or bf16")
    if device.type != "cuda":
        if name == "bf16":
            raise ConfigError(
                f"train.precision='bf16': bf16 autocast is for CUDA devices; this run trains on {device.type}, "
                "where the GRU computes in fp32: use --precision auto or fp32"
            )
        return "fp32"
    if bf16_supported():
        return "bf16"
    if name == "bf16":
        raise ConfigError("train.precision='bf16': this CUDA device has no bf16 support; use --precision auto or fp32")
    return "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The forward pass's context: bf16 autocast on CUDA when `precision` is bf16, else nothing."""
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pin_batches(device: torch.device) -> bool:
    """Copy batches through pinned (page-locked) host memory: on CUDA, where the copy is then
    asynchronous (``non_blocking``); never on the CPU."""
    return device.type == "cuda"


__all__ = ["autocast", "cuda_bf16_supported", "pin_batches", "resolve_precision"]
