"""ONNX graphs of grutext networks, written node by node from their weights (numpy arrays).

Nothing here imports torch: the exporter hands over plain arrays, so the graph is ours and its
every operator is chosen on purpose, not traced.

The GRU has two forms:

- ``"op"``: ONNX's own ``GRU`` operator with ``linear_before_reset=1`` (torch's function: the
  reset gate multiplies ``W_hn h + b_hn``) and ``sequence_lens``, so each sequence's recurrence
  stops at its length and the reverse direction starts at its last real token; onnxruntime's
  kernel runs it. ONNX stacks the gates z, r, h; torch r, z, n: the rows are reordered here.
- ``"loop"``: the input projection of all time steps as one MatMul outside the recurrence, then
  a ``Loop`` whose body is the cell (both directions in one iteration, the reverse one reading
  step ``T-1-i``) with the padding mask: a padded step leaves the state alone and writes zeros,
  exactly as grutext's GRU does. This is the form int8 uses: onnxruntime's dynamic quantization
  leaves ``GRU`` nodes in fp32 (onnxruntime#9796), while every matrix product here can be an
  integer one.

int8 (``quant=True``): every weight matrix is stored as int8 with one fp32 scale per output
channel (symmetric, ``scale = max|w| / 127``); activations are quantized per tensor at run time
(``DynamicQuantizeLinear``, uint8), multiplied with ``MatMulInteger`` (int32 accumulation) and
scaled back: ``y = (x_q - x_zp) W_q * (x_scale * w_scale) + b``. The embedding is int8 with one
scale per row. Biases, gates, state and pooling stay fp32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

OPSETS = (17, 18, 19, 20, 21)
DEFAULT_OPSET = 17
GRU_FORMS = ("op", "loop")


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-column int8 quantization of `w` (K, N): (q int8 (K, N), scale fp32 (N,))."""
    amax = np.abs(w).max(axis=0)  # (N,)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


@dataclass
class Builder:
    """Collects nodes and initializers of one (sub)graph; names are unique per builder prefix."""

    opset: int
    prefix: str = ""
    nodes: list[Any] = field(default_factory=list)
    inits: list[Any] = field(default_factory=list)
    count: int = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def const(self, arr: Any, hint: str = "c", dtype: Any = None) -> str:
        from onnx import numpy_helper

        a = np.asarray(arr, dtype=dtype)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(a.copy(order="C"), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, n_out: int = 1, **attrs: Any) -> Any:
        from onnx import helper

        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name("n_" + op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    # ---- helpers that differ between opsets or recur ------------------------------------------

    def reduce(self, op_type: str, x: str, axes: list[int], keepdims: int = 0) -> str:
        """ReduceSum/ReduceMax over `axes` (axes are an input from opset 18 on; ReduceSum's from 13)."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return str(self.op(op_type, [x, self.const(axes, "axes", np.int64)], keepdims=keepdims))
        return str(self.op(op_type, [x], axes=axes, keepdims=keepdims))

    def slice(self, x: str, start: int, end: int, axis: int, step: int = 1) -> str:
        c = self.const
        return str(
            self.op(
                "Slice",
                [
                    x,
                    c([start], "st", np.int64),
                    c([end], "en", np.int64),
                    c([axis], "ax", np.int64),
                    c([step], "sp", np.int64),
                ],
            )
        )

    def unsqueeze(self, x: str, axes: list[int]) -> str:
        return str(self.op("Unsqueeze", [x, self.const(axes, "axes", np.int64)]))

    def squeeze(self, x: str, axes: list[int]) -> str:
        return str(self.op("Squeeze", [x, self.const(axes, "axes", np.int64)]))

    def linear(self, x: str, w: np.ndarray, b: np.ndarray | None, quant: bool, hint: str = "lin") -> str:
        """`x (..., K) @ w.T + b` for a torch weight `w` (N, K); int8 when `quant`."""
        wt = np.ascontiguousarray(w.T.astype(np.float32))  # (K, N)
        if not quant:
            y = str(self.op("MatMul", [x, self.const(wt, hint + "_wt")]))
        else:
            q, scale = quantize_columns(wt)
            y = self.qmatmul(x, self.const(q, hint + "_wq"), self.const(scale, hint + "_ws"))
        return y if b is None else str(self.op("Add", [y, self.const(b.astype(np.float32), hint + "_b")]))

    def qmatmul(self, x: str, wq: str, wscale: str) -> str:
        """Dynamic int8 product: `x` float (..., K) quantized per tensor (uint8), `wq` int8 (K, N)."""
        xq, xs, xzp = self.op("DynamicQuantizeLinear", [x], n_out=3)
        acc = self.op("MatMulInteger", [xq, wq, xzp])  # int32 (..., N)
        scale = self.op("Mul", [xs, wscale])  # (N,)
        return str(self.op("Mul", [self.op("Cast", [acc], to=1), scale]))


# --------------------------------------------------------------------------------------------
# embedding


def embed(g: Builder, ids: str, weight: np.ndarray, quant: bool, hint: str = "emb") -> str:
    """`ids (B, T)` int64 -> `(B, T, E)` rows of `weight (V, E)`; int8 with one scale per row."""
    if not quant:
        return str(g.op("Gather", [g.const(weight.astype(np.float32), hint + "_w"), ids], axis=0))
    q, scale = quantize_columns(weight.T)  # q (E, V): column v is row v of the matrix
    rows = g.op("Cast", [g.op("Gather", [g.const(q, hint + "_q"), ids], axis=1)], to=1)  # (E, ...)
    rows = g.op("Transpose", [rows], perm=[1, 2, 0])  # (E, B, T) -> (B, T, E): ids are always 2-D
    s = g.unsqueeze(str(g.op("Gather", [g.const(scale, hint + "_s"), ids], axis=0)), [-1])  # (..., 1)
    return str(g.op("Mul", [rows, s]))


# --------------------------------------------------------------------------------------------
# the GRU


@dataclass
class GRULayer:
    """One layer's torch weights per direction: lists of (w_ih (3H, In), w_hh (3H, H), b_ih, b_hh)."""

    hidden: int
    directions: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def _zrn(a: np.ndarray, H: int) -> np.ndarray:
    """torch's gate order r, z, n -> ONNX's z, r, h along the first axis."""
    return np.concatenate([a[H : 2 * H], a[:H], a[2 * H :]], axis=0)


def gru_layer_op(g: Builder, x: str, seq_lens: str | None, layer: GRULayer, h0: str | None = None) -> tuple[str, str]:
    """ONNX GRU op over x (T, B, In): output (T, B, D*H) zeros past each length, h_n (D, B, H)."""
    H = layer.hidden
    D = len(layer.directions)
    W = np.stack([_zrn(d[0], H) for d in layer.directions]).astype(np.float32)  # (D, 3H, In)
    R = np.stack([_zrn(d[1], H) for d in layer.directions]).astype(np.float32)  # (D, 3H, H)
    Bias = np.stack([np.concatenate([_zrn(d[2], H), _zrn(d[3], H)]) for d in layer.directions]).astype(np.float32)
    inputs = [x, g.const(W, "gru_W"), g.const(R, "gru_R"), g.const(Bias, "gru_B"), seq_lens or "", h0 or ""]
    y, y_h = g.op(
        "GRU",
        inputs,
        n_out=2,
        hidden_size=H,
        linear_before_reset=1,
        direction="bidirectional" if D == 2 else "forward",
    )  # (T, D, B, H), (D, B, H)
    y = g.op("Transpose", [y], perm=[0, 2, 1, 3])  # (T, B, D, H)
    y = g.op("Reshape", [y, g.const([0, 0, -1], "shape", np.int64)])  # (T, B, D*H)
    return str(y), str(y_h)


def gru_cell(g: Builder, gi: str, h: str, w_hh: np.ndarray, b_hh: np.ndarray, H: int, quant: bool, hint: str) -> str:
    """One GRU step: gi (B, 3H) = W_ih x + b_ih (precomputed), h (B, H) -> h' (B, H), torch's gates."""
    gh = g.linear(h, w_hh, b_hh, quant, hint + "_hh")  # (B, 3H)
    i_r, i_z, i_n = (g.slice(gi, k * H, (k + 1) * H, 1) for k in range(3))
    h_r, h_z, h_n = (g.slice(gh, k * H, (k + 1) * H, 1) for k in range(3))
    r = g.op("Sigmoid", [g.op("Add", [i_r, h_r])])
    z = g.op("Sigmoid", [g.op("Add", [i_z, h_z])])
    n = g.op("Tanh", [g.op("Add", [i_n, g.op("Mul", [r, h_n])])])
    return str(g.op("Add", [n, g.op("Mul", [z, g.op("Sub", [h, n])])]))  # n + z * (h - n)


def gru_layer_loop(g: Builder, x: str, valid: str, layer: GRULayer, quant: bool, hint: str) -> tuple[str, str]:
    """The Loop form over x (T, B, In) with valid (T, B, 1) bool: output (T, B, D*H), h_n (D, B, H).

    Both directions run in one iteration as a stacked state (D, B, H): the reverse direction's
    inputs and mask are reversed in time beforehand, so iteration i reads step i of each; its
    outputs are put back in time order afterwards. A padded step (t >= length) leaves the state
    alone and writes zeros, so the reverse direction starts at each sequence's last real token.
    """
    D = len(layer.directions)
    gi_all, mask = _loop_inputs(g, x, valid, layer, quant, hint)
    T, h0 = _loop_start(g, x, D, layer.hidden)
    body_graph = _loop_body(g, gi_all, mask, layer, quant, hint)
    h_n, ys = g.op("Loop", [T, "", h0], hint=hint + "_loop", n_out=2, body=body_graph)  # (D, B, H), (T, D, B, H)
    if D == 2:  # the reverse direction's outputs were stacked from t = T-1 down: back in time order
        ys = g.op("Concat", [g.slice(ys, 0, 1, 1), g.slice(g.slice(ys, 1, 2, 1), -1, -(2**63), 0, -1)], axis=1)
    y = g.op("Transpose", [ys], perm=[0, 2, 1, 3])  # (T, B, D, H)
    y = g.op("Reshape", [y, g.const([0, 0, -1], "shape", np.int64)])  # (T, B, D*H)
    return str(y), str(h_n)


def _loop_inputs(g: Builder, x: str, valid: str, layer: GRULayer, quant: bool, hint: str) -> tuple[str, str]:
    """Every step's input projection (T, D, B, 3H) and mask (T, D, B, 1), the reverse direction's reversed."""
    H = layer.hidden
    D = len(layer.directions)
    # every step's input projection at once, both directions side by side: (T, B, D*3H)
    w_ih = np.concatenate([d[0] for d in layer.directions], axis=0)  # (D*3H, In)
    b_ih = np.concatenate([d[2] for d in layer.directions], axis=0)
    gi_all = g.linear(x, w_ih, b_ih, quant, hint + "_ih")
    gi_all = g.op("Reshape", [gi_all, g.const([0, 0, D, 3 * H], "shape", np.int64)])  # (T, B, D, 3H)
    gi_all = g.op("Transpose", [gi_all], perm=[0, 2, 1, 3])  # (T, D, B, 3H)
    mask = g.unsqueeze(valid, [1])  # (T, 1, B, 1)
    if D == 2:  # direction 1 reads time backwards
        fwd, bwd = g.slice(gi_all, 0, 1, 1), g.slice(gi_all, 1, 2, 1)
        gi_all = g.op("Concat", [fwd, g.slice(bwd, -1, -(2**63), 0, -1)], axis=1)
        mask = g.op("Concat", [mask, g.slice(mask, -1, -(2**63), 0, -1)], axis=1)  # (T, 2, B, 1)
    return str(gi_all), str(mask)


def _loop_start(g: Builder, x: str, D: int, H: int) -> tuple[str, str]:
    """The trip count T (a scalar, from x (T, B, In)) and the zero state h0 (D, B, H)."""
    shape = g.op("Shape", [x])
    T = g.op("Gather", [shape, g.const(0, "i0", np.int64)], axis=0)  # scalar
    h0 = g.op(
        "Expand",
        [
            g.const(np.zeros((1, 1, H), np.float32), "zero_h"),
            g.op("Concat", [g.const([D], "D", np.int64), g.slice(shape, 1, 2, 0), g.const([H], "H", np.int64)], axis=0),
        ],
    )  # (D, B, H)
    return str(T), str(h0)


def _loop_body(g: Builder, gi_all: str, mask: str, layer: GRULayer, quant: bool, hint: str) -> Any:
    """The Loop's body graph: (i, cond, h) -> (cond, h', y), one step of every direction at once."""
    from onnx import TensorProto, helper

    H = layer.hidden
    w_hh = np.stack([np.ascontiguousarray(d[1].T) for d in layer.directions]).astype(np.float32)  # (D, H, 3H)
    b_hh = np.stack([d[3] for d in layer.directions]).astype(np.float32)[:, None, :]  # (D, 1, 3H)
    body = Builder(g.opset, prefix=g.prefix + hint + "_body_")
    it, cond_in, h = body.prefix + "i", body.prefix + "cond", body.prefix + "h"
    gi = body.op("Gather", [gi_all, it], axis=0)  # (D, B, 3H)
    m = body.op("Gather", [mask, it], axis=0)  # (D, B, 1)
    gh = _stacked_hidden_projection(body, h, w_hh, quant, hint)  # (D, B, 3H)
    gh = body.op("Add", [gh, body.const(b_hh, hint + "_hh_b")])
    split = body.const([H, H, H], "split", np.int64)
    i_r, i_z, i_n = body.op("Split", [gi, split], n_out=3, axis=2)
    h_r, h_z, h_n = body.op("Split", [gh, split], n_out=3, axis=2)
    r = body.op("Sigmoid", [body.op("Add", [i_r, h_r])])
    z = body.op("Sigmoid", [body.op("Add", [i_z, h_z])])
    n = body.op("Tanh", [body.op("Add", [i_n, body.op("Mul", [r, h_n])])])
    h_new = body.op("Add", [n, body.op("Mul", [z, body.op("Sub", [h, n])])])  # n + z * (h - n)
    h_out = body.op("Where", [m, h_new, h], hint="h_next")
    y_out = body.op("Where", [m, h_new, body.const(np.float32(0.0), "zero")], hint="y")
    cond_out = body.op("Identity", [cond_in])
    f = TensorProto.FLOAT
    return helper.make_graph(
        body.nodes,
        g.prefix + hint + "_body",
        [
            helper.make_tensor_value_info(it, TensorProto.INT64, []),
            helper.make_tensor_value_info(cond_in, TensorProto.BOOL, []),
            helper.make_tensor_value_info(h, f, None),
        ],
        [
            helper.make_tensor_value_info(cond_out, TensorProto.BOOL, []),
            helper.make_tensor_value_info(h_out, f, None),
            helper.make_tensor_value_info(y_out, f, None),
        ],
        initializer=body.inits,
    )


def _stacked_hidden_projection(body: Builder, h: str, w_hh: np.ndarray, quant: bool, hint: str) -> str:
    """h (D, B, H) @ w_hh (D, H, 3H) per direction; int8 with one scale per (direction, output channel)."""
    D, H, H3 = w_hh.shape
    if not quant:
        return str(body.op("MatMul", [h, body.const(w_hh, hint + "_hh_wt")]))
    cols = w_hh.transpose(0, 2, 1).reshape(D * H3, H).T  # (H, D*3H): per output channel
    q, scale = quantize_columns(cols)
    wq = body.const(np.ascontiguousarray(q.T.reshape(D, H3, H).transpose(0, 2, 1)), hint + "_hh_wq")
    ws = body.const(scale.reshape(D, 1, H3), hint + "_hh_ws")
    return body.qmatmul(h, wq, ws)


# --------------------------------------------------------------------------------------------
# classifier


@dataclass
class ClassifierNet:
    """One classifier network as arrays: embedding, GRU layers, pooling, head."""

    embedding: np.ndarray  # (V, E)
    layers: list[GRULayer]
    pooling: str  # last | mean | max | attention
    head_w: np.ndarray  # (C or 1, D*H)
    head_b: np.ndarray
    task: str  # binary | multiclass | multilabel
    attn_proj_w: np.ndarray | None = None
    attn_proj_b: np.ndarray | None = None
    attn_query: np.ndarray | None = None  # (1, D*H)


def classifier_probs(g: Builder, net: ClassifierNet, ids: str, lengths: str, gru: str, quant: bool, hint: str) -> str:
    """probs (B, C) of one network for ids (B, T) int64 and lengths (B,) int64."""
    x = embed(g, ids, net.embedding, quant, hint + "_emb")  # (B, T, E)
    x = g.op("Transpose", [x], perm=[1, 0, 2])  # (T, B, E)
    steps = g.op(
        "Range",
        [
            g.const(0, "z", np.int64),
            g.op("Gather", [g.op("Shape", [ids]), g.const(1, "i1", np.int64)], axis=0),
            g.const(1, "one", np.int64),
        ],
    )  # (T,)
    valid_tb = g.op("Less", [g.unsqueeze(steps, [1]), g.unsqueeze(lengths, [0])])  # (T, B) bool
    seq_lens = g.op("Cast", [lengths], to=6)  # int32
    h_n = ""
    for k, layer in enumerate(net.layers):
        if gru == "op":
            x, h_n = gru_layer_op(g, x, seq_lens, layer)
        else:
            x, h_n = gru_layer_loop(g, x, g.unsqueeze(valid_tb, [2]), layer, quant, f"{hint}_l{k}")
    out = g.op("Transpose", [x], perm=[1, 0, 2])  # (B, T, D*H)
    mask = g.op("Transpose", [valid_tb], perm=[1, 0])  # (B, T) bool
    if net.pooling == "last":
        pooled = g.op("Reshape", [g.op("Transpose", [h_n], perm=[1, 0, 2]), g.const([0, -1], "shape", np.int64)])
    elif net.pooling == "mean":
        maskf = g.unsqueeze(g.op("Cast", [mask], to=1), [2])  # (B, T, 1)
        total = g.reduce("ReduceSum", g.op("Mul", [out, maskf]), [1])  # (B, D*H)
        count = g.op("Max", [g.op("Cast", [lengths], to=1), g.const(np.float32(1.0), "one_f")])  # (B,)
        pooled = g.op("Div", [total, g.unsqueeze(count, [1])])
    elif net.pooling == "max":
        filled = g.op("Where", [g.unsqueeze(mask, [2]), out, g.const(np.float32(-np.inf), "ninf")])
        pooled = g.reduce("ReduceMax", filled, [1])
    else:
        assert net.attn_proj_w is not None and net.attn_query is not None
        act = g.op("Tanh", [g.linear(out, net.attn_proj_w, net.attn_proj_b, quant, hint + "_attn")])
        scores = g.squeeze(g.linear(act, net.attn_query, None, False, hint + "_query"), [2])  # (B, T)
        scores = g.op("Where", [mask, scores, g.const(np.float32(-np.inf), "ninf")])
        weights = g.op("Softmax", [scores], axis=1)  # (B, T)
        pooled = g.squeeze(g.op("MatMul", [g.unsqueeze(weights, [1]), out]), [1])  # (B, D*H)
    logits = g.linear(pooled, net.head_w, net.head_b, quant, hint + "_head")  # (B, C) or (B, 1)
    if net.task == "multiclass":
        return str(g.op("Softmax", [logits], axis=1))
    p = g.op("Sigmoid", [logits])
    if net.task == "binary":
        return str(g.op("Concat", [g.op("Sub", [g.const(np.float32(1.0), "one_f"), p]), p], axis=1))  # (B, 2)
    return str(p)


def classifier_graph(
    nets: list[ClassifierNet], gru: str = "op", quant: bool = False, opset: int = DEFAULT_OPSET
) -> Any:
    """The model: inputs ``ids`` (B, T) int64 post-padded, ``lengths`` (B,) int64; output ``probs``
    (B, C), the mean of the networks' probabilities (one network: its own)."""
    from onnx import TensorProto, helper

    if gru not in GRU_FORMS:
        raise ValueError(f"gru form: expected one of {GRU_FORMS}, got {gru!r}")
    if quant and gru != "loop":
        raise ValueError("int8 needs the loop form of the GRU (onnxruntime does not quantize GRU nodes)")
    g = Builder(opset)
    probs = [classifier_probs(g, net, "ids", "lengths", gru, quant, f"m{k}") for k, net in enumerate(nets)]
    if len(probs) == 1:
        g.op("Identity", [probs[0]])
    else:
        stacked = g.op("Concat", [g.unsqueeze(p, [0]) for p in probs], axis=0)  # (N, B, C)
        if opset < 18:
            g.op("ReduceMean", [stacked], axes=[0], keepdims=0)
        else:
            g.op("ReduceMean", [stacked, g.const([0], "axes", np.int64)], keepdims=0)
    g.nodes[-1].output[0] = "probs"
    graph = helper.make_graph(
        g.nodes,
        "grutext_classifier",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "time"]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
        ],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", "classes"])],
        initializer=g.inits,
    )
    return _model(graph, opset)


# --------------------------------------------------------------------------------------------
# language model: one step


@dataclass
class LMNet:
    embedding: np.ndarray  # (V, E); the decoder's weight when tied
    layers: list[GRULayer]  # one direction each
    proj_w: np.ndarray | None
    proj_b: np.ndarray | None
    dec_w: np.ndarray  # (V, E or H)
    dec_b: np.ndarray


def lm_step_graph(net: LMNet, quant: bool = False, opset: int = DEFAULT_OPSET) -> Any:
    """One step: ``ids`` (B, 1) int64 and ``state`` (L, B, H) -> ``logits`` (B, V), ``state_out`` (L, B, H)."""
    from onnx import TensorProto, helper

    g = Builder(opset)
    L = len(net.layers)
    H = net.layers[0].hidden
    x = g.squeeze(embed(g, "ids", net.embedding, quant, "emb"), [1])  # (B, E)
    finals = []
    for k, layer in enumerate(net.layers):
        h = g.squeeze(g.slice("state", k, k + 1, 0), [0])  # (B, H)
        w_ih, w_hh, b_ih, b_hh = layer.directions[0]
        gi = g.linear(x, w_ih, b_ih, quant, f"l{k}_ih")  # (B, 3H)
        x = gru_cell(g, gi, h, w_hh, b_hh, H, quant, f"l{k}")
        finals.append(g.unsqueeze(x, [0]))
    g.op("Concat", finals, axis=0) if L > 1 else g.op("Identity", [finals[0]])
    g.nodes[-1].output[0] = "state_out"
    if net.proj_w is not None:
        x = g.linear(x, net.proj_w, net.proj_b, quant, "proj")
    if net.dec_w is not net.embedding:
        logits = g.linear(x, net.dec_w, net.dec_b, quant, "dec")
    elif quant:  # tied: the int8 embedding (E, V) with its per-row scales is the decoder's matrix
        q_name, s_name = (next(i.name for i in g.inits if i.name.startswith(p)) for p in ("emb_q", "emb_s"))
        logits = g.op("Add", [g.qmatmul(x, q_name, s_name), g.const(net.dec_b.astype(np.float32), "dec_b")])
    else:  # tied: the embedding matrix once, used transposed
        emb_name = next(i.name for i in g.inits if i.name.startswith("emb_w"))
        logits = g.op("Gemm", [x, emb_name, g.const(net.dec_b.astype(np.float32), "dec_b")], transB=1)
    g.op("Identity", [logits])
    g.nodes[-1].output[0] = "logits"
    graph = helper.make_graph(
        g.nodes,
        "grutext_lm_step",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 1]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [L, "batch", H]),
        ],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", net.dec_w.shape[0]]),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [L, "batch", H]),
        ],
        initializer=g.inits,
    )
    return _model(graph, opset)


def _model(graph: Any, opset: int) -> Any:
    from onnx import helper

    if opset not in OPSETS:
        raise ValueError(f"opset: expected one of {list(OPSETS)}, got {opset}")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="grutext")
    model.ir_version = 8
    return model


__all__ = [
    "DEFAULT_OPSET",
    "GRU_FORMS",
    "OPSETS",
    "ClassifierNet",
    "GRULayer",
    "LMNet",
    "classifier_graph",
    "lm_step_graph",
    "quantize_columns",
]
