"""Recurrent layers: grutext's own GRU, the other cells behind the same encoder interface,
pooling, and Keras weight converters."""

from grutext.nn.cells import CELLS, LSTM, RNN, LayerNormGRU, MinGRU, make_encoder
from grutext.nn.gru import GRU
from grutext.nn.keras_interop import (
    gru_weights_from_keras,
    gru_weights_to_keras,
    keras_layer_to_state_dict,
    state_dict_to_keras_layer,
)
from grutext.nn.pooling import Pooling

__all__ = [
    "CELLS",
    "GRU",
    "LSTM",
    "RNN",
    "LayerNormGRU",
    "MinGRU",
    "Pooling",
    "make_encoder",
    "gru_weights_from_keras",
    "gru_weights_to_keras",
    "keras_layer_to_state_dict",
    "state_dict_to_keras_layer",
]
