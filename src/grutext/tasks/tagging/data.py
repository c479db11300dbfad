"""Tagging data: CoNLL/JSONL corpora (grutext.data.conll), the vocabularies (words with a lower-cased
lookup and a case feature, characters, features, tags in the training scheme) and padded batches."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from grutext.data.conll import TaggedCorpus, read_conll
from grutext.data.tag_schemes import convert
from grutext.data.tag_words import char_rows, feature_ids, lookup_words, split_raw, split_tokens
from grutext.data.tokenizers import SPECIALS, UNK, Tokenizer
from grutext.errors import DataError
from grutext.tasks.tagging.config import NO_SCHEME, TRAIN_SCHEME, TagConfig, case_id

PAD_ID, UNK_ID = 0, 1  # in every vocabulary of this module (chars, features); words: the tokenizer's specials


def read_tagged(path: str, tag_cfg: TagConfig, scheme: str | None = None) -> TaggedCorpus:
    """A CoNLL or JSONL file read with `tag_cfg`'s columns (`scheme` overrides ``tag_cfg.scheme``)."""
    return read_conll(
        path,
        tag_col=tag_cfg.tag_col,
        token_col=tag_cfg.token_col,
        feature_col=tag_cfg.feature_col,
        scheme=scheme or tag_cfg.scheme,
    )


@dataclass
class TagVocab:
    """What the tagger learnt from its training file besides the words: saved in config.json's ``"tag"``.

    Attributes:
        tags: tag names in index order, in `train_scheme`.
        chars: characters in index order (0 ``<pad>``, 1 ``<unk>``).
        features: feature values in index order (0 ``<pad>``, 1 ``<unk>``); empty without a feature column.
        file_scheme: the training file's scheme (scores are reported in it; predictions are written in it).
        train_scheme: the scheme the tags are learnt in (BIOES for chunk tags, ``"none"`` for plain labels).
    """

    tags: list[str]
    chars: list[str]
    features: list[str] = field(default_factory=list)
    file_scheme: str = NO_SCHEME
    train_scheme: str = NO_SCHEME

    def to_dict(self) -> dict[str, Any]:
        return {
            "tags": self.tags,
            "chars": self.chars,
            "features": self.features,
            "file_scheme": self.file_scheme,
            "train_scheme": self.train_scheme,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> TagVocab:
        raw = meta.get("tag") or {}
        try:
            return cls(
                list(raw["tags"]),
                list(raw["chars"]),
                list(raw.get("features", [])),
                str(raw["file_scheme"]),
                str(raw["train_scheme"]),
            )
        except KeyError as exc:
            raise DataError(f"config.json: the tagger's 'tag' section lacks {exc}") from None

    def to_train(self, tags: Sequence[str]) -> list[str]:
        """Tags of the file's scheme in the training scheme."""
        if self.train_scheme == self.file_scheme:
            return list(tags)
        return convert(tags, self.file_scheme, self.train_scheme)

    def to_file(self, tags: Sequence[str]) -> list[str]:
        """Predicted tags (training scheme) in the file's scheme."""
        if self.train_scheme == self.file_scheme:
            return list(tags)
        return convert(tags, self.train_scheme, self.file_scheme)


def build_vocab(corpus: TaggedCorpus, tag_cfg: TagConfig) -> TagVocab:
    """Tags (in the training scheme), characters and features of a training corpus."""
    train_scheme = NO_SCHEME if corpus.scheme == NO_SCHEME else TRAIN_SCHEME
    vocab = TagVocab([], [], [], corpus.scheme, train_scheme)
    tags = sorted({t for s in corpus for t in vocab.to_train(s.tags)})
    if "O" in tags:  # O first: index 0 is the usual "outside"
        tags.remove("O")
        tags.insert(0, "O")
    vocab.tags = tags
    chars = Counter(c for s in corpus for tok in s.tokens for c in tok)
    vocab.chars = ["<pad>", "<unk>", *sorted(chars)]
    if tag_cfg.feature_col is not None:
        vocab.features = ["<pad>", "<unk>", *sorted({f for s in corpus for f in (s.features or ())})]
    return vocab


def build_word_tokenizer(
    sentences: Sequence[Sequence[str]], *, lowercase: bool = True, min_freq: int = 1, max_vocab: int | None = None
) -> Tokenizer:
    """A word tokenizer whose vocabulary is the corpus' tokens (normalised: NFKC, lower-cased when asked).

    Its pre-tokenizer is the word tokenizer's (punctuation apart, Penn Treebank contractions), so raw
    text splits as the Treebank does; pre-tokenized words are looked up whole (`word_ids`).
    """
    from tokenizers import models

    base = Tokenizer.train(["x"], kind="word", lowercase=lowercase, strip_html=False)
    counts = Counter(base.normalize(tok) for sent in sentences for tok in sent)
    ranked = sorted(
        (w for w, n in counts.items() if n >= min_freq and w not in SPECIALS), key=lambda w: (-counts[w], w)
    )
    if max_vocab is not None:
        ranked = ranked[: max(max_vocab - len(SPECIALS), 0)]
    table = {s: i for i, s in enumerate(SPECIALS)}
    table.update({w: i for i, w in enumerate(ranked, len(SPECIALS))})
    hf = base.hf
    hf.model = models.WordLevel(table, unk_token=UNK)
    return Tokenizer(hf, "word", {**base.meta, "min_freq": min_freq, "max_size": max_vocab})


def word_ids(tokenizer: Tokenizer, tokens: Sequence[str]) -> list[int]:
    """Ids of whole words (the lower-cased lookup: the tokenizer's normaliser, no splitting)."""
    return lookup_words(tokenizer.hf, tokens, tokenizer.unk_id)


def split_text(tokenizer: Tokenizer, text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """A raw sentence as the model's tokenizer splits it, with numbers such as ``1.8`` / ``1,000`` and
    abbreviations such as ``U.S.`` kept whole as in the Treebank: the words as written and their
    character offsets (`grutext.data.tag_words.split_raw`)."""
    return split_raw(tokenizer.hf, text)


@dataclass
class Encoded:
    """One sentence as ids (tags: -1 when unknown, e.g. for prediction)."""

    words: list[int]
    cases: list[int]
    chars: np.ndarray  # (n, W_sentence) character ids, 0-padded
    features: list[int] | None
    tags: list[int] | None
    gold: tuple[str, ...] | None = None  # the tags as in the file, for scoring in its scheme


class Encoder:
    """Sentences (tokens, optional features and tags) -> `Encoded`, with a tokenizer and a `TagVocab`."""

    def __init__(self, tokenizer: Tokenizer, vocab: TagVocab) -> None:
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.char_index = {c: i for i, c in enumerate(vocab.chars)}
        self.feature_index = {f: i for i, f in enumerate(vocab.features)}
        self.tag_index = {t: i for i, t in enumerate(vocab.tags)}

    def encode(
        self,
        tokens: Sequence[str],
        features: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        where: str = "sentence",
    ) -> Encoded:
        """One sentence as ids; `tags` in the file's scheme (None: unknown, for prediction)."""
        if not tokens:
            raise DataError(f"{where}: an empty sentence; expected at least one token")
        rows = char_rows(tokens, self.char_index)
        chars = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.int64)  # (n, W)
        for j, r in enumerate(rows):
            chars[j, : len(r)] = r
        feats = None
        if self.vocab.features:
            feats = feature_ids(features, self.feature_index, len(tokens))
        tag_ids = None
        if tags is not None:  # a tag training never saw (only in a test file) counts as tag 0 in the loss;
            # the scores read the gold tags themselves
            tag_ids = [self.tag_index.get(t, 0) for t in self.vocab.to_train(tags)]
        return Encoded(
            word_ids(self.tokenizer, tokens),
            [case_id(t) for t in tokens],
            chars,
            feats,
            tag_ids,
            tuple(tags) if tags is not None else None,
        )

    def encode_corpus(self, corpus: TaggedCorpus) -> list[Encoded]:
        return [
            self.encode(s.tokens, s.features, s.tags, where=f"{corpus.path} line {s.lines[0] if s.lines else '?'}")
            for s in corpus
        ]


def collate(items: Sequence[Encoded]) -> dict[str, Any]:
    """A padded batch: ``words``/``cases``/``tags``/``features`` (B, T), ``chars`` (B, T, W), ``lengths`` (B,)
    (CPU), ``gold`` (the file's tags per sentence, or None)."""
    b = len(items)
    t_max = max(len(e.words) for e in items)
    w_max = max(e.chars.shape[1] for e in items)
    words = np.zeros((b, t_max), dtype=np.int64)  # (B, T), 0 = <pad>
    cases = np.zeros((b, t_max), dtype=np.int64)
    chars = np.zeros((b, t_max, w_max), dtype=np.int64)  # (B, T, W)
    tags = np.zeros((b, t_max), dtype=np.int64)  # padding tags are masked out by the lengths
    features = np.zeros((b, t_max), dtype=np.int64) if items[0].features is not None else None
    for i, e in enumerate(items):
        n = len(e.words)
        words[i, :n] = e.words
        cases[i, :n] = e.cases
        chars[i, :n, : e.chars.shape[1]] = e.chars
        if e.tags is not None:
            tags[i, :n] = e.tags
        if features is not None and e.features is not None:
            features[i, :n] = e.features
    batch: dict[str, Any] = {
        "words": torch.from_numpy(words),
        "cases": torch.from_numpy(cases),
        "chars": torch.from_numpy(chars),
        "lengths": torch.tensor([len(e.words) for e in items], dtype=torch.long),
        "gold": [e.gold for e in items] if all(e.gold is not None for e in items) else None,
    }
    if features is not None:
        batch["features"] = torch.from_numpy(features)
    if all(e.tags is not None for e in items):
        batch["tags"] = torch.from_numpy(tags)
    return batch


class TagBatches:
    """Re-iterable padded batches of encoded sentences.

    With `shuffle`, each epoch (``set_epoch``) draws a new order, sorts pools of 50 batches by length
    (little padding) and shuffles the batches; without it, file order (predictions come back in order).
    """

    POOL = 50

    def __init__(self, items: Sequence[Encoded], batch_size: int, shuffle: bool = False, seed: int = 0) -> None:
        self.items = list(items)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.num_tokens = sum(len(e.words) for e in self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.items) + self.batch_size - 1) // self.batch_size

    def _order(self) -> list[list[int]]:
        idx = list(range(len(self.items)))
        bs = self.batch_size
        if not self.shuffle:
            return [idx[i : i + bs] for i in range(0, len(idx), bs)]
        rng = random.Random(self.seed * 100_003 + self.epoch)
        rng.shuffle(idx)
        batches = []
        pool = bs * self.POOL
        for p in range(0, len(idx), pool):
            chunk = sorted(idx[p : p + pool], key=lambda i: len(self.items[i].words))
            batches += [chunk[i : i + bs] for i in range(0, len(chunk), bs)]
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for group in self._order():
            yield collate([self.items[i] for i in group])


def carve(corpus: TaggedCorpus, fraction: float, seed: int) -> tuple[TaggedCorpus, TaggedCorpus]:
    """Split off `fraction` of the sentences (seeded) as a validation corpus."""
    idx = list(range(len(corpus)))
    random.Random(seed).shuffle(idx)
    n_valid = max(1, int(round(len(idx) * fraction)))
    if len(idx) - n_valid < 1:
        raise DataError(f"{corpus.path}: {len(idx)} sentence(s); too few to carve a validation set, give data.valid")
    chosen = set(idx[:n_valid])

    def part(keep: bool, suffix: str) -> TaggedCorpus:
        sents = [s for i, s in enumerate(corpus.sentences) if (i in chosen) == keep]
        return TaggedCorpus(sents, f"{corpus.path} ({suffix})", corpus.scheme, corpus.columns, [])

    return part(False, "train part"), part(True, "validation part")


__all__ = [
    "Encoded",
    "Encoder",
    "TagBatches",
    "TagVocab",
    "build_vocab",
    "build_word_tokenizer",
    "carve",
    "collate",
    "read_tagged",
    "split_text",
    "split_tokens",
    "word_ids",
]
