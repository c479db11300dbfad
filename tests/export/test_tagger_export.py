"""The tagger's export: its graph against torch (batch {1, 3, 8} x length {1, 7, 40}, every character
encoder, CRF and softmax, a feature column; padded batch = each sentence alone), the runtime's NumPy
Viterbi against the torch CRF, the runtime's tags against the torch predictor (a tiny trained tagger
and random ones), the export folder and `grutext export` on a tagger."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from tests.export.helpers import save_tagger, session, tagger_corpus  # noqa: E402

from grutext import runtime  # noqa: E402
from grutext.cli import main  # noqa: E402
from grutext.export.exporter import export_model  # noqa: E402
from grutext.export.tagger import random_inputs, tagger_graph, tagger_net, torch_emissions  # noqa: E402
from grutext.nn import crf as crf_module  # noqa: E402
from grutext.nn.crf import CRF, allowed_transitions  # noqa: E402
from grutext.runtime.tagger import constrained_scores, viterbi  # noqa: E402
from grutext.tasks.tagging.model import Tagger  # noqa: E402

TOL = 1e-5
TAGS = ["O", "B-NP", "I-NP", "E-NP", "S-NP", "B-VP", "I-VP", "E-VP", "S-VP"]
SENTENCES = [
    "The big dog sees a cat in London.",
    "A red car likes every old house near Paris .",
    "The U.S. economy grew 1.8 % in 1,000 days, zebras said.",
    "dog",
    "Quick!",
]


def tagger(char_encoder: str, decoder: str, features: int, layers: int, seed: int) -> Tagger:
    torch.manual_seed(seed)
    m = Tagger(
        40, TAGS, "BIOES", 12, features, embed_dim=6, hidden_size=5, num_layers=layers, dropout=0.0,
        char_encoder=char_encoder, char_dim=4, char_hidden=3, case_dim=3, feature_dim=4, decoder=decoder,
    )  # fmt: skip
    with torch.no_grad():
        m.head.weight.mul_(8.0)
        if m.crf is not None:
            for p in (m.crf.start, m.crf.transitions, m.crf.end):
                p.normal_()
    return m.eval()


@pytest.mark.parametrize(
    "char_encoder,decoder,features,layers",
    [("gru", "crf", 6, 1), ("cnn", "softmax", 6, 2), ("none", "crf", 0, 2), ("gru", "softmax", 0, 1)],
)
def test_graph_matches_torch_and_padding_changes_nothing(char_encoder, decoder, features, layers):
    m = tagger(char_encoder, decoder, features, layers, seed=len(char_encoder) + layers)
    net = tagger_net(m)
    sess = session(tagger_graph(net))
    assert [i.name for i in sess.get_inputs()] == net.inputs
    assert ("chars" in net.inputs) == (char_encoder != "none") and ("features" in net.inputs) == (features > 0)
    decoded = []
    for B in (1, 3, 8):
        for T in (1, 7, 40):
            x = random_inputs(m, B, T, W=9, seed=B * 100 + T)
            got = sess.run(["emissions"], {n: x[n] for n in net.inputs})[0]
            ref = torch_emissions(m, x)
            assert got.shape == ref.shape == (B, T, len(TAGS))
            np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)
            for b in range(B):  # each sentence alone: no time padding, no character padding beyond its words
                n = int(x["lengths"][b])
                w = int((x["chars"][b, :n] != 0).sum(1).max())
                one = {k: v[b : b + 1, :n] for k, v in x.items() if k != "lengths"}
                one["chars"], one["lengths"] = one["chars"][:, :, :w], x["lengths"][b : b + 1]
                alone = sess.run(["emissions"], {k: one[k] for k in net.inputs})[0]
                np.testing.assert_allclose(alone[0], got[b, :n], atol=TOL, rtol=0)
            lengths = torch.from_numpy(x["lengths"])
            want = m.decode(torch.from_numpy(ref), lengths)
            assert m.decode(torch.from_numpy(got), lengths) == want
            decoded += want
    assert len({t for path in decoded for t in path}) > 2  # the decoding is not trivial


@pytest.mark.parametrize("char_encoder,op", [("gru", "GRU"), ("cnn", "Conv")])
def test_char_encoder_reads_only_the_real_words(char_encoder, op):
    """The character encoder's batch is the real words (sum of lengths), not every padded position; garbage
    characters on padded words change nothing."""
    from onnx import TensorProto, helper

    m = tagger(char_encoder, "crf", 0, 1, seed=3)
    net = tagger_net(m)
    model = tagger_graph(net)
    first = next(n for n in model.graph.node if n.op_type == op)  # the character encoder's (the stack's come later)
    model.graph.output.append(helper.make_tensor_value_info(first.input[0], TensorProto.FLOAT, ["a", "b", "c"]))
    sess = session(model)
    x = random_inputs(m, 4, 9, W=6, seed=1)
    clean, inner = sess.run(["emissions", first.input[0]], {n: x[n] for n in net.inputs})
    assert inner.shape[0 if op == "Conv" else 1] == x["lengths"].sum() < 4 * 9  # (N, C, W) or (W, N, C)
    x["chars"][np.arange(9)[None, :] >= x["lengths"][:, None]] = 5
    dirty = sess.run(["emissions"], {n: x[n] for n in net.inputs})[0]
    np.testing.assert_array_equal(dirty, clean)


@pytest.mark.parametrize("scheme", ["BIOES", "IOB2", None])
def test_numpy_viterbi_equals_the_torch_crf(scheme, monkeypatch):
    g = torch.Generator().manual_seed(7)
    tags = TAGS if scheme == "BIOES" else ["O", "B-NP", "I-NP", "B-VP", "I-VP"]
    crf = CRF(len(tags), allowed_transitions(tags, scheme) if scheme else None)
    with torch.no_grad():
        for p in (crf.start, crf.transitions, crf.end):
            p.copy_(torch.randn(p.shape, generator=g) * 2)
    body = {"start": crf.start.tolist(), "transitions": crf.transitions.tolist(), "end": crf.end.tolist()}
    body.update({f"allowed_{k}": getattr(crf, f"allowed_{k}").tolist() for k in ("start", "transitions", "end")})
    scores = constrained_scores(body)
    for B, T in ((1, 1), (6, 12), (8, 30)):
        em = torch.randn(B, T, len(tags), generator=g) * 3
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0] = T
        em[torch.arange(T)[None, :] >= lengths[:, None]] = float("nan")  # padding is never read
        paths, best = viterbi(em.numpy(), lengths.numpy(), *scores)
        monkeypatch.setattr(crf_module, "NUMPY_VITERBI", False)  # the torch loop
        want, want_best = crf.decode(em, lengths=lengths)
        assert paths == want
        np.testing.assert_allclose(best, want_best.detach().numpy(), rtol=1e-6)
        monkeypatch.setattr(crf_module, "NUMPY_VITERBI", True)  # the model's own CPU path
        assert crf.decode(em, lengths=lengths)[0] == paths
        ties = torch.randint(-2, 3, em.shape, generator=g).float()  # many equal scores: the same choices
        assert viterbi(ties.numpy(), lengths.numpy(), *scores)[0] == crf.decode(ties, lengths=lengths)[0]
        if scheme:
            mask = allowed_transitions(tags, scheme)
            assert all(mask.allows(p) for p in paths)


# ---- the runtime against the torch predictor ---------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny tagger trained for 3 epochs on planted chunks with a feature column (2 s), and its export."""
    from grutext.config import Config
    from grutext.tasks.tagging.config import TagConfig
    from grutext.tasks.tagging.train import train_tagger

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tagger")
    toks, tags, feats = tagger_corpus(120, 0, feature=True)
    lines: list[str] = []
    for t, f, y in zip(toks, feats, tags, strict=True):
        lines += [f"{a} {b} {c}" for a, b, c in zip(t, f, y, strict=True)] + [""]
    (root / "train.txt").write_text("\n".join(lines))
    cfg = Config()
    train_tagger(
        replace(
            cfg,
            data=replace(cfg.data, train=str(root / "train.txt")),
            model=replace(cfg.model, hidden_size=16, embed_dim=8),
            train=replace(cfg.train, epochs=3, batch_size=8, lr=1e-2, threads=1, seed=0, out=str(root / "m")),
        ),
        TagConfig(feature_col=1, char_hidden=4, char_dim=4),
        verbose=False,
        progress=False,
    )
    export_model(root / "m", root / "onnx", log=lambda s: None)
    return root


def test_trained_tagger_runtime_equals_the_torch_predictor(trained):
    from grutext.artifact import load_model
    from grutext.tasks.tagging.predict import predict_texts, tag_tokens

    loaded = load_model(trained / "m")
    rt = runtime.load(trained / "onnx", threads=1)
    assert rt.kind == "tagger" and rt.labels == [] and "features" in rt.inputs
    rt.batch_size = 4  # several batches, sorted by length
    assert rt.tag(SENTENCES) == predict_texts(loaded, SENTENCES)  # tags, offsets, chunks with character spans
    assert rt.tag_texts(SENTENCES, tokenized=True) == predict_texts(loaded, SENTENCES, tokenized=True)
    toks, _, feats = tagger_corpus(30, 5, feature=True)
    want = tag_tokens(loaded, toks, feats)
    assert rt.tag_tokens(toks, feats) == want
    rows = rt.tag(toks, feats)
    assert [r["tags"] for r in rows] == want and sum(len(r["chunks"]) for r in rows) > 30
    assert rows[0]["chunks"][0].keys() == {"type", "start", "end"}
    assert rt.tag_tokens(toks) == tag_tokens(loaded, toks)  # no features given: <unk> for each, as torch


@pytest.mark.parametrize(
    "options",
    [
        {"char_encoder": "cnn", "decoder": "softmax", "feature": True},
        {"char_encoder": "none", "scheme": "IOB1", "num_layers": 2},
        {"char_encoder": "gru", "plain": True},
    ],
)
def test_random_taggers_runtime_equals_torch(tmp_path, options):
    from grutext.artifact import load_model
    from grutext.tasks.tagging.predict import predict_texts

    save_tagger(tmp_path / "m", **options)
    info = export_model(tmp_path / "m", tmp_path / "onnx", log=lambda s: None)
    rt = runtime.load(tmp_path / "onnx", threads=1)
    texts = SENTENCES + [" ".join(t) for t in tagger_corpus(20, 3)[0]]
    got, want = rt.tag(texts), predict_texts(load_model(tmp_path / "m"), texts)
    assert got == want
    assert len({t for r in got for t in r["tags"]}) > 2
    if options.get("plain"):
        assert info["tagger"]["chunks"] is False and all(r["chunks"] == [] for r in got)
    else:
        assert info["tagger"]["file_scheme"] == options.get("scheme", "IOB2")
        assert sum(len(r["chunks"]) for r in got) > 10


def test_export_folder_of_a_tagger(trained):
    out = trained / "onnx"
    names = ["grutext-export.json", "model.onnx", "tagger.json", "tokenizer.json"]
    assert sorted(p.name for p in out.iterdir()) == names
    info = runtime.read_manifest(out)
    tg = info["tagger"]
    assert info["kind"] == "tagger" and tg["decoder"] == "crf" and tg["char_encoder"] == "gru"
    assert tg["file_scheme"] == "IOB2" and tg["train_scheme"] == "BIOES" and tg["feature_col"] == 1
    assert list(info["inputs"]) == ["words", "cases", "chars", "features", "lengths"]
    assert info["parity"]["max_abs_diff"] <= 1e-4
    body = json.loads((out / "tagger.json").read_text())
    k = len(tg["tags"])
    assert np.array(body["crf"]["transitions"]).shape == (k, k) and body["chars"][:2] == ["<pad>", "<unk>"]
    assert not np.array(body["crf"]["allowed_transitions"]).all()  # BIOES constraints travel with it
    for name, entry in info["files"].items():
        assert entry["sha256"] == runtime.sha256_file(out / name)


def test_bad_input_is_a_clear_error(trained):
    from grutext.errors import ArtifactError, DataError

    rt = runtime.load(trained / "onnx")
    with pytest.raises(DataError, match="expected a list"):
        rt.tag("one string")
    with pytest.raises(DataError, match=r"sentences\[1\]: expected a non-empty"):
        rt.tag(["fine", "  "])
    with pytest.raises(DataError, match=r"sentences\[0\]: expected a non-empty list"):
        rt.tag([[]])
    with pytest.raises(DataError, match=r"features\[0\]: 1 values for 2 tokens"):
        rt.tag([["the", "dog"]], features=[["DT"]])
    with pytest.raises(DataError, match=r"sentences\[1\]: an empty sentence"):
        rt.tag_tokens([["the"], []])
    assert rt.tag([]) == []
    with pytest.raises(ArtifactError, match=r"no model.int8.onnx$"):
        runtime.load(trained / "onnx", int8=True)


def test_cli_exports_a_tagger_and_refuses_int8(trained, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["export", str(trained / "m"), str(out)]) == 0
    assert "parity: model.onnx vs torch" in capsys.readouterr().out
    assert runtime.load(out).tag([["the", "dog"]])[0]["tags"]
    assert main(["export", str(trained / "m"), str(tmp_path / "q"), "--int8"]) == 2
    err = capsys.readouterr().err
    assert "--int8: not available for taggers" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "q").exists()
