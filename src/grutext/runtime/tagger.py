"""`TaggerModel`: an exported tagger run on sentences (token lists or raw text), decoded in NumPy.

The graph gives each token's tag scores (``emissions``); decoding is `viterbi` (the CRF's
constrained Viterbi, the same sums in the same order and dtype as `grutext.nn.crf.CRF.decode`, so
the same paths) or the per-token argmax. Inputs are built by the code training uses
(`grutext.data.tag_words`: word lookup, case classes, characters, raw-text splitting), the tags
are converted to the training file's scheme and read as chunks by `grutext.data.tag_schemes`,
all of it standard library and NumPy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grutext.data.tag_schemes import convert, spans
from grutext.data.tag_words import case_id, char_rows, feature_ids, lookup_words, split_raw, split_tokens
from grutext.data.viterbi import viterbi
from grutext.errors import ArtifactError, DataError
from grutext.runtime.manifest import MANIFEST
from grutext.runtime.model import RuntimeModel, _check_texts

TAGGER_FILE = "tagger.json"
NO_SCHEME = "none"


def constrained_scores(crf: dict[str, Any], dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tagger.json``'s CRF as (start, transitions, end) in `dtype`, the disallowed ones -inf."""
    out = []
    for name in ("start", "transitions", "end"):
        score = np.asarray(crf[name], dtype=dtype)
        allowed = np.asarray(crf["allowed_" + name], dtype=bool)
        if allowed.shape != score.shape:
            raise ArtifactError(f"{TAGGER_FILE}: allowed_{name} has shape {allowed.shape}, {name} {score.shape}")
        out.append(np.where(allowed, score, np.asarray(-np.inf, dtype=dtype)).astype(dtype))
    return out[0], out[1], out[2]


def _check_sentences(sentences: Any) -> list[str | list[str]]:
    """Sentences as given: each a non-empty string or a non-empty list of strings."""
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise DataError(f"sentences: expected a list (of token lists or strings), got {type(sentences).__name__}")
    out: list[str | list[str]] = []
    for i, s in enumerate(sentences):
        if isinstance(s, str):
            if not s.strip():
                raise DataError(f"sentences[{i}]: expected a non-empty string, got {s!r:.40}")
            out.append(s)
        elif isinstance(s, Sequence) and s and all(isinstance(t, str) for t in s):
            out.append(list(s))
        else:
            raise DataError(f"sentences[{i}]: expected a non-empty list of token strings or a string, got {s!r:.60}")
    return out


class TaggerModel(RuntimeModel):
    """An exported tagger: ``tag`` sentences (token lists or raw text) into tags of the training file's
    scheme and chunks; ``tags`` are the graph's tag names (the training scheme, emission order)."""

    kind = "tagger"
    optional_files = (TAGGER_FILE,)

    def __init__(self, path: Path, info: dict[str, Any], threads: int | None, int8: bool, batch_size: int = 64) -> None:
        super().__init__(path, info, threads, int8)
        tg = info.get("tagger") or {}
        if TAGGER_FILE not in (info.get("files") or {}):
            raise ArtifactError(f"{path / MANIFEST}: a tagger export without {TAGGER_FILE}; export it again")
        try:
            body = json.loads((path / TAGGER_FILE).read_text(encoding="utf-8"))
            self.tags: list[str] = list(tg["tags"])
            self.train_scheme, self.file_scheme = str(tg["train_scheme"]), str(tg["file_scheme"])
            self.char_index = {c: i for i, c in enumerate(body["chars"])}
            self.feature_index = {f: i for i, f in enumerate(body["features"])}
            crf = body["crf"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(
                f"{path}: the tagger's {MANIFEST} / {TAGGER_FILE} could not be read ({exc!r})"
            ) from None
        self.crf = None if crf is None else constrained_scores(crf)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.batch_size = batch_size

    # ---- inputs and scores --------------------------------------------------------------------

    def encode(self, tokens: Sequence[str], features: Sequence[str] | None = None) -> dict[str, Any]:
        """One sentence's ids as training built them: words, cases, chars (rows), features."""
        return {
            "words": lookup_words(self.tokenizer.hf, tokens),
            "cases": [case_id(t) for t in tokens],
            "chars": char_rows(tokens, self.char_index),
            "features": feature_ids(features, self.feature_index, len(tokens)) if self.feature_index else None,
        }

    def _batch(self, items: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """A padded batch (post, id 0) of `encode`d sentences, as the graph's inputs."""
        b, t = len(items), max(len(e["words"]) for e in items)
        w = max(len(r) for e in items for r in e["chars"])
        out = {k: np.zeros((b, t), np.int64) for k in ("words", "cases", "features")}
        out["chars"] = np.zeros((b, t, w), np.int64)
        out["lengths"] = np.array([len(e["words"]) for e in items], np.int64)
        for i, e in enumerate(items):
            n = len(e["words"])
            out["words"][i, :n], out["cases"][i, :n] = e["words"], e["cases"]
            if e["features"] is not None:
                out["features"][i, :n] = e["features"]
            for j, row in enumerate(e["chars"]):
                out["chars"][i, j, : len(row)] = row
        return {k: out[k] for k in self.inputs}

    def decode(self, emissions: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
        """Tag indices per sentence of (B, T, K) emissions: the CRF's constrained Viterbi, or the argmax."""
        if self.crf is not None:
            return viterbi(emissions, lengths, *self.crf)[0]
        best = emissions.argmax(-1)
        return [best[i, : int(n)].tolist() for i, n in enumerate(lengths)]

    def to_file(self, tags: list[str]) -> list[str]:
        """Decoded tags (training scheme) in the training file's scheme."""
        if self.train_scheme == self.file_scheme:
            return tags
        return convert(tags, self.train_scheme, self.file_scheme)

    def tag_tokens(
        self, sentences: Sequence[Sequence[str]], features: Sequence[Sequence[str]] | None = None
    ) -> list[list[str]]:
        """Tags (training file's scheme) of token lists, in order; batched by length."""
        if features is not None and len(features) != len(sentences):
            raise DataError(f"features: {len(features)} lists for {len(sentences)} sentences; expected one each")
        items = []
        for i, toks in enumerate(sentences):
            if not toks:
                raise DataError(f"sentences[{i}]: an empty sentence; expected at least one token")
            feats = features[i] if features is not None else None
            if feats is not None and len(feats) != len(toks):
                raise DataError(f"features[{i}]: {len(feats)} values for {len(toks)} tokens; expected one per token")
            items.append(self.encode(toks, feats))
        out: list[list[str]] = [[] for _ in items]
        order = sorted(range(len(items)), key=lambda i: len(items[i]["words"]))
        for s in range(0, len(order), self.batch_size):
            rows = order[s : s + self.batch_size]
            inputs = self._batch([items[i] for i in rows])
            emissions = self.session.run(["emissions"], inputs)[0]
            for i, path in zip(rows, self.decode(emissions, inputs["lengths"]), strict=True):
                out[i] = self.to_file([self.tags[k] for k in path])
        return out

    # ---- sentences ----------------------------------------------------------------------------

    def chunks(self, tags: Sequence[str]) -> list[tuple[str, int, int]]:
        """(type, start, end) token spans of a tagged sentence, end exclusive (plain labels: none)."""
        return [] if self.file_scheme == NO_SCHEME else spans(tags)

    def tag(
        self, sentences: Sequence[str | Sequence[str]], features: Sequence[Sequence[str]] | None = None
    ) -> list[dict[str, Any]]:
        """Tag sentences: each a list of tokens, or a string split as ``grutext predict`` splits raw text.

        Returns:
            One dict per sentence. A token list: ``tokens``, ``tags`` and ``chunks`` (``type``,
            token ``start``/``end``, end exclusive). A string: as ``grutext predict`` on the torch
            model (`grutext.tasks.tagging.predict.predict_texts`): ``text``, ``tokens``, ``tags``,
            ``offsets`` and ``chunks`` with ``char_start``/``char_end`` and ``text`` too.
        """
        given = _check_sentences(sentences)
        split = [split_raw(self.tokenizer.hf, s) if isinstance(s, str) else (s, None) for s in given]
        for i, (toks, _) in enumerate(split):
            if not toks:
                raise DataError(f"sentences[{i}]: no tokens; expected a sentence")
        tags = self.tag_tokens([toks for toks, _ in split], features)
        return [
            _row(s, toks, offs, tg, self.chunks(tg)) for s, (toks, offs), tg in zip(given, split, tags, strict=True)
        ]

    def tag_texts(self, texts: Sequence[str], tokenized: bool = False) -> list[dict[str, Any]]:
        """Raw sentences as `tag` reads strings; with `tokenized`, words between whitespace (as
        ``grutext predict --tokenized``)."""
        if not tokenized:
            return self.tag(texts)
        given = _check_texts(texts)
        split = [split_tokens(t) for t in given]
        tags = self.tag_tokens([toks for toks, _ in split])
        return [
            _row(t, toks, offs, tg, self.chunks(tg)) for t, (toks, offs), tg in zip(given, split, tags, strict=True)
        ]


def _row(
    given: str | Sequence[str],
    tokens: list[str],
    offsets: list[tuple[int, int]] | None,
    tags: list[str],
    chunks: list[tuple[str, int, int]],
) -> dict[str, Any]:
    """One sentence's answer (`TaggerModel.tag`)."""
    if offsets is None or not isinstance(given, str):
        return {"tokens": tokens, "tags": tags, "chunks": [{"type": k, "start": a, "end": b} for k, a, b in chunks]}
    shown = []
    for kind, a, b in chunks:
        c0, c1 = offsets[a][0], offsets[b - 1][1]
        shown.append({"type": kind, "start": a, "end": b, "char_start": c0, "char_end": c1, "text": given[c0:c1]})
    return {"text": given, "tokens": tokens, "tags": tags, "offsets": [list(o) for o in offsets], "chunks": shown}


__all__ = ["TAGGER_FILE", "TaggerModel", "constrained_scores", "viterbi"]
