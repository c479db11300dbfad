"""Keras 3 GRU(reset_after=True) <-> grutext/torch GRU weight converters."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from grutext.errors import ConfigError
from grutext.nn.gru import GRU
from grutext.nn.keras_interop import (
    gru_weights_from_keras,
    gru_weights_to_keras,
    keras_layer_to_state_dict,
    state_dict_to_keras_layer,
)

E, H, B, T = 5, 6, 3, 7


def test_round_trip_and_gate_order() -> None:
    rng = np.random.default_rng(0)
    w_ih, w_hh = rng.normal(size=(3 * H, E)), rng.normal(size=(3 * H, H))
    b_ih, b_hh = rng.normal(size=3 * H), rng.normal(size=3 * H)
    kernel, rec, bias = gru_weights_to_keras(w_ih, w_hh, b_ih, b_hh)
    assert kernel.shape == (E, 3 * H) and rec.shape == (H, 3 * H) and bias.shape == (2, 3 * H)
    np.testing.assert_array_equal(kernel[:, :H], w_ih[H : 2 * H].T)  # Keras z block = torch z block
    np.testing.assert_array_equal(kernel[:, H : 2 * H], w_ih[:H].T)  # Keras r block = torch r block
    np.testing.assert_array_equal(bias[1, 2 * H :], b_hh[2 * H :])  # recurrent candidate bias
    back = gru_weights_from_keras(kernel, rec, bias)
    for key, ref in {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh}.items():
        np.testing.assert_array_equal(back[key], ref)


def test_reset_after_false_refused() -> None:
    with pytest.raises(ConfigError, match="reset_after"):
        gru_weights_from_keras(np.zeros((E, 3 * H)), np.zeros((H, 3 * H)), np.zeros(3 * H))
    with pytest.raises(ConfigError, match=rf"^kernel: expected shape \(in, {3 * H}\), got \({E}, {3 * H + 1}\)$"):
        gru_weights_from_keras(np.zeros((E, 3 * H + 1)), np.zeros((H, 3 * H)))


def test_layer_conversion_bidirectional_state_dict() -> None:
    torch.manual_seed(0)
    gru = GRU(E, H, bidirectional=True)
    weights = state_dict_to_keras_layer(gru.state_dict())
    assert len(weights) == 6
    sd = keras_layer_to_state_dict(weights)
    other = GRU(E, H, bidirectional=True)
    other.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    for (n, p), (_, q) in zip(gru.named_parameters(), other.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    no_bias = keras_layer_to_state_dict(weights[:2] + weights[3:5])  # use_bias=False, 4 arrays
    assert no_bias["bias_ih_l0_reverse"].sum() == 0


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras is not on the torch backend")
    return keras


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("bi", [False, True])
def test_keras_parity(bi: bool) -> None:
    keras = _keras()
    torch.manual_seed(0)
    x = np.random.default_rng(1).normal(size=(B, T, E)).astype("float32")
    layer = keras.layers.GRU(H, return_sequences=True, return_state=False, reset_after=True)
    if bi:
        layer = keras.layers.Bidirectional(layer)
    k_out = keras.ops.convert_to_numpy(layer(x))  # builds the layer with random weights
    ours = GRU(E, H, batch_first=True, bidirectional=bi)
    sd = keras_layer_to_state_dict(layer.get_weights())
    ours.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype="float32")) for k, v in sd.items()})
    out = ours(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(out, k_out, rtol=1e-5, atol=1e-5)
    # and back: our weights into a fresh Keras layer
    torch.manual_seed(2)
    ours2 = GRU(E, H, batch_first=True, bidirectional=bi)
    layer.set_weights(state_dict_to_keras_layer(ours2.state_dict()))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), ours2(torch.from_numpy(x))[0].detach().numpy(), rtol=1e-5, atol=1e-5
    )


def test_a_state_dict_without_the_layer_is_a_config_error_naming_its_keys() -> None:
    state = {"weight_hh_l0": np.zeros((3 * H, H)), "bias_ih_l0": np.zeros(3 * H)}
    with pytest.raises(
        ConfigError, match=r"^state_dict: expected key 'weight_ih_l1', got keys \['bias_ih_l0', 'weight_hh_l0'\]$"
    ):
        state_dict_to_keras_layer(state, layer=1)
