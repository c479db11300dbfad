"""Word, character and BPE tokenizers on the Hugging Face `tokenizers` library (Rust).

The four special tokens have fixed ids in every kind: ``<pad>`` = 0, ``<unk>`` = 1,
``<bos>`` = 2, ``<eos>`` = 3. A tokenizer is saved as one ``tokenizer.json``: the HF format
plus a top-level ``"grutext"`` key with our metadata (kind, lowercase, ...). `Tokenizer.load`
reads it back alone; ``tokenizers.Tokenizer.from_str`` reads it once that key is removed.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from grutext.config import TOKENIZERS
from grutext.errors import ConfigError, DataError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS)
KINDS: tuple[str, ...] = TOKENIZERS  # data.tokenizer's choices, written once in grutext.config
_FORMAT_VERSION = 1
_HTML_BREAK = r"<br\s*/?>"  # IMDB's "<br /><br />" line breaks
_NO_LIMIT = 1 << 30
# Penn Treebank contractions: "doesn't" -> "does" "n't", "it's" -> "it" "'s"; so raw text and
# Treebank-tokenised corpora (SST, PTB: "does n't") give the same tokens. Any other mark that is
# neither a word character nor a space is a token of its own.
_WORD_PIECES = r"[nN]['’][tT]\b|['’](?:[sSdDmM]|[rR][eE]|[vV][eE]|[lL][lL])\b|[^\w\s]"


def _build_normalizer(lowercase: bool, strip_html: bool) -> Any:
    from tokenizers import Regex, normalizers

    steps: list[Any] = []
    if strip_html:
        steps.append(normalizers.Replace(Regex(_HTML_BREAK), " "))
    steps.append(normalizers.NFKC())
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _check_train_args(kind: str, min_freq: int, max_size: int | None) -> None:
    """Refuse an unknown tokenizer kind and sizes too small (`Tokenizer.train`)."""
    if kind not in KINDS:
        raise ConfigError(f"tokenizer kind: expected one of {list(KINDS)}, got {kind!r}")
    if min_freq < 1:
        raise ConfigError(f"min_freq: expected an integer >= 1, got {min_freq!r}")
    if max_size is not None and max_size <= len(SPECIALS):
        raise ConfigError(f"max_size: expected more than {len(SPECIALS)} (the specials), got {max_size!r}")


def _counted(texts: Iterable[str]) -> tuple[Iterable[str], int | None]:
    """`texts` and their number (None for a one-pass iterable); no texts at all is a DataError."""
    length: int | None
    if isinstance(texts, (list, tuple)):
        length = len(texts)
    else:  # a one-pass iterable (a corpus streamed from disk): never held in memory whole
        stream = iter(texts)
        first = next(stream, None)
        length = 0 if first is None else None
        texts = itertools.chain([] if first is None else [first], stream)
    if length == 0:
        raise DataError("tokenizer training texts: expected at least one text, got none")
    return texts, length


def _untrained(
    kind: str,
    lowercase: bool,
    strip_html: bool,
    min_freq: int,
    max_size: int | None,
    bpe_vocab_size: int,
    split_contractions: bool,
) -> tuple[Any, Any]:
    """An empty Hugging Face tokenizer of `kind` (normalizer, pre-tokenizer, decoder) and its trainer."""
    from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
    from tokenizers import Tokenizer as HFTokenizer

    if kind == "bpe":
        hf = HFTokenizer(models.BPE(unk_token=UNK))
        hf.normalizer = _build_normalizer(lowercase, strip_html)
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        size = min(bpe_vocab_size, max_size) if max_size else bpe_vocab_size
        trainer: Any = trainers.BpeTrainer(
            vocab_size=size,
            min_frequency=min_freq,
            special_tokens=list(SPECIALS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    else:
        hf = HFTokenizer(models.WordLevel(unk_token=UNK))
        hf.normalizer = _build_normalizer(lowercase, strip_html)
        if kind == "word" and split_contractions:
            hf.pre_tokenizer = pre_tokenizers.Sequence(
                [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(_WORD_PIECES), "isolated")]
            )
        elif kind == "word":
            hf.pre_tokenizer = pre_tokenizers.Sequence(
                [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
            )
        else:  # every character, whitespace included, is its own token
            hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), "isolated")
            hf.decoder = decoders.Fuse()
        trainer = trainers.WordLevelTrainer(
            vocab_size=max_size or _NO_LIMIT,
            min_frequency=min_freq,
            special_tokens=list(SPECIALS),
            show_progress=False,
        )
    return hf, trainer


class Tokenizer:
    """A trained tokenizer: text <-> ids, with fixed special ids.

    Build one with `Tokenizer.train` or `Tokenizer.load`; the constructor wraps an existing
    ``tokenizers.Tokenizer``.

    Args:
        hf: the Rust tokenizer object.
        kind: ``"word"``, ``"char"`` or ``"bpe"``.
        meta: extra metadata stored with it (lowercase, strip_html, training options).

    Example:
        >>> tok = Tokenizer.train(["a good film", "a bad film"], kind="word")
        >>> tok.encode("a good movie")
        [4, 7, 1]
        >>> tok.decode(tok.encode("a good movie"))
        'a good <unk>'
    """

    def __init__(self, hf: Any, kind: str, meta: dict[str, Any] | None = None) -> None:
        if kind not in KINDS:
            raise ConfigError(f"tokenizer kind: expected one of {list(KINDS)}, got {kind!r}")
        self._hf = hf
        self._kind = kind
        self._meta = dict(meta or {})
        for i, tok in enumerate(SPECIALS):
            got = hf.token_to_id(tok)
            if got != i:
                raise DataError(f"tokenizer: special token {tok!r} must have id {i}, got {got}")
        self._id_to_token: list[str] | None = None

    # ------------------------------------------------------------------ training

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        kind: str = "word",
        *,
        lowercase: bool | None = None,
        strip_html: bool | None = None,
        min_freq: int = 1,
        max_size: int | None = None,
        bpe_vocab_size: int = 8000,
        split_contractions: bool = True,
    ) -> Tokenizer:
        """Learn a vocabulary from `texts`.

        Args:
            texts: training texts (an iterable; a list is fastest).
            kind: ``"word"`` (NFKC, optional lower-casing, split on whitespace, every
                punctuation mark its own token), ``"char"`` (every character a token, spaces
                and newlines included) or ``"bpe"`` (byte-level BPE, never produces ``<unk>``).
            lowercase: lower-case before tokenizing; default True for word/bpe, False for char.
            strip_html: replace ``<br />`` tags by a space; default True for word/bpe, False
                for char.
            min_freq: keep tokens (word/char) or merges (bpe) seen at least this often.
            max_size: total vocabulary size cap, specials included.
            bpe_vocab_size: target vocabulary size for BPE (capped by `max_size`).
            split_contractions: word tokenizers split English contractions as the Penn Treebank
                does ("doesn't" -> "does n't", "it's" -> "it 's"), so raw text matches
                Treebank-tokenised corpora; False splits at every punctuation mark instead
                ("doesn ' t").

        Returns:
            The trained `Tokenizer`.

        Raises:
            ConfigError: unknown kind, or sizes too small.
            DataError: no texts.
        """
        _check_train_args(kind, min_freq, max_size)
        if lowercase is None:
            lowercase = kind != "char"
        if strip_html is None:
            strip_html = kind != "char"
        texts, length = _counted(texts)
        hf, trainer = _untrained(kind, lowercase, strip_html, min_freq, max_size, bpe_vocab_size, split_contractions)
        hf.train_from_iterator(texts, trainer=trainer, length=length)
        meta = {
            "lowercase": lowercase,
            "strip_html": strip_html,
            "min_freq": min_freq,
            "max_size": max_size,
            "bpe_vocab_size": bpe_vocab_size if kind == "bpe" else None,
            "split_contractions": bool(split_contractions) if kind == "word" else None,
        }
        return cls(hf, kind, meta)

    # ------------------------------------------------------------------ properties

    @property
    def kind(self) -> str:
        """``"word"``, ``"char"`` or ``"bpe"``."""
        return self._kind

    @property
    def lowercase(self) -> bool:
        """Whether text is lower-cased before tokenizing."""
        return bool(self._meta.get("lowercase", False))

    @property
    def meta(self) -> dict[str, Any]:
        """A copy of the metadata saved with the tokenizer."""
        return dict(self._meta)

    @property
    def pad_id(self) -> int:
        """Id of ``<pad>`` (0)."""
        return 0

    @property
    def unk_id(self) -> int:
        """Id of ``<unk>`` (1)."""
        return 1

    @property
    def bos_id(self) -> int:
        """Id of ``<bos>`` (2)."""
        return 2

    @property
    def eos_id(self) -> int:
        """Id of ``<eos>`` (3)."""
        return 3

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included (V)."""
        return int(self._hf.get_vocab_size(with_added_tokens=True))

    @property
    def hf(self) -> Any:
        """The underlying ``tokenizers.Tokenizer``."""
        return self._hf

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self._kind!r}, vocab_size={self.vocab_size:,}, lowercase={self.lowercase})"

    # ------------------------------------------------------------------ encode / decode

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Ids of `text` (no specials unless asked).

        Args:
            text: one text.
            add_bos: prepend ``<bos>``.
            add_eos: append ``<eos>``.

        Returns:
            A list of ids (T,); empty for a text with no tokens.
        """
        ids = list(self._hf.encode(text, add_special_tokens=False).ids)
        return self._wrap(ids, add_bos, add_eos)

    def encode_batch(self, texts: Sequence[str], *, add_bos: bool = False, add_eos: bool = False) -> list[list[int]]:
        """Ids of many texts, encoded in parallel by the Rust library.

        Args:
            texts: the texts.
            add_bos: prepend ``<bos>`` to each.
            add_eos: append ``<eos>`` to each.

        Returns:
            One id list per text, in order.
        """
        encs = self._hf.encode_batch(list(texts), add_special_tokens=False)
        return [self._wrap(list(e.ids), add_bos, add_eos) for e in encs]

    def _wrap(self, ids: list[int], add_bos: bool, add_eos: bool) -> list[int]:
        if add_bos:
            ids.insert(0, self.bos_id)
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def tokens(self, text: str) -> list[str]:
        """The token strings of `text` (byte-level symbols such as ``Ġ`` for BPE)."""
        return list(self._hf.encode(text, add_special_tokens=False).tokens)

    def normalize(self, text: str) -> str:
        """`text` after the normaliser (NFKC, lower-casing, ``<br />`` removal as configured)."""
        norm = self._hf.normalizer
        return norm.normalize_str(text) if norm is not None else text

    def decode(self, ids: Sequence[int], *, skip_special: bool = True) -> str:
        """Text of `ids`.

        Word level joins tokens with spaces, char level concatenates, BPE undoes the byte
        encoding. ``<unk>`` is always shown; ``<pad>``, ``<bos>``, ``<eos>`` only when
        `skip_special` is False.

        Args:
            ids: token ids.
            skip_special: drop ``<pad>``, ``<bos>`` and ``<eos>``.

        Returns:
            The decoded string.
        """
        ids = [int(i) for i in ids]
        if skip_special:
            ids = [i for i in ids if i not in (self.pad_id, self.bos_id, self.eos_id)]
        table = self._table()
        for i in ids:
            if not 0 <= i < len(table):
                raise DataError(f"decode: id {i} out of range, expected 0..{len(table) - 1}")
        if self._kind == "word":
            return " ".join(table[i] for i in ids)
        if self._kind == "char":
            return "".join(table[i] for i in ids)
        return str(self._hf.decode(ids, skip_special_tokens=False))

    def _table(self) -> list[str]:
        if self._id_to_token is None:
            vocab = self._hf.get_vocab(with_added_tokens=True)
            table = [""] * (max(vocab.values()) + 1)
            for tok, i in vocab.items():
                table[i] = tok
            self._id_to_token = table
        return self._id_to_token

    def id_to_token(self, i: int) -> str:
        """The token string of id `i`.

        Raises:
            DataError: `i` out of range.
        """
        table = self._table()
        if not 0 <= int(i) < len(table):
            raise DataError(f"id_to_token: id {i} out of range, expected 0..{len(table) - 1}")
        return table[int(i)]

    def token_to_id(self, token: str) -> int | None:
        """The id of `token`, or None if it is not in the vocabulary."""
        return self._hf.token_to_id(token)

    def get_vocab(self) -> dict[str, int]:
        """The vocabulary as ``{token: id}``."""
        return dict(self._hf.get_vocab(with_added_tokens=True))

    def oov_rate(self, texts: Sequence[str]) -> float:
        """Fraction of the tokens of `texts` that map to ``<unk>`` (0.0 when there are none)."""
        total = unk = 0
        for ids in self.encode_batch(list(texts)):
            total += len(ids)
            unk += sum(1 for i in ids if i == self.unk_id)
        return unk / total if total else 0.0

    # ------------------------------------------------------------------ persistence

    def to_json_str(self) -> str:
        """The tokenizer as a JSON string (HF tokenizer.json plus a ``"grutext"`` key)."""
        data = json.loads(self._hf.to_str())
        data["grutext"] = {"format_version": _FORMAT_VERSION, "kind": self._kind, **self._meta}
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json_str(cls, text: str, source: str = "tokenizer JSON") -> Tokenizer:
        """Rebuild a tokenizer from `to_json_str` output (or a plain HF tokenizer.json).

        Args:
            text: the JSON.
            source: name used in error messages.

        Returns:
            The `Tokenizer`.

        Raises:
            DataError: invalid JSON or not a tokenizer.
        """
        from tokenizers import Tokenizer as HFTokenizer

        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source} line {exc.lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(data, dict) or "model" not in data:
            raise DataError(f"{source}: expected a tokenizer.json object with a 'model' key")
        meta = dict(data.pop("grutext", None) or {})
        version = meta.pop("format_version", _FORMAT_VERSION)
        if version > _FORMAT_VERSION:
            raise DataError(f"{source}: tokenizer format_version {version} is newer than supported {_FORMAT_VERSION}")
        kind = meta.pop("kind", None) or _guess_kind(data)
        try:
            hf = HFTokenizer.from_str(json.dumps(data))
        except Exception as exc:  # the Rust parser raises a plain Exception
            raise DataError(f"{source}: not a valid tokenizer.json ({exc})") from None
        return cls(hf, kind, meta)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the tokenizer to `path` (a file, or a folder that gets ``tokenizer.json``).

        Returns:
            The file written.
        """
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_json_str(), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Read a tokenizer saved by `save` (a file, or a folder holding ``tokenizer.json``).

        Raises:
            DataError: missing or invalid file.
        """
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            raise DataError(f"{p}: tokenizer file not found")
        return cls.from_json_str(p.read_text(encoding="utf-8"), str(p))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_json_str() == other.to_json_str()

    __hash__ = None  # type: ignore[assignment]


def _guess_kind(data: dict[str, Any]) -> str:
    """Kind of a plain HF tokenizer.json without our metadata."""
    model = (data.get("model") or {}).get("type")
    if model == "BPE":
        return "bpe"
    pre = json.dumps(data.get("pre_tokenizer"))
    return "char" if r"[\\s\\S]" in pre else "word"


__all__ = ["Tokenizer", "SPECIALS", "KINDS", "PAD", "UNK", "BOS", "EOS"]
