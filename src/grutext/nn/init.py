"""Weight initialisation schemes shared by the recurrent layers.

A scheme is named by a string so that it can live in a config file:

- ``"default"``: torch's own, every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).
- ``"orthogonal"``: recurrent weights orthogonal per gate block (H, H), input weights Xavier
  uniform per gate block, biases zero.
- ``"xavier"``: every weight Xavier uniform per gate block, biases zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from grutext.errors import ConfigError

INIT_SCHEMES = ("default", "orthogonal", "xavier")


def check_init(init: str) -> str:
    """Return `init` if it names a known scheme, else raise ConfigError."""
    if init not in INIT_SCHEMES:
        raise ConfigError(f"init: expected one of {list(INIT_SCHEMES)}, got {init!r}")
    return init


@torch.no_grad()
def init_recurrent_(module: nn.Module, init: str, hidden_size: int) -> None:
    """Initialise every parameter of a recurrent layer in place.

    Parameters are recognised by name: ``weight_hh*`` recurrent, ``weight_ih*`` / ``weight_x*``
    input, ``bias*`` biases; anything else (LayerNorm gains, ...) is left to the caller.

    Args:
        module: the layer whose direct parameters are initialised.
        init: one of ``"default"``, ``"orthogonal"``, ``"xavier"``.
        hidden_size: H, the size of one gate block (weights are (G*H, in)).
    """
    check_init(init)
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for name, p in module.named_parameters(recurse=False):
        if init == "default":
            if name.startswith(("weight", "bias")):
                nn.init.uniform_(p, -bound, bound)
            continue
        if name.startswith("bias"):
            nn.init.zeros_(p)
        elif name.startswith("weight_hh") and init == "orthogonal":
            for block in p.split(hidden_size, dim=0):  # G blocks of (H, H)
                nn.init.orthogonal_(block)
        elif name.startswith("weight") and p.dim() == 2:
            for block in p.split(hidden_size, dim=0):  # G blocks of (H, in)
                nn.init.xavier_uniform_(block)
