"""The tagger's export: its ONNX graph (inputs -> emissions), the decoding file and the parity check.

The graph reads the inputs training built (`grutext.tasks.tagging.data.collate`): ``words``,
``cases`` and ``lengths``, ``chars`` (B, T, W) when the model has a character encoder and
``features`` when it has a feature column, and returns ``emissions`` (B, T, K). Every axis is
dynamic. As in torch, the character encoder runs over the real words only (the padded batch's
words gathered by the length mask, their vectors scattered back, zeros at padding); the GRUs are
ONNX's GRU op with ``sequence_lens`` (`grutext.export.graph.gru_layer_op`), so a padded batch gives
each sentence's emissions alone.

Decoding (CRF Viterbi or softmax argmax) is not in the graph: ``tagger.json`` carries the
character and feature vocabularies and the CRF's scores and allowed transitions, and the runtime
decodes in NumPy (`grutext.runtime.tagger`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from grutext.data.tag_words import CASES, MAX_WORD_CHARS
from grutext.export.graph import DEFAULT_OPSET, Builder, GRULayer, _model, embed, gru_layer_op
from grutext.export.nets import gru_layers

TAGGER_FILE = "tagger.json"
PARITY_SHAPES = ((5, 23, 9), (3, 1, 4), (2, 40, 12), (1, 7, 3))  # (B, T, W) of the random batches checked


@dataclass
class TaggerNet:
    """A `Tagger` as arrays: the input embeddings, the character encoder, the BiGRU stack and the head."""

    embedding: np.ndarray  # (V, E)
    case_embedding: np.ndarray  # (len(CASES), Cs)
    layers: list[GRULayer]  # the BiGRU stack
    head_w: np.ndarray  # (K, 2H)
    head_b: np.ndarray  # (K,)
    char_encoder: str = "none"  # gru | cnn | none
    char_embedding: np.ndarray | None = None  # (num_chars, C)
    char_gru: GRULayer | None = None  # one bidirectional layer
    conv_w: np.ndarray | None = None  # (2Hc, C, 3)
    conv_b: np.ndarray | None = None  # (2Hc,)
    feature_embedding: np.ndarray | None = None  # (num_features, F)

    @property
    def inputs(self) -> list[str]:
        """The graph's input names, in order."""
        names = ["words", "cases"]
        if self.char_encoder != "none":
            names.append("chars")
        if self.feature_embedding is not None:
            names.append("features")
        return [*names, "lengths"]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().copy()


def tagger_net(model: torch.nn.Module) -> TaggerNet:
    """A `grutext.tasks.tagging.model.Tagger` as arrays (eval mode)."""
    from grutext.tasks.tagging.model import CharCNN, CharGRU

    m: Any = model
    net = TaggerNet(
        embedding=_np(m.embedding.weight),
        case_embedding=_np(m.case.weight),
        layers=gru_layers(m.encoder, "tagger"),
        head_w=_np(m.head.weight),
        head_b=_np(m.head.bias),
        feature_embedding=None if m.feature is None else _np(m.feature.weight),
    )
    if isinstance(m.chars, CharGRU):
        net.char_encoder = "gru"
        net.char_embedding = _np(m.chars.embed.weight)
        net.char_gru = gru_layers(m.chars.rnn, "tagger character encoder")[0]
    elif isinstance(m.chars, CharCNN):
        conv: Any = m.chars.conv
        net.char_encoder = "cnn"
        net.char_embedding = _np(m.chars.embed.weight)
        net.conv_w, net.conv_b = _np(conv.weight), _np(conv.bias)
    return net


def _char_vectors(g: Builder, net: TaggerNet, chars: str, valid: str) -> str:
    """(B, T, 2Hc) character-encoder vectors of chars (B, T, W): the real words (`valid` (B, T)) only."""
    assert net.char_embedding is not None
    shape = g.op("Shape", [chars])  # [B, T, W]
    flat = g.op("Reshape", [chars, g.op("Concat", [g.const([-1], "m1", np.int64), g.slice(shape, 2, 3, 0)], axis=0)])
    where = g.op("NonZero", [g.op("Reshape", [valid, g.const([-1], "m1", np.int64)])])  # (1, N): real words
    words = g.op("Gather", [flat, g.squeeze(where, [0])], axis=0)  # (N, W)
    x = embed(g, words, net.char_embedding, False, "char_emb")  # (N, W, C)
    is_pad = g.op("Equal", [words, g.const(np.int64(0), "zero_i")])  # (N, W)
    if net.char_encoder == "gru":
        assert net.char_gru is not None
        count = g.reduce("ReduceSum", g.op("Cast", [g.op("Not", [is_pad])], to=7), [1])  # (N,) real characters
        count = g.op("Max", [count, g.const(np.int64(1), "one_i")])  # every word reads >= 1 character
        _, h_n = gru_layer_op(g, g.op("Transpose", [x], perm=[1, 0, 2]), g.op("Cast", [count], to=6), net.char_gru)
        vec = g.op("Reshape", [g.op("Transpose", [h_n], perm=[1, 0, 2]), g.const([0, -1], "shape", np.int64)])
    else:
        assert net.conv_w is not None and net.conv_b is not None
        y = g.op(
            "Conv",
            [g.op("Transpose", [x], perm=[0, 2, 1]), g.const(net.conv_w, "conv_w"), g.const(net.conv_b, "conv_b")],
            kernel_shape=[3],
            pads=[1, 1],
        )  # (N, 2Hc, W)
        y = g.op("Where", [g.unsqueeze(is_pad, [1]), g.const(np.float32(-np.inf), "ninf"), y])
        vec = g.reduce("ReduceMax", y, [2])  # (N, 2Hc)
    width = _char_width(net)
    zeros = g.op(
        "ConstantOfShape",
        [g.op("Concat", [g.slice(g.op("Shape", [flat]), 0, 1, 0), g.const([width], "w", np.int64)], axis=0)],
        value=_zero_tensor(),
    )  # (B*T, 2Hc)
    out = g.op("ScatterND", [zeros, g.op("Transpose", [where], perm=[1, 0]), vec])  # (B*T, 2Hc)
    return str(
        g.op("Reshape", [out, g.op("Concat", [g.slice(shape, 0, 2, 0), g.const([width], "w", np.int64)], axis=0)])
    )


def _char_width(net: TaggerNet) -> int:
    """2Hc: the character encoder's vector size."""
    if net.conv_w is not None:
        return int(net.conv_w.shape[0])
    assert net.char_gru is not None
    return 2 * net.char_gru.hidden


def _zero_tensor() -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.zeros(1, np.float32), "zero")


def tagger_graph(net: TaggerNet, opset: int = DEFAULT_OPSET) -> Any:
    """The tagger's graph: its inputs (`TaggerNet.inputs`) -> ``emissions`` (B, T, K) float32."""
    from onnx import TensorProto, helper

    g = Builder(opset)
    steps = g.op(
        "Range",
        [
            g.const(0, "z", np.int64),
            g.op("Gather", [g.op("Shape", ["words"]), g.const(1, "i1", np.int64)], axis=0),
            g.const(1, "one", np.int64),
        ],
    )  # (T,)
    valid = g.op("Less", [g.unsqueeze(steps, [0]), g.unsqueeze("lengths", [1])])  # (B, T) real tokens
    parts = [embed(g, "words", net.embedding, False, "emb"), embed(g, "cases", net.case_embedding, False, "case")]
    if net.char_encoder != "none":
        parts.append(_char_vectors(g, net, "chars", valid))
    if net.feature_embedding is not None:
        parts.append(embed(g, "features", net.feature_embedding, False, "feat"))
    x = g.op("Transpose", [g.op("Concat", parts, axis=2)], perm=[1, 0, 2])  # (T, B, E + Cs + 2Hc + F)
    seq_lens = g.op("Cast", ["lengths"], to=6)  # int32
    for layer in net.layers:
        x, _ = gru_layer_op(g, x, seq_lens, layer)  # (T, B, 2H), zeros past each length
    out = g.op("Transpose", [x], perm=[1, 0, 2])  # (B, T, 2H)
    g.op("Identity", [g.linear(out, net.head_w, net.head_b, False, "head")])
    g.nodes[-1].output[0] = "emissions"
    shapes = {"chars": ["batch", "time", "chars"], "lengths": ["batch"]}
    graph = helper.make_graph(
        g.nodes,
        "grutext_tagger",
        [helper.make_tensor_value_info(n, TensorProto.INT64, shapes.get(n, ["batch", "time"])) for n in net.inputs],
        [helper.make_tensor_value_info("emissions", TensorProto.FLOAT, ["batch", "time", net.head_w.shape[0]])],
        initializer=g.inits,
    )
    return _model(graph, opset)


# --------------------------------------------------------------------------------------------
# the export's entries: graphs, manifest, tagger.json, parity


def tagger_graphs(loaded: Any, model: torch.nn.Module, int8: bool, opset: int, info: dict[str, Any]) -> dict[str, Any]:
    """The tagger's graph (``model.onnx``); its manifest entries added to `info`.

    Raises:
        ConfigError: `int8` (the tagger exports in fp32 only).
    """
    from grutext.errors import ConfigError
    from grutext.tasks.tagging.config import NO_SCHEME, TagConfig
    from grutext.tasks.tagging.data import TagVocab

    if int8:
        raise ConfigError("--int8: not available for taggers (a tagger exports in fp32 only); export without --int8")
    vocab, tag_cfg, net = TagVocab.from_meta(loaded.meta), TagConfig.from_meta(loaded.meta), tagger_net(model)
    m: Any = model
    crf = m.crf is not None
    same = vocab.train_scheme == vocab.file_scheme or vocab.file_scheme == NO_SCHEME
    info.update(
        labels=[],
        tagger={
            "tags": list(vocab.tags),
            "train_scheme": vocab.train_scheme,
            "file_scheme": vocab.file_scheme,
            "to_file_scheme": "as decoded"
            if same
            else f"chunks read from the {vocab.train_scheme} tags (grutext.data.tag_schemes.spans), written in "
            f"{vocab.file_scheme} (tag_schemes.convert)",
            "chunks": vocab.file_scheme != NO_SCHEME,
            "decoder": "crf" if crf else "softmax",
            "decoding": "constrained Viterbi: emissions + the CRF's start, transition and end scores of "
            f"{TAGGER_FILE}, disallowed ones -inf (grutext.nn.crf.CRF.decode)"
            if crf
            else "argmax of each token's emissions",
            "char_encoder": net.char_encoder,
            "feature_col": tag_cfg.feature_col,
            "cases": list(CASES),
            "max_word_chars": MAX_WORD_CHARS,
            "file": TAGGER_FILE,
        },
        preprocess=_preprocess(loaded, net),
        inputs={n: _INPUTS[n] for n in net.inputs},
        outputs={"emissions": "float32 (batch, time, tags): tag scores, decoded outside the graph"},
        gru={"model.onnx": "ONNX GRU op, linear_before_reset=1, sequence_lens (the character GRU too)"},
    )
    return {"model.onnx": tagger_graph(net, opset)}


_INPUTS = {
    "words": "int64 (batch, time), post-padded with 0",
    "cases": "int64 (batch, time), indices in tagger.cases, 0 at padding",
    "chars": "int64 (batch, time, chars), each word's character ids post-padded with 0",
    "features": "int64 (batch, time), ids in tagger.json features, 0 at padding",
    "lengths": "int64 (batch,), each >= 1",
}


def _preprocess(loaded: Any, net: TaggerNet) -> dict[str, Any]:
    """The manifest's ``preprocess``: how the runtime builds the inputs, as training did."""
    return {
        "lowercase": bool(loaded.tokenizer.lowercase),
        "raw_text": "split by tokenizer.json's pre-tokenizer, numbers such as 1.8 and abbreviations such as U.S. "
        "kept whole (grutext.data.tag_words.split_raw)",
        "words": "each word after tokenizer.json's normaliser, looked up whole in its vocabulary (unknown: <unk>)",
        "cases": "grutext.data.tag_words.case_id: the word's index in tagger.cases",
        "chars": f"a word's characters (longer than {MAX_WORD_CHARS}: the first and last {MAX_WORD_CHARS // 2}) as "
        f"ids in {TAGGER_FILE} chars, unknown 1; a word with none reads one 1",
        "features": f"ids in {TAGGER_FILE} features, unknown 1; none given (raw text): 1 for every word"
        if net.feature_embedding is not None
        else None,
        "padding": "post, id 0",
    }


def tagger_file(loaded: Any) -> bytes:
    """``tagger.json``: the character and feature vocabularies and the CRF's scores and allowed transitions."""
    from grutext.tasks.tagging.data import TagVocab

    vocab = TagVocab.from_meta(loaded.meta)
    crf: Any = loaded.model.crf
    body: dict[str, Any] = {"chars": list(vocab.chars), "features": list(vocab.features), "crf": None}
    if crf is not None:
        body["crf"] = {
            "start": _np(crf.start).tolist(),
            "transitions": _np(crf.transitions).tolist(),  # [i, j]: tag j after tag i
            "end": _np(crf.end).tolist(),
            "allowed_start": crf.allowed_start.tolist(),
            "allowed_transitions": crf.allowed_transitions.tolist(),
            "allowed_end": crf.allowed_end.tolist(),
        }
    return (json.dumps(body, allow_nan=False) + "\n").encode("utf-8")


def random_inputs(model: torch.nn.Module, B: int, T: int, W: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A padded batch of random ids for `model` (every input of the graph): lengths from T down to 1, each
    word 1..W characters (one of W), ids past each length and word 0."""
    m: Any = model
    rng = np.random.default_rng(seed)
    lengths = np.sort(rng.integers(1, T + 1, size=B))[::-1].copy()
    lengths[0], lengths[-1] = T, 1
    real = np.arange(T)[None, :] < lengths[:, None]  # (B, T)
    widths = rng.integers(1, W + 1, size=(B, T))
    widths[0, 0] = W
    n_chars = m.chars.embed.num_embeddings if m.chars is not None else 2
    n_feats = m.feature.num_embeddings if m.feature is not None else 2
    out = {
        "words": rng.integers(1, m.embedding.num_embeddings, size=(B, T)) * real,
        "cases": rng.integers(1, len(CASES), size=(B, T)) * real,
        "chars": rng.integers(1, n_chars, size=(B, T, W)) * (np.arange(W) < widths[..., None]) * real[..., None],
        "features": rng.integers(1, n_feats, size=(B, T)) * real,
        "lengths": lengths,
    }
    return {k: v.astype(np.int64) for k, v in out.items()}


def torch_emissions(model: torch.nn.Module, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The torch tagger's emissions (B, T, K) of `random_inputs`-style arrays."""
    m: Any = model
    with torch.no_grad():
        return np.asarray(m.emissions({k: torch.from_numpy(v) for k, v in inputs.items()}).float().numpy())


def tagger_parity(model: torch.nn.Module, sess: Any) -> float:
    """Max |emission difference|: torch vs graph on padded batches (every position), and each sentence alone
    (cut to its length and its longest word) vs its row of the padded batch."""
    names = [i.name for i in sess.get_inputs()]
    worst = 0.0
    for B, T, W in PARITY_SHAPES:
        inputs = random_inputs(model, B, T, W, seed=B * 100 + T)
        got = sess.run(["emissions"], {n: inputs[n] for n in names})[0]
        worst = max(worst, float(np.abs(got - torch_emissions(model, inputs)).max()))
        for b in range(B):
            n = int(inputs["lengths"][b])
            w = int((inputs["chars"][b, :n] != 0).sum(1).max())
            alone = {k: v[b : b + 1, :n] for k, v in inputs.items() if k != "lengths"}
            alone["chars"] = alone["chars"][:, :, :w]
            alone["lengths"] = inputs["lengths"][b : b + 1]
            one = sess.run(["emissions"], {k: alone[k] for k in names})[0]
            worst = max(worst, float(np.abs(one[0] - got[b, :n]).max()))
    return worst


__all__ = [
    "PARITY_SHAPES",
    "TAGGER_FILE",
    "TaggerNet",
    "random_inputs",
    "tagger_file",
    "tagger_graph",
    "tagger_graphs",
    "tagger_net",
    "tagger_parity",
    "torch_emissions",
]
