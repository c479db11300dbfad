"""Prediction with a saved tagger: raw sentences (split by the model's tokenizer) or pre-tokenized ones
-> tags and chunks with character offsets; CoNLL files -> each line with the predicted tag appended."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grutext.data.conll import _lines, read_conll
from grutext.data.tag_schemes import spans
from grutext.errors import ArtifactError, DataError
from grutext.tasks.tagging.config import KIND, NO_SCHEME, TagConfig
from grutext.tasks.tagging.data import Encoder, TagBatches, TagVocab, split_text, split_tokens
from grutext.tasks.tagging.evaluate import predict_tags

if TYPE_CHECKING:
    from grutext.artifact import LoadedModel


def check_tagger(loaded: Any) -> None:
    """ArtifactError unless `loaded` is a tagger."""
    if getattr(loaded, "kind", None) != KIND:
        raise ArtifactError(
            f"{getattr(loaded, 'path', 'model')}: a {getattr(loaded, 'kind', '?')!r} model, not a tagger"
        )


def tag_tokens(
    loaded: LoadedModel, sentences: Sequence[Sequence[str]], features: Sequence[Sequence[str]] | None = None
) -> list[list[str]]:
    """Tags (in the training file's scheme) of pre-tokenized sentences, in order."""
    check_tagger(loaded)
    vocab = TagVocab.from_meta(loaded.meta)
    enc = Encoder(loaded.tokenizer, vocab)
    items = [
        enc.encode(toks, features[i] if features else None, where=f"sentence {i + 1}")
        for i, toks in enumerate(sentences)
    ]
    preds, _ = predict_tags(loaded.model, TagBatches(items, 128), vocab)
    return preds


def chunks_of(
    tokens: Sequence[str], tags: Sequence[str], offsets: Sequence[tuple[int, int]], text: str, scheme: str
) -> list[dict[str, Any]]:
    """The chunks of a tagged sentence: type, token span (end exclusive), character span and text."""
    if scheme == NO_SCHEME:
        return []
    out = []
    for type_, start, end in spans(tags):
        a, b = offsets[start][0], offsets[end - 1][1]
        out.append({"type": type_, "start": start, "end": end, "char_start": a, "char_end": b, "text": text[a:b]})
    return out


def predict_texts(loaded: LoadedModel, texts: Sequence[str], *, tokenized: bool = False) -> list[dict[str, Any]]:
    """Tag sentences given as text.

    Args:
        loaded: a tagger (`grutext.artifact.load_model`).
        texts: one sentence each; split by the model's tokenizer, or on whitespace when `tokenized`.
        tokenized: the words are already separated by spaces (as in CoNLL files).

    Returns:
        One dict per text: ``text``, ``tokens``, ``tags``, ``offsets`` (character spans of the tokens)
        and ``chunks`` (type, token start/end, char_start/char_end, text).
    """
    check_tagger(loaded)
    split = [split_tokens(t) if tokenized else split_text(loaded.tokenizer, t) for t in texts]
    for i, (toks, _) in enumerate(split):
        if not toks:
            raise DataError(f"predict: text {i + 1} has no tokens; expected a sentence")
    tags = tag_tokens(loaded, [toks for toks, _ in split])
    scheme = TagVocab.from_meta(loaded.meta).file_scheme
    rows = []
    for text, (toks, offs), tg in zip(texts, split, tags, strict=True):
        rows.append(
            {
                "text": text,
                "tokens": toks,
                "tags": tg,
                "offsets": [list(o) for o in offs],
                "chunks": chunks_of(toks, tg, offs, text, scheme),
            }
        )
    return rows


def brackets(row: dict[str, Any]) -> str:
    """``[NP He] [VP reckons] [NP the current account deficit] ...``: chunks bracketed, other tokens bare;
    plain labels (no chunks) as ``He/PRP reckons/VBZ``."""
    tokens, tags = row["tokens"], row["tags"]
    if not row["chunks"] and any("-" not in t and t != "O" for t in tags):
        return " ".join(f"{w}/{t}" for w, t in zip(tokens, tags, strict=True))
    parts, i = [], 0
    for c in row["chunks"]:
        parts += tokens[i : c["start"]]
        parts.append(f"[{c['type']} {' '.join(tokens[c['start'] : c['end']])}]")
        i = c["end"]
    parts += tokens[i:]
    return " ".join(parts)


def conll_lines(loaded: LoadedModel, path: str) -> Iterator[str]:
    """Each line of a CoNLL file with the predicted tag appended as the last column (blank lines and
    ``-DOCSTART-`` lines as they were): the input conlleval reads when the file carries gold tags."""
    check_tagger(loaded)
    tag_cfg = TagConfig.from_meta(loaded.meta)
    # the tokens (and the model's feature column) only; whatever the last column holds is left alone
    corpus = read_conll(
        path,
        token_col=tag_cfg.token_col,
        tag_col=tag_cfg.token_col,
        feature_col=tag_cfg.feature_col,
        scheme=NO_SCHEME,
        fmt="conll",
    )
    feats = [list(s.features or ()) for s in corpus] if tag_cfg.feature_col is not None else None
    tags = tag_tokens(loaded, [list(s.tokens) for s in corpus], feats)
    by_line = {ln: tag for s, tg in zip(corpus, tags, strict=True) for ln, tag in zip(s.lines, tg, strict=True)}
    for n, line in _lines(Path(path)):
        if n in by_line:
            yield f"{line}{chr(9) if chr(9) in line else ' '}{by_line[n]}"  # the file's separator: tab or space
        else:
            yield line


__all__ = ["brackets", "check_tagger", "chunks_of", "conll_lines", "predict_texts", "tag_tokens"]
