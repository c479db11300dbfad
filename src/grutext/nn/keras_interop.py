"""Weight converters between Keras 3 ``GRU(reset_after=True)`` and grutext / torch.nn.GRU.

Keras (reset_after=True, the Keras 2.x/3 default) computes the same function as torch::

    z = σ(x W_z + b_iz + h U_z + b_hz);  r = σ(x W_r + b_ir + h U_r + b_hr)
    h̃ = tanh(x W_h + b_ih + r * (h U_h + b_hh));  h' = z * h + (1 - z) * h̃

but stores it differently: ``kernel`` (in, 3H) and ``recurrent_kernel`` (H, 3H), transposed, with
gate blocks ordered z, r, h; ``bias`` (2, 3H) with row 0 the input bias and row 1 the recurrent
bias. torch stores ``weight_ih`` (3H, in), ``weight_hh`` (3H, H), ``bias_ih``/``bias_hh`` (3H,)
with gates ordered r, z, n. ``reset_after=False`` (bias (3H,)) applies the reset gate before the
recurrent product: a different function, refused with ConfigError.

All functions take and return numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from grutext.errors import ConfigError


def _swap_rz(a: np.ndarray, axis: int) -> np.ndarray:
    """Exchange the first two gate blocks along `axis` (r,z,n <-> z,r,h)."""
    first, second, third = np.split(a, 3, axis=axis)
    return np.concatenate([second, first, third], axis=axis)


def _check_3h(name: str, a: np.ndarray, shape: tuple[int, ...]) -> None:
    if a.shape != shape:
        raise ConfigError(f"{name}: expected shape {shape}, got {a.shape}")


def gru_weights_from_keras(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Convert one Keras GRU cell's weights (one direction) to torch layout.

    Args:
        kernel: (in, 3H), gates z, r, h.
        recurrent_kernel: (H, 3H).
        bias: (2, 3H) (reset_after=True) or None (use_bias=False -> zero biases).

    Returns:
        ``{"weight_ih": (3H, in), "weight_hh": (3H, H), "bias_ih": (3H,), "bias_hh": (3H,)}``, gates r, z, n.

    Raises:
        ConfigError: bias of shape (3H,) (a reset_after=False GRU) or inconsistent shapes.
    """
    kernel, recurrent_kernel = np.asarray(kernel), np.asarray(recurrent_kernel)
    if recurrent_kernel.ndim != 2 or recurrent_kernel.shape[1] != 3 * recurrent_kernel.shape[0]:
        raise ConfigError(f"recurrent_kernel: expected shape (H, 3H), got {recurrent_kernel.shape}")
    H = recurrent_kernel.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 3 * H:
        raise ConfigError(f"kernel: expected shape (in, {3 * H}), got {kernel.shape}")
    if bias is None:
        bias = np.zeros((2, 3 * H), dtype=kernel.dtype)
    bias = np.asarray(bias)
    if bias.shape == (3 * H,):
        raise ConfigError(
            f"bias: expected shape (2, {3 * H}) from GRU(reset_after=True), got ({3 * H},): a reset_after=False "
            "GRU applies the reset gate before the recurrent product, a different function"
        )
    _check_3h("bias", bias, (2, 3 * H))
    return {
        "weight_ih": np.ascontiguousarray(_swap_rz(kernel, 1).T),  # (in, 3H) z,r,h -> (3H, in) r,z,n
        "weight_hh": np.ascontiguousarray(_swap_rz(recurrent_kernel, 1).T),  # (H, 3H) -> (3H, H)
        "bias_ih": _swap_rz(bias[0], 0).copy(),  # (3H,)
        "bias_hh": _swap_rz(bias[1], 0).copy(),  # (3H,)
    }


def gru_weights_to_keras(
    weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: np.ndarray | None = None, bias_hh: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert one direction of torch-layout GRU weights to Keras ``GRU(reset_after=True)``.

    Args:
        weight_ih: (3H, in), gates r, z, n.
        weight_hh: (3H, H).
        bias_ih, bias_hh: (3H,) each, or None for zeros.

    Returns:
        ``(kernel (in, 3H), recurrent_kernel (H, 3H), bias (2, 3H))``, gates z, r, h.
    """
    weight_ih, weight_hh = np.asarray(weight_ih), np.asarray(weight_hh)
    if weight_hh.ndim != 2 or weight_hh.shape[0] != 3 * weight_hh.shape[1]:
        raise ConfigError(f"weight_hh: expected shape (3H, H), got {weight_hh.shape}")
    H = weight_hh.shape[1]
    if weight_ih.ndim != 2 or weight_ih.shape[0] != 3 * H:
        raise ConfigError(f"weight_ih: expected shape ({3 * H}, in), got {weight_ih.shape}")
    zeros = np.zeros(3 * H, dtype=weight_ih.dtype)
    b_i = zeros if bias_ih is None else np.asarray(bias_ih)
    b_h = zeros if bias_hh is None else np.asarray(bias_hh)
    _check_3h("bias_ih", b_i, (3 * H,))
    _check_3h("bias_hh", b_h, (3 * H,))
    kernel = np.ascontiguousarray(_swap_rz(weight_ih, 0).T)  # (3H, in) r,z,n -> (in, 3H) z,r,h
    recurrent = np.ascontiguousarray(_swap_rz(weight_hh, 0).T)  # (3H, H) -> (H, 3H)
    bias = np.stack([_swap_rz(b_i, 0), _swap_rz(b_h, 0)])  # (2, 3H)
    return kernel, recurrent, bias


def keras_layer_to_state_dict(
    weights: Sequence[np.ndarray], layer: int = 0, bidirectional: bool | None = None
) -> dict[str, np.ndarray]:
    """Convert ``get_weights()`` of a Keras ``GRU`` or ``Bidirectional(GRU)`` to torch state_dict entries.

    Args:
        weights: ``[kernel, recurrent_kernel, bias]`` (or without bias when use_bias=False); a
            Bidirectional layer gives the forward then the backward layer's list (6 or 4 arrays).
        layer: k in the returned names ``weight_ih_l{k}`` ...
        bidirectional: None infers it from the number of arrays (6 or 4 -> Bidirectional,
            3 or 2 -> GRU; 2 arrays per direction mean use_bias=False).

    Returns:
        ``{"weight_ih_l{k}": ..., "weight_hh_l{k}": ..., "bias_ih_l{k}": ..., "bias_hh_l{k}": ...}``
        plus the ``_reverse`` entries when bidirectional. Load with ``torch.from_numpy``.
    """
    weights = [np.asarray(w) for w in weights]
    if bidirectional is None:
        if len(weights) in (4, 6):
            bidirectional = True
        elif len(weights) in (2, 3):
            bidirectional = False
        else:
            raise ConfigError(f"weights: expected 2, 3, 4 or 6 arrays, got {len(weights)}")
    per = len(weights) // (2 if bidirectional else 1)
    if per not in (2, 3) or per * (2 if bidirectional else 1) != len(weights):
        raise ConfigError(f"weights: expected 2 or 3 arrays per direction, got {len(weights)} in total")
    out: dict[str, np.ndarray] = {}
    for d in range(2 if bidirectional else 1):
        chunk = weights[d * per : (d + 1) * per]
        conv = gru_weights_from_keras(chunk[0], chunk[1], chunk[2] if per == 3 else None)
        sfx = f"l{layer}" + ("_reverse" if d else "")
        for key, value in conv.items():
            out[f"{key}_{sfx}"] = value
    return out


def state_dict_to_keras_layer(
    state_dict: Mapping[str, object], layer: int = 0, bidirectional: bool | None = None
) -> list[np.ndarray]:
    """Convert one layer of a torch.nn.GRU / grutext GRU state_dict to Keras ``set_weights()`` order.

    Args:
        state_dict: mapping with ``weight_ih_l{k}`` ... (tensors or arrays).
        layer: k.
        bidirectional: None infers it from the presence of ``weight_ih_l{k}_reverse``.

    Returns:
        ``[kernel, recurrent_kernel, bias]`` (forward), then the backward layer's three for a
        Bidirectional wrapper.
    """

    def arr(key: str) -> np.ndarray | None:
        v = state_dict.get(key)
        if v is None:
            return None
        return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)

    if f"weight_ih_l{layer}" not in state_dict:
        raise ConfigError(f"state_dict: expected key 'weight_ih_l{layer}', got keys {sorted(state_dict)[:6]}")
    if bidirectional is None:
        bidirectional = f"weight_ih_l{layer}_reverse" in state_dict
    out: list[np.ndarray] = []
    for d in range(2 if bidirectional else 1):
        sfx = f"l{layer}" + ("_reverse" if d else "")
        w_ih, w_hh = arr(f"weight_ih_{sfx}"), arr(f"weight_hh_{sfx}")
        if w_ih is None or w_hh is None:
            raise ConfigError(f"state_dict: expected keys 'weight_ih_{sfx}' and 'weight_hh_{sfx}', missing")
        out.extend(gru_weights_to_keras(w_ih, w_hh, arr(f"bias_ih_{sfx}"), arr(f"bias_hh_{sfx}")))
    return out


__all__ = ["gru_weights_from_keras", "gru_weights_to_keras", "keras_layer_to_state_dict", "state_dict_to_keras_layer"]
