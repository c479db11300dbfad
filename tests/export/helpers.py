"""Tiny random-init models saved with the real artifact code, for the export tests."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tests.conftest import synthetic

from grutext.artifact import save_model
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.data.tokenizers import Tokenizer
from grutext.ngrams import JSON_FILE, WEIGHTS_FILE, NgramModel

LABELS = {"binary": ["neg", "pos"], "multiclass": ["mid", "neg", "pos"], "multilabel": ["mid", "neg", "pos"]}


def tokenizer(kind: str = "word") -> Tokenizer:
    texts, _ = synthetic(60, classes=("pos", "neg", "mid"))
    return Tokenizer.train(texts, kind=kind)


def save_classifier(
    out: Path,
    *,
    task: str = "multiclass",
    pooling: str = "max",
    bidirectional: bool = True,
    num_layers: int = 1,
    ensemble: int = 1,
    max_len: int = 400,
    truncation: str = "head",
    seed: int = 0,
    blend: float | None = None,
) -> Path:
    """A random-init classifier; with `blend`, also an n-gram model of that weight fitted on synthetic texts."""
    from grutext.tasks.classification.model import build_classifier

    torch.manual_seed(seed)
    tok = tokenizer()
    labels = LABELS[task]
    m = ModelConfig(
        task=task,
        embed_dim=6,
        hidden_size=5,
        num_layers=num_layers,
        bidirectional=bidirectional,
        pooling=pooling,
        ensemble=ensemble,
        vocab_size=tok.vocab_size,
        num_classes=len(labels),
    )
    cfg = Config(DataConfig(min_freq=1, max_len=max_len, truncation=truncation), m, TrainConfig(out=str(out)))
    model = build_classifier(m).eval()
    save_model(out, model, tok, cfg, labels=labels, extra=_ngram_files(task, labels, blend))
    return out


def _ngram_files(task: str, labels: list[str], blend: float | None) -> dict[str, Any] | None:
    """`save_model`'s extra writers of an n-gram model with weight `blend` (None: no blend)."""
    if blend is None:
        return None
    texts, names = synthetic(90, classes=tuple(labels), seed=11)
    y = np.array([labels.index(n) for n in names])
    targets = np.eye(len(labels), dtype=int)[y] if task == "multilabel" else y
    ngrams = NgramModel.fit(texts, targets, task, {"min_df": 1})
    ngrams.weight = blend
    return {JSON_FILE: ngrams.save_json, WEIGHTS_FILE: ngrams.save_weights}


def save_lm(
    out: Path, *, embed_dim: int = 8, hidden_size: int = 8, num_layers: int = 2, seed: int = 0, kind: str = "word"
) -> Path:
    from grutext.tasks.language_model.config import KIND, LMConfig
    from grutext.tasks.language_model.model import LanguageModel

    torch.manual_seed(seed)
    tok = tokenizer(kind)
    m = ModelConfig(
        embed_dim=embed_dim, hidden_size=hidden_size, num_layers=num_layers, vocab_size=tok.vocab_size, dropout=0.0
    )
    cfg = Config(DataConfig(min_freq=1, tokenizer=kind), m, TrainConfig(out=str(out)))
    model = LanguageModel.from_config(m).eval()
    save_model(out, model, tok, cfg, kind=KIND, meta={"lm": asdict(LMConfig())})
    return out


FEATURES = ["DT", "JJ", "NN", "VB", "IN", "."]


def tagger_corpus(n: int, seed: int, feature: bool = False) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """`n` planted chunking sentences: (tokens, IOB2 tags, a POS-like feature column drawn at random)."""
    import random

    from tests.tasks.planted_chunks import sentences

    toks, tags = sentences(n, seed)
    rng = random.Random(seed)
    feats = [[rng.choice(FEATURES) for _ in s] for s in toks] if feature else []
    return toks, tags, feats


def save_tagger(
    out: Path,
    *,
    char_encoder: str = "gru",
    decoder: str = "crf",
    feature: bool = False,
    plain: bool = False,
    scheme: str = "IOB2",
    num_layers: int = 1,
    seed: int = 0,
) -> Path:
    """A random-init tagger on the planted chunks' vocabulary, its file in `scheme` (`plain`: POS-like labels,
    no scheme); its head scaled up and its CRF's scores random so that emissions, decoding and constraints
    all matter."""
    from grutext.data.tag_schemes import convert
    from grutext.tasks.tagging.config import KIND, SECTION, TagConfig
    from grutext.tasks.tagging.data import TagVocab, build_word_tokenizer
    from grutext.tasks.tagging.model import Tagger

    torch.manual_seed(seed)
    toks, tags, _ = tagger_corpus(40, seed)
    tok = build_word_tokenizer(toks)
    if plain:
        vocab = TagVocab(["DT", "JJ", "NN", "VB"], [], file_scheme="none", train_scheme="none")
    else:
        names = sorted({t for s in tags for t in convert(s, "IOB2", "BIOES")} - {"O"})
        vocab = TagVocab(["O", *names], [], file_scheme=scheme, train_scheme="BIOES")
    vocab.chars = ["<pad>", "<unk>", *sorted({c for s in toks for w in s for c in w})]
    vocab.features = ["<pad>", "<unk>", *FEATURES] if feature else []
    tag_cfg = TagConfig(
        feature_col=1 if feature else None,
        decoder=decoder,
        char_encoder=char_encoder,
        char_dim=4,
        char_hidden=3,
        case_dim=3,
        feature_dim=4,
    )
    m = ModelConfig(
        embed_dim=6,
        hidden_size=5,
        num_layers=num_layers,
        dropout=0.0,
        vocab_size=tok.vocab_size,
        num_classes=len(vocab.tags),
    )
    cfg = Config(DataConfig(min_freq=1, tokenizer="word"), m, TrainConfig(out=str(out)))
    model = Tagger.from_config(m, tag_cfg, vocab)
    with torch.no_grad():
        model.head.weight.mul_(8.0)
        if model.crf is not None:
            for p in (model.crf.transitions, model.crf.start, model.crf.end):
                p.normal_()
    save_model(out, model.eval(), tok, cfg, kind=KIND, meta={SECTION: {**tag_cfg.to_dict(), **vocab.to_dict()}})
    return out


def session(model: Any) -> Any:
    """An onnxruntime session (1 thread) of an ONNX model, checked by onnx.checker first."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(model, full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
