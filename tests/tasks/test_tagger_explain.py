"""grutext explain on a tagger: the best and second-best paths equal brute-force enumeration of the
model's own scores, the gates are the BiGRU's, probabilities are exp(s - log Z), softmax's second
path is exact, and the CLI prints, writes --html and --json (no NaN) and refuses options that do
not apply."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from planted_chunks import sentences

from grutext.cli.main import main
from grutext.tasks.tagging.estimator import GRUTagger
from grutext.tasks.tagging.explain import _softmax_two_best, explain_tagger

SMALL = dict(embed_dim=16, hidden_size=12, char_dim=8, char_hidden=8, epochs=2, batch_size=8, lr=1e-2, verbose=False)
SENT = "The big dog sees a cat"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.set_num_threads(1)
    X, y = sentences(120, 0)
    root = tmp_path_factory.mktemp("tagexplain")
    out = {}
    for decoder in ("crf", "softmax"):
        GRUTagger(**SMALL, decoder=decoder).fit(X, y).save(root / decoder)
        from grutext.artifact import load_model

        out[decoder] = load_model(root / decoder)
    out["root"] = root
    return out


def _brute(loaded, tokens):
    """Every allowed path's score s(y) under the model's CRF, ranked, in the training scheme."""
    from grutext.tasks.tagging.data import Encoder, TagVocab, collate

    model = loaded.model
    batch = collate([Encoder(loaded.tokenizer, TagVocab.from_meta(loaded.meta)).encode(tokens)])
    with torch.no_grad():
        em = model.emissions(batch).double()[0]  # (T, K)
    crf = model.crf
    start, trans, end = (v.detach() for v in crf._scores(torch.float64, constrained=True))
    k = em.shape[1]
    scored = []
    for path in itertools.product(range(k), repeat=len(tokens)):
        s = start[path[0]] + em[0, path[0]] + end[path[-1]]
        s = s + sum(trans[a, b] + em[t + 1, b] for t, (a, b) in enumerate(itertools.pairwise(path)))
        if math.isfinite(float(s)):
            scored.append((float(s), list(path)))
    scored.sort(key=lambda x: -x[0])
    em = em.detach()
    with torch.no_grad():
        log_z = float(crf.log_partition(em[None], lengths=torch.tensor([len(tokens)]))[0])
    return scored, log_z


def test_crf_paths_equal_brute_force(models):
    from grutext.tasks.tagging.data import TagVocab

    loaded = models["crf"]
    vocab = TagVocab.from_meta(loaded.meta)
    for text in ("a cat", "every dog sees", "The old car"):  # K ** T paths enumerated
        ex = explain_tagger(loaded, text, tokenized=True)
        scored, log_z = _brute(loaded, text.split())
        (s1, p1), (s2, p2) = scored[0], scored[1]
        assert ex.best.score == pytest.approx(s1, abs=1e-5) and ex.second.score == pytest.approx(s2, abs=1e-5)
        assert ex.best.tags == vocab.to_file([vocab.tags[i] for i in p1])
        assert ex.second.tags == vocab.to_file([vocab.tags[i] for i in p2])
        assert ex.best.probability == pytest.approx(math.exp(s1 - log_z), rel=1e-4)
        assert ex.second.probability < ex.best.probability
        assert ex.differs and all(ex.best.tags[i] != ex.second.tags[i] for i in ex.differs)


def test_gates_are_the_bigrus(models):
    loaded = models["crf"]
    ex = explain_tagger(loaded, SENT)
    T = len(ex.tokens)
    assert ex.tokens == SENT.split() and ex.gates.z.shape == (1, 2, T, 12)
    # recompute layer 1 forward direction's update gate at t=0 (h_prev = 0) from the weights
    from grutext.tasks.tagging.data import Encoder, TagVocab, collate

    model = loaded.model
    batch = collate([Encoder(loaded.tokenizer, TagVocab.from_meta(loaded.meta)).encode(ex.tokens)])
    captured = {}

    def keep(module, inputs, output):
        captured["x"] = inputs[0]

    hook = model.encoder.register_forward_hook(keep)
    with torch.no_grad():
        model.emissions(batch)
    hook.remove()
    x0 = captured["x"][0, 0]  # the encoder's input at token 0
    w, b_ih, b_hh = model.encoder.weight_ih_l0, model.encoder.bias_ih_l0, model.encoder.bias_hh_l0
    z0 = torch.sigmoid(x0 @ w[12:24].T + b_ih[12:24] + b_hh[12:24])  # torch order r, z, n
    assert torch.allclose(torch.from_numpy(ex.gates.z[0, 0, 0]).float(), z0, atol=1e-5)
    assert float(ex.marginal.min()) > 0.0 and float(ex.marginal.max()) <= 1.0 + 1e-9


def test_softmax_second_best_is_exact():
    torch.manual_seed(0)
    lp = torch.log_softmax(torch.randn(4, 3, dtype=torch.float64), -1)
    best, s1, second, s2 = _softmax_two_best(lp)
    ranked = sorted(
        ((sum(float(lp[t, y]) for t, y in enumerate(p)), list(p)) for p in itertools.product(range(3), repeat=4)),
        key=lambda x: -x[0],
    )
    assert (best, second) == (ranked[0][1], ranked[1][1])
    assert s1 == pytest.approx(ranked[0][0]) and s2 == pytest.approx(ranked[1][0])


def test_softmax_tagger_explains(models):
    ex = explain_tagger(models["softmax"], SENT)
    assert ex.decoder == "softmax" and ex.second is not None and len(ex.differs) == 1
    assert ex.second.probability <= ex.best.probability


def test_cli_explain_text_html_json(models, capsys, tmp_path):
    model = str(models["root"] / "crf")
    page = tmp_path / "ex.html"
    assert main(["explain", model, SENT, "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("best path (score ") and "second best (score " in out and "z→" in out
    text = page.read_text()
    assert "Best vs second-best path" in text and "Gates × tokens" in text and text.count("<tr>") > 6
    assert main(["explain", model, "a cat near every house", "--tokenized", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)  # json.loads accepts NaN; check with a strict parse too
    json.loads(json.dumps(rep), parse_constant=lambda c: pytest.fail(f"non-finite {c} in --json"))
    assert rep["tokens"] == ["a", "cat", "near", "every", "house"] and rep["kind"] == "tagger"
    assert len(rep["gates"]["z"][0][1]) == 5 and rep["second"]["tags"] and rep["best"]["probability"] > 0


def _error(capsys, argv):
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


def test_cli_explain_refuses_options_that_do_not_apply(models, capsys, tmp_path):
    model = str(models["root"] / "crf")
    assert "--png" in _error(capsys, ["explain", model, SENT, "--png", str(tmp_path / "x.png")])
    assert "--method" in _error(capsys, ["explain", model, SENT, "--method", "occlusion"])
    assert "--generate" in _error(capsys, ["explain", model, SENT, "--generate", "3"])
    assert "no tokens" in _error(capsys, ["explain", model, "   "])
    assert not (tmp_path / "x.png").exists()
