"""Start a classifier from a trained model directory: transfer learning (ULMFiT-style).

Howard & Ruder (2018, "Universal Language Model Fine-tuning for Text Classification") showed that a
recurrent classifier whose embedding and recurrent layers start from a language model trained on
unlabelled text of the same domain needs far less labelled data. grutext does the same with any of
its model directories:

- a **language model** (``grutext train --task lm``): its tokenizer, embedding and every recurrent
  layer are copied. The classifier takes the LM's shape: its cell, embedding size, hidden size and
  number of layers, unidirectional (an LM reads left to right; a reverse direction would have
  nothing to start from).
- a **classifier**: its tokenizer, embedding and whole encoder (bidirectional or not) are copied;
  its pooling weights (attention) are kept when the pooling is of the same kind, and its head too
  when the labels and task are the same (``model.keep_head``; false: both start fresh). Keeping a
  trained attention pooling under a new head scored 0.896 against 0.893 on TREC-6's validation
  split (the trec50 stage's attention under a 6-class head; mean of 10 seeds, 8 of them higher).

The source directory is read once; the new model directory is self-contained (``load()`` never
needs the source again), its config records where it started in ``model.init_from``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from grutext.config import ModelConfig
from grutext.errors import ArtifactError, ConfigError
from grutext.tasks.classification.config import KIND as CLASSIFIER
from grutext.tasks.language_model.config import KIND as LANGUAGE_MODEL

if TYPE_CHECKING:
    from grutext.tasks.classification.model import TextClassifier

_LAYER_KEY = re.compile(r"^layers\.(\d+)\.(.+)_l0(_reverse)?$")


@dataclass
class TransferSource:
    """What a classifier inherits from a trained model directory.

    Attributes:
        path: the source directory.
        kind: ``"language_model"`` or ``"classifier"``.
        tokenizer: the source's tokenizer (the classifier must use its ids).
        embedding: ``(V, E)`` embedding matrix.
        encoder: encoder state with the classifier encoder's key names (``weight_ih_l0`` ...).
        head: a classifier's pooling and head weights (empty for a language model).
        labels, task, pooling: a classifier's label names, task and pooling (empty / "" for a
            language model).
        cell, embed_dim, hidden_size, num_layers, bidirectional: the encoder's shape.
        members: how many networks the source holds (an ensemble's); this one is member
            ``member % members``.
    """

    path: Path
    kind: str
    tokenizer: Any
    embedding: torch.Tensor
    encoder: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor]
    labels: list[str]
    task: str
    pooling: str
    cell: str
    embed_dim: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    members: int = 1
    member: int = 0

    def shape_config(self, m: ModelConfig) -> ModelConfig:
        """`m` with the encoder's shape taken from the source."""
        return replace(
            m,
            cell=self.cell,
            embed_dim=self.embed_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            vocab_size=self.tokenizer.vocab_size,
        )

    def head_fits(self, labels: list[str], task: str, pooling: str) -> bool:
        """Whether the source's head can be kept: a classifier with the same labels, task and pooling."""
        return bool(self.head) and (self.labels, self.task, self.pooling) == (list(labels), task, pooling)

    def describe(self, head: str = "") -> str:
        """One line: where the weights come from; `head` is "kept", "pooling" (kept under a new head) or ""."""
        what = "language model" if self.kind == LANGUAGE_MODEL else "classifier"
        if self.members > 1:
            what = f"member {self.member} of the {self.members}-network ensemble"
        rest = (
            "pooling and head kept (same labels)"
            if head == "kept"
            else "pooling kept, head starts fresh"
            if head == "pooling"
            else "pooling and head start fresh"
        )
        return (
            f"init: from the {what} {self.path} (tokenizer, embedding {tuple(self.embedding.shape)}, "
            f"{self.cell} x{self.num_layers}{' bidirectional' if self.bidirectional else ''}, "
            f"hidden {self.hidden_size}); {rest}"
        )

    def extend_vocabulary(self, texts: list[str], vectors: str, *, min_freq: int = 1, seed: int = 0) -> dict[str, Any]:
        """Add the words of `texts` that the source's vocabulary lacks, their embedding rows from `vectors`.

        The source's ids keep their meaning; new words get the next ids. A new word found in
        `vectors` starts from its pretrained vector (the right start when the source's embedding
        itself began from those vectors), any other from a random row of the source's scale.

        Args:
            texts: the new training texts.
            vectors: pretrained vectors (a name such as ``"glove-6b-50d"`` or a file).
            min_freq: add a word seen at least this often.
            seed: for the random rows.

        Returns:
            ``{"added": n, "from_vectors": m}``.

        Raises:
            ConfigError: not a word tokenizer, or vectors of another size than the embedding.
        """
        import json
        from collections import Counter

        import numpy as np

        from grutext.data.embeddings import build_embedding_matrix, load_vectors
        from grutext.data.tokenizers import Tokenizer

        if self.tokenizer.kind != "word":
            raise ConfigError(
                f"model.pretrained with model.init_from: only a word vocabulary can grow; "
                f"{self.path} has a {self.tokenizer.kind!r} tokenizer"
            )
        hf = self.tokenizer._hf
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(piece for piece, _ in hf.pre_tokenizer.pre_tokenize_str(hf.normalizer.normalize_str(text)))
        known = hf.get_vocab()
        new = sorted((w for w, c in counts.items() if c >= min_freq and w not in known), key=lambda w: (-counts[w], w))
        if not new:
            return {"added": 0, "from_vectors": 0}
        data = json.loads(self.tokenizer.to_json_str())
        vocab = data["model"]["vocab"]
        start = len(vocab)
        for i, word in enumerate(new):
            vocab[word] = start + i
        grown = Tokenizer.from_json_str(json.dumps(data), str(self.path / "tokenizer.json"))
        words, vecs = load_vectors(vectors)
        if vecs.shape[1] != self.embedding.shape[1]:
            raise ConfigError(
                f"model.pretrained: {vectors} has {vecs.shape[1]}-d vectors, the embedding of "
                f"{self.path} is {self.embedding.shape[1]}-d"
            )
        std = float(self.embedding[1:].std())
        matrix, _ = build_embedding_matrix(grown, words, vecs, init_std=std, seed=seed)
        rows = torch.as_tensor(np.asarray(matrix[start:]), dtype=self.embedding.dtype)  # (n_new, E)
        wordset = set(words)
        n_found = sum(1 for w in new if w in wordset or w.lower() in wordset)
        self.embedding = torch.cat([self.embedding, rows])
        self.tokenizer = grown
        return {"added": len(new), "from_vectors": n_found}

    def copy_into(self, model: TextClassifier, labels: list[str] | None = None) -> dict[str, int]:
        """Copy the embedding and encoder weights into a `TextClassifier` built from `shape_config`.

        When `labels` is given (None: pooling and head start fresh) and the source is a classifier
        with the same kind of pooling, its pooling weights are copied; with the same labels and
        task as well, its head too: the new model starts as the old one and is fine-tuned.

        Returns:
            ``{"tensors": n, "parameters": m, "head": bool, "pooling": bool}`` copied.

        Raises:
            ConfigError: the classifier's encoder does not have the source's weights.
        """
        own = model.encoder.state_dict()
        missing = sorted(set(self.encoder) - set(own))
        if missing:
            raise ConfigError(
                f"model.init_from: {self.path}: the {model.cell!r} encoder has no "
                f"{missing[0]!r} (the source's weights do not fit this cell)"
            )
        n = 0
        with torch.no_grad():
            if tuple(model.embedding.weight.shape) != tuple(self.embedding.shape):
                raise ConfigError(
                    f"model.init_from: {self.path}: embedding is {tuple(self.embedding.shape)}, "
                    f"the classifier's is {tuple(model.embedding.weight.shape)}"
                )
            model.embedding.weight.copy_(self.embedding)
            n += self.embedding.numel()
            for key, value in self.encoder.items():
                if own[key].shape != value.shape:
                    raise ConfigError(
                        f"model.init_from: {self.path}: encoder.{key} is {tuple(value.shape)}, "
                        f"the classifier's is {tuple(own[key].shape)}"
                    )
                own[key].copy_(value)  # state_dict tensors share storage with the parameters
                n += value.numel()
            head = labels is not None and self.head_fits(labels, model.task, model.pooling.kind)
            pooling = labels is not None and bool(self.head) and self.pooling == model.pooling.kind
            whole = model.state_dict()  # tensors sharing storage with the parameters
            for key, value in self.head.items():
                wanted = head or (pooling and key.startswith("pooling."))
                if wanted and key in whole and whole[key].shape == value.shape:
                    whole[key].copy_(value)
                    n += value.numel()
        return {"tensors": len(self.encoder) + 1, "parameters": n, "head": head, "pooling": pooling}


def load_transfer_source(path: str | Path, member: int = 0) -> TransferSource:
    """Read a model directory as the starting point of a classifier.

    From an ensemble of M networks, member ``member % M`` is read: an ensemble trained from an
    ensemble starts each of its members from its own counterpart.

    Raises:
        ConfigError: not a model directory, or a kind that cannot be transferred.
    """
    from grutext.artifact import load_model

    p = Path(path)
    if not (p / "config.json").is_file():
        raise ConfigError(
            f"model.init_from: {p}: expected a grutext model directory (with config.json); "
            f"{'no such directory' if not p.exists() else 'none found there'}"
        )
    try:
        loaded = load_model(p)
    except ArtifactError as exc:
        raise ConfigError(f"model.init_from: {exc}") from None
    model: Any = loaded.model  # a classifier or a language model: both have embedding and encoder
    m = loaded.config.model
    members = len(model.members) if hasattr(model, "members") else 1
    if members > 1:
        model = model.members[member % members]
    state = {k: v.detach().clone() for k, v in model.encoder.state_dict().items()}
    head: dict[str, Any] = {}
    if loaded.kind == CLASSIFIER:
        head = {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(("pooling.", "head."))}
    if loaded.kind == LANGUAGE_MODEL:
        encoder, bidirectional = _lm_encoder(state, p), False
    elif loaded.kind == CLASSIFIER:
        encoder, bidirectional = state, bool(m.bidirectional)
    else:
        raise ConfigError(
            f"model.init_from: {p}: a {loaded.kind!r} model cannot start a classifier; "
            f"expected a language model or a classifier"
        )
    return TransferSource(
        path=p,
        kind=loaded.kind,
        tokenizer=loaded.tokenizer,
        embedding=model.embedding.weight.detach().clone(),
        encoder=encoder,
        head=head,
        labels=list(loaded.labels) if loaded.kind == CLASSIFIER else [],
        task=m.task if loaded.kind == CLASSIFIER else "",
        pooling=m.pooling if loaded.kind == CLASSIFIER else "",
        cell=m.cell,
        embed_dim=int(model.embedding.weight.shape[1]),
        hidden_size=int(m.hidden_size),
        num_layers=int(m.num_layers),
        bidirectional=bidirectional,
        members=members,
        member=member % members,
    )


def _lm_encoder(state: dict[str, torch.Tensor], p: Path) -> dict[str, torch.Tensor]:
    """A language model's per-layer encoder weights under one stacked GRU's names."""
    encoder: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _LAYER_KEY.match(key)
        if match is None:
            raise ConfigError(f"model.init_from: {p}: unexpected language-model weight encoder.{key}")
        k, name, rev = match.groups()
        encoder[f"{name}_l{k}{rev or ''}"] = value  # layers.k.weight_ih_l0 -> weight_ih_lk
    return encoder


__all__ = ["TransferSource", "load_transfer_source"]
