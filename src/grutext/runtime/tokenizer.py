"""Tokenization as in training, without grutext's torch-side tokenizer: `RuntimeTokenizer` reads a
``tokenizer.json`` with the `tokenizers` library (word tokenizers encode plain-ASCII texts in
Python, `_FastWords`), and `truncate` is grutext's truncation."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grutext.errors import ArtifactError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
TRUNCATIONS = ("head", "tail", "head+tail")


def truncate(ids: list[int], max_len: int | None, policy: str) -> list[int]:
    """grutext's truncation (`grutext.data.batching.truncate`): head, tail or head+tail."""
    if max_len is None or len(ids) <= max_len:
        return ids
    if policy == "head":
        return ids[:max_len]
    if policy == "tail":
        return ids[len(ids) - max_len :]
    head = max_len // 4
    return ids[:head] + ids[len(ids) - (max_len - head) :]


# grutext's word tokenizer (grutext.data.tokenizers), written again for plain-ASCII text, where
# Python's and the Rust library's regex, whitespace and lower-casing agree exactly; anything else
# (other characters, control characters, the special tokens written in the text) goes to the
# library. A test checks both paths give the same ids on real and adversarial texts.
WORD_PIECES = r"[nN]['’][tT]\b|['’](?:[sSdDmM]|[rR][eE]|[vV][eE]|[lL][lL])\b|[^\w\s]"
_HTML_BREAK = r"<br\s*/?>"
_WS = r" \t\n\r\x0b\x0c"  # the ASCII whitespace of Rust's char::is_whitespace
_UNSAFE = re.compile(r"[^\x20-\x7e\t\n\r\x0b\x0c]")  # non-ASCII or control characters
_ASCII_PUNCT = r"[!-/:-@\[-`{-~]"  # Rust's is_ascii_punctuation


class _FastWords:
    """Word-level encoding in Python for ASCII texts, when the tokenizer is exactly grutext's word kind."""

    def __init__(self, data: dict[str, Any]) -> None:
        norm, pre, model = data.get("normalizer") or {}, data.get("pre_tokenizer") or {}, data.get("model") or {}
        steps = norm.get("normalizers") if norm.get("type") == "Sequence" else None
        replace = {"type": "Replace", "pattern": {"Regex": _HTML_BREAK}, "content": " "}
        if not isinstance(steps, list) or {"type": "NFKC"} not in steps:
            raise ValueError("normalizer")
        self.strip_html = steps[0] == replace
        self.lowercase = steps[-1] == {"type": "Lowercase"}
        if steps != [replace] * self.strip_html + [{"type": "NFKC"}] + [{"type": "Lowercase"}] * self.lowercase:
            raise ValueError("normalizer")
        parts = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
        if not isinstance(parts, list) or len(parts) != 2 or parts[0] != {"type": "WhitespaceSplit"}:
            raise ValueError("pre_tokenizer")
        split = {"type": "Split", "pattern": {"Regex": WORD_PIECES}, "behavior": "Isolated", "invert": False}
        if parts[1] == split:
            pieces = WORD_PIECES
        elif parts[1] == {"type": "Punctuation", "behavior": "Isolated"}:
            pieces = _ASCII_PUNCT
        else:
            raise ValueError("pre_tokenizer")
        # whitespace splits words; inside a word every match of `pieces` is a token ("isolated")
        # and so is each run of characters between matches. One pass over the whole text: a
        # match never spans whitespace, and \b sees whitespace as the end of a word.
        self.tokens = re.compile(f"{pieces}|(?:(?!{pieces})[^{_WS}])+")
        if model.get("type") != "WordLevel" or not isinstance(model.get("vocab"), dict):
            raise ValueError("model")
        self.vocab: dict[str, int] = model["vocab"]
        self.unk = int(self.vocab[model["unk_token"]])
        self.specials = [t["content"] for t in data.get("added_tokens") or []]
        self.html = re.compile(_HTML_BREAK)

    def encode(self, text: str) -> list[int] | None:
        """Ids of `text`, or None when it is not plain ASCII (or names a special token)."""
        if _UNSAFE.search(text) or ("<" in text and any(sp in text for sp in self.specials)):
            return None
        if self.strip_html:
            text = self.html.sub(" ", text)
        if self.lowercase:
            text = text.lower()
        vocab, unk, out = self.vocab, self.unk, []
        for word in text.split():  # safe text: str.split's whitespace is the library's
            if word.isalnum():  # letters and digits only: nothing inside it splits
                out.append(vocab.get(word, unk))
            else:
                out.extend(vocab.get(t, unk) for t in self.tokens.findall(word))
        return out


class RuntimeTokenizer:
    """A grutext ``tokenizer.json`` read by the `tokenizers` library alone (ids as in training).

    Word tokenizers encode plain-ASCII texts in Python (`_FastWords`, the same ids, several times
    faster for one short text); every other text and kind goes through the library.
    """

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path}: expected a tokenizer JSON, could not read it ({exc})") from None
        meta = data.pop("grutext", None) or {}
        self.kind: str = str(meta.get("kind", "word"))
        self.meta: dict[str, Any] = meta
        try:
            self.hf = HFTokenizer.from_str(json.dumps(data))
        except Exception as exc:  # the Rust library's own exception type
            raise ArtifactError(f"{path}: not a tokenizer the tokenizers library reads ({exc})") from None
        self.fast: _FastWords | None = None
        if self.kind == "word":
            try:
                self.fast = _FastWords(data)
            except (ValueError, KeyError, TypeError):
                self.fast = None  # not the layout grutext writes: the library alone
        vocab = self.hf.get_vocab(with_added_tokens=True)
        self.table = [""] * (max(vocab.values()) + 1)
        for tok, i in vocab.items():
            self.table[i] = tok

    @property
    def vocab_size(self) -> int:
        return len(self.table)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        out: list[list[int] | None] = [self.fast.encode(t) for t in texts] if self.fast else [None] * len(texts)
        rest = [i for i, ids in enumerate(out) if ids is None]
        if rest:
            encs = self.hf.encode_batch([texts[i] for i in rest], add_special_tokens=False)
            for i, e in zip(rest, encs, strict=True):
                out[i] = list(e.ids)
        return [ids if ids is not None else [] for ids in out]

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def decode(self, ids: Sequence[int]) -> str:
        """As `grutext.data.tokenizers.Tokenizer.decode` with ``skip_special=True``."""
        ids = [int(i) for i in ids if int(i) not in (PAD, BOS, EOS)]
        if self.kind == "word":
            return " ".join(self.table[i] for i in ids)
        if self.kind == "char":
            return "".join(self.table[i] for i in ids)
        return str(self.hf.decode(ids, skip_special_tokens=False))


__all__ = ["BOS", "EOS", "PAD", "TRUNCATIONS", "UNK", "WORD_PIECES", "RuntimeTokenizer", "truncate"]
