"""`LanguageModelRuntime`: an exported language model's step graph driven token by token (next
words, sampling, greedy decoding, streamed text)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grutext.errors import ConfigError, DataError
from grutext.runtime.model import RuntimeModel
from grutext.runtime.tokenizer import BOS, EOS, PAD, UNK


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


__all__ = ["LanguageModelRuntime"]
