"""Matched parameter counts: the hidden size of each cell that gives (nearly) the first cell's number of
trainable parameters, counted on the model the task really builds.

The task's training function is run once up to the point where it builds its network (with
`save=False`, so nothing is written): the call that builds it is captured, and the same call is
repeated with other cells and hidden sizes. So vocabulary, classes, embedding, head, pooling,
tied decoder and every other part the task adds are counted exactly as in training.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from grutext.config import Config
from grutext.errors import ConfigError
from grutext.experiments.plan import TASK_RUNS, extra_settings

TOLERANCE = 0.02  # matched counts within 2% of the first cell's
MAX_HIDDEN = 1 << 15


class _Built(Exception):
    """Raised in place of building the network: carries the builder's arguments out of the training function."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]):
        super().__init__("probe")
        self.args, self.kwargs = args, kwargs


def model_builder(kind: str, cfg: Config, extra: dict[str, Any]) -> Callable[[str, int], torch.nn.Module]:
    """A function `(cell, hidden_size) -> the untrained network` the task would train with these settings.

    Runs the task's public training function (save=False, quiet) until it builds its network.
    """
    spec = TASK_RUNS[kind]
    module = importlib.import_module(spec.module)
    real = getattr(module, spec.model_class)

    class _Capture:
        @staticmethod
        def from_config(*args: Any, **kwargs: Any) -> Any:
            raise _Built(args, kwargs)

    train_fn = getattr(module, spec.function)
    settings = extra_settings(kind, extra)
    setattr(module, spec.model_class, _Capture)
    try:
        train_fn(cfg, save=False, verbose=False, progress=False, **settings)
    except _Built as built:
        args, kwargs = built.args, built.kwargs
    else:  # pragma: no cover - every task builds its network through `model_class.from_config`
        raise RuntimeError(f"{spec.module}.{spec.function} never built a {spec.model_class}")
    finally:
        setattr(module, spec.model_class, real)

    def build(cell: str, hidden: int) -> torch.nn.Module:
        model_cfg = replace(args[0], cell=cell, hidden_size=int(hidden))
        return real.from_config(model_cfg, *args[1:], **kwargs)

    return build


def trainable_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def match_hidden_sizes(
    build: Callable[[str, int], torch.nn.Module], cells: list[str], hidden: int, *, tolerance: float = TOLERANCE
) -> dict[str, dict[str, Any]]:
    """For each cell the hidden size whose trainable parameter count is nearest the first cell's at `hidden`.

    The count grows with the hidden size, so a bisection finds the two sizes around the target and the
    nearer one is taken.

    Returns:
        cell -> {"hidden_size", "params", "target", "relative_difference"}.

    Raises:
        ConfigError: a cell that cannot come within `tolerance`, or a task whose network does not change with
            the cell (nothing to compare).
    """
    counts: dict[tuple[str, int], int] = {}

    def count(cell: str, h: int) -> int:
        if (cell, h) not in counts:
            counts[(cell, h)] = trainable_parameters(build(cell, h))
        return counts[(cell, h)]

    first = cells[0]
    target = count(first, hidden)
    shapes = {first: _shapes(build(first, hidden))}
    out: dict[str, dict[str, Any]] = {first: {"hidden_size": hidden, "params": target, "target": target}}
    for cell in cells[1:]:
        shape = _shapes(build(cell, hidden))
        same = [c for c, s in shapes.items() if s == shape]
        if same:
            raise ConfigError(
                f"--cells: this task's network is the same with cell {cell!r} as with {same[0]!r} "
                "(it does not use model.cell); nothing to compare"
            )
        shapes[cell] = shape
        lo, hi = 1, max(hidden, 2)
        while count(cell, hi) < target:
            lo, hi = hi, hi * 2
            if hi > MAX_HIDDEN:
                raise ConfigError(f"--match params: cell {cell} stays below {target:,} parameters up to hidden {lo}")
        while hi - lo > 1:  # count(lo) < target <= count(hi), or lo = 1
            mid = (lo + hi) // 2
            if count(cell, mid) < target:
                lo = mid
            else:
                hi = mid
        best = min((lo, hi), key=lambda h: (abs(count(cell, h) - target), h))
        out[cell] = {"hidden_size": best, "params": count(cell, best), "target": target}
    for cell, row in out.items():
        row["relative_difference"] = (row["params"] - target) / target
        if abs(row["relative_difference"]) > tolerance:
            raise ConfigError(
                f"--match params: the nearest {cell} (hidden {row['hidden_size']}, {row['params']:,} parameters) is "
                f"{row['relative_difference']:+.1%} from {first}'s {target:,}; "
                "use --match hidden or another --hidden-size"
            )
    return out


__all__ = ["TOLERANCE", "match_hidden_sizes", "model_builder", "trainable_parameters"]
