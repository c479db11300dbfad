"""Run an exported grutext model without torch: onnxruntime, tokenizers and numpy only.

``grutext export MODEL_DIR OUT`` writes a folder this module reads::

    >>> from grutext import runtime                       # doctest: +SKIP
    >>> m = runtime.load("runs/demo-bbc-onnx", threads=1)  # doctest: +SKIP
    >>> m.predict(["Shares rally as profits beat forecasts"])[0]["label"]   # doctest: +SKIP
    'business'

`load` returns a `ClassifierModel` (``kind == "classifier"``) or a `LanguageModelRuntime`
(``kind == "language_model"``). Both have ``kind``, ``labels`` (class names; the LM: empty),
``info`` (the parsed ``grutext-export.json``) and ``path``.

This package must stay importable with no torch installed: it imports only the standard
library, numpy, onnxruntime, tokenizers and `grutext.errors` (itself standard library only);
a test runs it in a process where torch cannot be imported.

How it differs from grutext's torch predictors (`grutext.infer`):

- `ClassifierModel.predict` answers ``{"label", "probs"}`` (``Predictor.predict``:
  ``{"text", "label", "probability", "probabilities"}`` rounded to 6 digits); probabilities are
  the same numbers (fp32, within 1e-5; int8 within its quantization error).
- `LanguageModelRuntime.generate` samples with numpy's generator: a seed gives repeatable
  output, but not the same text as `Generator` with that seed (greedy decoding is identical).
  There is no repetition penalty, stop list or beam search.
- `LanguageModelRuntime.next_word` is `Suggester.next_words(context)` for word-level models
  (the k most likely next words, specials excluded, model probabilities); for character and
  BPE models it returns the k most likely next *tokens* (the torch `Suggester` searches ahead
  to whole words).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grutext.errors import ArtifactError, ConfigError, DataError

FORMAT = "grutext-onnx"
FORMAT_VERSION = 1
MANIFEST = "grutext-export.json"
PAD, UNK, BOS, EOS = 0, 1, 2, 3
TRUNCATIONS = ("head", "tail", "head+tail")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The parsed ``grutext-export.json`` of an export folder, checked for format and version.

    Raises:
        ArtifactError: no folder, no manifest, not JSON, another format, or a newer version.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: export folder not found (expected the OUT of `grutext export`)")
    mf = folder / MANIFEST
    if not mf.is_file():
        raise ArtifactError(f"{folder}: not a grutext export folder (no {MANIFEST}); create one with `grutext export`")
    try:
        info = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{mf}: expected JSON, could not read it ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        got = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise ArtifactError(f"{mf}: expected format {FORMAT!r}, got {got!r}")
    version = info.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{mf}: format_version {version!r} is not one this grutext reads (<= {FORMAT_VERSION}); upgrade grutext"
        )
    return info


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


def _session(path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads: expected an integer >= 1 or None (onnxruntime's default), got {threads!r}")
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        raise ArtifactError(f"{path}: onnxruntime could not load it ({str(exc).splitlines()[0]})") from None


class RuntimeModel:
    """What every exported model has: ``kind``, ``labels``, ``info``, ``path``, the session."""

    kind: str = ""

    def __init__(self, path: Path, info: dict[str, Any], threads: int | None, int8: bool) -> None:
        self.path = path
        self.info = info
        self.int8 = int8
        files = info.get("files") or {}
        name = "model.int8.onnx" if int8 else "model.onnx"
        if name not in files:
            hint = " (export with --int8 to get one)" if int8 else ""
            raise ArtifactError(f"{path}: this export has no {name}{hint}")
        for fname, entry in files.items():
            if fname not in (name, "tokenizer.json"):
                continue
            fpath = path / fname
            if not fpath.is_file():
                raise ArtifactError(f"{fpath}: missing; the export folder is incomplete")
            if sha256_file(fpath) != entry.get("sha256"):
                raise ArtifactError(f"{fpath}: sha256 differs from {MANIFEST}; the file was changed or damaged")
        self.tokenizer = RuntimeTokenizer(path / "tokenizer.json")
        self.session = _session(path / name, threads)
        self.labels: list[str] = list(info.get("labels") or [])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, int8={self.int8})"


def _check_texts(texts: Any, name: str = "texts") -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise DataError(f"{name}: expected a list of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str) or not t.strip():
            raise DataError(f"{name}[{i}]: expected a non-empty string, got {t!r:.40}")
    return out


class ClassifierModel(RuntimeModel):
    """An exported classifier (one network or an ensemble's averaged probabilities)."""

    kind = "classifier"

    def __init__(self, path: Path, info: dict[str, Any], threads: int | None, int8: bool, batch_size: int = 64) -> None:
        super().__init__(path, info, threads, int8)
        pre = info.get("preprocess") or {}
        self.max_len: int | None = pre.get("max_len")
        self.truncation: str = pre.get("truncation", "head")
        if self.truncation not in TRUNCATIONS:
            raise ArtifactError(f"{path / MANIFEST}: truncation {self.truncation!r} is not one of {list(TRUNCATIONS)}")
        self.task: str = info.get("task", "multiclass")
        self.threshold: float = float((info.get("postprocess") or {}).get("multilabel_threshold", 0.5))
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids as training made them: tokenized, an empty text one ``<unk>``, truncated."""
        return [truncate(ids or [UNK], self.max_len, self.truncation) for ids in self.tokenizer.encode_batch(texts)]

    def run_ids(self, seqs: list[list[int]]) -> np.ndarray:
        """`(N, C)` probabilities of id lists, batched by length (order kept)."""
        n = len(seqs)
        if n == 1:  # one text: no sorting or padding to do
            ids = np.array(seqs, dtype=np.int64)  # (1, T)
            return np.asarray(self.session.run(["probs"], {"ids": ids, "lengths": np.array([ids.shape[1]])})[0])
        out = np.zeros((n, len(self.labels)), dtype=np.float32)
        order = sorted(range(n), key=lambda i: len(seqs[i]))
        for start in range(0, n, self.batch_size):
            rows = order[start : start + self.batch_size]
            T = max(len(seqs[i]) for i in rows)
            ids = np.zeros((len(rows), T), dtype=np.int64)
            for r, i in enumerate(rows):
                ids[r, : len(seqs[i])] = seqs[i]
            lengths = np.array([len(seqs[i]) for i in rows], dtype=np.int64)
            out[rows] = self.session.run(["probs"], {"ids": ids, "lengths": lengths})[0]
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """`(N, C)` probabilities, columns in `labels` order (binary: two columns)."""
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.run_ids(self.encode(texts))

    def predict(self, texts: Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]:
        """Each text's ``{"label": str, "probs": {label: float}}``.

        ``probs`` holds every class in `labels` order; with `top_k`, only the k most likely,
        most likely first. Multi-label models add ``"labels"``: every class with probability
        >= the exported threshold (``label`` is then the most likely one).
        """
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ConfigError(f"top_k: expected an integer >= 1 or None, got {top_k!r}")
        probs = self.predict_proba(texts)
        out = []
        for p in probs:
            j = int(p.argmax())
            if top_k is None:
                shown = {lab: float(v) for lab, v in zip(self.labels, p, strict=True)}
            else:
                top = np.argsort(-p, kind="stable")[:top_k]
                shown = {self.labels[i]: float(p[i]) for i in top}
            row: dict[str, Any] = {"label": self.labels[j], "probs": shown}
            if self.task == "multilabel":
                row["labels"] = [self.labels[i] for i in np.flatnonzero(p >= self.threshold)]
            out.append(row)
        return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    e = np.exp(z)
    return np.asarray(e / e.sum())


class LanguageModelRuntime(RuntimeModel):
    """An exported language model: a single-step graph (token, state -> logits, state)."""

    kind = "language_model"

    def __init__(self, path: Path, info: dict[str, Any], threads: int | None, int8: bool) -> None:
        super().__init__(path, info, threads, int8)
        lm = info.get("lm") or {}
        self.add_eos = bool(lm.get("add_eos", self.tokenizer.kind != "char"))
        self.num_layers = int(lm["num_layers"])
        self.hidden_size = int(lm["hidden_size"])
        self.banned = [PAD, BOS] + ([] if self.add_eos else [EOS])
        self._banned_mask = np.isin(np.arange(self.tokenizer.vocab_size), self.banned)

    def init_state(self, batch: int = 1) -> np.ndarray:
        """Zero state `(L, B, H)`."""
        return np.zeros((self.num_layers, batch, self.hidden_size), dtype=np.float32)

    def step(self, ids: Sequence[int], state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One token per stream: ids `(B,)`, state `(L, B, H)` -> logits `(B, V)`, new state."""
        x = np.asarray(ids, dtype=np.int64).reshape(-1, 1)
        logits, new_state = self.session.run(["logits", "state_out"], {"ids": x, "state": state})
        return logits, new_state

    def feed(self, ids: Sequence[int], state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Run one stream's `ids`: the last logits `(V,)` and the state after them."""
        state = self.init_state(1) if state is None else state
        logits = np.zeros((1, self.tokenizer.vocab_size), dtype=np.float32)
        for i in ids:
            logits, state = self.step([i], state)
        return logits[0], state

    def prompt_ids(self, prompt: str) -> list[int]:
        """As `Generator.prompt_ids`: ``<eos>`` first for line-based models; bad prompts refused."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"prompt: expected some text to continue, got {prompt!r}")
        ids = self.tokenizer.encode(prompt)
        if not ids:
            raise DataError(f"prompt {prompt!r}: no tokens after tokenization")
        if all(i == UNK for i in ids):
            raise DataError(
                f"prompt {prompt!r}: every token is unknown to the model's vocabulary; "
                "expected at least one known token"
            )
        return ([EOS] if self.add_eos else []) + ids

    def next_word(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        """The k most likely next words after `text` (char/BPE models: next tokens), with probabilities."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k: expected an integer >= 1, got {k!r}")
        logits, _ = self.feed(self.prompt_ids(text))
        probs = _softmax(logits.astype(np.float64))
        probs[[PAD, UNK, BOS, EOS]] = 0.0
        top = np.argsort(-probs, kind="stable")[: min(k, int((probs > 0).sum()))]
        if self.tokenizer.kind == "word":
            return [(self.tokenizer.table[i], float(probs[i])) for i in top]
        return [(self.tokenizer.decode([int(i)]), float(probs[i])) for i in top]

    def render(self, ids: Sequence[int]) -> str:
        """Text of generated ids as it continues a prompt (``<eos>`` -> newline), as `Generator.render`."""
        parts: list[str] = []
        seg: list[int] = []
        for i in [*ids, None]:
            if i is None or i == EOS:
                if seg:
                    text = self.tokenizer.decode(seg)
                    if self.tokenizer.kind == "word":
                        text = (" " if parts == [] or not parts[-1].endswith("\n") else "") + text
                    parts.append(text)
                seg = []
                if i is not None:
                    parts.append("\n")
            else:
                seg.append(i)
        out = "".join(parts)
        if self.tokenizer.kind == "word":
            out = out.replace(" \n", "\n").replace("\n ", "\n")
        return out

    def next_probs(
        self, logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
    ) -> np.ndarray:
        """The distribution the next token is drawn from (`grutext.infer.generate.next_token_probs`)."""
        z = logits.astype(np.float64).copy()
        z[self.banned] = -np.inf
        z = z / temperature
        if top_k is not None and top_k < z.size:
            kth = np.sort(z)[-top_k]
            z = np.where(z < kth, -np.inf, z)
        probs = _softmax(z)
        if top_p is not None and top_p < 1.0:
            order = np.argsort(-probs, kind="stable")
            sorted_p = probs[order]
            before = np.cumsum(sorted_p) - sorted_p
            keep = np.zeros(probs.size, dtype=bool)
            keep[order] = before < top_p
            probs = np.where(keep, probs, 0.0)
            probs = probs / probs.sum()
        return probs

    def stream_ids(
        self,
        prompt: str,
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        greedy: bool = False,
    ) -> Iterator[int]:
        """Generated ids one at a time; each step feeds one token and keeps only the state."""
        _check_sampling(temperature, top_k, top_p, max_tokens)
        history = self.prompt_ids(prompt)
        rng = np.random.default_rng(seed)
        logits, state = self.feed(history)
        for _ in range(max_tokens):
            if greedy:  # as Generator: banned ids removed, then the most likely
                nxt = int(np.argmax(np.where(self._banned_mask, -np.inf, logits)))
            else:
                nxt = int(rng.choice(logits.size, p=self.next_probs(logits, temperature, top_k, top_p)))
            yield nxt
            logits1, state = self.step([nxt], state)
            logits = logits1[0]

    def stream(self, prompt: str, **options: Any) -> Iterator[str]:
        """Generated text in pieces as tokens arrive (options as `generate`)."""
        produced: list[int] = []
        shown = ""
        for i in self.stream_ids(prompt, **options):
            produced.append(i)
            text = self.render(produced)
            if text.endswith("\ufffd"):  # an unfinished UTF-8 character (byte-level BPE): wait
                continue
            piece, shown = text[len(shown) :], text
            if piece:
                yield piece
        text = self.render(produced)
        if len(text) > len(shown):
            yield text[len(shown) :]

    def generate(
        self,
        prompt: str,
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        greedy: bool = False,
    ) -> str:
        """Continue `prompt` by up to `max_tokens` tokens (sampled; `greedy`: always the most likely)."""
        return "".join(
            self.stream(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                seed=seed,
                greedy=greedy,
            )
        )


def _check_sampling(temperature: Any, top_k: Any, top_p: Any, max_tokens: Any) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
        raise ConfigError(f"temperature: expected a number > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"top_k: expected an integer >= 1, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ConfigError(f"top_p: expected a number in (0, 1], got {top_p!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ConfigError(f"max_tokens: expected an integer >= 1, got {max_tokens!r}")


_KINDS: dict[str, type[RuntimeModel]] = {"classifier": ClassifierModel, "language_model": LanguageModelRuntime}


def load(path: str | Path, threads: int | None = None, int8: bool = False) -> RuntimeModel:
    """Load an export folder.

    Args:
        path: the OUT folder of ``grutext export``.
        threads: onnxruntime intra-op threads (None: onnxruntime's default, all cores).
        int8: run ``model.int8.onnx`` (exported with ``--int8``) instead of ``model.onnx``.

    Returns:
        A `ClassifierModel` or `LanguageModelRuntime`.

    Raises:
        ArtifactError: not an export folder, a file missing or changed (sha256), an unknown kind.
    """
    folder = Path(path)
    info = read_manifest(folder)
    kind = info.get("kind")
    if kind not in _KINDS:
        raise ArtifactError(f"{folder / MANIFEST}: kind {kind!r} is not one the runtime runs ({', '.join(_KINDS)})")
    return _KINDS[kind](folder, info, threads, bool(int8))


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "ClassifierModel",
    "LanguageModelRuntime",
    "RuntimeModel",
    "load",
    "read_manifest",
]
