"""Exported graphs vs torch: batch {1, 3, 8} x length {1, 7, 64}, uni/bi, 1-2 layers, every
pooling, an ensemble, the LM step graph driven for 20 steps; padded batch = each text alone."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from tests.export.helpers import session  # noqa: E402

from grutext.export.graph import classifier_graph, lm_step_graph  # noqa: E402
from grutext.export.nets import classifier_nets, lm_net  # noqa: E402
from grutext.tasks.classification.model import EnsembleClassifier, TextClassifier  # noqa: E402
from grutext.tasks.language_model.model import LanguageModel  # noqa: E402

TOL = 1e-5


def batch(B, T, vocab=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    ids = torch.randint(1, vocab, (B, T), generator=g)
    ids[torch.arange(T)[None, :] >= lengths[:, None]] = 0
    return ids, lengths


def check_classifier(model, sess, shapes=((1, 1), (1, 7), (1, 64), (3, 1), (3, 7), (3, 64), (8, 1), (8, 7), (8, 64))):
    for B, T in shapes:
        ids, lengths = batch(B, T, seed=B * 100 + T)
        with torch.no_grad():
            ref = model.probabilities(model(ids, lengths)[0]).numpy()
        got = sess.run(["probs"], {"ids": ids.numpy(), "lengths": lengths.numpy()})[0]
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)
        for b in range(B):  # each text alone, unpadded, gives its row of the padded batch
            n = int(lengths[b])
            alone = sess.run(["probs"], {"ids": ids[b : b + 1, :n].numpy(), "lengths": lengths[b : b + 1].numpy()})[0]
            np.testing.assert_allclose(alone[0], got[b], atol=TOL, rtol=0)


@pytest.mark.parametrize(
    "bidirectional,num_layers,pooling",
    list(itertools.product([False, True], [1, 2], ["last", "mean", "max", "attention"])),
)
def test_classifier_op_graph_matches_torch(bidirectional, num_layers, pooling):
    torch.manual_seed(num_layers * 10 + len(pooling))
    m = TextClassifier(50, 3, "multiclass", 6, 5, num_layers, bidirectional, 0.0, 0.0, pooling).eval()
    check_classifier(m, session(classifier_graph(classifier_nets(m), "op")))


@pytest.mark.parametrize("bidirectional,num_layers", [(False, 1), (True, 2)])
@pytest.mark.parametrize("pooling", ["last", "attention"])
def test_classifier_loop_graph_matches_torch(bidirectional, num_layers, pooling):
    """The Loop form (int8's recurrence) is exact in fp32 too: only quantization changes int8's numbers."""
    torch.manual_seed(1)
    m = TextClassifier(50, 3, "multiclass", 6, 5, num_layers, bidirectional, 0.0, 0.0, pooling).eval()
    check_classifier(m, session(classifier_graph(classifier_nets(m), "loop")), ((1, 1), (3, 7), (8, 64)))


@pytest.mark.parametrize("task,classes", [("binary", 2), ("multilabel", 3)])
def test_classifier_sigmoid_tasks(task, classes):
    torch.manual_seed(2)
    m = TextClassifier(50, classes, task, 6, 5, 1, True, 0.0, 0.0, "mean").eval()
    check_classifier(m, session(classifier_graph(classifier_nets(m), "op")), ((3, 7), (8, 64)))


def test_ensemble_averages_members():
    torch.manual_seed(3)
    members = [TextClassifier(50, 3, "multiclass", 6, 5, 1, True, 0.0, 0.0, p) for p in ("max", "attention", "last")]
    ens = EnsembleClassifier(members).eval()
    nets = classifier_nets(ens)
    assert len(nets) == 3
    check_classifier(ens, session(classifier_graph(nets, "op")), ((1, 7), (3, 64), (8, 1)))


def test_int8_graph_is_close_and_smaller():
    torch.manual_seed(4)
    m = TextClassifier(300, 3, "multiclass", 32, 32, 1, True, 0.0, 0.0, "max").eval()
    nets = classifier_nets(m)
    fp, q8 = classifier_graph(nets, "op"), classifier_graph(nets, "loop", quant=True)
    ids, lengths = batch(8, 40, vocab=300)
    with torch.no_grad():
        ref = m.probabilities(m(ids, lengths)[0]).numpy()
    got = session(q8).run(["probs"], {"ids": ids.numpy(), "lengths": lengths.numpy()})[0]
    assert np.abs(got - ref).max() < 0.02
    assert np.abs(got - ref).max() > 0  # really quantized
    ops = {n.op_type for n in q8.graph.node} | {
        n.op_type for node in q8.graph.node for a in node.attribute if a.g is not None for n in a.g.node
    }
    assert {"MatMulInteger", "DynamicQuantizeLinear", "Loop"} <= ops and "GRU" not in ops
    assert len(q8.SerializeToString()) < 0.5 * len(fp.SerializeToString())  # tiny model: scales and nodes weigh


@pytest.mark.parametrize("embed_dim,hidden,layers,tie", [(8, 8, 2, True), (8, 12, 1, True), (6, 8, 2, False)])
def test_lm_step_graph_20_steps(embed_dim, hidden, layers, tie):
    torch.manual_seed(5)
    lm = LanguageModel(40, embed_dim, hidden, layers, tie_weights=tie).eval()
    sess = session(lm_step_graph(lm_net(lm)))
    ids = torch.randint(1, 40, (3, 20))
    with torch.no_grad():
        ref, _, ref_state = lm(ids)
    state = np.zeros((layers, 3, hidden), np.float32)
    for t in range(20):
        logits, state = sess.run(["logits", "state_out"], {"ids": ids[:, t : t + 1].numpy(), "state": state})
        np.testing.assert_allclose(logits, ref[:, t].numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(state, ref_state.numpy(), atol=TOL, rtol=0)


def test_tied_lm_stores_the_embedding_once():
    lm = LanguageModel(400, 16, 16, 1, tie_weights=True).eval()
    model = lm_step_graph(lm_net(lm))
    big = [i for i in model.graph.initializer if np.prod(i.dims) >= 400 * 16]
    assert len(big) == 1


@pytest.mark.parametrize("opset", [17, 18, 19, 20, 21])
def test_every_offered_opset(opset):
    from grutext.export.graph import OPSETS

    assert opset in OPSETS
    torch.manual_seed(6)
    m = TextClassifier(50, 3, "multiclass", 6, 5, 1, True, 0.0, 0.0, "max").eval()
    nets = classifier_nets(m)
    check_classifier(m, session(classifier_graph(nets, "op", opset=opset)), ((3, 7),))
    check_classifier(m, session(classifier_graph(nets, "loop", opset=opset)), ((3, 7),))
    lm = LanguageModel(40, 8, 8, 1).eval()
    sess = session(lm_step_graph(lm_net(lm), quant=True, opset=opset))
    logits, _ = sess.run(None, {"ids": np.ones((2, 1), np.int64), "state": np.zeros((1, 2, 8), np.float32)})
    assert logits.shape == (2, 40)
