"""`WeightAverage`: the exponential moving average of a model's weights that `fit` keeps with ``train.ema``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from grutext.errors import ArtifactError


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
    def applied(self, model: torch.nn.Module) -> Iterator[torch.nn.Module]:
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
